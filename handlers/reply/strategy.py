"""Which way one reply is delivered: native streaming or edits (``SLACK_STREAMING``), chosen as it starts.

* ``edit``: a placeholder and ``chat.update`` edits (``SlackReplyStreamer``), as before native streaming.
* ``native``: always a native stream (``SlackNativeStreamer``), waiting for the streaming budgets when
  they are spent. If Slack refuses ``chat.startStream`` for good, this reply falls back to edits (logged).
* ``auto`` (the default): a native stream when the workspace's start and stop budgets have room now,
  else edits. The first refusal of ``chat.startStream`` for the workspace (``not_allowed``,
  ``unknown_method``, ``invalid_arguments``, a feature not enabled...) sends that reply to edits and is
  remembered in Redis for ``STREAM_REFUSAL_SECONDS`` (an hour), shared by every replica. Refusals that
  belong to the thread, not the workspace (``channel_not_found``...), are not remembered.

A stream needs its recipient in a channel (``recipient_user_id``,
https://docs.slack.dev/reference/methods/chat.startStream): without the asker's id (a failure notice sent
before the message was taken on), a channel reply goes by edits.

**Resumed replies** (another process recorded messages) always finish by edits on the recorded messages:
a stream cannot be continued by another process, so each recorded stream is stopped first (a stream
already stopped or expired is refused, which is fine), then its message gets the whole answer by
``chat.update``. No half stream is left, and nothing is posted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import structlog

from bot.core.domain import Notice
from bot.core.errors import DeliveryFailed
from handlers.errors import SlackRefused
from handlers.reply.buttons import ReplyButtons
from handlers.reply.limits import SlackLimits
from handlers.reply.native import STREAM_PREFIX, SlackNativeStreamer
from handlers.reply.pacing import EditPacer
from handlers.reply.stream_calls import SlackStreamPoster
from handlers.reply.streamer import OnPosted, SlackReplyStreamer

log = structlog.get_logger(__name__)

StreamingMode = Literal["auto", "native", "edit"]
THREAD_REFUSALS = frozenset({"channel_not_found", "not_in_channel", "is_archived", "thread_not_found"})
"""``chat.startStream`` errors about this thread, not the workspace: not remembered."""


@dataclass(frozen=True, slots=True)
class StreamPacing:
    """How replies are delivered: ``SLACK_STREAMING``, and the least seconds between two edits or two
    appends of one message (``STREAM_EDIT_INTERVAL``)."""

    mode: StreamingMode
    interval: float


def reply_sink(
    pacing: StreamPacing,
    poster: SlackStreamPoster,
    limits: SlackLimits,
    recorded: Sequence[str] = (),
    on_posted: OnPosted | None = None,
    asker: str | None = None,
    buttons: ReplyButtons | None = None,
) -> ChosenSink:
    """The sink of one reply in ``poster``'s thread; ``asker`` receives a stream in a channel;
    ``buttons``: the reply's Stop and feedback buttons."""

    def edits(messages: Sequence[str]) -> SlackReplyStreamer:
        pacer = EditPacer(pacing.interval)
        return SlackReplyStreamer(poster, pacer, messages, on_posted, buttons=buttons)

    def native() -> SlackNativeStreamer:
        pacer = EditPacer(pacing.interval)
        return SlackNativeStreamer(poster, pacer, asker, edits, on_posted, buttons=buttons)

    can_stream = asker is not None or poster.channel.startswith("D")  # a DM needs no recipient
    return ChosenSink(pacing.mode, poster, limits, recorded, edits, native if can_stream else None)


class ChosenSink:
    """A reply sink that picks native streaming or edits when it starts (implements ``ReplySink``)."""

    def __init__(
        self,
        mode: StreamingMode,
        poster: SlackStreamPoster,
        limits: SlackLimits,
        recorded: Sequence[str],
        edits: Callable[[Sequence[str]], SlackReplyStreamer],
        native: Callable[[], SlackNativeStreamer] | None,
    ) -> None:
        """``edits(recorded)`` builds the edit sink, ``native()`` the native one (None: not possible)."""
        self._mode = mode
        self._poster = poster
        self._limits = limits
        self._recorded = list(recorded)
        self._edits = edits
        self._native = native
        self._sink: SlackReplyStreamer | SlackNativeStreamer | None = None

    @property
    def chosen(self) -> str:
        """``native``, ``edit`` or ``none`` (not started yet)."""
        if self._sink is None:
            return "none"
        return "native" if isinstance(self._sink, SlackNativeStreamer) else "edit"

    async def start(self) -> None:
        if self._recorded:
            await self._stop_recorded_streams()
        elif (native := await self._open_native()) is not None:
            self._sink = native
            return
        edits = self._edits([ts.removeprefix(STREAM_PREFIX) for ts in self._recorded])
        self._sink = edits
        await edits.start()

    def show(self, text: str) -> None:
        if self._sink is not None:
            self._sink.show(text)

    async def finish(self, text: str, notices: Sequence[Notice] = ()) -> bool:
        if self._sink is None:
            raise DeliveryFailed("the reply was never started")
        return await self._sink.finish(text, notices)

    async def fail(self, message: str) -> None:
        if self._sink is None:
            raise DeliveryFailed("the reply was never started")
        await self._sink.fail(message)

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()

    async def _open_native(self) -> SlackNativeStreamer | None:
        """A started native stream, or None when this reply goes by edits."""
        if self._mode == "edit" or self._native is None:
            return None
        team = self._poster.team
        if self._mode == "auto" and await self._limits.stream_refused(team):
            return None
        native = self._native()
        try:
            if await native.open(wait=self._mode == "native"):
                return native
        except SlackRefused as refused:
            log.warning("native_stream_refused", error=refused.error, mode=self._mode)
            if self._mode == "auto" and refused.error not in THREAD_REFUSALS:
                await self._limits.remember_stream_refusal(team, refused.error)
            return None
        log.info("native_stream_budget_spent")
        return None

    async def _stop_recorded_streams(self) -> None:
        """Stop the streams an earlier attempt left (once each; refusals mean it is stopped already)."""
        for ts in self._recorded:
            if not ts.startswith(STREAM_PREFIX):
                continue
            try:
                await self._poster.stop_stream(ts.removeprefix(STREAM_PREFIX), "", slot_taken=False)
            except SlackRefused as refused:
                log.info("leftover_stream_not_stopped", error=refused.error)
            except DeliveryFailed as failed:
                log.warning("leftover_stream_not_stopped", detail=str(failed))
