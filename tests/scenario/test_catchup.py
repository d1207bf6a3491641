"""Thread catch-up: mentioned in a thread it has no memory of, the bot reads the earlier messages first.

Signed events to the real bot, a fake ``conversations.replies`` over HTTP (``tests.fakes.slack_threads``),
real Redis; the fake model records exactly what the prompt held.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import pytest
from PIL import Image

from bot.app import open_core
from bot.core.catchup import LEFT_OUT_NOTE, NOT_READ_NOTE
from bot.core.domain import ChatMessage, ThreadKey
from bot.settings import load_settings
from bot.store.connection import open_store
from bot.store.history import HistoryStore
from handlers.front_end import build_front_end
from handlers.reply.streamer import PLACEHOLDER, TYPING_CURSOR
from handlers.server import build_web_app, start_web
from tests.fakes.constants import BOT_ID, BOT_USER_ID, TEAM_ID
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.redis_server import RedisServer
from tests.fakes.slack_api import FakeSlack
from tests.fakes.tcp_proxy import TcpProxy
from tests.scenario.harness import BotUnderTest, bot_environment, mention, running_bot

CHANNEL = "C0TEST"
PARENT = "1600000000.000100"
QUESTION = "can you summarise this thread?"


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def answered(slack: FakeSlack) -> int:
    """Replies that are finished (not a placeholder, no typing cursor)."""
    return sum(
        1 for m in slack.messages.values() if m.text != PLACEHOLDER and not m.shown.endswith(TYPING_CURSOR)
    )


def texts(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Each model message as (role, its text), image parts left out."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = next(part["text"] for part in content if part["type"] == "text")
        out.append((message["role"], content))
    return out


def busy_thread(slack: FakeSlack) -> str:
    """A thread people started, with the bot's own earlier answer, an image, a forward, another bot and
    a join; returns the ts the mention will have (later messages follow it)."""
    add = slack.threads.add
    add(CHANNEL, PARENT, PARENT, "Shall we ship <https://example.com/v2|v2> on Friday?", user="U0ALICE1")
    add(CHANNEL, PARENT, "1600000000.000200", "I think <@U0BOB001> knows &lt;more&gt;", user="U0CAROL1")
    add(CHANNEL, PARENT, "1600000000.000300", "An earlier answer.", user=BOT_USER_ID, bot_id=BOT_ID)
    add(CHANNEL, PARENT, "1600000000.000310", "Its second part.", user=BOT_USER_ID, bot_id=BOT_ID)
    image = slack.add_file("FCATCH1", png(300, 200), name="graph.png")
    add(CHANNEL, PARENT, "1600000000.000400", "", user="U0BOB001", subtype="file_share", files=[image])
    share = {"is_share": True, "author_name": "Erin", "text": "the original words"}
    add(CHANNEL, PARENT, "1600000000.000450", "look", user="U0DAVE01", attachments=[share])
    add(
        CHANNEL,
        PARENT,
        "1600000000.000500",
        "Deploy finished",
        bot_id="B0CI",
        subtype="bot_message",
        username="ci",
    )
    add(
        CHANNEL,
        PARENT,
        "1600000000.000550",
        "<@U0JOIN01> has joined",
        user="U0JOIN01",
        subtype="channel_join",
    )
    mention_ts = "1600000000.000600"
    add(CHANNEL, PARENT, mention_ts, f"<@{BOT_USER_ID}> {QUESTION}", user="U0HUMAN1")
    add(CHANNEL, PARENT, "1600000000.000700", "a message after the mention", user="U0ALICE1")
    return mention_ts


CAUGHT_UP = [
    ("user", "u0alice1: Shall we ship v2 (https://example.com/v2) on Friday?"),
    ("user", "u0carol1: I think @u0bob001 knows <more>"),
    ("assistant", "An earlier answer.\n\nIts second part."),
    ("user", "u0bob001: [image]"),
    ("user", "u0dave01: look\n\n> Shared message from Erin:\n> the original words"),
    ("user", "ci: Deploy finished"),
]


async def test_mention_in_unseen_thread_reads_it_over_pages(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """Four pages of two: every earlier message reaches the prompt, converted, before the question."""
    fake_slack.threads.page_cap = 2
    mention_ts = busy_thread(fake_slack)
    await bot.send_event(mention(QUESTION, thread_ts=PARENT, ts=mention_ts))
    await fake_slack.wait_for(lambda: answered(fake_slack) == 1)
    [request] = fake_model.requests
    assert texts(request.messages)[1:] == [*CAUGHT_UP, ("user", QUESTION)]
    image_message = request.messages[4]["content"]
    assert [part["type"] for part in image_message] == ["image_url", "text"]
    assert image_message[0]["image_url"]["url"].startswith("data:image/")
    calls = fake_slack.calls_to("conversations.replies")
    assert {call.body["inclusive"] for call in calls} == {"0"}
    assert [call.body.get("cursor") for call in calls] == [None, "next:2", "next:4", "next:6"]
    assert {(call.body["channel"], call.body["ts"], call.body["latest"]) for call in calls} == {
        (CHANNEL, PARENT, mention_ts)
    }
    assert len(fake_slack.download_paths) == 1


async def test_second_mention_in_the_thread_does_not_catch_up_again(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """The first answer stored the catch-up and its turn; the next mention reads neither Slack nor twice."""
    first_ts = busy_thread(fake_slack)
    await bot.send_event(mention(QUESTION, thread_ts=PARENT, ts=first_ts))
    await fake_slack.wait_for(lambda: answered(fake_slack) == 1)
    await bot.send_event(mention("and who shipped it?", thread_ts=PARENT, ts="1600000000.000800"))
    await fake_slack.wait_for(lambda: answered(fake_slack) == 2)
    assert len(fake_slack.calls_to("conversations.replies")) == 1
    second = texts(fake_model.requests[1].messages)[1:]
    assert second == [
        *CAUGHT_UP,
        ("user", QUESTION),
        ("assistant", "Hello from the fake model."),
        ("user", "and who shipped it?"),
    ]


async def test_thread_the_bot_already_talks_in_is_not_caught_up(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A mention that starts a thread reads nothing; a later mention there finds its memory."""
    first = mention("hello")
    await bot.send_event(first)
    await fake_slack.wait_for(lambda: answered(fake_slack) == 1)
    await bot.send_event(mention("more please", thread_ts=first["ts"]))
    await fake_slack.wait_for(lambda: answered(fake_slack) == 2)
    assert fake_slack.calls_to("conversations.replies") == []
    assert [role for role, _ in texts(fake_model.requests[1].messages)] == [
        "system",
        "user",
        "assistant",
        "user",
    ]


