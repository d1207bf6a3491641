"""Redis, as ``serve`` needs it: reachable, the password accepted, a recent enough server, a policy that
never evicts money (``bot.store.policy``), and persistence so spend survives a restart.

Commands used: PING, INFO server / persistence (https://redis.io/docs/latest/commands/info/) and the
policy read of ``bot.store.policy``. redis-py's exceptions are read here, at the check's Redis edge, only
to tell a refused password from an unreachable server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as redis
from redis.exceptions import AuthenticationError, ResponseError

from bot.check.report import CheckLine, fail, ok, warn
from bot.core.errors import StoreUnavailable
from bot.settings_report import redact_url
from bot.store.connection import open_store, store_errors
from bot.store.policy import SAFE_POLICY, read_eviction_policy

# XAUTOCLAIM (the work queue's takeover of a dead replica's replies) arrived in Redis 6.2
# (https://redis.io/docs/latest/commands/xautoclaim/).
MIN_VERSION = (6, 2)
PROBE_SECONDS = 10.0
NAME = "redis"


async def check_store(redis_url: str | None, cache_url: str | None) -> list[CheckLine]:
    """Lines for the main store (and the image cache's Redis when it is separate)."""
    if redis_url is None:
        return [
            warn(
                NAME,
                "REDIS_URL is unset: an embedded store, one process only; history and spend are lost on "
                "restart",
                "fine for trying it; for a team set REDIS_URL to a Redis with maxmemory-policy noeviction",
            )
        ]
    lines = await _probe(redis_url, NAME, main=True)
    if cache_url is not None:
        lines += await _probe(cache_url, "image cache redis", main=False)
    return lines


async def _probe(url: str, name: str, *, main: bool) -> list[CheckLine]:
    client = open_store(url)
    shown = redact_url(url)
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            return await _inspect(client, name, shown, main=main)
    except StoreUnavailable as exc:
        return [_unreachable(exc, name, shown)]
    except TimeoutError:
        return [fail(name, f"{shown} did not answer within {PROBE_SECONDS:.0f} s", _REACH_FIX, outage=True)]
    finally:
        await client.aclose()


_REACH_FIX = "start Redis, or fix the host and port in REDIS_URL (and any firewall in between)"


def _unreachable(exc: StoreUnavailable, name: str, shown: str) -> CheckLine:
    cause = exc.__cause__
    refused = isinstance(cause, AuthenticationError) or (
        isinstance(cause, ResponseError) and str(cause).startswith(("NOAUTH", "WRONGPASS", "NOPERM"))
    )
    if refused:
        return fail(
            name,
            f"{shown} refused the credentials ({cause})",
            "put the right user and password in the URL: redis://USER:PASSWORD@HOST:PORT/DB",
        )
    # Down, or not up yet, or a typo in the host: the same to us; serve exits 1 so a supervisor retries.
    return fail(name, f"cannot reach {shown} ({cause or exc})", _REACH_FIX, outage=True)


async def _inspect(client: redis.Redis, name: str, shown: str, *, main: bool) -> list[CheckLine]:
    with store_errors("check"):
        await client.ping()
        server: dict[str, Any] = await client.info("server")
    version = str(server.get("redis_version", "0"))
    lines = [_version_line(name, shown, version)]
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
        info: dict[str, Any] = await client.info("persistence")
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
