"""Each period's top spenders: a sorted set per period label, user -> spent (picodollars).

The set is a report; the spend hashes are the truth. It is written with ``ZADD ... GT`` of the user's
absolute spent total that the settle script returns, never with an increment: run twice (redis-py resends
a command whose reply was lost) or out of order (two replies of one user settled at once), it still ends
at the highest total, so a retry cannot double a score.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis
import structlog

from bot.billing.keys import top_key
from bot.core.errors import StoreUnavailable
from bot.store.connection import store_errors

log = structlog.get_logger(__name__)


class TopSpenders:
    """Reads and writes the per-period rankings."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    async def record(self, label: str, user: str, spent_pico: int, ttl_seconds: int) -> None:
        """Raise ``user``'s score in period ``label`` to ``spent_pico`` (never lower it); one round trip.

        The charge is already booked, so a failure here is logged, not raised: raising would make the
        reply look unpaid. The set expires ``ttl_seconds`` from now.
        """
        try:
            with store_errors("quota top update"):
                async with self._client.pipeline(transaction=False) as pipe:
                    pipe.zadd(top_key(label), {user: spent_pico}, gt=True)
                    pipe.expire(top_key(label), ttl_seconds)
                    await pipe.execute()
        except StoreUnavailable as exc:
            log.warning("quota_top_update_failed", error=str(exc))

    async def forget(self, label: str, user: str) -> None:
        """Drop ``user`` from period ``label`` (after a reset). Raises StoreUnavailable."""
        with store_errors("quota reset"):
            await self._client.zrem(top_key(label), user)

    async def ranking(self, label: str, count: int) -> list[tuple[str, int]]:
        """Period ``label``'s top ``count`` as (user, spent_pico), highest first. Raises StoreUnavailable."""
        if count <= 0:
            return []
        with store_errors("quota top"):
            rows: list[Any] = await self._client.zrevrange(top_key(label), 0, count - 1, withscores=True)
        return [(_text(user), int(score)) for user, score in rows]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
