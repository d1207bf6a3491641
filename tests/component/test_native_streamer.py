"""Native streaming (and the choice between it and edits) against the fake Slack over real HTTP, with the
rate budgets in real Redis."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Sequence

import pytest
import redis.asyncio as redis
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.store.connection import open_store
from handlers.reply.limits import STREAM_REFUSAL_SECONDS, SlackLimits
from handlers.reply.native import STREAM_PREFIX
from handlers.reply.strategy import ChosenSink, StreamingMode, StreamPacing, reply_sink
from handlers.reply.stream_calls import SlackStreamPoster
from tests.fakes.constants import BOT_TOKEN
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_streams import MARKDOWN_TEXT_LIMIT
from tests.rendered import slack_text

_teams = itertools.count(1)
STREAM_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream")


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = open_store(redis_url)
    yield client
    await client.aclose()


class Reply:
    """One reply's sink, and what it recorded (``on_posted``)."""

    def __init__(
        self,
        slack: FakeSlack,
        store: redis.Redis,
        mode: StreamingMode = "native",
        interval: float = 0.05,
        team: str | None = None,
        channel: str = "C1",
        recorded: Sequence[str] = (),
        asker: str | None = "U1",
    ) -> None:
        self.team = team or f"T{next(_teams)}"
        self.recorded: list[str] = list(recorded)
        client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
        self.limits = SlackLimits(store, 50)
        metrics = Metrics()
        poster = SlackStreamPoster(
            client, self.team, channel, "1.0", self.limits, metrics, failure_backoff=0.01
        )
        self.sink: ChosenSink = reply_sink(
            StreamPacing(mode, interval), poster, self.limits, recorded, self._posted, asker
        )

    async def _posted(self, timestamps: list[str]) -> None:
        self.recorded = timestamps


def _thread(slack: FakeSlack, channel: str = "C1") -> list[str]:
    return [m.text for m in slack.messages_in(channel, "1.0")]


def _stream_calls(slack: FakeSlack) -> list[str]:
    return [call.method for call in slack.calls if call.method in STREAM_METHODS]


