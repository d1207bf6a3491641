"""A model endpoint that echoes the key in its error bodies: no piece of the key reaches an error or a log.

The real ``ModelClient`` talks over loopback to a small server that answers with the caller's own key
placed across the 200-character cut of error details, in the three places error text is kept: an HTTP
error's body, a 200 carrying a JSON error instead of a stream, and an ``error`` event mid-stream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from bot.core.domain import ChatMessage, ModelRequest, TextDelta
from bot.core.errors import ModelError, ModelRejected
from bot.model.client import ModelClient, ModelConfig
from bot.model.sse import StreamErrorEvent
from bot.redaction import MIN_SECRET_PREFIX, REDACTED
from tests.fakes.loopback import LoopbackServer

KEY = "glm-3f9c2e7b51d4a0c8e6"  # no known shape: only the known-secret rule can catch it
LEAD = "E" * 190  # the key starts 10 characters before the 200-character cut
REQUEST = ModelRequest(messages=(ChatMessage("user", "hi"),), max_tokens=64)


class EchoingModel(LoopbackServer):
    """Answers every chat completion with an error whose message repeats the caller's bearer key."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = "http_401"

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        error = {"error": {"message": f"{LEAD}{key} is not a valid key", "code": 401}}
        if self.mode == "http_401":
            return web.json_response(error, status=401)
        if self.mode == "json_200":
            return web.json_response(error, status=200)
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await stream.prepare(request)
        first = {"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}
        await stream.write(f"data: {json.dumps(first)}\n\ndata: {json.dumps(error)}\n\n".encode())
        await stream.write_eof()
        return stream


@pytest.fixture
async def model() -> AsyncIterator[EchoingModel]:
    async with EchoingModel() as server:
        yield server


async def failure(model: EchoingModel, mode: str) -> ModelError:
    """Stream one request in ``mode``; the ModelError it ends with."""
    model.mode = mode
    config = ModelConfig(
        base_url=f"{model.origin}/v1", api_key=KEY, model="glm-4.5v", thinking=False, thinking_style="vllm"
    )
    async with httpx.AsyncClient() as http:
        client = ModelClient(http, config)
        try:
            async for event in client.stream(REQUEST):
                assert isinstance(event, TextDelta)
        except ModelError as error:
            return error
    raise AssertionError(f"the stream in mode {mode} ended without a ModelError")


def pieces_of_key(text: str) -> list[str]:
    """Every piece of KEY (its first 6 characters or more) found in ``text``."""
    return [KEY[:n] for n in range(MIN_SECRET_PREFIX, len(KEY) + 1) if KEY[:n] in text]


async def test_http_error_body_echoing_the_key(model: EchoingModel) -> None:
    with capture_logs() as logs:
        error = await failure(model, "http_401")
    assert isinstance(error, ModelRejected)
    assert str(error) == f"model endpoint answered 401: {LEAD}{REDACTED}"
    assert pieces_of_key(repr(logs)) == []


async def test_json_error_instead_of_a_stream_echoing_the_key(model: EchoingModel) -> None:
    error = await failure(model, "json_200")
    assert isinstance(error, ModelRejected)
    assert str(error) == f"model endpoint answered 200: {LEAD}{REDACTED}"


async def test_error_event_mid_stream_echoing_the_key(model: EchoingModel) -> None:
    with capture_logs() as logs:
        error = await failure(model, "stream_error")
    assert isinstance(error, StreamErrorEvent)
    assert str(error) == f"model stream reported an error: {LEAD}{REDACTED}"
    assert pieces_of_key(repr(logs)) == []
