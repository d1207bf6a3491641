"""Who may run admin quota commands: ``ADMIN_USER_IDS``, plus Slack workspace admins and owners.

Slack's answer (``users.info``) is cached for a while, so repeated commands cost no API calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import DeliveryFailed
from handlers.errors import slack_errors

log = structlog.get_logger(__name__)
CACHE_SECONDS = 600.0


class AdminDirectory:
    """Answers "is this user a glmbot admin?"."""

    def __init__(self, admin_ids: Iterable[str], clock: Callable[[], float] = time.monotonic) -> None:
        self._configured = frozenset(admin_ids)
        self._clock = clock
        self._cache: dict[str, tuple[bool, float]] = {}

    async def is_admin(self, client: AsyncWebClient, user: str) -> bool:
        """True for configured admins and for Slack workspace admins/owners."""
        if user in self._configured:
            return True
        cached = self._cache.get(user)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        try:
            with slack_errors("users.info"):
                response = await client.users_info(user=user)
        except DeliveryFailed as failed:
            # Refuse rather than guess; the next try asks Slack again.
            log.warning("admin_lookup_failed", user=user, error=str(failed))
            return False
        profile = response.get("user") or {}
        admin = any(bool(profile.get(flag)) for flag in ("is_admin", "is_owner", "is_primary_owner"))
        self._cache[user] = (admin, self._clock() + CACHE_SECONDS)
        return admin
