"""Every reply ends with one ``reply_finished`` log line and one ``glmbot_replies_total`` count, whatever
its outcome: the real conversation service (open_core) against the fake model and a real Redis."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, MutableMapping, Sequence
from decimal import Decimal
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from bot.app import Core, open_core
from bot.billing.money import usd_text
from bot.console.app import ConsoleSink
from bot.core.conversation import StopSignal
from bot.core.domain import IncomingMessage, ThreadKey
from bot.images.local import LocalFileFetcher
from bot.settings import load_settings
from tests.fakes.constants import MODEL_API_KEY
from tests.fakes.loopback import poll_until
from tests.fakes.model_api import FakeModel, Reply

# The contract's price of glm-4.5v, in picodollars per token.
INPUT_PICO, OUTPUT_PICO = 780_000, 2_340_000
ANSWER = "The secret answer is forty-two."
QUESTION = "what is the private question"


@pytest.fixture
async def core(monkeypatch: pytest.MonkeyPatch, fake_model: FakeModel, redis_url: str) -> AsyncIterator[Core]:
    monkeypatch.setenv("GLM_API_KEY", MODEL_API_KEY)
    monkeypatch.setenv("GLM_BASE_URL", fake_model.base_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    async with open_core(load_settings()) as opened:
        yield opened


def incoming(ts: str, text: str = QUESTION, user: str = "U1") -> IncomingMessage:
    return IncomingMessage(ThreadKey("T1", "D1", ts), ts, user, text)


async def answer(core: Core, message: IncomingMessage, stop: StopSignal | None = None) -> io.StringIO:
    """Run one reply to its end through a console sink, in a task of its own as the front ends do (the
    service tracks its replies by task); returns what the sink printed."""
    out = io.StringIO()
    sink = ConsoleSink(out)
    await asyncio.create_task(core.conversation.answer(message, sink, LocalFileFetcher(1000), stop=stop))
    return out


def finished(logs: Sequence[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [line for line in logs if line["event"] == "reply_finished"]


def replies(core: Core) -> dict[str, float]:
    """glmbot_replies_total by outcome."""
    found: dict[str, float] = {}
    for family in core.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "glmbot_replies_total":
                found[sample.labels["outcome"]] = sample.value
    return found


async def test_an_answered_reply_logs_its_charge_once_and_never_its_text(
    core: Core, fake_model: FakeModel
) -> None:
    """Outcome ok, the reported tokens, their exact cost in dollars, the time; no question, no answer."""
    fake_model.script(Reply(text=ANSWER, prompt_tokens=1000, completion_tokens=200))
    structlog.contextvars.bind_contextvars(team="T1", channel="D1", thread_ts="1.0", user="U1")
    try:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            out = await answer(core, incoming("1.0"))
    finally:
        structlog.contextvars.clear_contextvars()
    assert ANSWER in out.getvalue()
    [line] = finished(logs)
    cost = usd_text(1000 * INPUT_PICO + 200 * OUTPUT_PICO)
    assert cost == "0.001248"
    assert {
        k: line[k] for k in ("outcome", "input_tokens", "output_tokens", "cost_usd", "cost_estimated")
    } == {
        "outcome": "ok",
        "input_tokens": 1000,
        "output_tokens": 200,
        "cost_usd": cost,
        "cost_estimated": False,
    }
    assert (line["team"], line["channel"], line["thread_ts"], line["user"]) == ("T1", "D1", "1.0", "U1")
    assert 0 <= line["seconds"] < 30
    assert line["attempt"] == 1
    everything = repr(logs)
    assert "forty-two" not in everything
    assert "private question" not in everything
    assert replies(core) == {"ok": 1.0}


async def test_every_outcome_ends_with_exactly_one_line_and_one_count(
    core: Core, fake_model: FakeModel
) -> None:
    """Answered, refused by the model, over quota, an empty message, stopped by a person and interrupted
    by a shutdown: six replies, six lines, six counts, each with its outcome and its charge."""
    await core.ledger.set_user_limit("U0POOR", 0)
    fake_model.script(
        Reply(text=ANSWER, prompt_tokens=50, completion_tokens=10),
        Reply(status=400),
        Reply(text="stream " * 20, chunk_chars=7, delay=30.0),
        Reply(text="never", hold=asyncio.Event()),
    )
    with capture_logs() as logs:
        await answer(core, incoming("1.0"))
        await answer(core, incoming("2.0"))
        await answer(core, incoming("3.0", user="U0POOR"))
        await answer(core, incoming("4.0", text="   "))
        await _stopped_reply(core)
        await _interrupted_reply(core, fake_model)
    lines = finished(logs)
    assert [line["outcome"] for line in lines] == [
        "ok",
        "ModelRejected",
        "QuotaExceeded",
        "empty_message",
        "stopped",
        "interrupted",
    ]
    assert replies(core) == {
        "ok": 1.0,
        "ModelRejected": 1.0,
        "QuotaExceeded": 1.0,
        "empty_message": 1.0,
        "stopped": 1.0,
        "interrupted": 1.0,
    }
    ok, rejected, refused, empty, stopped, interrupted = lines
    assert (ok["input_tokens"], ok["output_tokens"], ok["cost_usd"]) == (
        50,
        10,
        usd_text(50 * INPUT_PICO + 10 * OUTPUT_PICO),
    )
    for nothing_charged in (rejected, refused, empty, interrupted):
        assert (nothing_charged["input_tokens"], nothing_charged["output_tokens"]) == (0, 0)
        assert nothing_charged["cost_usd"] == "0"
    # A stopped stream reports no usage: it is charged estimates of what was sent and what streamed.
    assert stopped["cost_estimated"] is True
    assert stopped["input_tokens"] > 0
    assert stopped["output_tokens"] > 0
    expected = stopped["input_tokens"] * INPUT_PICO + stopped["output_tokens"] * OUTPUT_PICO
    assert Decimal(stopped["cost_usd"]) == Decimal(usd_text(expected))
    assert "forty-two" not in repr(logs)


async def _stopped_reply(core: Core) -> None:
    """A reply stopped by a person once its first words showed."""
    stop = StopSignal()
    out = io.StringIO()
    reply = asyncio.create_task(
        core.conversation.answer(incoming("5.0"), ConsoleSink(out), LocalFileFetcher(1000), stop=stop)
    )
    await poll_until(lambda: "stream" in out.getvalue(), 10, what="first words shown")
    stop.stop("Alice")
    await asyncio.wait_for(reply, 10)


async def _interrupted_reply(core: Core, fake_model: FakeModel) -> None:
    """A reply still waiting for the model when the shutdown's drain ends."""
    out = io.StringIO()
    reply = asyncio.create_task(
        core.conversation.answer(incoming("6.0"), ConsoleSink(out), LocalFileFetcher(1000))
    )
    await fake_model.wait_for(lambda: len(fake_model.requests) == 4)
    await core.conversation.drain(within_seconds=0)
    assert reply.cancelled()
