"""Turns in one thread are answered one at a time, in message order, each with the earlier ones in context;
a thread is followed from its first message on, whatever became of the first answer."""

from __future__ import annotations

import asyncio

from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.slack_api import FakeSlack
from tests.scenario.harness import BotUnderTest, bot_environment, mention, message, running_bot


def _contents(request_messages: list[dict[str, object]]) -> list[object]:
    return [m["content"] for m in request_messages if m["role"] != "system"]


async def test_turns_written_during_an_answer_wait_for_it_in_order(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """Three follow-ups sent while the first answer streams are answered after it, one at a time, in the
    order they were written, and each prompt holds every earlier turn."""
    release = asyncio.Event()
    fake_model.script(Reply(text="A0", hold=release), Reply(text="A1"), Reply(text="A2"), Reply(text="A3"))
    first = mention("q0")
    await bot.send_event(first)
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 1)
    for n in (1, 2, 3):
        await bot.send_event(message(f"q{n}", thread_ts=first["ts"]))
    await asyncio.sleep(0.6)  # more than a waiting reply's poll: none of them may start yet
    assert len(fake_model.requests) == 1
    release.set()
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 4, timeout=20)
    await fake_slack.wait_for(lambda: any(m.shown == "A3" for m in fake_slack.messages.values()))

    prompts = [_contents(request.messages) for request in fake_model.requests]
    assert prompts == [
        ["q0"],
        ["q0", "A0", "q1"],
        ["q0", "A0", "q1", "A1", "q2"],
        ["q0", "A0", "q1", "A1", "q2", "A2", "q3"],
    ]


async def test_follow_up_during_a_slow_first_answer_is_answered(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A follow-up typed in a new thread before its first answer was stored is answered (after it)."""
    release = asyncio.Event()
    fake_model.script(Reply(text="first", hold=release), Reply(text="second"))
    first = mention("start")
    await bot.send_event(first)
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 1)
    await bot.send_event(message("and also?", thread_ts=first["ts"]))
    release.set()
    await fake_slack.wait_for(lambda: any(m.shown == "second" for m in fake_slack.messages.values()))
    assert _contents(fake_model.requests[1].messages) == ["start", "first", "and also?"]


async def test_try_again_after_a_failed_first_turn_is_answered(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """The first answer failed (the model was down): the user's "try again" in the thread is answered."""
    fake_model.script(*[Reply(status=503)] * 4, Reply(text="Here it is."))
    first = mention("summarise")
    await bot.send_event(first)
    await fake_slack.wait_for(lambda: any(":warning:" in m.shown for m in fake_slack.messages.values()))
    await bot.send_event(message("try again", thread_ts=first["ts"]))
    await fake_slack.wait_for(lambda: any(m.shown == "Here it is." for m in fake_slack.messages.values()))
    assert _contents(fake_model.requests[-1].messages) == ["try again"]


async def test_follow_up_after_a_refused_first_turn_is_answered(
    monkeypatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """A user refused by the quota who writes again in the thread gets an answer (the refusal again)."""
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url, QUOTA_DEFAULT_USD="0")
    async with running_bot() as bot:
        first = mention("hello")
        await bot.send_event(first)
        await fake_slack.wait_for(lambda: len(fake_slack.messages_in("C0TEST", first["ts"])) == 1)
        await bot.send_event(message("please?", thread_ts=first["ts"]))
        await fake_slack.wait_for(lambda: len(fake_slack.messages_in("C0TEST", first["ts"])) == 2)
    assert fake_model.requests == []
