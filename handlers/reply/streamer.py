"""SlackReplyStreamer: shows one answer in a Slack thread, the way the workspace's rate budgets allow.

Two ways to deliver, chosen when the reply starts (``start``):

* **edit**: when the workspace's edit budget has a slot for this reply's final edit (taken now), post a
  placeholder and edit it as the answer streams: interim edits paced per message (``pacing``) and only
  while the budget has room to spare; the final edit holds the whole answer.
* **whole**: when the budget is spent, post nothing yet; the answer is generated meanwhile and posted
  whole in the channel's next posting slot.

A reply that another process started (``recorded`` message timestamps) resumes on the same messages, in
edit mode. One coroutine per reply owns the interim edits, so they go out in order and always carry the
newest text; ``finish`` waits for it, then makes the final calls itself. A long answer continues in
further messages in the thread, cut by the length Slack receives (``parts``). A final edit Slack refuses
for good is delivered as new messages instead (smaller, when the text was too long); a channel that
refuses posts ends the reply as undeliverable (logged; the conversation counts it). ``finish`` says
whether the user saw the answer.

Buttons (``buttons``): every message shown while the answer streams (the placeholder, interim edits,
a continuation posted mid-stream) ends with the Stop button; the final edit never has it, and the last
message of a finished answer ends with the 👍/👎 feedback buttons instead (not a failure message).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog

from bot.core.domain import Notice
from bot.core.errors import DeliveryFailed
from bot.core.messages import with_notices
from handlers.errors import SlackRefused
from handlers.reply.buttons import ReplyButtons
from handlers.reply.interim import write_when_due
from handlers.reply.pacing import EditPacer
from handlers.reply.parts import consumed, cut, render_one
from handlers.reply.poster import SlackPoster
from handlers.reply.render import (
    Block,
    SlackMessage,
    plain_message,
    render_partial,
    verbatim,
    with_blocks,
    with_note,
)

log = structlog.get_logger(__name__)

PLACEHOLDER = ":hourglass_flowing_sand: Thinking…"
TYPING_CURSOR = " ▍"
MAX_MESSAGES = 20
"""Messages one reply may take; a longer answer is cut with a note (a runaway model is not a flood)."""
CUT_NOTE = "_(The rest of this answer was too long for Slack.)_"
TOO_LONG = frozenset({"msg_too_long", "msg_blocks_too_long", "invalid_blocks"})
MIN_SCALE = 0.1
NOT_EDITABLE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
OnPosted = Callable[[list[str]], Awaitable[None]]


class SlackReplyStreamer:
    """Shows one streaming answer in a Slack thread (implements ``bot.core.ports.ReplySink``)."""

    def __init__(
        self,
        poster: SlackPoster,
        pacer: EditPacer,
        recorded: Sequence[str] = (),
        on_posted: OnPosted | None = None,
        clock: Callable[[], float] = time.monotonic,
        buttons: ReplyButtons | None = None,
    ) -> None:
        self._poster = poster
        self._pacer = pacer
        self._clock = clock
        self._on_posted = on_posted
        self._messages = list(recorded)  # this reply's messages, oldest first
        self._index = 0  # the message being written
        self._edit_slot_taken = False
        self.mode = "edit" if self._messages else "whole"
        self._latest = ""
        self._changed = asyncio.Event()
        self._finishing = asyncio.Event()
        self._editor: asyncio.Task[None] | None = None
        self._interim_shown = False
        self._committed = 0  # Markdown characters already in earlier messages
        self._carry = ""  # a reopened code fence that the next message starts with
        self._last_sent: dict[int, SlackMessage] = {}
        self._last_partial: dict[int, str] = {}  # the Markdown each message's last interim edit showed
        self._scale = 1.0
        self._budget_retry_at = float("-inf")
        self._buttons = buttons
        self._closing: Block | None = None  # what the last message of the final delivery ends with

    async def start(self) -> None:
        if not self._messages and await self._poster.reserve_final_edit():
            self._edit_slot_taken = True
            self.mode = "edit"
            placeholder = self._streaming(plain_message(PLACEHOLDER))
            await self._add_message(await self._poster.post(placeholder))
            self._last_sent[0] = placeholder
        if self.mode == "edit":
            self._editor = asyncio.create_task(self._edit_loop())

    def show(self, text: str) -> None:
        self._latest = text
        self._changed.set()

    async def finish(self, text: str, notices: Sequence[Notice] = ()) -> bool:
        feedback = self._buttons.feedback if self._buttons is not None and text.strip() else None
        return await self._end(with_notices(text, notices, dress), feedback)

    async def _end(self, markdown: str, closing: Block | None) -> bool:
        """Deliver ``markdown`` as the reply's final content, its last message ending with ``closing``."""
        self._latest = markdown
        self._closing = closing
        await self._stop_editor()
        try:
            await self._deliver(self._latest)
        except DeliveryFailed as failed:
            log.error("reply_undeliverable", detail=str(failed), mode=self.mode)
            return False
        return True

    def close(self) -> None:
        """The reply ended (delivered, or cancelled): no interim edit may go out after this."""
        if self._editor is not None and not self._editor.done():
            self._editor.cancel()

    async def fail(self, message: str) -> None:
        # What streamed so far stays in a placeholder; a reply posted whole shows only the warning.
        # (What earlier messages hold is kept as it is: only the text after it may be trimmed.)
        latest = self._latest[: max(self._committed, len(self._latest.rstrip()))]
        shown = latest if self.mode == "edit" and latest.strip() else ""
        warning = f":warning: {message}"
        await self._end(f"{shown}\n\n{warning}" if shown else warning, None)

    # ---------------------------------------------------------------------------------------- interim

    async def _edit_loop(self) -> None:
        try:
            await write_when_due(self._changed, self._finishing, self._wait_time, self._edit_latest)
        except DeliveryFailed as failed:
            # Interim edits are a courtesy: the final delivery decides what the user sees.
            log.warning("interim_edits_stopped", detail=str(failed))

    def _wait_time(self) -> float:
        now = self._clock()
        return max(self._pacer.wait_time(now), self._budget_retry_at - now)

    async def _edit_latest(self) -> None:
        await self._interim(self._latest)

    async def _interim(self, text: str) -> None:
        await self._write(text, final=False)

    async def _interim_tail(self, remainder: str) -> None:
        """Show the text so far in the current message, if the budget allows (else try again later)."""
        ts = self._current()
        if ts is not None and self._last_partial.get(self._index) == remainder:
            return
        shown = render_partial(remainder, TYPING_CURSOR)
        body = self._streaming(shown[0] if shown else plain_message(TYPING_CURSOR.strip()))
        if ts is None:
            await self._put(body)  # a continuation: it must appear, and it carries the text so far
            self._last_partial[self._index] = remainder
            return
        if await self._poster.interim(ts, body, first=not self._interim_shown):
            self._last_sent[self._index] = body
            self._last_partial[self._index] = remainder
            self._interim_shown = True
            self._pacer.edited(self._clock())
            return
        # Held back by the workspace budget: try again an interval later (the message was not edited,
        # so the final edit need not wait for this).
        self._budget_retry_at = self._clock() + self._pacer.interval
        self._changed.set()  # try again later with whatever text is newest then

    async def _stop_editor(self) -> None:
        self._finishing.set()
        self._changed.set()
        if self._editor is not None:
            await self._editor

    # ------------------------------------------------------------------------------------------ final

    async def _deliver(self, markdown: str) -> None:
        """Put the whole answer in this reply's messages; raises DeliveryFailed when that is impossible."""
        while True:
            try:
                await self._write(markdown, final=True)
                break
            except SlackRefused as refused:
                self._recover(refused)
        for leftover in self._messages[self._index + 1 :]:
            await self._poster.delete(leftover)  # an earlier attempt's continuation, not needed now

    def _recover(self, refused: SlackRefused) -> None:
        """After Slack refused a final part for good: smaller parts, or new messages, else give up."""
        if refused.error in TOO_LONG and self._scale > MIN_SCALE:
            self._scale /= 2
        elif refused.error in NOT_EDITABLE and self._current() is not None:
            log.warning("final_edit_refused", error=refused.error)
            del self._messages[self._index]  # post this part as a new message instead
            self._last_sent.pop(self._index, None)
        else:
            raise refused

    async def _write(self, text: str, final: bool) -> None:
        """Write ``text`` into this reply's messages: full ones are closed, the rest goes in the current."""
        remainder = self._carry + text[self._committed :]
        while (part := cut(remainder, self._scale, exact=final)) is not None:
            head, rest = part
            if self._index + 1 >= MAX_MESSAGES:
                if final:
                    await self._put(self._closed(with_note(head, CUT_NOTE)))
                return
            used, carry = consumed(remainder, rest)
            committed = self._committed + used - len(self._carry)
            last = final and not (carry + text[committed:]).strip()  # the text ends exactly at this cut
            await self._put(self._closed(head) if last else head)
            self._committed, self._carry = committed, carry
            self._index += 1
            remainder = self._carry + text[self._committed :]
        if not remainder.strip():
            return  # the text ends exactly at a cut: the last message already holds all of it
        if final:
            await self._put(self._closed(render_one(remainder) or verbatim(remainder, len(remainder) + 8)))
        else:
            await self._interim_tail(remainder)

    async def _put(self, body: SlackMessage) -> None:
        """Show ``body`` in the current message: edit it, or post it when it does not exist yet."""
        ts = self._current()
        if ts is None:
            await self._add_message(await self._poster.post(body))
        elif self._last_sent.get(self._index) != body:
            # Final edits keep the per-message spacing too (Slack counts every edit of a message).
            await asyncio.sleep(self._pacer.wait_time(self._clock()))
            await self._poster.update(ts, body, slot_taken=self._edit_slot_taken)
            self._edit_slot_taken = False
            self._pacer.edited(self._clock())
        self._last_sent[self._index] = body

    def _streaming(self, body: SlackMessage) -> SlackMessage:
        """``body`` as shown while the answer streams: with the Stop button."""
        return with_blocks(body, self._buttons.stop) if self._buttons is not None else body

    def _closed(self, body: SlackMessage) -> SlackMessage:
        """``body`` as the last message of the final delivery: with the feedback buttons of an answer."""
        return with_blocks(body, self._closing) if self._closing is not None else body

    def _current(self) -> str | None:
        return self._messages[self._index] if self._index < len(self._messages) else None

    async def _add_message(self, ts: str) -> None:
        self._messages.append(ts)
        if self._on_posted is not None:
            await self._on_posted(list(self._messages))


def dress(notice: Notice) -> str:
    """A notice as Slack shows it: ``:warning:`` before a warning, a note in italics."""
    return f":warning: {notice.text}" if notice.kind == "warning" else f"_{notice.text}_"
