"""ModelClient against scripted HTTP/SSE answers (httpx.MockTransport), no network, no real sleeps."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from bot.core.domain import (
    ChatMessage,
    ModelEvent,
    ModelRequest,
    ReasoningDelta,
    StreamEnd,
    TextDelta,
    Usage,
)
from bot.core.errors import ModelRejected, ModelStreamFailed, ModelUnavailable
from bot.model.client import (
    ModelClient,
    ModelConfig,
    ThinkingStyle,
    thinking_fields,
    thinking_style_for,
)

API_KEY = "sk-test-SECRET-0123456789"
BASE_URL = "https://api.unorouter.com/v1/"
REQUEST = ModelRequest(
    messages=(ChatMessage("system", "Be brief."), ChatMessage("user", "Say hi")),
    max_tokens=256,
)
SSE_HEADERS = {"content-type": "text/event-stream;charset=UTF-8"}

Script = httpx.Response | Exception


def sse(*items: dict[str, Any] | str) -> bytes:
    """An SSE body: dicts become ``data:`` events, strings are written verbatim."""
    parts = [f"data: {json.dumps(item)}\n\n" if isinstance(item, dict) else item for item in items]
    return "".join(parts).encode()


def ok(*items: dict[str, Any] | str) -> httpx.Response:
    return httpx.Response(200, headers=SSE_HEADERS, content=sse(*items))


def content(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def finish(reason: str, usage: dict[str, int] | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {"choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": reason}]}
    if usage is not None:
        chunk["usage"] = usage
    return chunk


DONE = "data: [DONE]\n\n"
USAGE = {"prompt_tokens": 18, "completion_tokens": 202, "total_tokens": 220}


class Server:
    """Answers requests from a script, in order, and records them."""

    def __init__(self, *script: Script) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


class FakeSleep:
    """Records the delays it was asked to wait instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class BrokenStream(httpx.AsyncByteStream):
    """A response body that delivers some bytes and then loses the connection."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        raise httpx.ReadError("connection reset by peer")


def config(style: ThinkingStyle = "openrouter", thinking: bool = False, **extra: Any) -> ModelConfig:
    return ModelConfig(
        base_url=BASE_URL,
        api_key=API_KEY,
        model="z-ai/glm-4.5v",
        thinking=thinking,
        thinking_style=style,
        **extra,
    )


async def collect(
    server: Server, sleep: FakeSleep | None = None, seen: list[ModelEvent] | None = None, **cfg: Any
) -> list[ModelEvent]:
    """Run one stream to the end; events also go to ``seen`` so a test can inspect them after a raise."""
    events = seen if seen is not None else []
    async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
        client = ModelClient(http, config(**cfg), sleep or FakeSleep())
        async for event in client.stream(REQUEST):
            events.append(event)
    return events


async def test_zai_shape_usage_on_finish_chunk() -> None:
    """Z.ai: no `object` field, usage on the same chunk as finish_reason."""
    server = Server(
        ok(
            {"id": "1", "created": 1, "model": "glm-4.5v", **content("Hel")},
            content("lo"),
            finish("stop", USAGE),
            DONE,
        )
    )
    events = await collect(server)
    assert events == [TextDelta("Hel"), TextDelta("lo"), StreamEnd("stop", Usage(18, 202))]


async def test_openrouter_shape_usage_on_empty_choices_chunk_and_comments() -> None:
    """OpenRouter/vLLM: usage on a trailing `choices: []` chunk; comment lines are ignored."""
    chunk = {"object": "chat.completion.chunk", **content("Hi")}
    final = {"object": "chat.completion.chunk", "choices": [], "usage": {**USAGE, "cost": 0.0005}}
    stop = finish("stop")
    stop["choices"][0]["native_finish_reason"] = "stop"
    server = Server(
        ok(
            ": OPENROUTER PROCESSING\n\n",
            ": OPENROUTER PROCESSING\n\n",
            chunk,
            ": OPENROUTER PROCESSING\n",
            stop,
            final,
            DONE,
        )
    )
    events = await collect(server)
    assert events == [TextDelta("Hi"), StreamEnd("stop", Usage(18, 202))]


async def test_reasoning_fields_become_reasoning_deltas() -> None:
    """`reasoning_content` (Z.ai/vLLM) and `reasoning` (OpenRouter) both become ReasoningDelta."""
    server = Server(
        ok(
            {"choices": [{"index": 0, "delta": {"reasoning_content": "think A"}}]},
            {"choices": [{"index": 0, "delta": {"reasoning": "think B", "content": None}}]},
            {"choices": [{"index": 0, "delta": {"reasoning_content": "dup", "reasoning": "dup"}}]},
            content("Answer"),
            finish("stop"),
            DONE,
        )
    )
    events = await collect(server)
    assert events == [
        ReasoningDelta("think A"),
        ReasoningDelta("think B"),
        ReasoningDelta("dup"),
        TextDelta("Answer"),
        StreamEnd("stop", None),
    ]


async def test_finish_reason_length_is_normal() -> None:
    """`length` ends the stream normally so the caller can say the answer was cut."""
    events = await collect(Server(ok(content("Long"), finish("length", USAGE), DONE)))
    assert events[-1] == StreamEnd("length", Usage(18, 202))


async def test_tool_calls_finish_treated_as_stop() -> None:
    """`tool_calls` is a clean finish, reported as `stop`."""
    events = await collect(Server(ok(content("x"), finish("tool_calls"), DONE)))
    assert events[-1] == StreamEnd("stop", None)


async def test_stream_without_done_but_with_finish_is_fine() -> None:
    """EOF after a finish_reason (no `[DONE]`) still ends normally."""
    events = await collect(Server(ok(content("x"), finish("stop", USAGE))))
    assert events == [TextDelta("x"), StreamEnd("stop", Usage(18, 202))]


@pytest.mark.parametrize("reason", ["error", "abort", "network_error", "model_context_window_exceeded"])
async def test_failure_finish_reasons_raise(reason: str) -> None:
    """Failure finish reasons raise ModelStreamFailed after the text already yielded."""
    seen: list[ModelEvent] = []
    with pytest.raises(ModelStreamFailed, match=reason) as caught:
        await collect(Server(ok(content("part"), finish(reason), DONE)), seen=seen)
    assert seen == [TextDelta("part")]
    assert API_KEY not in str(caught.value)


@pytest.mark.parametrize("reason", ["sensitive", "content_filter"])
async def test_content_filter_is_a_declined_finish_with_its_usage(reason: str) -> None:
    """A content filter's stop ends the stream normally as `declined`, with the usage that follows it."""
    events = await collect(Server(ok(content("part"), finish(reason), {"choices": [], "usage": USAGE}, DONE)))
    assert events == [TextDelta("part"), StreamEnd("declined", Usage(18, 202))]


