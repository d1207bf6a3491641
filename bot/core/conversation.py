"""ConversationService: one user message in, one streamed answer out.

The steps read top to bottom: claim the message (once only) -> show a placeholder -> prepare its images
-> load the thread's history -> build the prompt -> reserve the worst-case cost -> stream the model's
answer into the sink -> settle the real cost -> store the turn -> final edit. Every expected failure
becomes a short message in place of the answer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

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
from bot.core.errors import (
    DeliveryFailed,
    EmptyAnswer,
    GlmbotError,
    Interrupted,
    ModelStreamFailed,
    StoreUnavailable,
)
from bot.core.messages import EMPTY_MESSAGE_REPLY, cut_off_notice, default_prompt, user_message
from bot.core.ports import AttachmentFetcher, Billing, Claims, History, Images, ModelStream, ReplySink
from bot.core.prompt import build_prompt, without_images
from bot.metrics import Metrics

log = structlog.get_logger(__name__)

# Time an interrupted reply gets to post its message and settle its cost.
INTERRUPT_GRACE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ConversationConfig:
    """The parts of Settings the conversation needs."""

    system_prompt: str
    context_tokens: int
    max_output_tokens: int
    # How the front end's admins manage limits ("/glm-quota" in Slack), named in the over-quota message.
    quota_command: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished answer: its Markdown text and the notes to end the reply with."""

    text: str
    notices: tuple[Notice, ...]


