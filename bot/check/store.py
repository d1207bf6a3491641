"""Redis, as ``serve`` needs it: reachable, the password accepted, a recent enough server, a policy that
never evicts money (``bot.store.policy``), and persistence so spend survives a restart.

Commands used: PING, INFO server / persistence (https://redis.io/docs/latest/commands/info/) and the
policy read of ``bot.store.policy``. A command an ACL denies (INFO is in ``@dangerous``) makes its line a
warning, not a failure: the bot itself does not need it. Why a Redis failed is ``store_failures``'s job.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ResponseError

from bot.check.report import CheckLine, Status, fail, ok, warn
from bot.check.store_failures import reach_fix, store_failure
from bot.core.errors import StoreUnavailable
from bot.redaction import redact_url
from bot.store.connection import open_store, store_errors
from bot.store.policy import SAFE_POLICY, read_eviction_policy

# XAUTOCLAIM (the work queue's takeover of a dead replica's replies) arrived in Redis 6.2
# (https://redis.io/docs/latest/commands/xautoclaim/).
MIN_VERSION = (6, 2)
PROBE_SECONDS = 10.0
NAME = "redis"


async def check_store(redis_url: str | None, cache_url: str | None) -> list[CheckLine]:
    """Lines for the main store, then the image cache's Redis when it is separate. A cache that fails
    only warns: without it images are downscaled again on every turn, nothing else changes."""
    if redis_url is None:
        lines = [
            warn(
                NAME,
                "REDIS_URL is unset: an embedded store, one process only; history and spend are lost on "
                "restart",
                "fine for trying it; for a team set REDIS_URL to a Redis with maxmemory-policy noeviction",
            )
        ]
    else:
        lines = await _probe(redis_url, NAME, "REDIS_URL", main=True)
    if cache_url is not None:
        cache_lines = await _probe(cache_url, "image cache redis", "REDIS_CACHE_URL", main=False)
        lines += [_only_warn(line) for line in cache_lines]
    return lines


def _only_warn(line: CheckLine) -> CheckLine:
    if line.status is not Status.FAIL:
        return line
    return replace(line, status=Status.WARN, detail=f"{line.detail}: images will not be cached", outage=False)


async def _probe(url: str, name: str, setting: str, *, main: bool) -> list[CheckLine]:
    client = open_store(url)
    shown = redact_url(url)
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            return await _inspect(client, name, shown, main=main)
    except StoreUnavailable as exc:
        return [store_failure(exc, url, name, setting)]
    except TimeoutError:
        detail = f"{shown} did not answer within {PROBE_SECONDS:.0f} s"
        return [fail(name, detail, reach_fix(setting), outage=True)]
    finally:
        await client.aclose()


async def _inspect(client: redis.Redis, name: str, shown: str, *, main: bool) -> list[CheckLine]:
    with store_errors("check"):
        await client.ping()
        try:
            server: dict[str, Any] | None = await client.info("server")
        except ResponseError:  # INFO denied by an ACL (it is in @dangerous), or renamed
            server = None
    if server is None:
        fix = f"make sure it is Redis {'.'.join(map(str, MIN_VERSION))} or newer"
        lines = [warn(name, f"{shown} answered, but would not tell its version (INFO denied)", fix)]
    else:
        lines = [_version_line(name, shown, str(server.get("redis_version", "0")))]
    if main:
        lines.append(await _policy_line(client))
        lines.append(await _persistence_line(client))
    return lines


def _version_line(name: str, shown: str, version: str) -> CheckLine:
    numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if numbers < MIN_VERSION:
        wanted = ".".join(map(str, MIN_VERSION))
        return fail(name, f"{shown} runs Redis {version}", f"use Redis {wanted} or newer")
    return ok(name, f"{shown} answered: Redis {version}")


async def _policy_line(client: redis.Redis) -> CheckLine:
    policy = await read_eviction_policy(client)
    if policy == SAFE_POLICY:
        return ok("redis policy", "maxmemory-policy is noeviction")
    fix = (
        "run `redis-cli CONFIG SET maxmemory-policy noeviction` and put `maxmemory-policy noeviction` in "
        "redis.conf (images may go to an evicting Redis of their own: REDIS_CACHE_URL)"
    )
    if policy is None:
        return warn("redis policy", "neither CONFIG GET nor INFO reveals maxmemory-policy", fix)
    return fail("redis policy", f"maxmemory-policy is {policy}: quota limits and spend may be evicted", fix)


async def _persistence_line(client: redis.Redis) -> CheckLine:
    with store_errors("check"):
        try:
            info: dict[str, Any] = await client.info("persistence")
        except ResponseError:  # INFO denied by an ACL
            info = {}
        try:
            save = str((await client.config_get("save")).get("save", ""))
        except ResponseError:  # CONFIG renamed or denied (managed Redis): judge by INFO alone
            save = "unknown"
    aof = str(info.get("aof_enabled", "0")) == "1"
    rdb = save not in ("", "unknown")
    if aof or rdb:
        kinds = [kind for kind, on in (("AOF", aof), (f"RDB snapshots (save {save})", rdb)) if on]
        return ok("redis persistence", " and ".join(kinds))
    if save == "unknown":
        return warn("redis persistence", "could not read the save setting", _PERSIST_FIX)
    return warn("redis persistence", "neither AOF nor RDB snapshots: spend is lost on restart", _PERSIST_FIX)


_PERSIST_FIX = "turn on `appendonly yes` (or RDB `save` points) so spend and limits survive a restart"
