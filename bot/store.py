"""Open the Redis connection: a real server when REDIS_URL is set, else an embedded in-process store.

The embedded store is fakeredis with Lua support, so every Lua script and key layout is the same in both
cases. It lives in one process and forgets everything on restart: fine for trying the bot, not for a team.
"""

from __future__ import annotations

import redis.asyncio as redis
import structlog
from fakeredis import FakeServer
from fakeredis.aioredis import FakeRedis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)
# Bounded waits: a store that hangs must turn into a clear "temporarily unavailable", not a stuck reply.
SOCKET_TIMEOUT_SECONDS = 5.0


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
    return redis.Redis.from_url(
        redis_url,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


async def store_answers(client: redis.Redis) -> bool:
    """True when the store answers a PING."""
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False
