"""A shutdown that outlasts the drain still ends replies visibly and gives reserved money back."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import pytest

from bot.app import open_core, quota_ledger
from bot.console.app import ConsoleSink
from bot.core.domain import IncomingMessage, Notice, ThreadKey
from bot.core.errors import Interrupted
from bot.core.messages import user_message
from bot.images.local import LocalFileFetcher
from bot.settings import load_settings
from bot.store.connection import open_store
from tests.fakes.constants import MODEL_API_KEY
from tests.fakes.model_api import FakeModel, Reply


async def test_drain_interrupts_late_replies(
    monkeypatch: pytest.MonkeyPatch, fake_model: FakeModel, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reply still waiting for the model when the drain ends is told so, and its reservation is released."""
    monkeypatch.setenv("GLM_API_KEY", MODEL_API_KEY)
    monkeypatch.setenv("GLM_BASE_URL", fake_model.base_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    fake_model.script(Reply(text="never sent", hold=asyncio.Event()))
    settings = load_settings()
    message = IncomingMessage(ThreadKey("T1", "D1", "1.0"), "1.0", "U1", "slow question")
    async with open_core(settings) as core:
        sink = ConsoleSink(sys.stdout)
        reply = asyncio.create_task(core.conversation.answer(message, sink, LocalFileFetcher(1000)))
        await fake_model.wait_for(lambda: len(fake_model.requests) == 1)
        await core.conversation.drain(within_seconds=0.1)
        assert reply.cancelled()
    assert user_message(Interrupted()) in capsys.readouterr().out
    store = open_store(redis_url)
    status = await quota_ledger(settings, store).status("U1")
    await store.aclose()
    assert (status.reserved_pico, status.spent_pico) == (0, 0)


class SlowFinishSink:
    """A reply sink whose final display takes a while (a slow Slack), recording what it showed."""

    def __init__(self) -> None:
        self.finishing = asyncio.Event()
        self.shown: list[str] = []

    async def start(self) -> None:
        return None

    def show(self, text: str) -> None:
        return None

    async def finish(self, text: str, notices: Sequence[Notice] = ()) -> bool:
        self.finishing.set()
        await asyncio.sleep(0.3)
        self.shown.append(text)
        return True

    async def fail(self, message: str) -> None:
        self.shown.append(f"FAILED: {message}")


async def test_shutdown_during_the_final_edit_lets_it_land(
    monkeypatch: pytest.MonkeyPatch, fake_model: FakeModel, redis_url: str
) -> None:
    """A cancellation that arrives while the final answer is being shown does not cut it off."""
    monkeypatch.setenv("GLM_API_KEY", MODEL_API_KEY)
    monkeypatch.setenv("GLM_BASE_URL", fake_model.base_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    fake_model.script(Reply(text="The whole answer."))
    message = IncomingMessage(ThreadKey("T1", "D1", "2.0"), "2.0", "U1", "question")
    sink = SlowFinishSink()
    async with open_core(load_settings()) as core:
        reply = asyncio.create_task(core.conversation.answer(message, sink, LocalFileFetcher(1000)))
        await asyncio.wait_for(sink.finishing.wait(), 10)
        reply.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reply
    assert sink.shown == ["The whole answer."]