async def test_error_object_mid_stream_raises() -> None:
    """An `{"error": {...}}` data event (OpenRouter/vLLM) fails the stream with its message."""
    error = {"error": {"message": "Provider disconnected", "code": 502}}
    seen: list[ModelEvent] = []
    with pytest.raises(ModelStreamFailed, match="Provider disconnected"):
        await collect(Server(ok(content("part"), error, DONE)), seen=seen)
    assert seen == [TextDelta("part")]


async def test_eof_without_finish_reason_raises() -> None:
    """A stream that just stops, without finish_reason, is a failure, not a short answer."""
    with pytest.raises(ModelStreamFailed, match="without a finish"):
        await collect(Server(ok(content("part"))))


async def test_done_without_finish_reason_raises() -> None:
    """`[DONE]` without any finish_reason is a failure too."""
    with pytest.raises(ModelStreamFailed, match="without a finish"):
        await collect(Server(ok(content("part"), {"choices": [], "usage": USAGE}, DONE)))


async def test_malformed_json_raises() -> None:
    """A data event that is not JSON fails the stream."""
    with pytest.raises(ModelStreamFailed, match="malformed"):
        await collect(Server(ok(content("a"), "data: {not json\n\n", DONE)))


async def test_non_sse_success_response_raises() -> None:
    """A 200 that is not an event stream fails instead of being parsed as one."""
    response = httpx.Response(200, json={"choices": []})
    with pytest.raises(ModelStreamFailed):
        await collect(Server(response))


