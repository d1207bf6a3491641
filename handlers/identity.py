"""Who the bot is in Slack, found once with ``auth.test`` and given to Bolt for every request.

Bolt's single-workspace authorization calls ``auth.test`` on its first requests and caches the answer,
but every request that arrives before the first answer calls it again: a burst of 200 events made 200
calls. Here one call is made at start (a refused token stops the bot, naming SLACK_BOT_TOKEN), and if
Slack could not be reached then, the first request makes it, once, for everybody
(https://api.slack.com/methods/auth.test).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import DeliveryFailed
from bot.settings import SettingsError
from handlers.errors import SlackRefused, slack_errors

log = structlog.get_logger(__name__)

REFUSED_TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
    }
)


class SlackIdentity:
    """The bot's team, user and bot ids, asked of Slack once (``authorize`` is Bolt's ``authorize``)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._result: AuthorizeResult | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> None:
        """At start: stop (SettingsError) when Slack refuses the token; an outage only warns."""
        try:
            await self._ask()
        except SlackRefused as refused:
            if refused.error in REFUSED_TOKEN_ERRORS:
                raise SettingsError(
                    f"invalid setting SLACK_BOT_TOKEN: Slack refused it ({refused.error})"
                ) from None
            log.warning("auth_test_failed", error=refused.error)
        except DeliveryFailed as failed:
            log.warning("slack_unreachable_at_start", error=str(failed))

    @property
    def authorize(self) -> Callable[..., Awaitable[AuthorizeResult]]:
        """Bolt's ``authorize``: the identity for one request; asks Slack only while it is unknown."""

        # Bolt passes arguments by their names, so this is a plain function, not a bound method.
        async def authorize(context: Any) -> AuthorizeResult:
            return self._result or await self._ask()

        return authorize

    async def _ask(self) -> AuthorizeResult:
        async with self._lock:
            if self._result is None:
                with slack_errors("auth.test"):
                    answer = await self._client.auth_test()
                self._result = AuthorizeResult.from_auth_test_response(
                    auth_test_response=answer, bot_token=self._client.token
                )
                log.info("slack_identity", team_id=self._result.team_id, bot_user_id=self._result.bot_user_id)
            return self._result
