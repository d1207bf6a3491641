"""SlackReplyStreamer: one placeholder message, then paced ``chat.update`` edits of the latest text.

One coroutine per reply owns every Slack call for that reply, so edits go out in order and always carry
the newest text (``show`` only records it; nothing queues up stale edits). An answer longer than one
message is cut at a paragraph or line boundary and continues in a new message in the same thread.
A 429 is waited out (``Retry-After``) and the loop carries on with whatever text is latest by then.
Interim edits also draw on the workspace-wide budget (``handlers.reply.budget``), first words before later
updates; when it is spent the reply shows no new text until the next minute or its final edit, which
always goes out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.domain import Notice
from bot.core.errors import DeliveryFailed
from bot.metrics import Metrics
from handlers.errors import SlackRateLimited, SlackRefused, slack_errors
from handlers.reply.mrkdwn import render_partial, to_mrkdwn
from handlers.reply.pacing import EditPacer
from handlers.reply.split import take_chunk

log = structlog.get_logger(__name__)

PLACEHOLDER = ":hourglass_flowing_sand: Thinking…"
TYPING_CURSOR = " ▍"
# Markdown characters per Slack message. Slack truncates `text` at 40,000 characters and collapses long
# messages; 3,500 keeps each part readable and leaves room for the mrkdwn conversion to grow the text.
MESSAGE_LIMIT = 3500
POST_ATTEMPTS = 3
FINAL_EDIT_ATTEMPTS = 5
MAX_FAILURE_BACKOFF = 10.0


class EditGate(Protocol):
    """The workspace-wide edit budget, seen from one reply (``budget.TeamEditGate`` binds the team)."""

    async def take(self, first_edit: bool) -> float:
        """0 when an interim edit may go now, else the seconds to hold off."""
        ...

    async def pause(self, seconds: float) -> None:
        """Slack answered 429: hold the workspace's interim edits for ``seconds``."""
        ...


