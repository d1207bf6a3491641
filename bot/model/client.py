"""Streamed chat completions from an OpenAI-compatible endpoint serving glm-4.5v.

This is the edge that meets httpx: every httpx / SSE failure is translated into the ``ModelError``
tree here, and nothing else in the bot sees a transport exception. The API key only ever goes into
the ``Authorization`` header; it is never logged and never part of an exception message.
Decoding each SSE data event (deltas, finish reason, usage, error bodies) is ``sse``'s job.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field

import httpx
import structlog
from httpx_sse import EventSource, SSEError, aconnect_sse

from bot.core.domain import ChatMessage, ModelEvent, ModelRequest, ReasoningDelta, StreamEnd, TextDelta
from bot.core.errors import ModelError, ModelRejected, ModelStreamFailed, ModelUnavailable
from bot.metrics import Metrics
from bot.model.failures import RetryableError, error_kind, status_label, transport_label
from bot.model.sse import (
    StreamErrorEvent,
    StreamState,
    chunk_deltas,
    error_code_and_message,
    error_detail,
    parse_chunk,
    parse_retry_after,
    parse_usage,
)
from bot.model.thinking import ThinkingStyle, thinking_fields, thinking_style_for
from bot.redaction import Redactor

__all__ = ["ModelClient", "ModelConfig", "ThinkingStyle", "thinking_fields", "thinking_style_for"]

log = structlog.get_logger(__name__)

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Z.ai overloads HTTP 429: these business codes mean "no credit" and "content refused", which
# waiting will not fix.
NON_RETRYABLE_ZAI_CODES = frozenset({"1113", "1301"})
MAX_WAIT_SECONDS = 30.0
MODEL_ATTEMPTS = 4
# A model that ignores max_tokens is stopped once its output is this many characters per token allowed
# (no tokenizer makes tokens longer than this; GLM's average is about 4).
MAX_CHARS_PER_TOKEN = 8


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Where and how to call the model."""

    base_url: str
    # repr=False: a logged or printed config must not leak the key.
    api_key: str = field(repr=False)
    model: str
    thinking: bool
    thinking_style: ThinkingStyle
    first_token_seconds: float = 60.0
    reply_seconds: float = 600.0
    max_attempts: int = MODEL_ATTEMPTS
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 8.0


@dataclass(slots=True)
class _Call:
    """One ``stream`` call's failure label, when it is more precise than the error's type (a deadline)."""

    failure: str | None = None