async def test_catchup_off_makes_no_call(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """THREAD_CATCHUP_MESSAGES=0: the mention is answered alone and Slack is not asked for the thread."""
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url, THREAD_CATCHUP_MESSAGES="0")
    mention_ts = busy_thread(fake_slack)
    async with running_bot() as bot:
        await bot.send_event(mention(QUESTION, thread_ts=PARENT, ts=mention_ts))
        await fake_slack.wait_for(lambda: answered(fake_slack) == 1)
    assert fake_slack.calls_to("conversations.replies") == []
    assert texts(fake_model.requests[0].messages)[1:] == [("user", QUESTION)]


@pytest.mark.parametrize("failure", ["missing_scope", "ratelimited"])
async def test_slack_refusing_the_thread_still_answers(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel, failure: str
) -> None:
    """A missing history scope or a 429 on the first page: the answer comes, without earlier messages."""
    mention_ts = busy_thread(fake_slack)
    if failure == "ratelimited":
        fake_slack.fail_next("conversations.replies", status=429, retry_after=60)
    else:
        fake_slack.error_next("conversations.replies", failure)
    await bot.send_event(mention(QUESTION, thread_ts=PARENT, ts=mention_ts))
    await fake_slack.wait_for(lambda: answered(fake_slack) == 1)
    assert texts(fake_model.requests[0].messages)[1:] == [("user", QUESTION)]
    assert len(fake_slack.calls_to("conversations.replies")) == 1


