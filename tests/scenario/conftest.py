"""Fixtures for scenario tests: the real bot running against the fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.model_api import FakeModel
from tests.fakes.slack_api import FakeSlack
from tests.scenario.harness import BotUnderTest, bot_environment, running_bot


@pytest.fixture
async def bot(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> AsyncIterator[BotUnderTest]:
    """The bot in HTTP mode with default test settings."""
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url)
    async with running_bot() as running:
        yield running