async def test_429_with_retry_after_then_success() -> None:
    """A 429 is retried after at least the Retry-After delay."""
    sleep = FakeSleep()
    server = Server(
        httpx.Response(429, headers={"Retry-After": "2"}, json={"error": {"message": "slow down"}}),
        ok(content("Hi"), finish("stop"), DONE),
    )
    events = await collect(server, sleep)
    assert events == [TextDelta("Hi"), StreamEnd("stop", None)]
    assert len(server.requests) == 2
    assert len(sleep.delays) == 1
    assert sleep.delays[0] >= 2


async def test_retry_after_http_date_honoured() -> None:
    """Retry-After given as an HTTP-date is turned into seconds from now."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    sleep = FakeSleep()
    server = Server(httpx.Response(503, headers={"Retry-After": when}), ok(finish("stop"), DONE))
    await collect(server, sleep)
    assert 8 <= sleep.delays[0] <= 10


async def test_retry_after_capped_at_30_seconds() -> None:
    """A huge Retry-After does not stall the bot for more than 30 s."""
    sleep = FakeSleep()
    server = Server(httpx.Response(429, headers={"Retry-After": "600"}), ok(finish("stop"), DONE))
    await collect(server, sleep)
    assert sleep.delays == [30.0]


async def test_503_until_max_attempts_raises_unavailable() -> None:
    """Persistent 503s are retried with growing backoff, then give ModelUnavailable."""
    sleep = FakeSleep()
    server = Server(*[httpx.Response(503, text="overloaded") for _ in range(4)])
    with pytest.raises(ModelUnavailable) as caught:
        await collect(server, sleep, max_attempts=4)
    assert len(server.requests) == 4
    assert len(sleep.delays) == 3
    # Base 0.5 s doubling, with jitter between half and all of each step.
    for attempt, delay in enumerate(sleep.delays):
        step = 0.5 * 2**attempt
        assert step / 2 <= delay <= step
    assert API_KEY not in str(caught.value)


async def test_backoff_capped_at_backoff_max() -> None:
    """Exponential backoff never exceeds backoff_max_seconds."""
    sleep = FakeSleep()
    server = Server(*[httpx.Response(502) for _ in range(6)])
    with pytest.raises(ModelUnavailable):
        await collect(server, sleep, max_attempts=6, backoff_base_seconds=1.0, backoff_max_seconds=3.0)
    assert max(sleep.delays) <= 3.0


async def test_401_rejected_without_retry() -> None:
    """A 401 is not retried and becomes ModelRejected with the body's message."""
    body = {"error": {"code": 401, "message": f"Invalid key {API_KEY}"}}
    server = Server(httpx.Response(401, json=body))
    with pytest.raises(ModelRejected) as caught:
        await collect(server)
    assert caught.value.status == 401
    assert "Invalid key" in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert len(server.requests) == 1


async def test_rejected_detail_truncated() -> None:
    """A long error message is cut to 200 characters."""
    server = Server(httpx.Response(400, json={"error": {"message": "x" * 5000}}))
    with pytest.raises(ModelRejected) as caught:
        await collect(server)
    assert str(caught.value).count("x") == 200


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": "1113", "message": "Insufficient balance"}},
        {"code": 1113, "message": "Insufficient balance"},
        {"error": {"code": 1301, "message": "Unsafe content"}},
    ],
)
async def test_zai_429_business_codes_not_retried(body: dict[str, Any]) -> None:
    """Z.ai 429 with code 1113 (balance) or 1301 (content) is a rejection, not a retry."""
    sleep = FakeSleep()
    server = Server(httpx.Response(429, json=body))
    with pytest.raises(ModelRejected) as caught:
        await collect(server, sleep)
    assert caught.value.status == 429
    assert len(server.requests) == 1
    assert sleep.delays == []


async def test_connect_timeout_then_success() -> None:
    """A connect timeout before anything was yielded is retried."""
    sleep = FakeSleep()
    server = Server(httpx.ConnectTimeout("timed out"), ok(content("Hi"), finish("stop"), DONE))
    events = await collect(server, sleep)
    assert events == [TextDelta("Hi"), StreamEnd("stop", None)]
    assert len(server.requests) == 2
    assert len(sleep.delays) == 1


