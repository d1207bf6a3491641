"""ModelClient counts its retries by reason and its failures by kind (glmbot_model_retries_total,
glmbot_model_errors_total), over scripted HTTP/SSE answers and, for the deadlines, a real loopback model."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest

from bot.core.errors import ModelError, ModelRejected, ModelStreamFailed, ModelUnavailable
from bot.metrics import Metrics
from bot.model.client import ModelClient
from bot.model.failures import error_kind
from tests.component.test_model_client import (
    DONE,
    REQUEST,
    SSE_HEADERS,
    USAGE,
    BrokenStream,
    FakeSleep,
    Script,
    Server,
    config,
    content,
    finish,
    ok,
    sse,
)
from tests.fakes.model_api import FakeModel, Reply


def counts(metrics: Metrics, name: str, label: str) -> dict[str, float]:
    """Every sample of counter ``name`` (``glmbot_model_errors`` ...) by its one label's value."""
    found: dict[str, float] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == f"{name}_total":
                found[sample.labels[label]] = sample.value
    return found


async def stream_all(metrics: Metrics, *script: Script) -> None:
    """Run one stream over ``script`` to its end (or its error), with ``metrics``."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(Server(*script))) as http:
        client = ModelClient(http, config(), FakeSleep(), metrics=metrics)
        async for _event in client.stream(REQUEST):
            pass


def broken_after(first: bytes) -> httpx.Response:
    """A 200 event stream that sends ``first`` and then loses the connection."""
    return httpx.Response(200, headers=SSE_HEADERS, stream=BrokenStream(first))


def answer() -> httpx.Response:
    return ok(content("Hi"), finish("stop", USAGE), DONE)


def status(code: int) -> httpx.Response:
    return httpx.Response(code, json={"error": {"message": "scripted", "code": code}})


@pytest.mark.parametrize(
    ("failure", "label"),
    [
        (status(429), "status_429"),
        (status(503), "status_503"),
        (status(500), "status_500"),
        (httpx.ConnectError("refused"), "connect"),
        (httpx.ConnectTimeout("slow"), "connect_timeout"),
        (httpx.ReadTimeout("slow"), "read_timeout"),
        (httpx.RemoteProtocolError("bad"), "protocol_error"),
        (broken_after(b": keep-alive\n\n"), "read_error"),
        (ok({"error": {"message": "overloaded"}}), "error_event"),
        (httpx.Response(200, headers={"content-type": "text/html"}, text="<html>down</html>"), "outage_page"),
    ],
)
async def test_a_retry_is_counted_by_its_reason(failure: Script, label: str) -> None:
    """One failed attempt then an answer: one retry with the failure's reason, no error."""
    metrics = Metrics()
    await stream_all(metrics, failure, answer())
    assert counts(metrics, "glmbot_model_retries", "reason") == {label: 1.0}
    assert counts(metrics, "glmbot_model_errors", "kind") == {}


async def test_retries_exhausted_count_each_retry_and_one_unavailable() -> None:
    """Four refused connections: three retries (the fourth attempt is the last), then one error."""
    metrics = Metrics()
    with pytest.raises(ModelUnavailable):
        await stream_all(metrics, *[httpx.ConnectError("refused")] * 4)
    assert counts(metrics, "glmbot_model_retries", "reason") == {"connect": 3.0}
    assert counts(metrics, "glmbot_model_errors", "kind") == {"unavailable": 1.0}


@pytest.mark.parametrize(
    ("script", "error", "kind"),
    [
        ((status(401),), ModelRejected, "rejected"),
        ((status(400),), ModelRejected, "rejected"),
        ((status(501),), ModelUnavailable, "unavailable"),
        ((ok(content("Hi")),), ModelStreamFailed, "stream_failed"),  # no finish reason
        ((broken_after(sse(content("Hi"))),), ModelStreamFailed, "stream_failed"),  # broke off mid-answer
    ],
)
async def test_a_final_error_is_counted_once_by_kind(
    script: tuple[Script, ...], error: type[ModelError], kind: str
) -> None:
    """A call that ends in a ModelError counts one error of its kind, and no retry."""
    metrics = Metrics()
    with pytest.raises(error):
        await stream_all(metrics, *script)
    assert counts(metrics, "glmbot_model_errors", "kind") == {kind: 1.0}
    assert counts(metrics, "glmbot_model_retries", "reason") == {}


async def test_without_metrics_nothing_is_counted_and_nothing_breaks() -> None:
    """The metrics are optional (the client works the same without them)."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(Server(status(503), answer()))) as http:
        events = [event async for event in ModelClient(http, config(), FakeSleep()).stream(REQUEST)]
    assert events


async def test_missed_deadlines_are_counted_as_timeouts(fake_model: FakeModel) -> None:
    """Over a real loopback model: no first token in time is ``timeout_first_token``; a reply that
    trickles past its whole deadline is ``timeout_reply``."""
    metrics = Metrics()
    held = asyncio.Event()
    fake_model.script(Reply(hold=held), Reply(text="slow words here", chunk_chars=1, delay=30.0))
    base = replace(config(), base_url=fake_model.base_url, api_key=fake_model.api_key)
    async with httpx.AsyncClient() as http:
        first = ModelClient(http, replace(base, first_token_seconds=0.2), FakeSleep(), metrics=metrics)
        with pytest.raises(ModelUnavailable):
            async for _event in first.stream(REQUEST):
                pass
        whole = ModelClient(http, replace(base, reply_seconds=1.0), FakeSleep(), metrics=metrics)
        with pytest.raises(ModelStreamFailed):
            async for _event in whole.stream(REQUEST):
                pass
    held.set()
    assert counts(metrics, "glmbot_model_errors", "kind") == {
        "timeout_first_token": 1.0,
        "timeout_reply": 1.0,
    }
    assert counts(metrics, "glmbot_model_retries", "reason") == {}


def test_error_kind_of_errors_the_client_does_not_raise() -> None:
    """Errors raised past the client (the content filter) are named in snake case."""
    from bot.core.errors import ModelDeclined

    assert error_kind(ModelDeclined("filtered")) == "model_declined"
