"""SlackPoster: the Slack calls of one reply's thread, within the shared rate limits.

A call that must land (a placeholder, a final edit, a continuation) waits for its slot, waits out every
429 (sharing its ``Retry-After`` with the other replicas) and retries transient failures with backoff,
until it lands, Slack refuses it for good (``SlackRefused``, not transient), or ``give_up_seconds``
pass (``DeliveryFailed``). An interim edit is tried once, and only when the workspace's edit budget has
room to spare for other replies' final edits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import DeliveryFailed
from bot.metrics import Metrics
from handlers.errors import SlackRateLimited, SlackRefused, slack_errors
from handlers.reply.limits import SlackLimits
from handlers.reply.render import SlackMessage

log = structlog.get_logger(__name__)

# Edit slots an interim edit must leave free: the first words of a reply need fewer than later updates.
FIRST_EDIT_SPARE = 2
LATER_EDIT_SPARE = 4
GIVE_UP_SECONDS = 600.0
MAX_BACKOFF_SECONDS = 10.0
MIN_RETRY_SECONDS = 1.0  # a 429 with Retry-After: 0 must not turn into back-to-back calls


class SlackPoster:
    """Posts, edits and deletes messages in one thread."""

    def __init__(
        self,
        client: AsyncWebClient,
        team: str,
        channel: str,
        thread_ts: str,
        limits: SlackLimits,
        metrics: Metrics,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        failure_backoff: float = 2.0,
        give_up_seconds: float = GIVE_UP_SECONDS,
    ) -> None:
        self._client = client
        self._team = team
        self._channel = channel
        self._thread_ts = thread_ts
        self._limits = limits
        self._metrics = metrics
        self._sleep = sleep
        self._clock = clock
        self._failure_backoff = failure_backoff
        self._give_up_seconds = give_up_seconds

    async def reserve_final_edit(self) -> bool:
        """Take an edit slot now for this reply's final edit; False when the workspace has none free."""
        return await self._limits.update_slot(self._team, spare=0, max_wait=0) is not None

    async def post(self, message: SlackMessage) -> str:
        """Post ``message`` in the thread; its ``ts``. Raises SlackRefused (for good) or DeliveryFailed."""

        async def call() -> Any:
            await self._sleep(await self._limits.post_slot(self._team, self._channel))
            return await self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, **_content(message, posting=True)
            )

        response = await self._must("chat.postMessage", call)
        ts = response.get("ts")
        if not ts:
            raise DeliveryFailed("chat.postMessage answered without a ts")
        return str(ts)

    async def update(self, ts: str, message: SlackMessage, slot_taken: bool = False) -> None:
        """Replace message ``ts`` with ``message``; ``slot_taken`` when its edit slot was reserved earlier."""
        taken = slot_taken

        async def call() -> Any:
            nonlocal taken
            if taken:
                await self._sleep(await self._limits.update_pause(self._team))
            else:
                await self._sleep(await self._limits.update_slot(self._team) or 0.0)
            taken = False  # a retry after a failure needs a slot of its own
            return await self._client.chat_update(
                channel=self._channel, ts=ts, **_content(message, posting=False)
            )

        await self._must("chat.update", call)

    async def interim(self, ts: str, message: SlackMessage, first: bool) -> bool:
        """Try one interim edit within the budget; False when it was held back or failed.

        Raises SlackRefused when Slack refuses it for good (the message is gone, say).
        """
        spare = FIRST_EDIT_SPARE if first else LATER_EDIT_SPARE
        if await self._limits.update_slot(self._team, spare=spare, max_wait=0) is None:
            self._metrics.slack_calls.labels("chat.update", "skipped_budget").inc()
            return False
        return await self._try_once(
            "chat.update",
            lambda: self._client.chat_update(
                channel=self._channel, ts=ts, **_content(message, posting=False)
            ),
            lambda seconds: self._limits.pause_updates(self._team, seconds),
        )

    async def _try_once(
        self,
        method: str,
        call: Callable[[], Awaitable[Any]],
        pause: Callable[[float], Awaitable[None]],
    ) -> bool:
        """One interim call (an edit, an append), counted: True when it landed. A 429 pauses the budget
        (``pause(retry_after)``) and a transient failure is let go (the next one may land); raises
        SlackRefused when Slack refuses it for good."""
        try:
            with slack_errors(method):
                await call()
        except SlackRateLimited as limited:
            self._count(method, "rate_limited")
            await pause(limited.retry_after)
            return False
        except SlackRefused as refused:
            self._count(method, "error")
            if not refused.transient:
                raise
            return False
        except DeliveryFailed:
            self._count(method, "error")
            return False
        self._count(method, "ok")
        return True

    async def delete(self, ts: str) -> None:
        """Delete message ``ts`` (a leftover of an earlier attempt); failures are only logged."""
        try:
            with slack_errors("chat.delete"):
                await self._client.chat_delete(channel=self._channel, ts=ts)
        except DeliveryFailed as failed:
            log.warning("leftover_not_deleted", detail=str(failed))

    async def _must(self, method: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``call`` until it lands, is refused for good, or the time to give up has come."""
        deadline = self._clock() + self._give_up_seconds
        failures = 0
        while True:
            try:
                with slack_errors(method):
                    response = await call()
            except SlackRateLimited as limited:
                self._count(method, "rate_limited")
                wait = max(MIN_RETRY_SECONDS, limited.retry_after)
                await self._pause(method, wait)
                if self._clock() + wait > deadline:
                    raise DeliveryFailed(
                        f"{method}: still rate limited after {self._give_up_seconds:.0f} s"
                    ) from None
                await self._sleep(wait)
                continue
            except SlackRefused as refused:
                self._count(method, "error")
                if not refused.transient:
                    log.warning("slack_call_refused", method=method, error=refused.error)
                    raise
                failures += 1
            except DeliveryFailed as failed:
                self._count(method, "error")
                log.warning("slack_call_failed", method=method, detail=str(failed))
                failures += 1
            else:
                self._count(method, "ok")
                return response
            if self._clock() > deadline:
                raise DeliveryFailed(f"{method}: still failing after {self._give_up_seconds:.0f} s")
            await self._sleep(min(self._failure_backoff * 2.0 ** (failures - 1), MAX_BACKOFF_SECONDS))

    async def _pause(self, method: str, seconds: float) -> None:
        if method == "chat.postMessage":
            await self._limits.pause_posts(self._team, self._channel, seconds)
        else:
            await self._limits.pause_updates(self._team, seconds)

    def _count(self, method: str, result: str) -> None:
        self._metrics.slack_calls.labels(method, result).inc()


def _content(message: SlackMessage, posting: bool) -> dict[str, Any]:
    """The ``text`` and ``blocks`` arguments of chat.postMessage / chat.update.

    An edit always sends ``blocks``: an empty list removes the blocks an earlier version had, while
    leaving it out would keep them (https://docs.slack.dev/reference/methods/chat.update).
    """
    if message.blocks or not posting:
        return {"text": message.text, "blocks": list(message.blocks)}
    return {"text": message.text}