async def test_page_refused_mid_read_keeps_what_was_read(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """The second page is refused (a non-Marketplace app's one call a minute): the first page is kept,
    with a note that later messages were not read."""
    fake_slack.threads.page_cap = 2
    fake_slack.threads.refuse_from_call = 2
    mention_ts = busy_thread(fake_slack)
    await bot.send_event(mention(QUESTION, thread_ts=PARENT, ts=mention_ts))
    await fake_slack.wait_for(lambda: answered(fake_slack) == 1)
    assert texts(fake_model.requests[0].messages)[1:] == [
        *CAUGHT_UP[:2],
        ("user", NOT_READ_NOTE),
        ("user", QUESTION),
    ]


async def test_budget_drops_the_oldest_messages(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """A small context window keeps the newest earlier messages and says that older ones are left out."""
    bot_environment(
        monkeypatch, fake_slack, fake_model, redis_url, GLM_CONTEXT_TOKENS="1024", GLM_MAX_OUTPUT_TOKENS="256"
    )
    fake_slack.threads.add(CHANNEL, PARENT, PARENT, "message 0 " + "x" * 300, user="U0ALICE1")
    for n in range(1, 12):
        ts = f"1600000000.{100 + n:06d}"
        fake_slack.threads.add(CHANNEL, PARENT, ts, f"message {n} " + "x" * 300, user="U0ALICE1")
    async with running_bot() as bot:
        await bot.send_event(mention(QUESTION, thread_ts=PARENT, ts="1600000000.000900"))
        await fake_slack.wait_for(lambda: answered(fake_slack) == 1)
    prompt = texts(fake_model.requests[0].messages)
    kept = [text.split()[2] for _, text in prompt[2:-1]]
    assert prompt[1] == ("user", LEFT_OUT_NOTE)
    assert kept == [str(n) for n in range(12 - len(kept), 12)]  # the newest, in order
    assert 0 < len(kept) < 12
    assert prompt[-1] == ("user", QUESTION)


@asynccontextmanager
async def stopping_without_drain() -> AsyncIterator[BotUnderTest]:
    """The bot like ``running_bot``, but its replies in progress are cut at once when it stops (left in
    the work stream for another process to resume, as after SIGTERM past the drain)."""
    settings = load_settings()
    async with (
        open_core(settings) as core,
        httpx.AsyncClient(timeout=10) as http,
        aiohttp.ClientSession() as session,
    ):
        front = await build_front_end(settings, core, socket_mode=False, session=session)
        runner = await start_web(build_web_app(core, front.bolt, acks=front.acks), "127.0.0.1", 0)
        await front.runner.start()
        host, port = runner.addresses[0][:2]
        try:
            yield BotUnderTest(url=f"http://{host}:{port}", http=http, runner=runner)
        finally:
            await front.runner.stop(drain_seconds=0)
            await runner.cleanup()


@pytest.mark.parametrize("first_read", ["stored", "refused"])
async def test_resumed_reply_does_not_catch_up_twice(
    monkeypatch: pytest.MonkeyPatch,
    fake_slack: FakeSlack,
    fake_model: FakeModel,
    redis_url: str,
    first_read: str,
) -> None:
    """A reply cut after its catch-up is resumed by another process: no second read, no second copy.

    Also when the first read failed and stored nothing: the journal, not the empty history, says so.
    """
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url, WORK_LEASE_SECONDS="1")
    hold = asyncio.Event()
    fake_model.script(Reply(text="never finished", hold=hold), Reply(text="The resumed answer."))
    mention_ts = busy_thread(fake_slack)
    if first_read == "refused":
        fake_slack.error_next("conversations.replies", "missing_scope")
    async with stopping_without_drain() as first:
        await first.send_event(mention(QUESTION, thread_ts=PARENT, ts=mention_ts))
        await fake_model.wait_for(lambda: len(fake_model.requests) == 1)
    async with running_bot():
        await fake_model.wait_for(lambda: len(fake_model.requests) == 2, timeout=15)
        await fake_slack.wait_for(lambda: answered(fake_slack) == 1)
    hold.set()
    assert len(fake_slack.calls_to("conversations.replies")) == 1
    expected = [*CAUGHT_UP, ("user", QUESTION)] if first_read == "stored" else [("user", QUESTION)]
    assert texts(fake_model.requests[0].messages)[1:] == expected
    assert texts(fake_model.requests[1].messages)[1:] == expected


async def test_seed_is_written_once_and_only_into_an_empty_history(redis_server: RedisServer) -> None:
    """A lost reply makes redis-py send the seed again: it writes nothing more; nor over a stored turn."""
    redis_server.flush()
    turns = [ChatMessage("user", "u0alice1: hi"), ChatMessage("assistant", "hello")]
    async with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        client = open_store(proxy.url())
        store = HistoryStore(client, ttl_seconds=60)
        thread = ThreadKey(TEAM_ID, CHANNEL, "seed.lost.reply")
        proxy.drop_next_reply()
        await store.seed(thread, "catchup:seed.lost.reply", turns)
        assert proxy.dropped == 1
        assert not await store.seed(thread, "catchup:seed.lost.reply", turns)
        assert [m.text for m in await store.load(thread)] == ["u0alice1: hi", "hello"]
        other = ThreadKey(TEAM_ID, CHANNEL, "already.talking")
        await store.append(other, "1.0", [ChatMessage("user", "q"), ChatMessage("assistant", "a")])
        assert not await store.seed(other, "catchup:already.talking", turns)
        assert [m.text for m in await store.load(other)] == ["q", "a"]
        assert await store.has_turns(thread)
        assert not await store.has_turns(ThreadKey(TEAM_ID, CHANNEL, "nothing.here"))
        await client.aclose()
