"""Failures of the model, Slack or the store end in a clear message, and the bot keeps serving."""

from __future__ import annotations

import pytest

from bot.core.errors import ModelDeclined, ModelStreamFailed, ModelUnavailable, StoreUnavailable
from bot.core.messages import user_message
from bot.store.connection import open_store
from handlers.reply.streamer import PLACEHOLDER, TYPING_CURSOR
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.slack_api import FakeSlack
from tests.rendered import slack_text
from tests.scenario.harness import BotUnderTest, bot_environment, mention, message, running_bot


def _final_texts(slack: FakeSlack) -> list[str]:
    return [m.text for m in slack.messages.values()]


async def test_model_down_gives_clear_message(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A model that keeps answering 503 ends in a short message in place of the placeholder."""
    fake_model.script(*[Reply(status=503)] * 4)
    await bot.send_event(mention("anyone there?"))
    expected = slack_text(f":warning: {user_message(ModelUnavailable())}")
    await fake_slack.wait_for(lambda: _final_texts(fake_slack) == [expected])
    assert len(fake_model.requests) == 4


async def test_model_breaks_mid_stream_keeps_partial_and_warns(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A stream that breaks after some text keeps that text and adds a warning; no spinner is left."""
    fake_model.script(Reply(text="Partial answer that goes on and on", chunk_chars=5, fail_after_chunks=3))
    await bot.send_event(mention("tell me"))
    await fake_slack.wait_for(lambda: any(":warning:" in t for t in _final_texts(fake_slack)))
    [text] = _final_texts(fake_slack)
    assert text.startswith("Partial answer")
    assert text.endswith(user_message(ModelStreamFailed()))
    assert TYPING_CURSOR not in text
    assert PLACEHOLDER not in text


async def test_bot_keeps_serving_after_failure(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """After a failed reply, the next message is answered normally."""
    fake_model.script(Reply(status=400), Reply(text="Back to normal."))
    await bot.send_event(message("first", channel="D0DM", channel_type="im"))
    await fake_slack.wait_for(lambda: any(":warning:" in t for t in _final_texts(fake_slack)))
    await bot.send_event(message("second", channel="D0DM", channel_type="im"))
    await fake_slack.wait_for(lambda: "Back to normal." in _final_texts(fake_slack))


async def test_rate_limited_edit_waits_and_carries_on(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A 429 on chat.update is waited out (Retry-After) and the final text still lands."""
    fake_slack.fail_next("chat.update", status=429, retry_after=1)
    fake_model.script(Reply(text="Rate limits are no match for this answer.", chunk_chars=4, delay=0.02))
    await bot.send_event(mention("go"))
    await fake_slack.wait_for(
        lambda: _final_texts(fake_slack) == ["Rate limits are no match for this answer."], timeout=15
    )
    updates = fake_slack.calls_to("chat.update")
    assert updates[1].at - updates[0].at >= 0.95, "the retry must wait for Retry-After"


async def test_store_down_tells_user(monkeypatch, fake_slack: FakeSlack, fake_model: FakeModel) -> None:
    """With Redis unreachable, the user is told the bot is unavailable and the model is not called."""
    bot_environment(monkeypatch, fake_slack, fake_model, "redis://127.0.0.1:9/0")
    async with running_bot() as bot:
        await bot.send_event(message("hello?", channel="D0DM", channel_type="im"))
        expected = slack_text(f":warning: {user_message(StoreUnavailable())}")
        await fake_slack.wait_for(lambda: _final_texts(fake_slack) == [expected])
    assert fake_model.requests == []


@pytest.mark.parametrize("reason", ["sensitive", "content_filter"])
async def test_content_filter_stop_says_declined_and_charges(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str, reason: str
) -> None:
    """A content-filter stop says the model declined (no "try again"), keeps what streamed, and is charged."""
    fake_model.script(Reply(text="Part of it", finish_reason=reason, prompt_tokens=100, completion_tokens=3))
    await bot.send_event(message("something touchy", channel="D0DM", channel_type="im"))
    expected = slack_text(f"Part of it\n\n:warning: {user_message(ModelDeclined())}")
    await fake_slack.wait_for(lambda: _final_texts(fake_slack) == [expected])
    assert "try again" not in expected.lower()
    store = open_store(redis_url)
    [spend_key] = [key async for key in store.scan_iter("glmbot:{quota:U0HUMAN1}:spend:*")]
    status = await store.hgetall(spend_key)
    await store.aclose()
    assert status["replies"] == "1"
    assert int(status["spent"]) == 100 * 780_000 + 3 * 2_340_000
