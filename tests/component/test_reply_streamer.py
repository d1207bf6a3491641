"""SlackReplyStreamer against the fake Slack Web API over real HTTP, with its rate limits in real Redis."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence

import pytest
import redis.asyncio as redis
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.domain import Notice
from bot.core.errors import DeliveryFailed
from bot.metrics import Metrics
from bot.store.connection import open_store
from handlers.reply.limits import SlackLimits
from handlers.reply.pacing import EditPacer
from handlers.reply.parts import MARKDOWN_LIMIT, SIZE_LIMIT
from handlers.reply.poster import SlackPoster
from handlers.reply.streamer import MAX_MESSAGES, TYPING_CURSOR, SlackReplyStreamer
from tests.fakes.constants import BOT_TOKEN
from tests.fakes.slack_api import FakeSlack
from tests.rendered import slack_text

_teams = itertools.count(1)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = open_store(redis_url)
    yield client
    await client.aclose()


class Sleeps:
    """A sleep that records what it was asked and waits only a moment (for tests of long waits)."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(0)


def _streamer(
    slack: FakeSlack,
    store: redis.Redis,
    interval: float = 0.05,
    per_minute: int = 50,
    recorded: Sequence[str] = (),
    sleep: Sleeps | None = None,
    metrics: Metrics | None = None,
) -> SlackReplyStreamer:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    limits = SlackLimits(store, per_minute)
    metrics = metrics or Metrics()
    team = f"T{next(_teams)}"
    poster = SlackPoster(
        client, team, "C1", "1.0", limits, metrics, sleep=sleep or asyncio.sleep, failure_backoff=0.01
    )
    return SlackReplyStreamer(poster, EditPacer(interval), recorded)


async def _show_parts(streamer: SlackReplyStreamer, slack: FakeSlack, count: int) -> None:
    """Show ``count`` growing texts, each after the previous edit attempt reached Slack."""
    for i in range(1, count + 1):
        streamer.show("part " * i)
        await slack.wait_for(lambda: len(slack.calls_to("chat.update")) >= i)  # noqa: B023


def _texts(slack: FakeSlack) -> list[str]:
    return [m.text for m in slack.messages_in("C1", "1.0")]


