"""SlackNativeStreamer: shows one answer in a Slack thread with Slack's native streaming.

The methods (https://docs.slack.dev/changelog/2025/10/7/chat-streaming): ``chat.startStream`` starts a
message in the thread (``open``, when the reply starts); ``chat.appendStream`` adds Markdown to it;
``chat.stopStream`` ends it with the last Markdown. Slack renders the Markdown itself as it grows.

* **Appends** carry the new text since the last one, defused (``defuse_markdown``) and never ending
  inside a mention or a link (``deltas.safe_end``), so no live token is ever formed. One coroutine per
  reply sends them, at most one per ``STREAM_EDIT_INTERVAL`` per stream and only when the workspace's
  append budget has room; text held back goes in the next append, or with ``chat.stopStream``.
* **Long answers**: a stream holds at most ``STREAM_LIMIT`` Markdown characters (Slack takes 12,000 a
  call, https://docs.slack.dev/reference/methods/chat.appendStream); a longer answer is cut at the best
  boundary and continues in a new stream (at most ``MAX_MESSAGES``).
* **Stream gone**: when Slack refuses an append or a stop for good (the stream expired server-side, or
  the final text is not what was streamed), the streams are stopped and the whole answer is written into
  their messages with ``chat.update``, as slack_sdk's ``ChatStream.ts`` suggests (``fallback``).

Each stream's ts is recorded (``on_posted``) as ``stream:<ts>``, so a process that resumes the reply
stops it and finishes by edits (``strategy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

import structlog

from bot.core.domain import Notice
from bot.core.errors import DeliveryFailed
from bot.core.messages import with_notices
from handlers.errors import SlackRefused
from handlers.reply.buttons import ReplyButtons
from handlers.reply.defuse import defuse_markdown
from handlers.reply.deltas import safe_end, stream_cut
from handlers.reply.interim import write_when_due
from handlers.reply.pacing import EditPacer
from handlers.reply.parts import consumed
from handlers.reply.render import Block
from handlers.reply.stream_calls import SlackStreamPoster
from handlers.reply.streamer import CUT_NOTE, MAX_MESSAGES, OnPosted, SlackReplyStreamer, dress

log = structlog.get_logger(__name__)

STREAM_PREFIX = "stream:"
STREAM_LIMIT = 10_000
"""Markdown characters one stream holds at most (under Slack's 12,000 per call: room for defusing)."""
APPEND_CEILING = 8_000
"""Appends stop here in a stream, so that its end can be cut at a good boundary in what is left."""
Fallback = Callable[[Sequence[str]], SlackReplyStreamer]


class SlackNativeStreamer:
    """Shows one streaming answer with native streams (implements ``bot.core.ports.ReplySink``)."""

    def __init__(
        self,
        poster: SlackStreamPoster,
        pacer: EditPacer,
        recipient: str | None,
        fallback: Fallback,
        on_posted: OnPosted | None = None,
        clock: Callable[[], float] = time.monotonic,
        buttons: ReplyButtons | None = None,
    ) -> None:
        self._poster = poster
        self._pacer = pacer
        self._recipient = recipient
        self._fallback = fallback
        self._on_posted = on_posted
        self._clock = clock
        self._streams: list[str] = []  # this reply's streams, oldest first; the last one is open
        self._stop_slot_taken = False
        self._latest = ""
        self._basis = ""  # the text the last delta was cut from
        self._committed = 0  # characters of the answer in earlier (stopped) streams
        self._carry = ""  # a reopened code fence the current stream starts with
        self._sent = 0  # characters of the current stream's Markdown (carry included) sent
        self._appended = False
        self._broken = False  # Slack stopped taking this reply's stream: finish by edits
        self._changed = asyncio.Event()
        self._finishing = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._budget_retry_at = float("-inf")
        self._buttons = buttons
        self._closing: list[Block] = []  # blocks under the finished answer (the feedback buttons)

    def _stop_blocks(self) -> list[Block]:
        """The Stop button, sent first in each stream (the press travels through Redis to this reply)."""
        return [self._buttons.stop] if self._buttons is not None else []

    async def open(self, wait: bool) -> bool:
        """Start the first stream; False when the budgets have no room now (``wait``: wait for room).

        Raises SlackRefused when Slack refuses ``chat.startStream`` for good, DeliveryFailed otherwise.
        """
        if not await self._poster.reserve_stream(wait):
            return False
        await self._add_stream(await self._poster.start_stream(self._recipient, self._stop_blocks()))
        self._writer = asyncio.create_task(self._write_loop())
        return True

    async def start(self) -> None:
        await self.open(wait=True)

    def show(self, text: str) -> None:
        self._latest = text
        self._changed.set()

    async def finish(self, text: str, notices: Sequence[Notice] = ()) -> bool:
        feedback = self._buttons is not None and bool(text.strip())
        return await self._end(with_notices(text, notices, dress), feedback)

    async def _end(self, markdown: str, feedback: bool) -> bool:
        """Deliver ``markdown`` as the whole reply; ``feedback``: with the feedback buttons under it."""
        self._latest = markdown
        self._closing = [self._buttons.feedback] if feedback and self._buttons is not None else []
        await self._stop_writer()
        try:
            return await self._deliver(self._latest)
        except DeliveryFailed as failed:
            log.error("reply_undeliverable", detail=str(failed), mode="native")
            return False

    async def fail(self, message: str) -> None:
        # What streamed stays (a stream cannot take it back); the warning follows it.
        shown = self._latest.rstrip()
        warning = f":warning: {message}"
        await self._end(f"{shown}\n\n{warning}" if shown.strip() else warning, feedback=False)

    def close(self) -> None:
        """The reply ended (delivered, or cancelled): no append may go out after this."""
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()

    # ---------------------------------------------------------------------------------------- interim

    async def _write_loop(self) -> None:
        try:
            await write_when_due(self._changed, self._finishing, self._wait_time, self._append_latest)
        except SlackRefused as refused:
            if refused.transient:
                raise
            log.warning("native_stream_refused_append", error=refused.error)
            self._broken = True
        except DeliveryFailed as failed:
            log.warning("native_appends_stopped", detail=str(failed))

    def _wait_time(self) -> float:
        now = self._clock()
        return max(self._pacer.wait_time(now), self._budget_retry_at - now)

    async def _append_latest(self) -> None:
        await self._interim(self._latest)

    async def _interim(self, text: str) -> None:
        """Append what may be shown of ``text`` now (or start the next stream when this one is full)."""
        markdown = self._carry + text[self._committed :]
        if len(markdown) > STREAM_LIMIT:
            if len(self._streams) < MAX_MESSAGES:
                await self._roll(text, markdown)
                self._changed.set()
            return
        end = safe_end(markdown[:APPEND_CEILING], self._sent)
        if end <= self._sent:
            return
        if await self._poster.append(
            self._streams[-1], defuse_markdown(markdown[self._sent : end]), first=not self._appended
        ):
            self._sent, self._basis, self._appended = end, text, True
            self._pacer.edited(self._clock())
            return
        self._budget_retry_at = self._clock() + self._pacer.interval  # held back: try again later
        self._changed.set()

    async def _stop_writer(self) -> None:
        self._finishing.set()
        self._changed.set()
        if self._writer is not None:
            await self._writer

    # ------------------------------------------------------------------------------------------ final

    async def _deliver(self, text: str) -> bool:
        """End the reply's streams with the whole of ``text``; False when it could not be shown."""
        if self._broken or not text.startswith(self._basis[: self._shown_upto()]):
            return await self._by_edits(text)
        try:
            while True:
                markdown = self._carry + text[self._committed :]
                if len(markdown) <= STREAM_LIMIT:
                    await self._stop(defuse_markdown(markdown[self._sent :]), self._closing)
                    return True
                if len(self._streams) >= MAX_MESSAGES:
                    head, _ = stream_cut(markdown, self._sent, STREAM_LIMIT - len(CUT_NOTE) - 2)
                    await self._stop(defuse_markdown(f"{head}\n\n{CUT_NOTE}"), self._closing)
                    return True
                await self._roll(text, markdown)
        except SlackRefused as refused:
            if refused.transient or not self._streams:
                raise
            log.warning("native_stream_refused_final", error=refused.error)
            return await self._by_edits(text)

    async def _roll(self, text: str, markdown: str) -> None:
        """Stop the current stream at a good boundary and start the next one with the rest."""
        head, rest = stream_cut(markdown, self._sent, STREAM_LIMIT)
        await self._stop(defuse_markdown(head))
        used, carry = consumed(markdown, rest)
        self._committed += used - len(self._carry)
        self._carry, self._sent, self._basis, self._appended = carry, 0, text, False
        await self._poster.reserve_stream(wait=True)
        await self._add_stream(await self._poster.start_stream(self._recipient, self._stop_blocks()))

    async def _stop(self, markdown: str, blocks: Sequence[Block] = ()) -> None:
        stream = self._streams[-1]
        await self._poster.stop_stream(stream, markdown, slot_taken=self._stop_slot_taken, blocks=blocks)
        self._stop_slot_taken = False

    async def _by_edits(self, text: str) -> bool:
        """Stop what is still streaming, then write ``text`` into the streams' messages by edits."""
        log.warning("native_stream_finished_by_edits", streams=len(self._streams))
        with contextlib.suppress(SlackRefused):  # already stopped or expired: an edit still replaces it
            await self._stop("")
        edits = self._fallback(list(self._streams))
        try:
            return await edits.finish(text)
        finally:
            edits.close()

    def _shown_upto(self) -> int:
        """How much of ``self._basis`` the streams hold."""
        return self._committed + max(0, self._sent - len(self._carry))

    async def _add_stream(self, ts: str) -> None:
        self._streams.append(ts)
        self._stop_slot_taken = True
        if self._on_posted is not None:
            await self._on_posted([STREAM_PREFIX + stream for stream in self._streams])
