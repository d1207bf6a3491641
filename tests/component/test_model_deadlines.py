"""ModelClient's deadlines and guards against misbehaving endpoints, over scripted HTTP/SSE answers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from bot.core.domain import ModelEvent, StreamEnd, TextDelta
from bot.core.errors import ModelRejected, ModelStreamFailed, ModelUnavailable
from bot.model.client import MAX_CHARS_PER_TOKEN, ModelClient
from tests.component.test_model_client import (
    DONE,
    REQUEST,
    SSE_HEADERS,
    FakeSleep,
    Server,
    config,
    content,
    finish,
    ok,
)


class Trickle(httpx.AsyncByteStream):
    """A body that sends ``pieces`` with ``gap`` seconds between them (keep-alives, slow text)."""

    def __init__(self, pieces: list[bytes], gap: float) -> None:
        self.pieces = pieces
        self.gap = gap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece
            await asyncio.sleep(self.gap)


def trickle(pieces: list[bytes], gap: float) -> httpx.Response:
    return httpx.Response(200, headers=SSE_HEADERS, stream=Trickle(pieces, gap))


def data(chunk: dict[str, object]) -> bytes:
    return f"data: {json.dumps(chunk)}\n\n".encode()


async def run(
    server: Server,
    seen: list[ModelEvent] | None = None,
    first_token_seconds: float = 60.0,
    reply_seconds: float = 600.0,
) -> list[ModelEvent]:
    events = seen if seen is not None else []
    async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
        timing = replace(config(), first_token_seconds=first_token_seconds, reply_seconds=reply_seconds)
        client = ModelClient(http, timing, FakeSleep())
        async for event in client.stream(REQUEST):
            events.append(event)
    return events


async def test_keep_alives_alone_end_at_the_first_token_deadline() -> None:
    """A model that only sends keep-alive comments is given up on after GLM_FIRST_TOKEN_SECONDS."""
    server = Server(trickle([b": keep-alive\n\n"] * 200, gap=0.01))
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match=r"no answer within 0\.3 s"):
        await run(server, first_token_seconds=0.3)
    assert time.monotonic() - started < 1.5


async def test_trickling_reply_ends_at_the_reply_deadline() -> None:
    """Text that keeps trickling in cannot outlast GLM_REPLY_SECONDS."""
    server = Server(trickle([data(content("a"))] * 500, gap=0.01))
    seen: list[ModelEvent] = []
    with pytest.raises(ModelStreamFailed, match=r"longer than 0\.4 s"):
        await run(server, seen, reply_seconds=0.4)
    assert seen
    assert all(isinstance(event, TextDelta) for event in seen)


async def test_model_ignoring_max_tokens_is_stopped() -> None:
    """Output far past the max_tokens sent is cut off as if the limit had been reached."""
    word = "word " * 100
    chunks = [content(word)] * (REQUEST.max_tokens * MAX_CHARS_PER_TOKEN // len(word) + 50)
    events = await run(Server(ok(*chunks, finish("stop"), DONE)))
    text = "".join(event.text for event in events if isinstance(event, TextDelta))
    assert len(text) <= REQUEST.max_tokens * MAX_CHARS_PER_TOKEN + len(word)
    assert events[-1] == StreamEnd(finish_reason="length", usage=None)


async def test_error_event_before_text_is_retried() -> None:
    """An `error` event before any text is retried like a 5xx."""
    error = {"error": {"message": "upstream overloaded", "code": 503}}
    server = Server(ok(error), ok(content("Hi"), finish("stop"), DONE))
    events = await run(server)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hi"]
    assert len(server.requests) == 2


async def test_error_event_after_text_is_not_retried() -> None:
    """After text was shown a retry would duplicate it: the stream fails instead."""
    server = Server(ok(content("Half"), {"error": {"message": "boom"}}))
    with pytest.raises(ModelStreamFailed, match="reported an error"):
        await run(server)
    assert len(server.requests) == 1


async def test_html_page_with_200_is_an_outage() -> None:
    """A 200 carrying an HTML page is an outage: retried, then reported as unavailable."""
    page = httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>Bad gateway</html>")
    server = Server(page, page, page, page)
    with pytest.raises(ModelUnavailable, match="web page"):
        await run(server)


async def test_json_error_with_200_is_a_refusal() -> None:
    """A 200 carrying a JSON error is the endpoint refusing, with its own message."""
    body = {"error": {"message": "model not found", "code": "model_not_found"}}
    server = Server(httpx.Response(200, json=body))
    with pytest.raises(ModelRejected, match="model not found"):
        await run(server)
    assert len(server.requests) == 1
