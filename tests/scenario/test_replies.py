"""Mentions, DMs and follow-ups answered by streaming edits in the right thread."""

from __future__ import annotations

import itertools
import time

from handlers.reply.parts import MARKDOWN_LIMIT, SIZE_LIMIT
from handlers.reply.streamer import PLACEHOLDER, TYPING_CURSOR
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.slack_api import FakeSlack
from tests.rendered import slack_text
from tests.scenario.harness import BotUnderTest, mention, message

ANSWER = "Here is **the answer**, streamed in small pieces so that several edits happen on the way."


async def test_mention_streams_into_its_thread(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A mention gets one placeholder in its thread, then paced edits ending with the whole answer."""
    fake_model.script(Reply(text=ANSWER, chunk_chars=6, delay=0.03))
    event = mention("what is up?")
    await bot.send_event(event)
    await fake_slack.wait_for(lambda: any(m.text == slack_text(ANSWER) for m in fake_slack.messages.values()))

    posts = fake_slack.calls_to("chat.postMessage")
    assert len(posts) == 1
    assert posts[0].body["thread_ts"] == event["ts"]
    assert posts[0].body["text"] == PLACEHOLDER
    updates = fake_slack.calls_to("chat.update")
    assert len(updates) >= 2, "the answer should appear in several edits"
    assert all(u.body["ts"] == fake_slack.messages_in("C0TEST", event["ts"])[0].ts for u in updates)
    assert updates[0].shown.endswith(TYPING_CURSOR)
    assert updates[-1].body["text"] == slack_text(ANSWER)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(updates)]
    assert min(gaps) >= 0.2 * 0.9, f"edits closer than STREAM_EDIT_INTERVAL: {gaps}"
    assert fake_model.requests[0].messages[-1] == {"role": "user", "content": "what is up?"}


async def test_dm_is_answered_in_the_dm(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A DM (no mention needed) is answered in the DM, in the message's thread."""
    event = message("hello there", channel="D0DM", channel_type="im")
    await bot.send_event(event)
    await fake_slack.wait_for(
        lambda: any(m.text == slack_text("Hello from the fake model.") for m in fake_slack.messages.values())
    )
    [reply] = fake_slack.messages_in("D0DM", event["ts"])
    assert reply.channel == "D0DM"
    assert fake_model.requests[0].messages[-1]["content"] == "hello there"


async def test_follow_up_in_answered_thread_needs_no_mention(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """After the bot answered a thread, later replies there are answered without a mention."""
    first = mention("start")
    await bot.send_event(first)
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 1 and _finished(fake_slack, 1))
    await bot.send_event(message("and then?", thread_ts=first["ts"]))
    await fake_slack.wait_for(lambda: _finished(fake_slack, 2))
    assert fake_model.requests[1].messages[-1]["content"] == "and then?"
    assert len(fake_slack.messages_in("C0TEST", first["ts"])) == 2


async def test_unknown_threads_and_top_level_chatter_ignored(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """Channel messages without a mention, outside the bot's threads, get nothing."""
    await bot.send_event(message("just chatting"))
    await bot.send_event(message("a reply elsewhere", thread_ts="1700000000.000001"))
    probe = message("dm probe", channel="D0DM", channel_type="im")
    await bot.send_event(probe)  # a DM, answered: proves the two events before it were processed
    await fake_slack.wait_for(lambda: _finished(fake_slack, 1))
    assert [p.body["channel"] for p in fake_slack.calls_to("chat.postMessage")] == ["D0DM"]
    assert len(fake_model.requests) == 1


async def test_long_answer_continues_in_new_messages(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """An answer longer than one message is split at paragraph boundaries into more thread messages."""
    paragraphs = [f"Paragraph {i}: " + "word " * 150 for i in range(12)]
    answer = "\n\n".join(paragraphs)
    fake_model.script(Reply(text=answer, chunk_chars=400))
    event = mention("write a lot")
    await bot.send_event(event)
    await fake_slack.wait_for(
        lambda: (
            _thread_text(fake_slack, event["ts"]).count("Paragraph") == 12
            and TYPING_CURSOR not in _thread_text(fake_slack, event["ts"])
        )
    )
    parts = fake_slack.messages_in("C0TEST", event["ts"])
    assert len(parts) >= len(answer) // MARKDOWN_LIMIT
    for part in parts:
        assert len(part.text) <= SIZE_LIMIT
        assert part.text.startswith("Paragraph")
        assert part.text.rstrip().endswith("word")
    assert [p.strip() for part in parts for p in part.text.split("\n\n")] == [p.strip() for p in paragraphs]


def _finished(slack: FakeSlack, replies: int) -> bool:
    done = [
        m
        for m in slack.messages.values()
        if m.text not in (PLACEHOLDER,) and not m.shown.endswith(TYPING_CURSOR)
    ]
    return len(done) >= replies


def _thread_text(slack: FakeSlack, thread_ts: str) -> str:
    return "\n\n".join(m.shown for m in slack.messages_in("C0TEST", thread_ts))


async def test_workspace_edit_budget_limits_interim_edits(
    monkeypatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """With SLACK_EDITS_PER_MINUTE=2 three replies never edit past the budget: those without an edit slot
    are posted whole, one message each, and every reply ends complete."""
    from tests.scenario.harness import bot_environment, running_bot

    bot_environment(monkeypatch, fake_slack, fake_model, redis_url, SLACK_EDITS_PER_MINUTE="2")
    fake_model.default_reply = Reply(text=ANSWER, chunk_chars=4, delay=0.03)
    async with running_bot() as bot:
        started = time.time()
        events = [mention("go", channel=f"C{i}") for i in range(3)]
        for event in events:
            await bot.send_event(event)
        await fake_slack.wait_for(lambda: _finished(fake_slack, 3), timeout=20)
        # The budget is per clock minute: a run that straddles a minute boundary gets two windows.
        windows = int(time.time() // 60) - int(started // 60) + 1
    assert len(fake_slack.calls_to("chat.update")) <= 2 * windows
    assert len(fake_slack.calls_to("chat.postMessage")) == 3
    for i, event in enumerate(events):
        assert [m.text for m in fake_slack.messages_in(f"C{i}", event["ts"])] == [slack_text(ANSWER)]
