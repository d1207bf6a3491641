"""Decode the server-sent events of a streamed chat completion, and the error bodies around them.

Functions without I/O: ``client`` reads the SSE stream and feeds each data event here. Malformed or
failed events raise ``ModelStreamFailed``; so does a finish reason not in ``NORMAL_FINISHES``. The only
outside input is the wall clock, which ``parse_retry_after`` reads to turn an HTTP-date into seconds.

Text from the server that ends up in an exception (and so in a log line) is redacted before it is cut
to ``DETAIL_LIMIT`` characters (``error_detail``): servers echo requests, the key included, and a key
cut in half is no longer recognised whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from bot.core.domain import ModelEvent, ReasoningDelta, TextDelta, Usage
from bot.core.errors import ModelStreamFailed
from bot.redaction import Redactor

__all__ = [
    "DETAIL_LIMIT",
    "NORMAL_FINISHES",
    "StreamErrorEvent",
    "StreamState",
    "chunk_deltas",
    "error_code_and_message",
    "error_detail",
    "parse_chunk",
    "parse_retry_after",
    "parse_usage",
]

# tool_calls cannot happen (we send no tools) but is a clean finish if a backend reports it. A content
# filter's stop (Zhipu says ``sensitive``, OpenAI-style routers ``content_filter``) is a finished,
# paid-for answer too: the model declined, and trying again would be charged again for the same refusal.
NORMAL_FINISHES = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "stop",
    "sensitive": "declined",
    "content_filter": "declined",
}
DETAIL_LIMIT = 200


class StreamErrorEvent(ModelStreamFailed):
    """The stream carried an ``error`` event: before any text, the client retries it like a 5xx."""


@dataclass(slots=True)
class StreamState:
    """What the data events said about how the stream ended."""

    finish_reason: str | None = None
    usage: Usage | None = None


def error_detail(text: str, redact: Redactor) -> str:
    """Server-sent ``text`` fit for an exception message: secrets redacted, then cut to ``DETAIL_LIMIT``."""
    return redact.cut(text, DETAIL_LIMIT)


def parse_chunk(data: str, redact: Redactor) -> dict[str, object]:
    """Decode one data event; error events and garbage end the stream as a failure.

    Raises ``StreamErrorEvent`` for an ``error`` event (its message passed through ``error_detail``
    with ``redact``), ``ModelStreamFailed`` for anything that is not a JSON object.
    """
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError:
        raise ModelStreamFailed("model stream sent malformed JSON") from None
    if not isinstance(chunk, dict):
        raise ModelStreamFailed("model stream sent a non-object data event")
    if chunk.get("error"):
        _code, message = error_code_and_message(data.encode())
        raise StreamErrorEvent(
            f"model stream reported an error: {error_detail(message or 'no detail', redact)}"
        )
    return chunk


def chunk_deltas(chunk: dict[str, object], state: StreamState, redact: Redactor) -> list[ModelEvent]:
    """Deltas of ``choices[0]`` (which may be absent); records a finish reason as a side effect.

    Raises ``ModelStreamFailed`` for a finish reason not in ``NORMAL_FINISHES`` (shown through
    ``error_detail`` with ``redact``).
    """
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return []
    choice = choices[0]
    events: list[ModelEvent] = []
    delta = choice.get("delta")
    if isinstance(delta, dict):
        # Z.ai and vLLM say reasoning_content, OpenRouter says reasoning; never take both twice.
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            events.append(ReasoningDelta(reasoning))
        content = delta.get("content")
        if isinstance(content, str) and content:
            events.append(TextDelta(content))
    reason = choice.get("finish_reason")
    if isinstance(reason, str) and reason:
        if reason not in NORMAL_FINISHES:
            raise ModelStreamFailed(f"model stream finished with {error_detail(reason, redact)!r}")
        state.finish_reason = NORMAL_FINISHES[reason]
    return events


def parse_usage(raw: object) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("prompt_tokens")
    completion = raw.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def error_code_and_message(body: bytes) -> tuple[str | None, str | None]:
    """Business code and message of an error body: ``{"error": {...}}`` or Z.ai's flat shape."""
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, None
    if not isinstance(parsed, dict):
        return None, None
    inner = parsed.get("error")
    source = inner if isinstance(inner, dict) else parsed
    code = source.get("code")
    message = source.get("message")
    if not isinstance(message, str) and isinstance(inner, str):
        message = inner
    return (
        str(code) if code is not None else None,
        message if isinstance(message, str) else None,
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: integer seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
