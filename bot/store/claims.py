"""Answer every user message at most once, across event types, Slack retries and replicas.

``app_mention`` and ``message`` both announce a mention, Slack retries slow acks, and with several
replicas any of them may get any copy. The first to ``SET NX`` the message's key wins.
"""

from __future__ import annotations

import redis.asyncio as redis

from bot.store.connection import store_errors

# Slack retries for about five minutes; a day leaves room for slow redeliveries and clock skew.
CLAIM_TTL_SECONDS = 24 * 3600


class MessageClaims:
    """First-come claims on user messages (implements ``bot.core.ports.Claims``)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    async def claim(self, team: str, channel: str, message_ts: str) -> bool:
        """True for the first caller for this message, False for every later one."""
        key = f"glmbot:{{msg:{team}:{channel}:{message_ts}}}:claimed"
        with store_errors("message claim"):
            return bool(await self._client.set(key, "1", nx=True, ex=CLAIM_TTL_SECONDS))