async def test_transport_errors_exhaust_to_unavailable() -> None:
    """Only transport errors, max_attempts times, give ModelUnavailable."""
    server = Server(*[httpx.ConnectError("refused") for _ in range(3)])
    with pytest.raises(ModelUnavailable):
        await collect(server, max_attempts=3)
    assert len(server.requests) == 3


async def test_stream_broken_before_any_event_is_retried() -> None:
    """A connection lost before anything was yielded is retried like any transport error."""
    broken = httpx.Response(200, headers=SSE_HEADERS, stream=BrokenStream(b": OPENROUTER PROCESSING\n\n"))
    server = Server(broken, ok(content("Hi"), finish("stop"), DONE))
    events = await collect(server)
    assert events == [TextDelta("Hi"), StreamEnd("stop", None)]
    assert len(server.requests) == 2


async def test_transport_error_after_content_fails_without_retry() -> None:
    """Once text was yielded, a lost connection is ModelStreamFailed and no second request."""
    broken = httpx.Response(200, headers=SSE_HEADERS, stream=BrokenStream(sse(content("Hel"))))
    server = Server(broken, ok(content("Hello"), finish("stop"), DONE))
    sleep = FakeSleep()
    seen: list[ModelEvent] = []
    with pytest.raises(ModelStreamFailed) as caught:
        await collect(server, sleep, seen=seen)
    assert seen == [TextDelta("Hel")]
    assert len(server.requests) == 1
    assert sleep.delays == []
    assert API_KEY not in str(caught.value)


async def test_request_url_headers_and_body() -> None:
    """POST to {base_url}/chat/completions with the bearer key and the streaming body."""
    server = Server(ok(finish("stop"), DONE))
    await collect(server)
    request = server.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://api.unorouter.com/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    body = json.loads(request.content)
    assert body["model"] == "z-ai/glm-4.5v"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hi"},
    ]
    assert body["max_tokens"] == 256
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("style", "thinking", "expected"),
    [
        ("openrouter", False, {"reasoning": {"enabled": False}}),
        ("openrouter", True, {"reasoning": {"enabled": True}}),
        ("zai", False, {"thinking": {"type": "disabled"}}),
        ("zai", True, {"thinking": {"type": "enabled"}}),
        ("vllm", False, {"chat_template_kwargs": {"enable_thinking": False}}),
        ("vllm", True, {"chat_template_kwargs": {"enable_thinking": True}}),
    ],
)
async def test_thinking_fields_in_body(
    style: ThinkingStyle, thinking: bool, expected: dict[str, Any]
) -> None:
    """Each backend style gets its own thinking switch in the request body, and only that one."""
    assert thinking_fields(style, thinking) == expected
    server = Server(ok(finish("stop"), DONE))
    await collect(server, style=style, thinking=thinking)
    body = json.loads(server.requests[0].content)
    for key, value in expected.items():
        assert body[key] == value
    others = {"reasoning", "thinking", "chat_template_kwargs"} - set(expected)
    assert others.isdisjoint(body)


@pytest.mark.parametrize(
    ("url", "style"),
    [
        ("https://api.unorouter.com/v1", "openrouter"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://api.z.ai/api/paas/v4", "zai"),
        ("https://api.z.ai/api/coding/paas/v4/", "zai"),
        ("https://open.bigmodel.cn/api/paas/v4", "zai"),
        ("http://localhost:8000/v1", "vllm"),
        ("http://127.0.0.1:30000/v1", "vllm"),
        ("http://vllm.internal:8000/v1", "vllm"),
        ("http://gpu-box:30000/sglang/v1", "vllm"),
        ("https://biz.ai/v1", "openrouter"),
        ("https://example.com/v1", "openrouter"),
    ],
)
def test_thinking_style_for(url: str, style: ThinkingStyle) -> None:
    """The backend's thinking dialect is guessed from the base URL."""
    assert thinking_style_for(url) == style


def test_config_repr_hides_api_key() -> None:
    """Printing or logging the config never shows the key."""
    assert API_KEY not in repr(config())
