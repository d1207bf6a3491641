"""The Redis connection: opening it, the one translator of Redis errors, and the Lua scripts' sources.

``open_store`` gives a real server when REDIS_URL is set, else an embedded in-process store: fakeredis with
Lua support, so every Lua script and key layout is the same in both cases. The embedded store lives in
one process and forgets everything on restart: fine for trying the bot, not for a team.

Redis failures become ``StoreUnavailable`` in ``store_errors`` and nowhere else; callers that may go on
without the store (the edit budget, the top-spenders report) catch that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib.resources import files

import redis.asyncio as redis
import structlog
from fakeredis import FakeServer
from fakeredis.aioredis import FakeRedis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from bot.core.errors import StoreUnavailable

log = structlog.get_logger(__name__)
# Bounded waits: a store that hangs must turn into a clear "temporarily unavailable", not a stuck reply.
SOCKET_TIMEOUT_SECONDS = 5.0
# Each command takes well under a millisecond, so a small pool serves hundreds of concurrent replies.
# It blocks (up to the socket timeout) when all connections are busy: redis-py's default pool instead
# fails at once past 100 connections, which turned a burst of 200 mentions into "unavailable" replies.
MAX_CONNECTIONS = 50
# Connections opened at start (all of them): a burst of acks then finds them ready, not paying a HELLO each.
WARM_CONNECTIONS = MAX_CONNECTIONS


def open_store(redis_url: str | None) -> redis.Redis:
    """A Redis client for ``redis_url``, or the embedded store when it is None."""
    if redis_url is None:
        log.warning(
            "embedded_store",
            detail="REDIS_URL is unset: using an in-process store; one process only, "
            "history and quotas are lost on restart",
        )
        client: redis.Redis = FakeRedis(server=FakeServer(), decode_responses=True)
        return client
    pool = redis.BlockingConnectionPool.from_url(
        redis_url,
        max_connections=MAX_CONNECTIONS,
        timeout=SOCKET_TIMEOUT_SECONDS,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        # A pooled connection that Redis dropped (a restart, an idle timeout) fails on first use: retry
        # such a connection error once. Timeouts are not retried, so a script that may have run (a quota
        # settlement) is never run twice.
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
    return redis.Redis.from_pool(pool)


@contextmanager
def store_errors(action: str) -> Iterator[None]:
    """Turn Redis failures inside the block into StoreUnavailable, keeping the cause readable in logs."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"{action}: {type(exc).__name__}: {exc}") from exc


async def preload_scripts(client: redis.Redis, sources: Iterable[str]) -> None:
    """Load Lua scripts at start, so a burst of first replies does not all hit NOSCRIPT and reload them.

    A store that is down at start is not fatal: replies fail closed until it answers, and the scripts
    load on first use.
    """
    try:
        with store_errors("script load"):
            for source in sources:
                await client.script_load(source)
    except StoreUnavailable as exc:
        log.warning("scripts_not_preloaded", detail=str(exc))


async def warm_pool(client: redis.Redis, connections: int = WARM_CONNECTIONS) -> None:
    """Open ``connections`` pooled connections at start (concurrent PINGs), so the first burst of events
    does not pay for connection set-up while Slack waits for its acks. A store that is down is not fatal."""
    try:
        with store_errors("pool warm-up"):
            await asyncio.gather(*(client.ping() for _ in range(connections)))
    except StoreUnavailable as exc:
        log.warning("store_not_warmed", detail=str(exc))


async def store_answers(client: redis.Redis) -> bool:
    """True when the store answers a PING."""
    try:
        with store_errors("ping"):
            return bool(await client.ping())
    except StoreUnavailable:
        return False


def lua_source(package: str | None, *names: str) -> str:
    """The Lua files ``names`` shipped in ``package`` (package data), joined into one script's source.

    A script that shares helpers with others lists the helper file first, so each helper is written once
    and every script still runs as one atomic EVALSHA (https://redis.io/docs/latest/commands/eval/).
    """
    if package is None:
        raise ValueError("lua_source needs the package that ships the script")
    folder = files(package)
    return "\n".join(folder.joinpath(name).read_text(encoding="utf-8") for name in names)