class ModelClient:
    """Streams one completion per call, retrying only before anything was yielded.

    With ``metrics``, each retry is counted in ``glmbot_model_retries_total{reason}`` and each call that
    ends in a ``ModelError`` in ``glmbot_model_errors_total{kind}`` (see ``bot.model.failures``).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        config: ModelConfig,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: Metrics | None = None,
    ) -> None:
        self._http = http
        self._config = config
        self._sleep = sleep
        self._metrics = metrics
        self._url = config.base_url.rstrip("/") + "/chat/completions"
        # Servers sometimes echo the request: the key is redacted from any text of theirs we keep.
        self._redact = Redactor((config.api_key,))

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Yield text and reasoning deltas, then exactly one ``StreamEnd``; raise a ``ModelError``.

        Deadlines, from when the request is first sent: the first content or reasoning token within
        ``first_token_seconds`` (retries included), the whole reply within ``reply_seconds``. SSE
        keep-alive comments and slow trickles do not extend them.
        """
        call = _Call()
        try:
            async with aclosing(self._events(request, call)) as events:
                async for event in events:
                    yield event
        except ModelError as error:
            if self._metrics is not None:
                self._metrics.model_errors.labels(call.failure or error_kind(error)).inc()
            raise

    async def _events(self, request: ModelRequest, call: _Call) -> AsyncGenerator[ModelEvent, None]:
        """``stream``'s events: the attempts, their retries and the deadlines."""
        body = self._request_body(request)
        clock = asyncio.get_running_loop().time
        first_deadline = clock() + self._config.first_token_seconds
        reply_deadline = clock() + self._config.reply_seconds
        attempts = max(1, self._config.max_attempts)
        yielded = False
        for attempt in range(1, attempts + 1):
            try:
                # aclosing: if our consumer stops early, the HTTP response is closed right away.
                async with aclosing(self._attempt(body, request.max_tokens * MAX_CHARS_PER_TOKEN)) as events:
                    while True:
                        deadline = reply_deadline if yielded else min(first_deadline, reply_deadline)
                        event = await self._next_before(events, deadline, yielded, call)
                        if event is None:
                            return
                        yielded = True
                        yield event
            except RetryableError as failure:
                if yielded:
                    # Part of the answer is already out: a retry would duplicate it.
                    raise ModelStreamFailed(f"model stream broke off: {failure.reason}") from failure
                delay = self._retry_delay(attempt, failure.retry_after)
                if attempt == attempts or clock() + delay >= first_deadline:
                    raise ModelUnavailable(
                        f"model endpoint unavailable after {attempt} attempts: {failure.reason}"
                    ) from failure
                log.warning(
                    "model_retry", status=failure.status, reason=failure.reason, attempt=attempt, delay=delay
                )
                if self._metrics is not None:
                    self._metrics.model_retries.labels(failure.label).inc()
                await self._sleep(delay)

    async def _next_before(
        self, events: AsyncGenerator[ModelEvent, None], deadline: float, started: bool, call: _Call
    ) -> ModelEvent | None:
        """The next event, or None at the end; a ``ModelError`` when ``deadline`` (loop time) passes
        (labelled in ``call`` as the deadline it missed)."""
        try:
            async with asyncio.timeout_at(deadline):
                return await anext(events)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            call.failure = "timeout_reply" if started else "timeout_first_token"
            if started:
                raise ModelStreamFailed(
                    f"the reply took longer than {self._config.reply_seconds:g} s"
                ) from None
            raise ModelUnavailable(
                f"no answer within {self._config.first_token_seconds:g} s of the request"
            ) from None

    def _request_body(self, request: ModelRequest) -> dict[str, object]:
        body: dict[str, object] = {
            "model": self._config.model,
            "messages": [_wire_message(message, request.images) for message in request.messages],
            "max_tokens": request.max_tokens,
            "stream": True,
            # Required for usage on vLLM, harmless (or ignored) elsewhere.
            "stream_options": {"include_usage": True},
        }
        body.update(thinking_fields(self._config.thinking_style, self._config.thinking))
        return body

    async def _attempt(self, body: dict[str, object], max_chars: int) -> AsyncGenerator[ModelEvent, None]:
        """One HTTP request: yield its events, or raise ``RetryableError`` / a final ``ModelError``.

        Reading stops, as if the model had hit its limit, once the output passes ``max_chars``.
        """
        headers = {"Authorization": f"Bearer {self._config.api_key}"}
        state = StreamState()
        produced = False
        try:
            async with aconnect_sse(self._http, "POST", self._url, json=body, headers=headers) as source:
                if not source.response.is_success:
                    await self._raise_for_status(source.response)
                await _check_event_stream(source.response, self._redact)
                async with aclosing(_read_events(source, state, max_chars, self._redact)) as events:
                    async for event in events:
                        produced = True
                        yield event
        except StreamErrorEvent as error_event:
            if produced:
                raise
            # An error event before any text is the server failing, like a 5xx: worth another attempt.
            raise RetryableError("error event before any text", "error_event") from error_event
        except SSEError as exc:
            # A 200 that is not an event stream: a misconfigured endpoint, not a passing glitch.
            # (SSEError subclasses httpx.TransportError, so it must be caught first.)
            raise ModelStreamFailed("model endpoint did not answer with an event stream") from exc
        except httpx.TransportError as exc:
            # Covers connect/read/pool timeouts and connections dropped mid-stream.
            raise RetryableError(type(exc).__name__, transport_label(exc)) from exc
        except httpx.HTTPError as exc:
            raise ModelStreamFailed(f"model stream unreadable: {type(exc).__name__}") from exc
        # Usage may come on a chunk after the finish chunk, so judge only once the stream closed.
        if state.finish_reason is None:
            raise ModelStreamFailed("model stream ended without a finish reason")
        yield StreamEnd(finish_reason=state.finish_reason, usage=state.usage)

    async def _raise_for_status(self, response: httpx.Response) -> None:
        """Turn an HTTP error status into ``RetryableError`` or a final ``ModelError``."""
        await response.aread()
        code, message = error_code_and_message(response.content)
        detail = error_detail(message or response.reason_phrase or "no detail", self._redact)
        status = response.status_code
        if status in RETRYABLE_STATUSES and code not in NON_RETRYABLE_ZAI_CODES:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise RetryableError(f"HTTP {status}", status_label(status), status, retry_after)
        if status >= 500:
            raise ModelUnavailable(f"model endpoint answered {status}: {detail}")
        raise ModelRejected(status, detail)

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        """Jittered exponential backoff, never shorter than the server's Retry-After, at most 30 s."""
        config = self._config
        backoff = min(config.backoff_max_seconds, config.backoff_base_seconds * 2.0 ** (attempt - 1))
        # Equal jitter: spreads retries of concurrent requests without ever waiting ~0 s.
        jittered = backoff * random.uniform(0.5, 1.0)
        return min(MAX_WAIT_SECONDS, max(retry_after or 0.0, jittered))


