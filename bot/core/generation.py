"""Generating one answer: prompt -> reservation -> model stream -> settlement, recorded in the journal.

The conversation service (``conversation``) decides what to answer and delivers it; this module turns one
user turn into a paid-for ``Answer``. Each step another process would need to resume the reply is
written to the journal: the reservation, how much streamed (every ``PROGRESS_SECONDS``), the answer.

A person may stop a reply while it streams (``bot.core.stopping.StopSignal``, set by the front end): the
model request is cancelled (its connection closed), the text so far becomes the answer with a note saying
who stopped it, and the reply is charged the input estimate plus the output that streamed. A stop is not
a failure and not a shutdown: the answer is delivered and its work is done.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import structlog

from bot.core.answer_filter import AnswerFilter
from bot.core.domain import (
    ChatMessage,
    CollectedImages,
    IncomingMessage,
    ModelRequest,
    Notice,
    ReasoningDelta,
    StreamEnd,
    StreamProgress,
    TextDelta,
    ThreadKey,
)
from bot.core.errors import EmptyAnswer, ModelDeclined, ModelStreamFailed, StoreUnavailable
from bot.core.messages import cut_off_notice, stopped_notice
from bot.core.ports import Billing, History, Images, ModelStream, ReplyCharge, ReplyJournal, ReplySink
from bot.core.prompt import build_prompt, without_images
from bot.core.report import ReplyReport
from bot.core.stopping import StopSignal, unless_stopped
from bot.core.tokens import estimate_output_tokens
from bot.metrics import Metrics

__all__ = ["Answer", "AnswerGenerator", "ConversationConfig", "StopSignal"]

log = structlog.get_logger(__name__)

# How often a streaming reply records how much it produced (for settling it if the process dies).
PROGRESS_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ConversationConfig:
    """The parts of Settings the conversation needs."""

    system_prompt: str
    context_tokens: int
    max_output_tokens: int
    # How the front end's admins manage limits ("/glm-quota" in Slack), named in the over-quota message.
    quota_command: str = ""
    # The console's user runs the bot: failures name their cause and the setting to fix, not "tell an admin".
    operator: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished answer: its Markdown text and the notes to end the reply with; ``stopped`` when a
    person stopped it while it streamed (the text is what had streamed by then)."""

    text: str
    notices: tuple[Notice, ...]
    stopped: bool = False

    def dumps(self) -> str:
        """The answer as JSON, for the journal."""
        notices = [[n.kind, n.text] for n in self.notices]
        return json.dumps({"text": self.text, "notices": notices, "stopped": self.stopped})

    @staticmethod
    def loads(raw: str) -> Answer:
        """An answer recorded by ``dumps``; raises ValueError, KeyError or TypeError when unreadable."""
        data = json.loads(raw)
        notices = tuple(Notice(kind, text) for kind, text in data["notices"])
        return Answer(str(data["text"]), notices, bool(data.get("stopped", False)))


