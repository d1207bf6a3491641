"""Every user message is answered at most once; bots, edits and deletions are ignored."""

from __future__ import annotations

from tests.fakes.constants import BOT_ID, BOT_USER_ID
from tests.fakes.model_api import FakeModel
from tests.fakes.slack_api import FakeSlack
from tests.scenario.harness import BotUnderTest, bot_environment, mention, message, running_bot


async def test_mention_and_message_and_retry_give_one_answer(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """app_mention, the matching message event, and Slack's retry of it produce a single reply."""
    event = mention("once please")
    as_message = {**event, "type": "message", "channel_type": "channel"}
    await bot.send_event(event, event_id="EvMention1")
    await bot.send_event(as_message, event_id="EvMessage1")
    await bot.send_event(event, event_id="EvMention1", retry_num=1)
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 1)
    # A DM probe after them: once it is answered, every earlier event has been handled.
    await bot.send_event(message("probe", channel="D0DM", channel_type="im"))
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 2)
    assert len(fake_slack.calls_to("chat.postMessage")) == 2


async def test_retry_in_thread_bot_knows_gives_one_answer(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A follow-up delivered twice (retry) is answered once."""
    first = mention("start")
    await bot.send_event(first)
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 1)
    await fake_slack.wait_for(lambda: bool(fake_slack.calls_to("chat.update")))
    follow = message("again", thread_ts=first["ts"])
    await bot.send_event(follow, event_id="EvFollow")
    await bot.send_event(follow, event_id="EvFollow", retry_num=1)
    await bot.send_event(follow, event_id="EvFollow", retry_num=2)
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 2)
    await bot.send_event(message("probe", channel="D0DM", channel_type="im"))
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 3)
    assert len(fake_slack.calls_to("chat.postMessage")) == 3


async def test_two_replicas_answer_once(
    monkeypatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """Two bot processes sharing Redis, each sent the same event, answer it once."""
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url)
    event = mention("who answers?")
    async with running_bot() as first, running_bot() as second:
        await first.send_event(event, event_id="EvShared")
        await second.send_event(event, event_id="EvShared", retry_num=1)
        await fake_slack.wait_for(lambda: len(fake_model.requests) == 1)
        await first.send_event(message("probe", channel="D0DM", channel_type="im"))
        await second.send_event(message("probe", channel="D0DM", channel_type="im"))
        await fake_slack.wait_for(lambda: len(fake_model.requests) == 3)
    assert len(fake_slack.calls_to("chat.postMessage")) == 3


async def test_bots_edits_and_deletions_are_ignored(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """The bot's own messages, other bots, edits and deletions never get an answer."""
    dm = {"channel": "D0DM", "channel_type": "im"}
    await bot.send_event(message("I am the bot", user=BOT_USER_ID, bot_id=BOT_ID, **dm))
    await bot.send_event(message("beep", user="U0OTHERBOT", bot_id="B0OTHER", **dm))
    await bot.send_event(
        {
            "type": "message",
            "subtype": "bot_message",
            "bot_id": "B0OTHER",
            "text": "hi",
            "ts": "1800000001.000001",
            **dm,
        }
    )
    await bot.send_event(
        {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "ts": "1800000001.000002",
            "message": {"user": "U0HUMAN1", "text": "edited", "ts": "1800000001.000000"},
            "previous_message": {"user": "U0HUMAN1", "text": "old"},
            **dm,
        }
    )
    await bot.send_event(
        {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "ts": "1800000001.000003",
            "deleted_ts": "1800000001.000000",
            "previous_message": {"user": "U0HUMAN1", "text": "old"},
            **dm,
        }
    )
    await bot.send_event(message("probe", **dm))
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 1)
    assert fake_model.requests[0].messages[-1]["content"] == "probe"
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