async def test_edits_coalesce_to_latest_text(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """Many show() calls between two edit slots produce one edit carrying the newest text."""
    streamer = _streamer(fake_slack, store, interval=0.3)
    await streamer.start()
    for i in range(1, 200):
        streamer.show("word " * i)
        await asyncio.sleep(0.002)
    assert await streamer.finish("word " * 200)
    updates = fake_slack.calls_to("chat.update")
    assert len(updates) <= 4
    assert updates[-1].body["text"] == slack_text("word " * 200)
    assert all(TYPING_CURSOR in u.shown for u in updates[:-1])


async def test_code_block_split_keeps_fences_balanced(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """A long code block is split across messages with each part a closed code block."""
    code = "```python\n" + "\n".join(f"print({i})  # line {i}" for i in range(400)) + "\n```"
    answer = "Here is the code:\n\n" + code + "\n\nDone."
    streamer = _streamer(fake_slack, store)
    await streamer.start()
    await streamer.finish(answer)
    parts = _texts(fake_slack)
    assert len(parts) >= 3
    for part in parts:
        assert len(part) <= SIZE_LIMIT
        assert part.count("```") % 2 == 0, part[:80]
    joined = "\n".join(parts)
    assert all(f"print({i})  # line {i}" in joined for i in range(400))
    assert parts[-1].rstrip().endswith("Done.")


async def test_table_stands_alone_in_its_message(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """Text, a table and more text go out as three messages: a native table block alone in the middle."""
    table = "| name | score |\n|---|---:|\n| Ann | 3 |\n| Bo | 12 |"
    streamer = _streamer(fake_slack, store)
    await streamer.start()
    assert await streamer.finish(f"Scores so far:\n\n{table}\n\nBo leads.")
    messages = fake_slack.messages_in("C1", "1.0")
    assert [[block["type"] for block in m.blocks] for m in messages] == [
        ["markdown"],
        ["table"],
        ["markdown"],
    ]
    assert [m.shown for m in messages] == ["Scores so far:", "name | score\nAnn | 3\nBo | 12", "Bo leads."]
    assert messages[1].text == "name | score\nAnn | 3\nBo | 12"  # what a notification shows


async def test_long_table_is_cut_with_its_header_repeated(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """A table longer than a table block may be (100 rows) continues in tables that repeat its header."""
    rows = ["| n | square |", "|---|---|"] + [f"| {i} | {i * i} |" for i in range(250)]
    streamer = _streamer(fake_slack, store)
    await streamer.start()
    assert await streamer.finish("\n".join(rows))
    tables = [m.blocks[0]["rows"] for m in fake_slack.messages_in("C1", "1.0")]
    assert [len(table) for table in tables] == [100, 100, 53]
    assert all("n | square" in m.shown.split("\n")[0] for m in fake_slack.messages_in("C1", "1.0"))
    shown = "\n".join(m.shown for m in fake_slack.messages_in("C1", "1.0"))
    assert all(f"{i} | {i * i}" in shown for i in range(250))


async def test_wide_table_is_shown_as_code(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """A table wider than a table block may be (20 columns) is shown whole as a code block."""
    header = "|" + "|".join(f"c{i}" for i in range(25)) + "|"
    answer = "\n".join([header, "|" + "---|" * 25, "|" + "|".join(str(i) for i in range(25)) + "|"])
    streamer = _streamer(fake_slack, store)
    await streamer.start()
    assert await streamer.finish(answer)
    [message] = fake_slack.messages_in("C1", "1.0")
    assert message.blocks[0]["elements"][0]["type"] == "rich_text_preformatted"
    assert message.shown.startswith("c0 | c1 | c2")
    assert message.shown.endswith("23 | 24")


async def test_notices_are_dressed_for_slack(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """Notes go in italics and warnings after :warning:, each in a paragraph of its own."""
    streamer = _streamer(fake_slack, store)
    await streamer.start()
    notices = [Notice("note", "(cut off)"), Notice("warning", "I couldn't use a.pdf: not an image.")]
    await streamer.finish("Answer", notices)
    assert _texts(fake_slack) == [
        slack_text("Answer\n\n_(cut off)_\n\n:warning: I couldn't use a.pdf: not an image.")
    ]


async def test_fail_keeps_partial_text_and_adds_warning(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """fail() after some text keeps that text and replaces the cursor with the warning."""
    streamer = _streamer(fake_slack, store)
    await streamer.start()
    streamer.show("Half an answer")
    await streamer.fail("The model stopped.")
    assert _texts(fake_slack) == ["Half an answer\n\n:warning: The model stopped."]


async def test_placeholder_429_eight_times_is_still_delivered(
    fake_slack: FakeSlack, store: redis.Redis
) -> None:
    """A placeholder refused with 429 (Retry-After 2) eight times waits each one out and is posted."""
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=2, times=8)
    sleeps = Sleeps()
    streamer = _streamer(fake_slack, store, sleep=sleeps)
    await streamer.start()
    assert await streamer.finish("ok")
    assert _texts(fake_slack) == ["ok"]
    assert len(fake_slack.calls_to("chat.postMessage")) == 9
    assert sleeps.asked.count(2.0) >= 8  # each Retry-After waited out (the pause may add slot waits)


async def test_spent_edit_budget_posts_the_answer_whole(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """With no edit slot for a final edit, no placeholder is posted: the answer is posted whole once ready."""
    limits = SlackLimits(store, 2)
    assert await limits.update_slot("T-busy", max_wait=0) is not None  # the one slot of the burst
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    poster = SlackPoster(client, "T-busy", "C1", "1.0", limits, Metrics())
    streamer = SlackReplyStreamer(poster, EditPacer(0.05))
    await streamer.start()
    streamer.show("partial")
    await asyncio.sleep(0.1)
    assert fake_slack.calls_to("chat.postMessage") == []
    assert await streamer.finish("the whole answer")
    assert _texts(fake_slack) == ["the whole answer"]
    assert fake_slack.calls_to("chat.update") == []


async def test_placeholder_refused_for_good_raises(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """A channel that refuses posts (channel_not_found) is DeliveryFailed: nothing else can be shown."""
    fake_slack.error_next("chat.postMessage", error="channel_not_found")
    with pytest.raises(DeliveryFailed):
        await _streamer(fake_slack, store).start()


async def test_failed_interim_edit_does_not_lose_final(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """An interim edit error is skipped; the final edit still lands."""
    fake_slack.error_next("chat.update", error="internal_error")
    streamer = _streamer(fake_slack, store)
    await streamer.start()
    streamer.show("partial")
    await asyncio.sleep(0.1)
    assert await streamer.finish("complete answer")
    assert _texts(fake_slack) == ["complete answer"]


async def test_final_edit_gets_its_own_attempts(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """Even right after a run of failed interim edits, the final edit still gets several tries."""
    streamer = _streamer(fake_slack, store, interval=0.01)
    await streamer.start()
    fake_slack.error_next("chat.update", error="internal_error", times=4)
    await _show_parts(streamer, fake_slack, 4)
    fake_slack.error_next("chat.update", error="internal_error", times=3)
    assert await streamer.finish("the whole answer")
    assert _texts(fake_slack) == ["the whole answer"]


@pytest.mark.parametrize("error", ["message_not_found", "cant_update_message", "edit_window_closed"])
async def test_final_edit_refused_for_good_is_posted_anew(
    fake_slack: FakeSlack, store: redis.Redis, error: str
) -> None:
    """A final edit Slack refuses for good is not retried: the answer goes in a new message."""
    streamer = _streamer(fake_slack, store)
    await streamer.start()
    fake_slack.error_next("chat.update", error=error)
    assert await streamer.finish("the answer")
    assert _texts(fake_slack)[-1] == "the answer"
    assert len(fake_slack.calls_to("chat.update")) == 1


@pytest.mark.parametrize("error", ["msg_too_long", "invalid_blocks"])
async def test_final_edit_too_long_is_split_smaller(
    fake_slack: FakeSlack, store: redis.Redis, error: str
) -> None:
    """A final edit refused as too long is sent again in smaller parts."""
    streamer = _streamer(fake_slack, store)
    await streamer.start()
    fake_slack.error_next("chat.update", error=error)
    answer = "\n\n".join(f"Paragraph {i}: " + "words " * 60 for i in range(8))
    assert await streamer.finish(answer)
    texts = _texts(fake_slack)
    assert len(texts) >= 2
    joined = "\n\n".join(texts)
    assert all(f"Paragraph {i}:" in joined for i in range(8))


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "is_archived"])
async def test_undeliverable_final_is_reported(fake_slack: FakeSlack, store: redis.Redis, error: str) -> None:
    """When Slack refuses the thread for good, finish says the answer was not delivered; the conversation
    counts the reply (as ``undelivered``), the sink does not count it a second time."""
    metrics = Metrics()
    streamer = _streamer(fake_slack, store, metrics=metrics)
    await streamer.start()
    fake_slack.error_next("chat.update", error=error)
    fake_slack.error_next("chat.postMessage", error=error)
    assert not await streamer.finish("the answer")
    assert metrics.replies.labels("undeliverable")._value.get() == 0


async def test_answer_ending_at_a_cut_posts_no_empty_message(
    fake_slack: FakeSlack, store: redis.Redis
) -> None:
    """An answer that ends exactly at a split boundary does not post an empty continuation."""
    streamer = _streamer(fake_slack, store)
    await streamer.start()
    await streamer.finish("a" * (MARKDOWN_LIMIT - 1) + "\n\n")
    assert _texts(fake_slack) == ["a" * (MARKDOWN_LIMIT - 1)]


async def test_runaway_answer_is_capped(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """An answer needing more than MAX_MESSAGES messages stops there, saying it was cut."""
    streamer = _streamer(fake_slack, store)
    await streamer.start()
    answer = "\n\n".join("word " * 600 for _ in range(MAX_MESSAGES * 2))
    await streamer.finish(answer)
    texts = _texts(fake_slack)
    assert len(texts) == MAX_MESSAGES
    assert texts[-1].endswith("_(The rest of this answer was too long for Slack.)_")


async def test_resumed_reply_edits_the_same_messages(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """A reply resumed on an earlier attempt's messages edits them, posts nothing new, deletes leftovers."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    first = str((await client.chat_postMessage(channel="C1", thread_ts="1.0", text="half ▍"))["ts"])
    second = str((await client.chat_postMessage(channel="C1", thread_ts="1.0", text="more ▍"))["ts"])
    posts = len(fake_slack.calls_to("chat.postMessage"))
    streamer = _streamer(fake_slack, store, recorded=[first, second])
    await streamer.start()
    assert await streamer.finish("the complete answer")
    assert len(fake_slack.calls_to("chat.postMessage")) == posts
    assert fake_slack.messages[first].text == "the complete answer"
    assert fake_slack.messages[second].deleted


async def test_rate_limited_edit_pauses_the_workspace(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """A 429 on chat.update holds every reply's edits in the workspace, and the final still lands."""
    streamer = _streamer(fake_slack, store)
    await streamer.start()
    fake_slack.fail_next("chat.update", status=429, retry_after=1)
    streamer.show("partial")
    await fake_slack.wait_for(lambda: bool(fake_slack.calls_to("chat.update")))
    paused = [key async for key in store.scan_iter("glmbot:{slack:*}:update:paused")]
    assert paused
    assert await streamer.finish("done")
    assert _texts(fake_slack) == ["done"]


async def test_closed_streamer_makes_no_more_edits(fake_slack: FakeSlack, store: redis.Redis) -> None:
    """Once a reply ended (close), a pending interim edit never goes out after it."""
    streamer = _streamer(fake_slack, store, interval=0.3)
    await streamer.start()
    streamer.show("first words")
    await fake_slack.wait_for(lambda: bool(fake_slack.calls_to("chat.update")))
    streamer.show("first words and more")
    streamer.close()
    await asyncio.sleep(0.5)
    assert len(fake_slack.calls_to("chat.update")) == 1
