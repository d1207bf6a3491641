"""Display names of the people a message mentions, so the model reads ``@Alice``, not ``<@U0123ABCD>``.

Names come from ``users.info`` (Tier 4, about 100 calls a minute: https://api.slack.com/methods/users.info)
and are cached for a while; a name that cannot be looked up leaves the id in the text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import DeliveryFailed
from handlers.errors import slack_errors

log = structlog.get_logger(__name__)
CACHE_SECONDS = 600.0


class PeopleDirectory:
    """User id -> display name, from Slack, cached."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}

    async def names(self, client: AsyncWebClient, users: Iterable[str]) -> dict[str, str]:
        """The display names of ``users`` that Slack could tell (looked up at once, in parallel)."""
        now = self._clock()
        wanted = set(users)
        missing = [user for user in wanted if self._cache.get(user, ("", 0.0))[1] <= now]
        for user, name in zip(
            missing, await asyncio.gather(*(self._ask(client, u) for u in missing)), strict=True
        ):
            if name:
                self._cache[user] = (name, now + CACHE_SECONDS)
        return {user: self._cache[user][0] for user in wanted if user in self._cache}

    async def _ask(self, client: AsyncWebClient, user: str) -> str:
        try:
            with slack_errors("users.info"):
                response = await client.users_info(user=user)
        except DeliveryFailed as failed:
            log.info("user_name_unknown", user=user, error=str(failed))
            return ""
        person = response.get("user") or {}
        profile = person.get("profile") or {}
        return str(profile.get("display_name") or profile.get("real_name") or person.get("name") or "")
