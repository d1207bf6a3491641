"""The Slack side of durable work: listeners take messages on, the work runner delivers their answers.

``take_on`` runs inside the listener, before Bolt acknowledges the event (``process_before_response``),
so an acknowledged message is always in the work stream. ``deliver`` is the runner's callback: it builds
the reply's streamer on the messages an earlier attempt posted (if any) and runs the conversation with
the entry's journal. Before that, a thread the bot has no memory of is caught up (``handlers.catchup``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.conversation import ConversationService
from bot.core.domain import IncomingMessage, ThreadKey
from bot.core.errors import GlmbotError, StoreUnavailable
from bot.core.ports import ReplySink
from bot.core.report import ReplyReport
from bot.metrics import Metrics
from bot.work.journal import WorkJournal
from bot.work.queue import WorkItem, WorkQueue
from bot.work.stops import StopRequests
from handlers.catchup import ThreadCatchUp
from handlers.events import mentioned_users, slack_to_text
from handlers.files import SlackFileFetcher
from handlers.people import PeopleDirectory
from handlers.reply.buttons import ReplyButtons
from handlers.reply.limits import SlackLimits
from handlers.reply.strategy import ChosenSink, StreamingMode, StreamPacing, reply_sink
from handlers.reply.stream_calls import SlackStreamPoster
from handlers.reply.streamer import OnPosted

log = structlog.get_logger(__name__)


class AnswerHook(Protocol):
    """Adapts one answer before it runs: the assistant panel's note, status and title
    (``handlers.assistant_replies.PanelAnswers``); anything else passes through unchanged."""

    async def adapt(self, message: IncomingMessage, sink: ReplySink) -> tuple[IncomingMessage, ReplySink]:
        """``message`` and ``sink`` as this answer needs them."""
        ...


class SlackDelivery:
    """Takes messages on as work, and answers work items in Slack."""

    def __init__(
        self,
        queue: WorkQueue,
        conversation: ConversationService,
        client: AsyncWebClient,
        files: SlackFileFetcher,
        limits: SlackLimits,
        metrics: Metrics,
        edit_interval: float,
        people: PeopleDirectory | None = None,
        catchup: ThreadCatchUp | None = None,
        panel: AnswerHook | None = None,
        streaming: StreamingMode = "edit",
    ) -> None:
        self._queue = queue
        self._conversation = conversation
        self._client = client
        self._files = files
        self._limits = limits
        self._metrics = metrics
        self._edit_interval = edit_interval
        self._people = people or PeopleDirectory()
        self._catchup = catchup
        self._panel = panel
        self._streaming = streaming
        self._background: set[asyncio.Task[None]] = set()
        # Stop presses (handlers.actions) travel through Redis to the replica running the reply.
        self.stops = StopRequests(queue.store)

    async def take_on(self, message: IncomingMessage, event_id: str, engage: bool = False) -> None:
        """Record ``message`` as work (once, whatever events announce it), before the ack.

        ``engage``: a mention makes its thread one the bot follows from now on, before any answer.
        """
        try:
            added = await self._enqueue(message, event_id, engage)
        except StoreUnavailable as exc:
            log.error("work_not_recorded_store_unavailable", detail=str(exc))
            # The user still hears why; the ack is not held up by Slack calls.
            task = asyncio.create_task(self._show_unrecorded(message.thread, StoreUnavailable()))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        if added:
            log.debug("work_recorded")  # not info: a log line costs ~0.3 ms of the ack's time
        else:
            log.info("duplicate_message_ignored")

    async def _show_unrecorded(self, thread: ThreadKey, error: GlmbotError) -> None:
        """Tell the user why their message was not taken on. It ends like any reply: one count and one
        ``reply_finished`` line (outcome: the error's name), with the ids the listener bound."""
        report = ReplyReport(self._metrics)
        report.end(type(error).__name__)
        try:
            await self._conversation.show_failure(self.streamer(thread), error)
        finally:
            report.finish()

    async def _enqueue(self, message: IncomingMessage, event_id: str, engage: bool) -> bool:
        """Enqueue (and, for a mention, engage its thread) in one round trip; raises StoreUnavailable
        only when the work itself was not recorded."""
        if not engage:
            return await self._queue.enqueue(message, event_id)
        added, engaged = await asyncio.gather(
            self._queue.enqueue(message, event_id),
            self._conversation.engage(message.thread),
            return_exceptions=True,
        )
        if isinstance(engaged, BaseException):
            log.warning("thread_not_engaged", detail=str(engaged))  # its first answer engages it too
        if isinstance(added, BaseException):
            raise added
        return added

    async def deliver(self, item: WorkItem, state: dict[str, str]) -> None:
        """Answer one work item (the runner's callback); returns once the answer was delivered."""
        message = await self._as_written(item.message)
        structlog.contextvars.bind_contextvars(
            team=message.thread.team,
            channel=message.thread.channel,
            thread_ts=message.thread.thread_ts,
            user=message.user_id,
            entry_id=item.entry_id,
            event_id=item.event_id,
        )
        journal = WorkJournal(self._queue, item, state)
        catchup = self._catchup

        async def prepare() -> None:
            # Once the placeholder shows, before the history is read: the prompt then holds what the
            # thread said before the bot was asked.
            if catchup is not None:
                await catchup.before_answer(message, journal)

        async def posted(timestamps: list[str]) -> None:
            await journal.record(messages=json.dumps(timestamps))

        recorded = _timestamps(journal.recorded("messages"))
        buttons = ReplyButtons.of(message)  # Stop while streaming, feedback on the finished answer
        sink = self.streamer(message.thread, recorded, posted, asker=message.user_id, buttons=buttons)
        # Assistant panel threads (handlers/assistant_replies.py): the viewed channel, status, title.
        shown: ReplySink = sink
        if self._panel is not None:
            message, shown = await self._panel.adapt(message, sink)
        try:
            # A Stop pressed on any replica ends the answer with what streamed so far (bot.work.stops).
            async with self.stops.watching(message.thread.team, item.key) as stop:
                await self._conversation.answer(message, shown, self._files, journal, prepare, stop)
        finally:
            sink.close()

    async def _as_written(self, message: IncomingMessage) -> IncomingMessage:
        """``message`` with Slack's markup turned back into what the person wrote (names looked up)."""
        users = mentioned_users(message.text)
        names = await self._people.names(self._client, users) if users else {}
        return replace(message, text=slack_to_text(message.text, names))

    @property
    def people(self) -> PeopleDirectory:
        """Display names (the stop note names who stopped a reply)."""
        return self._people

    @property
    def metrics(self) -> Metrics:
        """The bot's metrics (feedback presses are counted there)."""
        return self._metrics

    def streamer(
        self,
        thread: ThreadKey,
        recorded: Sequence[str] = (),
        on_posted: OnPosted | None = None,
        *,
        asker: str | None = None,
        buttons: ReplyButtons | None = None,
    ) -> ChosenSink:
        """A reply sink for one answer in one thread (on messages an earlier attempt posted), delivering
        by native streaming or by edits as SLACK_STREAMING says (``handlers.reply.strategy``); ``asker``
        receives a stream in a channel."""
        poster = SlackStreamPoster(
            self._client, thread.team, thread.channel, thread.thread_ts, self._limits, self._metrics
        )
        pacing = StreamPacing(self._streaming, self._edit_interval)
        return reply_sink(pacing, poster, self._limits, recorded, on_posted, asker, buttons)


def _timestamps(raw: str | None) -> list[str]:
    """The message timestamps an earlier attempt recorded (none when unreadable)."""
    try:
        values = json.loads(raw or "[]")
    except ValueError:
        return []
    return [str(ts) for ts in values] if isinstance(values, list) else []
