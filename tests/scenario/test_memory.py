"""Per-thread memory: carried to later turns, kept apart between threads, trimmed, kept across restarts."""

from __future__ import annotations

from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.slack_api import FakeSlack
from tests.scenario.harness import BotUnderTest, bot_environment, mention, message, running_bot


async def test_memory_carried_and_separate_per_thread(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """The second turn in a thread carries the first turn; another thread starts clean."""
    fake_model.script(Reply(text="The capital is Paris."), Reply(text="About 2 million."), Reply(text="Hi."))
    first = mention("capital of France?")
    await bot.send_event(first)
    await fake_slack.wait_for(lambda: _answered(fake_slack, first["ts"], "Paris"))
    await bot.send_event(message("population?", thread_ts=first["ts"]))
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 2)
    other = mention("hello", channel="C0OTHER")
    await bot.send_event(other)
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 3)

    second_turn = fake_model.requests[1].messages
    assert [m["role"] for m in second_turn] == ["system", "user", "assistant", "user"]
    assert second_turn[1]["content"] == "capital of France?"
    assert second_turn[2]["content"] == "The capital is Paris."
    assert [m["role"] for m in fake_model.requests[2].messages] == ["system", "user"]


async def test_history_trimmed_to_small_context(
    monkeypatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """With a small context window, the oldest turns are left out and the request stays within budget."""
    bot_environment(
        monkeypatch, fake_slack, fake_model, redis_url, GLM_CONTEXT_TOKENS="1024", GLM_MAX_OUTPUT_TOKENS="256"
    )
    fake_model.default_reply = Reply(text="ok " * 100)
    async with running_bot() as bot:
        first = mention("turn 0 " + "x" * 600)
        await bot.send_event(first)
        await fake_slack.wait_for(
            lambda: len(fake_model.requests) == 1 and _answered(fake_slack, first["ts"], "ok")
        )
        for turn in range(1, 5):
            await bot.send_event(message(f"turn {turn} " + "x" * 600, thread_ts=first["ts"]))
            expected = turn + 1
            await fake_slack.wait_for(lambda: len(fake_model.requests) == expected)  # noqa: B023
            await fake_slack.wait_for(lambda: _answers_done(fake_slack, first["ts"]) == expected)  # noqa: B023
    last = fake_model.requests[-1].messages
    contents = " ".join(m["content"] for m in last)
    assert last[-1]["content"].startswith("turn 4")
    assert "turn 0" not in contents
    assert last[1]["role"] == "user"
    assert sum(len(m["content"]) for m in last) / 3 < 1024 - 256


async def test_message_too_long_is_refused_with_a_reason(
    monkeypatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """A message that alone exceeds the context gets a clear reply and no model call."""
    bot_environment(
        monkeypatch, fake_slack, fake_model, redis_url, GLM_CONTEXT_TOKENS="1024", GLM_MAX_OUTPUT_TOKENS="256"
    )
    async with running_bot() as bot:
        event = mention("y" * 5000)
        await bot.send_event(event)
        await fake_slack.wait_for(lambda: _answered(fake_slack, event["ts"], "too long"))
    assert fake_model.requests == []


async def test_history_survives_restart(
    monkeypatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """A new bot process on the same Redis remembers the thread."""
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url)
    fake_model.script(Reply(text="Remember 42."))
    first = mention("remember a number")
    async with running_bot() as bot:
        await bot.send_event(first)
        await fake_slack.wait_for(lambda: _answered(fake_slack, first["ts"], "Remember 42"))
    async with running_bot() as bot:
        await bot.send_event(message("which number?", thread_ts=first["ts"]))
        await fake_slack.wait_for(lambda: len(fake_model.requests) == 2)
    assert fake_model.requests[1].messages[2]["content"] == "Remember 42."


def _answered(slack: FakeSlack, thread_ts: str, needle: str) -> bool:
    return any(needle in m.text and not m.shown.endswith("▍") for m in slack.messages_in("C0TEST", thread_ts))


def _answers_done(slack: FakeSlack, thread_ts: str) -> int:
    return sum(1 for m in slack.messages_in("C0TEST", thread_ts) if m.text.startswith("ok"))