class SlackReplyStreamer:
    """Shows one streaming answer in a Slack thread (implements ``bot.core.ports.ReplySink``)."""

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        pacer: EditPacer,
        edit_gate: EditGate,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        failure_backoff: float = 2.0,
    ) -> None:
        self._client = client
        self._channel = channel
        self._thread_ts = thread_ts
        self._pacer = pacer
        self._edit_gate = edit_gate
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._failure_backoff = failure_backoff
        self._latest = ""
        self._final = False
        self._finishing = asyncio.Event()
        self._interim_shown = False
        self._changed = asyncio.Event()
        self._editor: asyncio.Task[None] | None = None
        # Where the current message's text starts: earlier parts went into earlier messages.
        self._committed = 0
        self._carry = ""
        self._current_ts: str | None = None
        self._last_sent = ""

    async def start(self) -> None:
        for attempt in range(1, POST_ATTEMPTS + 1):
            try:
                await self._send(PLACEHOLDER)
                break
            except SlackRateLimited as limited:
                if attempt == POST_ATTEMPTS:
                    raise DeliveryFailed("placeholder rate limited") from None
                await self._sleep(limited.retry_after)
        self._editor = asyncio.create_task(self._edit_loop())

    def show(self, text: str) -> None:
        self._latest = text
        self._changed.set()

    async def finish(self, text: str, notices: Sequence[Notice] = ()) -> None:
        self._latest = with_notices(text, notices)
        self._final = True
        self._finishing.set()
        self._changed.set()
        if self._editor is not None:
            await self._editor

    async def fail(self, message: str) -> None:
        shown = self._latest.rstrip()
        await self.finish(f"{shown}\n\n:warning: {message}" if shown else f":warning: {message}")

    async def _edit_loop(self) -> None:
        failures = 0  # consecutive, for the backoff
        final_failures = 0  # the final edit gets its own attempts, whatever happened before it
        while True:
            await self._changed.wait()
            await self._sleep(self._pacer.wait_time(self._clock()))
            if not self._final and not await self._interim_edit_allowed():
                continue
            self._changed.clear()
            text, final = self._latest, self._final
            try:
                await self._render(text, final)
            except SlackRateLimited as limited:
                self._pacer.rate_limited(self._clock(), limited.retry_after)
                await self._edit_gate.pause(limited.retry_after)
                self._changed.set()
                continue
            except DeliveryFailed:
                failures += 1
                final_failures += final
                if final_failures >= FINAL_EDIT_ATTEMPTS:
                    log.error("final_edit_failed", attempts=final_failures)
                    return
                backoff = min(self._failure_backoff * 2.0 ** (failures - 1), MAX_FAILURE_BACKOFF)
                self._pacer.rate_limited(self._clock(), backoff)
                if final:
                    self._changed.set()
                continue
            failures = 0
            self._interim_shown = True
            self._pacer.edited(self._clock())
            if final:
                return

    async def _interim_edit_allowed(self) -> bool:
        """Ask the workspace budget; when it is spent, wait for the next window or the final text.

        The final text never waits for the budget: a slow answer from the store is abandoned as soon as
        the final text arrives.
        """
        asking = asyncio.ensure_future(self._edit_gate.take(not self._interim_shown))
        finishing = asyncio.ensure_future(self._finishing.wait())
        try:
            await asyncio.wait({asking, finishing}, return_when=asyncio.FIRST_COMPLETED)
            if not asking.done():
                return False
            hold = asking.result()
            if hold <= 0:
                return True
            self._metrics.slack_edits.labels("skipped_budget").inc()
            await asyncio.wait({finishing}, timeout=hold)
            return False
        finally:
            asking.cancel()
            finishing.cancel()

    async def _render(self, text: str, final: bool) -> None:
        remainder = self._carry + text[self._committed :]
        while len(remainder) > MESSAGE_LIMIT:
            head, rest = take_chunk(remainder, MESSAGE_LIMIT)
            await self._send(to_mrkdwn(head))
            consumed, carry = _consumed(remainder, rest)
            self._committed += consumed - len(self._carry)
            self._carry = carry
            self._current_ts = None
            remainder = self._carry + text[self._committed :]
        if not remainder.strip():
            return  # the text ends exactly at a cut: the last message already holds all of it
        await self._send(to_mrkdwn(remainder) if final else render_partial(remainder) + TYPING_CURSOR)

    async def _send(self, body: str) -> None:
        """Post a new message in the thread, or edit the current one when the text changed."""
        if self._current_ts is not None and body == self._last_sent:
            return
        method = "chat.postMessage" if self._current_ts is None else "chat.update"
        try:
            with slack_errors(method):
                if self._current_ts is None:
                    response = await self._client.chat_postMessage(
                        channel=self._channel, thread_ts=self._thread_ts, text=body
                    )
                    self._current_ts = _posted_ts(response.get("ts"))
                else:
                    await self._client.chat_update(channel=self._channel, ts=self._current_ts, text=body)
                    self._metrics.slack_edits.labels("ok").inc()
        except SlackRateLimited:
            self._metrics.slack_edits.labels("rate_limited").inc()
            raise
        except SlackRefused as refused:
            self._metrics.slack_edits.labels("error").inc()
            log.warning("slack_call_failed", error=refused.error)
            raise
        except DeliveryFailed as failed:
            # Transport errors, a closed session, or an answer without a ts: try again later.
            log.warning("slack_call_failed", error=str(failed))
            raise
        self._last_sent = body


def _posted_ts(ts: object) -> str:
    """The ``ts`` of a posted message; an answer without one cannot be edited later."""
    if not ts:
        raise DeliveryFailed("chat.postMessage answered without a ts")
    return str(ts)


def with_notices(text: str, notices: Sequence[Notice]) -> str:
    """The answer with its notices under it, as Slack shows them: ``:warning:`` warnings, notes in italics."""
    lines = [f":warning: {n.text}" if n.kind == "warning" else f"_{n.text}_" for n in notices]
    return "\n\n".join([text, *lines] if text else lines)


def _consumed(remainder: str, rest: str) -> tuple[int, str]:
    """How much of ``remainder`` went into the head, and the prefix ``take_chunk`` added to ``rest``.

    ``take_chunk`` may start ``rest`` with a reopened code fence; everything after it is a suffix of
    ``remainder``.
    """
    for cut in (0, rest.find("\n") + 1):
        tail = rest[cut:]
        if remainder.endswith(tail):
            return len(remainder) - len(tail), rest[:cut]
    return len(remainder), rest