def _wire_message(message: ChatMessage, images: Mapping[str, str]) -> dict[str, object]:
    """One message in the OpenAI format: a plain string, or image parts followed by the text part."""
    if not message.images:
        return {"role": message.role, "content": message.text}
    parts: list[dict[str, object]] = [
        {"type": "image_url", "image_url": {"url": images[image.file_id]}} for image in message.images
    ]
    parts.append({"type": "text", "text": message.text})
    return {"role": message.role, "content": parts}


async def _check_event_stream(response: httpx.Response, redact: Redactor) -> None:
    """A 200 that is not an event stream: an outage page (retried) or an error in JSON (a refusal)."""
    content_type = response.headers.get("content-type", "").lower()
    if "text/event-stream" in content_type:
        return
    await response.aread()
    if "html" in content_type or response.content.lstrip()[:1] == b"<":
        raise RetryableError("the model endpoint answered with a web page (an outage)", "outage_page")
    code, message = error_code_and_message(response.content)
    if message or code:
        raise ModelRejected(response.status_code, error_detail(message or f"error {code}", redact))
    raise ModelStreamFailed("model endpoint did not answer with an event stream")


async def _read_events(
    source: EventSource, state: StreamState, max_chars: int, redact: Redactor
) -> AsyncGenerator[ModelEvent, None]:
    """Yield deltas from the SSE data events until ``[DONE]`` or EOF, recording finish and usage."""
    produced = 0
    async with aclosing(source.aiter_sse()) as messages:
        async for sse in messages:
            data = sse.data.strip()
            if not data:
                # Keep-alives and comment-only blocks (": OPENROUTER PROCESSING") carry no data.
                continue
            if data == "[DONE]":
                return
            chunk = parse_chunk(data, redact)
            usage = parse_usage(chunk.get("usage"))
            if usage is not None:
                state.usage = usage
            for event in chunk_deltas(chunk, state, redact):
                if isinstance(event, TextDelta | ReasoningDelta):
                    produced += len(event.text)
                yield event
            if produced > max_chars:
                # The model ignores the max_tokens we sent: stop it as if it had reached it.
                log.warning("model_ignored_max_tokens", output_chars=produced)
                state.finish_reason = "length"
                return