class AnswerGenerator:
    """Writes, pays for and journals one answer with the model."""

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
        self._model = model
        self._config = config
        self._metrics = metrics

    async def generate(
        self,
        message: IncomingMessage,
        newest: ChatMessage,
        collected: CollectedImages,
        sink: ReplySink,
        report: ReplyReport,
        journal: ReplyJournal,
        stop: StopSignal | None = None,
    ) -> Answer:
        """The answer to ``newest``, paid for; ``report`` learns the reply's charge (and if settling it
        failed). Raises QuotaExceeded, a ModelError, StoreUnavailable, PromptTooLong."""
        if stop is not None and stop.stopped:
            return Answer("", (stopped_notice(stop.by),), stopped=True)  # before the model call: free
        history = await self._history.load(message.thread)
        budget = self._config.context_tokens - self._config.max_output_tokens
        prompt = build_prompt(self._config.system_prompt, history, newest, budget)
        if prompt.dropped_messages:
            log.info("history_trimmed", dropped=prompt.dropped_messages, kept=len(prompt.messages) - 2)
        charge = await self._billing.reserve(
            message.user_id, prompt.estimated_tokens, self._config.max_output_tokens
        )
        report.charge = charge
        await journal.record(charge=charge.record(), output="0")
        progress = StreamProgress()
        try:
            request = await self._request(message.thread, prompt.messages, collected, charge.max_tokens)
            end = await self._stream(request, sink, report.started, progress, journal, stop)
        except BaseException:
            # Whatever stopped the stream (a broken stream, a bug, a shutdown): the model's work so far
            # is charged (estimated), and a request that produced nothing costs nothing.
            await charge.abandon(progress)
            await journal.record(charge="")
            raise
        if end is None:
            return await self._stopped(charge, progress, stop, journal, report)
        quota_note = await self._settle(charge, progress, end, report)
        self._record_usage(end, prompt.estimated_tokens)
        return await self._answer(end, progress, charge.max_tokens, quota_note, journal)

    async def _answer(
        self,
        end: StreamEnd,
        progress: StreamProgress,
        max_tokens: int,
        quota_note: Notice | None,
        journal: ReplyJournal,
    ) -> Answer:
        """The settled stream as an answer with its notes; raises ModelDeclined or EmptyAnswer when the
        model's content filter stopped it or it wrote no answer text (both charged already)."""
        if end.finish_reason == "declined":
            await journal.record(charge="")
            self._metrics.model_errors.labels("declined").inc()
            # Charged above (the model did the work); what streamed stays, with the reason after it.
            raise ModelDeclined("the model's content filter stopped the answer")
        if not progress.text.strip():
            await journal.record(charge="")
            self._metrics.model_errors.labels("empty_answer").inc()
            # Charged above for what it reported (reasoning, say), but there is nothing to show.
            raise EmptyAnswer(cut_off=end.finish_reason == "length")
        notices = [cut_off_notice(max_tokens)] if end.finish_reason == "length" else []
        if quota_note is not None:
            notices.append(quota_note)
        answer = Answer(text=progress.text, notices=tuple(notices))
        await journal.record(charge="", answer=answer.dumps())
        return answer

    async def _stopped(
        self,
        charge: ReplyCharge,
        progress: StreamProgress,
        stop: StopSignal | None,
        journal: ReplyJournal,
        report: ReplyReport,
    ) -> Answer:
        """A person stopped the stream: the text so far is the answer, charged for the prompt (estimated)
        and the output that streamed (estimated: the model reports no usage for a closed stream)."""
        log.info("reply_stopped", output_tokens=estimate_output_tokens(progress))
        quota_note = await self._settle(charge, progress, StreamEnd("stopped", None), report)
        notices = (stopped_notice(stop.by if stop else ""), *([quota_note] if quota_note else []))
        answer = Answer(text=progress.text, notices=notices, stopped=True)
        await journal.record(charge="", answer=answer.dumps())
        return answer

    async def _settle(
        self, charge: ReplyCharge, progress: StreamProgress, end: StreamEnd, report: ReplyReport
    ) -> Notice | None:
        """Charge the finished reply; a store failure now costs us the money, not the user the answer
        (the reply's outcome becomes ``unbilled``)."""
        try:
            return await charge.settle(progress, end.usage)
        except StoreUnavailable as exc:
            usage = end.usage
            log.error(
                "reply_unbilled",
                detail=str(exc),
                prompt_tokens=usage.prompt_tokens if usage else None,
                completion_tokens=usage.completion_tokens if usage else estimate_output_tokens(progress),
            )
            report.unbilled = True
            return None

    def _record_usage(self, end: StreamEnd, prompt_estimate: int) -> None:
        if end.usage is None:
            return
        self._metrics.tokens.labels("prompt").inc(end.usage.prompt_tokens)
        self._metrics.tokens.labels("completion").inc(end.usage.completion_tokens)
        # The estimate should stay above the real count; this line lets operators check that.
        log.info(
            "model_usage",
            prompt_tokens=end.usage.prompt_tokens,
            prompt_estimate=prompt_estimate,
            completion_tokens=end.usage.completion_tokens,
            finish_reason=end.finish_reason,
        )

    async def _request(
        self,
        thread: ThreadKey,
        messages: tuple[ChatMessage, ...],
        collected: CollectedImages,
        max_tokens: int,
    ) -> ModelRequest:
        """The model request, with every image's data; earlier images whose cache expired become notes."""
        earlier = [image.file_id for message in messages[:-1] for image in message.images]
        cached = await self._images.cached(thread, earlier)
        data = {
            **{file_id: image.data_url for file_id, image in cached.items()},
            **{image.ref.file_id: image.data_url for image in collected.images},
        }
        resolved = tuple(without_images(m, [i for i in m.images if i.file_id not in data]) for m in messages)
        return ModelRequest(messages=resolved, max_tokens=max_tokens, images=data)

    async def _stream(
        self,
        request: ModelRequest,
        sink: ReplySink,
        started: float,
        progress: StreamProgress,
        journal: ReplyJournal,
        stop: StopSignal | None,
    ) -> StreamEnd | None:
        """Stream the answer into ``sink``, keeping ``progress`` current; returns how the stream ended, or
        None when ``stop`` came first."""
        visible = AnswerFilter()
        reading = self._read(request, sink, started, progress, journal, visible)
        end = await (reading if stop is None else unless_stopped(reading, stop))
        progress.text += visible.finish()
        return end

    async def _read(
        self,
        request: ModelRequest,
        sink: ReplySink,
        started: float,
        progress: StreamProgress,
        journal: ReplyJournal,
        visible: AnswerFilter,
    ) -> StreamEnd:
        """Read the model's stream to its end (see ``_stream``); raises ModelStreamFailed without one."""
        end: StreamEnd | None = None
        noted = float("-inf")  # the first output is recorded at once, then every PROGRESS_SECONDS
        async for event in self._model.stream(request):
            if isinstance(event, TextDelta):
                shown = visible.feed(event.text)
                if shown:
                    if not progress.text:
                        self._metrics.first_token_seconds.observe(time.monotonic() - started)
                    progress.text += shown
                    sink.show(progress.text)
            elif isinstance(event, ReasoningDelta):
                progress.reasoning += event.text
            else:
                end = event
            if journal.durable and time.monotonic() - noted >= PROGRESS_SECONDS:
                noted = time.monotonic()
                await journal.record(output=str(estimate_output_tokens(progress)))
        if end is None:
            raise ModelStreamFailed("the model stream ended without a finish")
        return end