class ConversationService:
    """Answers user messages using the thread's memory and the model."""

    def __init__(
        self,
        history: History,
        images: Images,
        billing: Billing,
        claims: Claims,
        model: ModelStream,
        config: ConversationConfig,
        metrics: Metrics,
    ) -> None:
        self._history = history
        self._images = images
        self._billing = billing
        self._claims = claims
        self._model = model
        self._config = config
        self._metrics = metrics
        self._in_flight: set[asyncio.Task[Any]] = set()

    async def knows_thread(self, thread: ThreadKey) -> bool:
        """True when the bot already talks in this thread (so follow-ups need no mention)."""
        return await self._history.exists(thread)

    async def forget(self, thread: ThreadKey) -> None:
        """Drop a thread's memory."""
        await self._history.forget(thread)

    async def drain(self, within_seconds: float) -> None:
        """Before a shutdown: let replies in progress finish for ``within_seconds``, then interrupt the rest.

        Interrupted replies still tell their user and settle their reservation, while the store and the
        Slack session are open.
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

    async def answer(self, message: IncomingMessage, sink: ReplySink, files: AttachmentFetcher) -> None:
        """Answer ``message`` once, streaming into ``sink``; ``files`` fetches its attachments."""
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        try:
            if not await self._claims.claim(message.thread.team, message.thread.channel, message.message_ts):
                log.info("duplicate_message_ignored")
                return
        except StoreUnavailable as exc:
            log.error("claim_failed_store_unavailable", detail=str(exc))
            await self._show_failure(sink, StoreUnavailable())
            return
        try:
            await sink.start()
        except DeliveryFailed:
            log.error("placeholder_failed")
            self._metrics.replies.labels("slack_failed").inc()
            return
        await self._reply(message, sink, files)

    async def _reply(self, message: IncomingMessage, sink: ReplySink, files: AttachmentFetcher) -> None:
        started = time.monotonic()
        if not message.text.strip() and not message.attachments:
            await sink.finish(EMPTY_MESSAGE_REPLY)
            return
        try:
            collected = await self._images.collect(message.thread, message.attachments, files)
            newest = newest_message(message.text, collected)
            if newest is None:
                # Nothing usable was sent (say, only a PDF): explain, and make no model call.
                await sink.finish("", _warnings(collected.problems))
                return
            answer = await self._generate(message, newest, collected, sink, started)
        except GlmbotError as exc:
            log.warning("reply_failed", error=type(exc).__name__, detail=str(exc))
            self._metrics.replies.labels(type(exc).__name__).inc()
            await sink.fail(self._words(exc))
            return
        except Exception:
            # A bug must still end the reply visibly, never as a placeholder left spinning.
            log.exception("reply_crashed")
            self._metrics.replies.labels("crashed").inc()
            await sink.fail(self._words(GlmbotError()))
            return
        except asyncio.CancelledError:
            # Shutdown outlasted the drain: say so instead of leaving the placeholder behind.
            self._metrics.replies.labels("interrupted").inc()
            await sink.fail(self._words(Interrupted()))
            raise
        # Stored before the final edit, so a follow-up sent after seeing the answer always finds it.
        await self._remember(message.thread, newest, answer.text)
        await sink.finish(answer.text, answer.notices + _warnings(collected.problems))
        self._metrics.replies.labels("ok").inc()
        self._metrics.reply_seconds.observe(time.monotonic() - started)

    async def _generate(
        self,
        message: IncomingMessage,
        newest: ChatMessage,
        collected: CollectedImages,
        sink: ReplySink,
        started: float,
    ) -> Answer:
        history = await self._history.load(message.thread)
        budget = self._config.context_tokens - self._config.max_output_tokens
        prompt = build_prompt(self._config.system_prompt, history, newest, budget)
        if prompt.dropped_messages:
            log.info("history_trimmed", dropped=prompt.dropped_messages, kept=len(prompt.messages) - 2)
        charge = await self._billing.reserve(
            message.user_id, prompt.estimated_tokens, self._config.max_output_tokens
        )
        progress = StreamProgress()
        try:
            request = await self._request(message.thread, prompt.messages, collected, charge.max_tokens)
            end = await self._stream(request, sink, started, progress)
        except BaseException:
            # Whatever stopped the stream (a broken stream, a bug, a shutdown): the model's work so far
            # is charged (estimated), and a request that produced nothing costs nothing.
            await charge.abandon(progress)
            raise
        quota_note = await charge.settle(progress, end.usage)
        if not progress.text.strip():
            # Charged above for what it reported (reasoning, say), but there is nothing to show.
            raise EmptyAnswer(cut_off=end.finish_reason == "length")
        self._record_usage(end, prompt.estimated_tokens)
        notices = [cut_off_notice(charge.max_tokens)] if end.finish_reason == "length" else []
        if quota_note is not None:
            notices.append(quota_note)
        return Answer(text=progress.text, notices=tuple(notices))

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
        self, request: ModelRequest, sink: ReplySink, started: float, progress: StreamProgress
    ) -> StreamEnd:
        """Stream the answer into ``sink``, keeping ``progress`` current; returns how the stream ended."""
        visible = AnswerFilter()
        end: StreamEnd | None = None
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
        progress.text += visible.finish()
        if end is None:
            raise ModelStreamFailed("the model stream ended without a finish")
        return end

    async def _remember(self, thread: ThreadKey, question: ChatMessage, answer: str) -> None:
        try:
            await self._history.append(thread, [question, ChatMessage("assistant", answer)])
        except StoreUnavailable as exc:
            # The user already has the answer; losing this turn's memory is the lesser harm.
            log.error("history_append_failed", detail=str(exc))

    def _words(self, error: GlmbotError) -> str:
        return user_message(error, self._config.quota_command)

    async def _show_failure(self, sink: ReplySink, error: GlmbotError) -> None:
        try:
            await sink.start()
            await sink.fail(self._words(error))
        except DeliveryFailed:
            log.error("failure_message_not_shown")


def newest_message(text: str, collected: CollectedImages) -> ChatMessage | None:
    """The user's turn as the model sees it, or None when nothing usable was sent."""
    if not text.strip() and not collected.images:
        return None
    return ChatMessage("user", text.strip() or default_prompt(len(collected.images)), collected.refs)


def _warnings(problems: tuple[str, ...]) -> tuple[Notice, ...]:
    """The files left out, as warnings under the reply."""
    return tuple(Notice("warning", problem) for problem in problems)
