"""SLACK_STREAMING through signed events: native streams, the fallback to edits, and edits only."""

from __future__ import annotations

import re

import pytest

from handlers.reply.streamer import PLACEHOLDER
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_streams import MARKDOWN_TEXT_LIMIT
from tests.rendered import slack_text
from tests.scenario.harness import bot_environment, mention, message, running_bot

ANSWER = "Here is **the answer**, streamed in small pieces so that several appends happen on the way."
STREAM_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream")


def _stopped(slack: FakeSlack, count: int) -> bool:
    return sum(stream.stopped for stream in slack.streams.streams.values()) >= count


def _finished(slack: FakeSlack, thread_ts: str, text: str) -> bool:
    return [m.text for m in slack.messages_in("C0TEST", thread_ts)] == [text]


async def test_native_mention_streams_the_answer_once(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """SLACK_STREAMING=native: the mention's answer is one stream to the asker, and nothing else."""
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url, SLACK_STREAMING="native")
    fake_model.script(Reply(text=ANSWER, chunk_chars=6, delay=0.03))
    event = mention("what is up?", user="U0ASKER1")
    async with running_bot() as bot:
        await bot.send_event(event)
        await fake_slack.wait_for(lambda: _stopped(fake_slack, 1))
    [start] = fake_slack.calls_to("chat.startStream")
    assert (start.body["thread_ts"], start.body["recipient_user_id"]) == (event["ts"], "U0ASKER1")
    assert len(fake_slack.calls_to("chat.appendStream")) >= 2
    assert not fake_slack.calls_to("chat.postMessage")
    assert not fake_slack.calls_to("chat.update")
    assert [m.text for m in fake_slack.messages_in("C0TEST", event["ts"])] == [ANSWER]


async def test_native_long_answer_and_defused_mentions(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """A long answer goes on in new streams; a ``<!channel>`` the model writes is never live."""
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url, SLACK_STREAMING="native")
    paragraphs = [f"Paragraph {i}: <!channel> " + "word " * 150 for i in range(20)]
    fake_model.script(Reply(text="\n\n".join(paragraphs), chunk_chars=500, delay=0.01))
    event = message("write a lot", channel="D0DM", channel_type="im")
    async with running_bot() as bot:
        await bot.send_event(event)
        await fake_slack.wait_for(
            lambda: (
                len(fake_slack.streams.streams) >= 2 and _stopped(fake_slack, len(fake_slack.streams.streams))
            )
        )
    parts = [m.text for m in fake_slack.messages_in("D0DM", event["ts"])]
    assert all(len(part) < MARKDOWN_TEXT_LIMIT for part in parts)
    history = [state for m in fake_slack.messages_in("D0DM", event["ts"]) for state in m.history]
    assert all("<!channel>" not in state for state in history)
    assert [p.replace("\u200b", "").strip() for part in parts for p in part.split("\n\n")] == [
        p.strip() for p in paragraphs
    ]


async def test_auto_refused_falls_back_to_edits_and_remembers(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """SLACK_STREAMING=auto in a workspace that refuses streams: edits, and one refused call only."""
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url, SLACK_STREAMING="auto")
    fake_slack.streams.refusal = "unknown_method"
    fake_model.default_reply = Reply(text=ANSWER, chunk_chars=20, delay=0.02)
    first, second = mention("one"), mention("two")
    async with running_bot() as bot:
        await bot.send_event(first)
        await fake_slack.wait_for(lambda: _finished(fake_slack, first["ts"], slack_text(ANSWER)))
        await bot.send_event(second)
        await fake_slack.wait_for(lambda: _finished(fake_slack, second["ts"], slack_text(ANSWER)))
    assert [c.method for c in fake_slack.calls if c.method in STREAM_METHODS] == ["chat.startStream"]
    assert [c.body["text"] for c in fake_slack.calls_to("chat.postMessage")] == [PLACEHOLDER] * 2


async def test_auto_streams_when_allowed_and_edit_never_streams(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """SLACK_STREAMING=auto streams where Slack allows it; SLACK_STREAMING=edit never streams."""
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url, SLACK_STREAMING="auto")
    fake_model.default_reply = Reply(text=ANSWER, chunk_chars=20, delay=0.02)
    streamed = mention("streamed?")
    async with running_bot() as bot:
        await bot.send_event(streamed)
        await fake_slack.wait_for(lambda: _stopped(fake_slack, 1))
    assert [m.text for m in fake_slack.messages_in("C0TEST", streamed["ts"])] == [ANSWER]
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url, SLACK_STREAMING="edit")
    edited = mention("edited?")
    async with running_bot() as bot:
        await bot.send_event(edited)
        await fake_slack.wait_for(lambda: _finished(fake_slack, edited["ts"], slack_text(ANSWER)))
    calls = [c for c in fake_slack.calls if c.method in STREAM_METHODS]
    assert all(c.body.get("thread_ts", streamed["ts"]) == streamed["ts"] for c in calls)
    assert len(fake_slack.calls_to("chat.startStream")) == 1
    assert re.fullmatch(r"\d+\.\d+", fake_slack.calls_to("chat.postMessage")[0].body["thread_ts"])
