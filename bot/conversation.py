"""ConversationService: one user message in, one streamed answer out.

The steps read top to bottom in ``answer``: claim the message (once only) -> show a placeholder ->
load the thread's history -> build the prompt -> stream the model's answer into the sink -> store the
turn. Every expected failure becomes a short message in place of the answer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import structlog

from bot.dedupe import MessageClaims
from bot.domain import ChatMessage, IncomingMessage, ModelRequest, StreamEnd, TextDelta, ThreadKey
from bot.errors import GlmbotError, ModelStreamFailed, SlackUnavailable, StoreUnavailable, user_message
from bot.history_store import HistoryStore
from bot.metrics import Metrics
from bot.model_output import AnswerFilter
from bot.ports import ModelStream, ReplySink
from bot.prompt import build_prompt

log = structlog.get_logger(__name__)

EMPTY_MESSAGE_REPLY = "Hi! Ask me anything, or attach an image and ask about it."


@dataclass(frozen=True, slots=True)
class ConversationConfig:
    """The parts of Settings the conversation needs."""

    system_prompt: str
    context_tokens: int
    max_output_tokens: int


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished answer: its Markdown text and how the model ended."""

    text: str
    end: StreamEnd


class ConversationService:
    """Answers user messages using the thread's memory and the model."""

    def __init__(
        self,
        history: HistoryStore,
        claims: MessageClaims,
        model: ModelStream,
        config: ConversationConfig,
        metrics: Metrics,
    ) -> None:
        self._history = history
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
        """Wait (at most ``within_seconds``) for replies in progress, e.g. before a shutdown."""
        if self._in_flight:
            log.info("draining_replies", in_flight=len(self._in_flight))
            await asyncio.wait(set(self._in_flight), timeout=within_seconds)

    async def answer(self, message: IncomingMessage, sink: ReplySink) -> None:
        """Answer ``message`` once, streaming into ``sink``."""
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        try:
            if not await self._claims.claim(message.thread.team, message.thread.channel, message.message_ts):
                log.info("duplicate_message_ignored")
                return
        except StoreUnavailable:
            log.error("claim_failed_store_unavailable")
            await self._show_failure(sink, StoreUnavailable())
            return
        try:
            await sink.start()
        except SlackUnavailable:
            log.error("placeholder_failed")
            self._metrics.replies.labels("slack_failed").inc()
            return
        await self._reply(message, sink)

    async def _reply(self, message: IncomingMessage, sink: ReplySink) -> None:
        started = time.monotonic()
        if not message.text.strip():
            await sink.finish(EMPTY_MESSAGE_REPLY)
            return
        try:
            answer = await self._generate(message, sink, started)
        except GlmbotError as exc:
            log.warning("reply_failed", error=type(exc).__name__, detail=str(exc))
            self._metrics.replies.labels(type(exc).__name__).inc()
            await sink.fail(user_message(exc))
            return
        # Stored before the final edit, so a follow-up sent after seeing the answer always finds it.
        await self._remember(message, answer.text)
        await sink.finish(answer.text + _ending_notice(answer.end, self._config.max_output_tokens))
        self._metrics.replies.labels("ok").inc()
        self._metrics.reply_seconds.observe(time.monotonic() - started)

    async def _generate(self, message: IncomingMessage, sink: ReplySink, started: float) -> Answer:
        newest = ChatMessage("user", message.text)
        history = await self._history.load(message.thread)
        budget = self._config.context_tokens - self._config.max_output_tokens
        prompt = build_prompt(self._config.system_prompt, history, newest, budget)
        if prompt.dropped_messages:
            log.info("history_trimmed", dropped=prompt.dropped_messages, kept=len(prompt.messages) - 2)
        request = ModelRequest(messages=prompt.messages, max_tokens=self._config.max_output_tokens)
        text, end = await self._stream(request, sink, started)
        if end.usage is not None:
            self._metrics.tokens.labels("prompt").inc(end.usage.prompt_tokens)
            self._metrics.tokens.labels("completion").inc(end.usage.completion_tokens)
            # The estimate should stay above the real count; this line lets operators check that.
            log.info(
                "model_usage",
                prompt_tokens=end.usage.prompt_tokens,
                prompt_estimate=prompt.estimated_tokens,
                completion_tokens=end.usage.completion_tokens,
                finish_reason=end.finish_reason,
            )
        return Answer(text=text, end=end)

    async def _stream(self, request: ModelRequest, sink: ReplySink, started: float) -> tuple[str, StreamEnd]:
        visible = AnswerFilter()
        text = ""
        end: StreamEnd | None = None
        async for event in self._model.stream(request):
            if isinstance(event, TextDelta):
                shown = visible.feed(event.text)
                if shown:
                    if not text:
                        self._metrics.first_token_seconds.observe(time.monotonic() - started)
                    text += shown
                    sink.show(text)
            elif isinstance(event, StreamEnd):
                end = event
        text += visible.finish()
        if end is None or not text.strip():
            raise ModelStreamFailed("the model returned no answer text")
        return text, end

    async def _remember(self, message: IncomingMessage, answer: str) -> None:
        try:
            await self._history.append(
                message.thread, [ChatMessage("user", message.text), ChatMessage("assistant", answer)]
            )
        except StoreUnavailable:
            # The user already has the answer; losing this turn's memory is the lesser harm.
            log.error("history_append_failed")

    @staticmethod
    async def _show_failure(sink: ReplySink, error: GlmbotError) -> None:
        try:
            await sink.start()
            await sink.fail(user_message(error))
        except SlackUnavailable:
            log.error("failure_message_not_shown")


def _ending_notice(end: StreamEnd, max_tokens: int) -> str:
    if end.finish_reason == "length":
        return f"\n\n_(Answer cut off: it reached the {max_tokens:,}-token output limit.)_"
    return ""