async def test_native_stream_holds_the_whole_answer(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """One stream for the asker: started, appended to, stopped; the message is the answer, posted once."""
    reply = Reply(fake_slack, store)
    await reply.sink.start()
    assert reply.sink.chosen == "native"
    answer = "Here is **the answer**, in a few pieces."
    for end in (8, 20, len(answer)):
        reply.sink.show(answer[:end])
        await asyncio.sleep(0.08)
    assert await reply.sink.finish(answer)
    [start] = fake_slack.calls_to("chat.startStream")
    assert start.body["thread_ts"] == "1.0"
    assert (start.body["recipient_user_id"], start.body["recipient_team_id"]) == ("U1", reply.team)
    assert len(fake_slack.calls_to("chat.appendStream")) >= 1
    assert len(fake_slack.calls_to("chat.stopStream")) == 1
    assert not fake_slack.calls_to("chat.postMessage")
    assert not fake_slack.calls_to("chat.update")
    assert _thread(fake_slack) == [answer]
    [stream] = fake_slack.streams.streams.values()
    assert stream.stopped
    assert reply.recorded == [STREAM_PREFIX + stream.ts]


async def test_appends_coalesce_for_a_fast_model(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """Many show() calls between two append slots go out as a few appends carrying all the new text."""
    reply = Reply(fake_slack, store, interval=0.3)
    await reply.sink.start()
    for i in range(1, 200):
        reply.sink.show("word " * i)
        await asyncio.sleep(0.002)
    assert await reply.sink.finish("word " * 200)
    assert len(fake_slack.calls_to("chat.appendStream")) <= 3
    assert _thread(fake_slack) == ["word " * 200]


async def test_long_answer_continues_in_new_streams(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """An answer longer than one stream holds goes on in new streams, cut between paragraphs."""
    paragraphs = [f"Paragraph {i}: " + "word " * 150 for i in range(40)]  # about 30,000 characters
    answer = "\n\n".join(paragraphs)
    reply = Reply(fake_slack, store, interval=0.01)
    await reply.sink.start()
    for end in range(0, len(answer), 2000):
        reply.sink.show(answer[:end])
        await asyncio.sleep(0.03)
    assert await reply.sink.finish(answer)
    parts = _thread(fake_slack)
    assert len(parts) >= 3
    assert all(len(part) < MARKDOWN_TEXT_LIMIT for part in parts)
    assert all(stream.stopped for stream in fake_slack.streams.streams.values())
    assert [p.strip() for part in parts for p in part.split("\n\n")] == [p.strip() for p in paragraphs]
    assert len(reply.recorded) == len(parts)


async def test_mentions_never_reach_slack_live(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """Mentions written by the model, streamed a character at a time, are never live in the stream."""
    answer = "Hi <!channel> and &lt;!here&gt; and <@U123ABCD> and @everyone, see [docs](https://a.b/c) ok"
    reply = Reply(fake_slack, store, interval=0.01)
    await reply.sink.start()
    for end in range(1, len(answer) + 1):
        reply.sink.show(answer[:end])
        await asyncio.sleep(0.004)
    assert await reply.sink.finish(answer)
    assert len(fake_slack.calls_to("chat.appendStream")) >= 3
    [message] = fake_slack.messages_in("C1", "1.0")
    live = re.compile(r"<!channel>|&lt;!here|<@U123ABCD>|(?<![\w@])@everyone\b")
    assert all(live.search(state) is None for state in message.history), message.history
    assert message.text.replace("\u200b", "").replace("\u2060", "") == answer


async def test_auto_falls_back_to_edits_when_refused_and_remembers(
    fake_slack: FakeSlack, store: redis.Redis
) -> None:
    """A workspace that refuses chat.startStream gets edits, and is not asked again for an hour."""
    fake_slack.streams.refusal = "not_allowed"
    first = Reply(fake_slack, store, mode="auto")
    await first.sink.start()
    assert first.sink.chosen == "edit"
    assert await first.sink.finish("First answer")
    second = Reply(fake_slack, store, mode="auto", team=first.team)
    await second.sink.start()
    assert await second.sink.finish("Second answer")
    assert _stream_calls(fake_slack) == ["chat.startStream"]
    assert _thread(fake_slack) == [slack_text("First answer"), slack_text("Second answer")]
    ttl = await store.ttl(f"glmbot:{{slack:{first.team}}}:stream:refused")
    assert STREAM_REFUSAL_SECONDS - 5 <= ttl <= STREAM_REFUSAL_SECONDS


@pytest.mark.parametrize(("mode", "error"), [("auto", "channel_not_found"), ("native", "not_allowed")])
async def test_refusals_not_remembered(
    fake_slack: FakeSlack, store: redis.Redis, mode: StreamingMode, error: str
) -> None:
    """A thread's refusal (auto), or any refusal with SLACK_STREAMING=native, falls back for this reply
    only: the next reply streams again."""
    fake_slack.error_next("chat.startStream", error)
    first = Reply(fake_slack, store, mode=mode)
    await first.sink.start()
    assert first.sink.chosen == "edit"
    assert await first.sink.finish("By edits")
    second = Reply(fake_slack, store, mode=mode, team=first.team)
    await second.sink.start()
    assert second.sink.chosen == "native"
    assert await second.sink.finish("Streamed")
    assert _thread(fake_slack) == [slack_text("By edits"), "Streamed"]


async def test_auto_uses_edits_when_the_stream_budget_is_spent(
    fake_slack: FakeSlack, store: redis.Redis
) -> None:
    """With the workspace's chat.startStream slots spent, auto delivers by edits at once."""
    reply = Reply(fake_slack, store, mode="auto")
    while await reply.limits.stream_slot(reply.team, "start", max_wait=0) is not None:
        pass
    await reply.sink.start()
    assert reply.sink.chosen == "edit"
    assert await reply.sink.finish("Edited")
    assert _stream_calls(fake_slack) == []


async def test_edit_mode_never_streams(fake_slack: FakeSlack, store: redis.Redis) -> None:
    reply = Reply(fake_slack, store, mode="edit")
    await reply.sink.start()
    reply.sink.show("Partly")
    await asyncio.sleep(0.1)
    assert await reply.sink.finish("Partly done")
    assert _stream_calls(fake_slack) == []
    assert _thread(fake_slack) == [slack_text("Partly done")]


async def test_channel_reply_without_asker_goes_by_edits_but_dm_streams(
    fake_slack: FakeSlack, store: redis.Redis
) -> None:
    """A stream in a channel needs its recipient; a DM does not."""
    channel = Reply(fake_slack, store, asker=None)
    await channel.sink.start()
    assert channel.sink.chosen == "edit"
    await channel.sink.fail("Sorry.")
    dm = Reply(fake_slack, store, channel="D1", asker=None)
    await dm.sink.start()
    assert dm.sink.chosen == "native"
    await dm.sink.fail("Sorry.")
    assert _thread(fake_slack, "D1") == [":warning: Sorry."]
    assert "recipient_user_id" not in fake_slack.calls_to("chat.startStream")[0].body


async def test_fail_keeps_streamed_text_and_adds_warning(fake_slack: FakeSlack, store: redis.Redis) -> None:
    reply = Reply(fake_slack, store)
    await reply.sink.start()
    reply.sink.show("Half an answer")
    await fake_slack.wait_for(lambda: bool(fake_slack.calls_to("chat.appendStream")))
    await reply.sink.fail("The model stopped.")
    assert _thread(fake_slack) == ["Half an answer\n\n:warning: The model stopped."]


async def test_expired_stream_is_finished_by_edits(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """When Slack stops taking the stream, the whole answer replaces its message by chat.update."""
    reply = Reply(fake_slack, store)
    await reply.sink.start()
    reply.sink.show("The first words")
    await fake_slack.wait_for(lambda: bool(fake_slack.calls_to("chat.appendStream")))
    [ts] = fake_slack.streams.streams
    fake_slack.streams.expire(ts)
    reply.sink.show("The first words and more")
    await asyncio.sleep(0.1)
    assert await reply.sink.finish("The first words and more.")
    assert _thread(fake_slack) == [slack_text("The first words and more.")]
    assert fake_slack.calls_to("chat.update")[-1].body["ts"] == ts


async def test_resumed_reply_stops_the_stream_and_edits_it(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """A reply resumed after its process died stops the stream it left and finishes it by an edit:
    one message, no half stream, nothing posted twice."""
    dead = Reply(fake_slack, store)
    await dead.sink.start()
    dead.sink.show("Half of it")
    await fake_slack.wait_for(lambda: bool(fake_slack.calls_to("chat.appendStream")))
    dead.sink.close()  # the process died here
    resumed = Reply(fake_slack, store, mode="auto", team=dead.team, recorded=dead.recorded)
    await resumed.sink.start()
    assert resumed.sink.chosen == "edit"
    assert await resumed.sink.finish("Half of it, and the rest.")
    assert len(fake_slack.calls_to("chat.startStream")) == 1
    assert all(stream.stopped for stream in fake_slack.streams.streams.values())
    assert not fake_slack.calls_to("chat.postMessage")
    assert _thread(fake_slack) == [slack_text("Half of it, and the rest.")]
