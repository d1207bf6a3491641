"""ConversationService: one user message in, one streamed answer out.

The steps read top to bottom: settle what a dead earlier attempt left -> show that an answer is coming ->
prepare the images -> load the thread's history -> build the prompt -> reserve the worst-case cost ->
stream the model's answer into the sink -> settle the real cost -> deliver -> store the turn. Every
expected failure becomes a short message in place of the answer.

Each step that another process would need to resume the reply is written to the reply's journal (the
Slack work queue's entry state): the reservation, how much streamed, the finished answer.

However it ends, a reply is counted once in ``glmbot_replies_total{outcome}`` and logged once as
``reply_finished`` (``bot.core.report``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from bot.core.domain import ChatMessage, CollectedImages, IncomingMessage, Notice, ThreadKey
from bot.core.errors import DeliveryFailed, GlmbotError, Interrupted, RetriesExhausted, StoreUnavailable
from bot.core.generation import Answer, AnswerGenerator, ConversationConfig, StopSignal
from bot.core.messages import EMPTY_MESSAGE_REPLY, operator_message, user_message
from bot.core.ports import AttachmentFetcher, Billing, History, Images, ModelStream, ReplyJournal, ReplySink
from bot.core.prompt import newest_message
from bot.core.report import ReplyReport
from bot.metrics import Metrics

__all__ = ["ConversationConfig", "ConversationService", "NoJournal", "StopSignal"]

log = structlog.get_logger(__name__)

# Time an interrupted reply gets to post its message and settle its cost.
INTERRUPT_GRACE_SECONDS = 5.0
# A message whose reply crashed the process this many times is answered with an apology instead.
MAX_ATTEMPTS = 4


class NoJournal:
    """The journal of a reply that nobody will resume (the console): records nothing."""

    durable = False
    attempt = 1

    def recorded(self, field: str) -> str | None:
        return None

    async def record(self, **fields: str) -> None:
        return None


class ConversationService:
    """Answers user messages using the thread's memory and the model."""

    def __init__(
        self,
        history: History,
        images: Images,
        billing: Billing,
        model: ModelStream,
        config: ConversationConfig,
        metrics: Metrics,
    ) -> None:
        self._history = history
        self._images = images
        self._billing = billing
        self._config = config
        self._metrics = metrics
        self._generator = AnswerGenerator(history, images, billing, model, config, metrics)
        self._in_flight: set[asyncio.Task[Any]] = set()

    async def knows_thread(self, thread: ThreadKey) -> bool:
        """True when the bot already talks in this thread (so follow-ups need no mention)."""
        return await self._history.exists(thread)

    async def engage(self, thread: ThreadKey) -> None:
        """The bot was asked in ``thread``: later messages there are for it too. Raises StoreUnavailable."""
        await self._history.engage(thread)

    async def forget(self, thread: ThreadKey) -> None:
        """Drop a thread's memory."""
        await self._history.forget(thread)

    async def drain(self, within_seconds: float) -> None:
        """Before a shutdown: let replies in progress finish for ``within_seconds``, then interrupt the rest.

        Interrupted replies settle their reservation, and tell their user unless their journal lets
        another process resume them.
        """
        if self._in_flight:
            log.info("draining_replies", in_flight=len(self._in_flight))
            await asyncio.wait(set(self._in_flight), timeout=within_seconds)
        late = set(self._in_flight)
        if late:
            log.warning("interrupting_replies", in_flight=len(late))
            for task in late:
                task.cancel()
            await asyncio.wait(late, timeout=INTERRUPT_GRACE_SECONDS)

    async def show_failure(self, sink: ReplySink, error: GlmbotError) -> None:
        """Show ``error`` in place of an answer (when the message could not even be taken on)."""
        try:
            await sink.start()
            await sink.fail(self._words(error))
        except DeliveryFailed:
            log.error("failure_message_not_shown")

    async def answer(
        self,
        message: IncomingMessage,
        sink: ReplySink,
        files: AttachmentFetcher,
        journal: ReplyJournal | None = None,
        prepare: Callable[[], Awaitable[None]] | None = None,
        stop: StopSignal | None = None,
    ) -> None:
        """Answer ``message``, streaming into ``sink``; ``files`` fetches its attachments.

        ``journal`` holds what an earlier attempt at this message recorded, and takes this one's records.
        ``prepare`` runs once the placeholder shows and before the thread's history is read (the front
        end's catch-up of a thread it has not seen); it must not raise. ``stop``, once set, ends the
        answer with what streamed so far (delivered, charged for the work done). Whatever happens, the
        reply ends with one count and one ``reply_finished`` line (``bot.core.report``).
        """
        journal = journal or NoJournal()
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        report = ReplyReport(self._metrics, journal.attempt)
        unnamed = "crashed"  # an exception no step expected: a bug
        try:
            await self._answer(message, sink, files, journal, prepare, stop, report)
        except asyncio.CancelledError:
            unnamed = "interrupted"
            raise
        finally:
            report.finish(unnamed)

    async def _answer(
        self,
        message: IncomingMessage,
        sink: ReplySink,
        files: AttachmentFetcher,
        journal: ReplyJournal,
        prepare: Callable[[], Awaitable[None]] | None,
        stop: StopSignal | None,
        report: ReplyReport,
    ) -> None:
        """``answer``'s steps, naming the outcome in ``report``."""
        await self._recover(journal)
        if journal.recorded("delivered"):
            # An earlier attempt delivered the answer and stopped before its work was acknowledged.
            log.info("reply_already_delivered")
            report.end("already_delivered")
            return
        if journal.attempt > MAX_ATTEMPTS:
            log.error("reply_attempts_exhausted", attempts=journal.attempt)
            report.end("attempts_exhausted")
            await self.show_failure(sink, RetriesExhausted())
            return
        try:
            await sink.start()
        except DeliveryFailed as failed:
            log.error("placeholder_failed", detail=str(failed))
            report.end("undeliverable")
            return
        if prepare is not None:
            await prepare()
        await self._reply(message, sink, files, journal, stop, report)

    async def _recover(self, journal: ReplyJournal) -> None:
        """Settle the reservation of an earlier attempt that died, for the work it had streamed."""
        charge = journal.recorded("charge")
        if not charge:
            return
        try:
            await self._billing.recover(charge, int(journal.recorded("output") or 0))
        except (StoreUnavailable, ValueError) as exc:
            log.error("earlier_attempt_not_settled", detail=str(exc))  # its reservation expires
        await journal.record(charge="", output="0")

    async def _reply(
        self,
        message: IncomingMessage,
        sink: ReplySink,
        files: AttachmentFetcher,
        journal: ReplyJournal,
        stop: StopSignal | None,
        report: ReplyReport,
    ) -> None:
        if not message.text.strip() and not message.attachments:
            report.end("empty_message" if await sink.finish(EMPTY_MESSAGE_REPLY) else "undelivered")
            return
        try:
            recorded = journal.recorded("answer")
            collected = await self._images.collect(message.thread, message.attachments, files)
            newest = newest_message(message.text, collected)
            if newest is None:
                # Nothing usable was sent (say, only a PDF): explain, and make no model call.
                shown = await sink.finish("", _warnings(collected.problems))
                report.end("nothing_usable" if shown else "undelivered")
                return
            if recorded:
                answer = Answer.loads(recorded)  # an earlier attempt paid for it, then died
            else:
                answer = await self._generator.generate(
                    message, newest, collected, sink, report, journal, stop
                )
        except GlmbotError as exc:
            log.warning("reply_failed", error=type(exc).__name__, detail=str(exc))
            report.end(type(exc).__name__)
            await sink.fail(self._words(exc))
            return
        except Exception:
            # A bug must still end the reply visibly, never as a placeholder left spinning.
            log.exception("reply_crashed")
            report.end("crashed")
            await sink.fail(self._words(GlmbotError()))
            return
        except asyncio.CancelledError:
            report.end("interrupted")
            if not journal.durable:
                # Shutdown outlasted the drain and nobody will resume this: say so.
                await sink.fail(self._words(Interrupted()))
            raise
        await self._deliver(message, newest, answer, collected, sink, report, journal)

    async def _deliver(
        self,
        message: IncomingMessage,
        newest: ChatMessage,
        answer: Answer,
        collected: CollectedImages,
        sink: ReplySink,
        report: ReplyReport,
        journal: ReplyJournal,
    ) -> None:
        # Stored before the final edit, so a follow-up sent the moment the answer shows finds it; taken
        # back below if the answer could not be delivered, so memory holds only what the user saw.
        turn = [newest, ChatMessage("assistant", answer.text)]
        thread, turn_id = message.thread, message.message_ts
        await self._remember(thread, turn_id, turn)
        # Shielded: a shutdown that lands during the final edit lets it land rather than leave a cursor.
        finishing = asyncio.ensure_future(
            sink.finish(answer.text, answer.notices + _warnings(collected.problems))
        )
        try:
            delivered = await asyncio.shield(finishing)
        except asyncio.CancelledError:
            await asyncio.wait({finishing}, timeout=INTERRUPT_GRACE_SECONDS)
            if finishing.done() and not finishing.cancelled() and finishing.result():
                report.delivered(answer.stopped)
                await journal.record(delivered="1")  # the process that resumes this need not redo it
            raise
        if not delivered:
            # The user never saw it: neither memory nor the ok count should say otherwise.
            await self._retract(thread, turn_id, turn)
            report.end("undelivered")
            return
        await journal.record(delivered="1")
        report.delivered(answer.stopped)
        self._metrics.reply_seconds.observe(report.seconds)

    async def _remember(self, thread: ThreadKey, turn_id: str, turn: list[ChatMessage]) -> None:
        if not turn[-1].text.strip():
            return  # a reply stopped before it had any text: nothing to remember
        try:
            await self._history.append(thread, turn_id, turn)
        except StoreUnavailable as exc:
            # The answer still goes to the user; losing this turn's memory is the lesser harm.
            log.error("history_append_failed", detail=str(exc))

    async def _retract(self, thread: ThreadKey, turn_id: str, turn: list[ChatMessage]) -> None:
        if not turn[-1].text.strip():
            return
        try:
            await self._history.retract(thread, turn_id, turn)
        except StoreUnavailable as exc:
            log.error("history_retract_failed", detail=str(exc))

    def _words(self, error: GlmbotError) -> str:
        if self._config.operator:
            return operator_message(error) or user_message(error, self._config.quota_command)
        return user_message(error, self._config.quota_command)


def _warnings(problems: tuple[str, ...]) -> tuple[Notice, ...]:
    """The files left out, as warnings under the reply."""
    return tuple(Notice("warning", problem) for problem in problems)
