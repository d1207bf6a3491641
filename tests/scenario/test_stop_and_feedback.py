"""The Stop button on streaming replies and the 👍/👎 buttons on finished answers, through signed events
and signed interactivity payloads (``block_actions``, form-encoded ``payload``), against real Redis."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from structlog.testing import capture_logs

from bot.app import quota_ledger
from bot.billing.pricing import cost_pico, price_for
from bot.settings import load_settings
from bot.store.connection import open_store
from handlers.reply.buttons import STOP_ACTION
from handlers.reply.streamer import TYPING_CURSOR
from tests.fakes.constants import APP_ID, BOT_ID, BOT_USER_ID, SIGNING_SECRET, TEAM_ID
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.signing import signed_headers
from tests.fakes.slack_api import FakeMessage, FakeSlack, SlackCall
from tests.scenario.harness import BotUnderTest, bot_environment, mention, message, running_bot

ASKER = "U0HUMAN1"
OTHER = "U0OTHER1"
ADMIN = "UADMIN1"
# Each word a chunk, 0.03 s apart: about 4 s in all, long enough to press Stop mid-stream.
WORDS = [f"word{i:03d} " for i in range(120)]
SLOW = "".join(WORDS)
FULL_COST = cost_pico(1000, 1000, price_for("glm-4.5v"))
_presses = itertools.count(1)


@pytest.fixture
async def bot(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> AsyncIterator[BotUnderTest]:
    """The bot streaming by edits, with one configured admin."""
    _environment(monkeypatch, fake_slack, fake_model, redis_url)
    async with running_bot() as running:
        yield running


def _environment(monkeypatch: pytest.MonkeyPatch, slack: FakeSlack, model: FakeModel, redis_url: str) -> None:
    bot_environment(
        monkeypatch,
        slack,
        model,
        redis_url,
        SLACK_STREAMING="edit",
        ADMIN_USER_IDS=ADMIN,
        SLACK_EDITS_PER_MINUTE="600",  # interim edits are not held back by the budget here
    )


def slow_reply() -> Reply:
    return Reply(text=SLOW, chunk_chars=len(WORDS[0]), delay=0.03, prompt_tokens=1000, completion_tokens=1000)


async def press(
    bot: BotUnderTest, slack: FakeSlack, action_id: str, value: str, user: str, where: FakeMessage
) -> str:
    """Press a button of ``where`` as ``user`` (a signed ``block_actions`` payload); returns the key of
    the press's response URL."""
    key = f"press{next(_presses)}"
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "unused-verification-token",
        "container": {
            "type": "message",
            "message_ts": where.ts,
            "channel_id": where.channel,
            "is_ephemeral": False,
            "thread_ts": where.thread_ts,
        },
        "trigger_id": "1337.42.fake-trigger",
        "team": {"id": TEAM_ID, "domain": "test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": where.channel, "name": "general"},
        "message": {"type": "message", "ts": where.ts, "user": BOT_USER_ID, "bot_id": BOT_ID, "text": "…"},
        "state": {"values": {}},
        "response_url": slack.response_url(key),
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "text": {"type": "plain_text", "text": "…"},
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **signed_headers(SIGNING_SECRET, body)}
    response = await bot.http.post(f"{bot.url}/slack/events", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return key


def buttons(blocks: Any) -> dict[str, str]:
    """The buttons of a message's blocks: action id -> value."""
    return {
        element["action_id"]: element["value"]
        for block in blocks or ()
        if block.get("type") == "actions"
        for element in block["elements"]
    }


def answers(slack: FakeSlack, thread_ts: str, channel: str = "C0TEST") -> list[FakeMessage]:
    return slack.messages_in(channel, thread_ts)


def finished(slack: FakeSlack, thread_ts: str, channel: str = "C0TEST") -> bool:
    """True once the reply's last message shows the feedback buttons of a finished answer."""
    shown = answers(slack, thread_ts, channel)
    return bool(shown) and "glmbot_feedback_good" in buttons(shown[-1].blocks)


def ephemeral(slack: FakeSlack, key: str) -> str | None:
    """What the bot told the presser through the press's response URL (ephemerally), if anything."""
    for post in slack.response_posts:
        if post.key == key:
            assert post.body.get("response_type") == "ephemeral"
            assert post.body.get("replace_original") is False
            return str(post.body["text"])
    return None


async def streaming_reply(
    bot: BotUnderTest, slack: FakeSlack, model: FakeModel
) -> tuple[str, FakeMessage, str]:
    """Start a slow reply to a mention; once a few words streamed: its thread, its message and the value
    of its Stop button (as the placeholder carried it)."""
    model.script(slow_reply())
    event = mention("tell me a long story")
    earlier = len(model.requests)
    await bot.send_event(event)
    await slack.wait_for(lambda: len(model.requests) > earlier and model.requests[-1].chunks_sent >= 5)
    [placeholder] = [c for c in slack.calls_to("chat.postMessage") if c.body.get("thread_ts") == event["ts"]]
    return event["ts"], answers(slack, event["ts"])[0], _buttons_of(placeholder)[STOP_ACTION]


async def spent(redis_url: str, user: str) -> tuple[int, int]:
    """``(spent, held)`` picodollars of ``user`` this period, read from the ledger."""
    store = open_store(redis_url)
    try:
        status = await quota_ledger(load_settings(), store).status(user)
    finally:
        await store.aclose()
    return status.spent_pico, status.reserved_pico


async def work_left(redis_url: str) -> int:
    store = open_store(redis_url)
    try:
        return int(await store.xlen(f"glmbot:{{work:{TEAM_ID}}}:replies"))
    finally:
        await store.aclose()


async def cancelled_after(model: FakeModel, pressed_at: float) -> float:
    """Seconds from ``pressed_at`` until the fake model saw its stream's connection closed (the fake
    notices at its next write, 0.03 s at most later); fails after 3 s."""
    while model.aborted_streams == 0:
        assert time.monotonic() - pressed_at < 3.0, "the model request was not cancelled"
        await asyncio.sleep(0.005)
    return time.monotonic() - pressed_at


async def poll(probe: Callable[[], Awaitable[object]], expected: object, within: float = 10.0) -> None:
    """Await ``probe()`` every 50 ms until it returns ``expected``."""
    deadline = time.monotonic() + within
    while (value := await probe()) != expected:
        assert time.monotonic() < deadline, f"still {value!r}, expected {expected!r}"
        await asyncio.sleep(0.05)


async def test_asker_stops_a_streaming_reply(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """The asker's Stop cancels the model request within a second; the message keeps the text so far with
    a note; the asker pays for the prompt and the words that streamed, less than the whole reply."""
    thread, reply, stop = await streaming_reply(bot, fake_slack, fake_model)
    pressed_at = time.monotonic()
    first = await press(bot, fake_slack, STOP_ACTION, stop, ASKER, reply)
    second = await press(bot, fake_slack, STOP_ACTION, stop, ASKER, reply)  # a double click: harmless
    assert await cancelled_after(fake_model, pressed_at) < 1.0
    call = fake_model.requests[0]
    assert not call.completed
    assert call.chunks_sent < len(WORDS)

    await fake_slack.wait_for(lambda: "Stopped by" in answers(fake_slack, thread)[-1].shown)
    [final] = answers(fake_slack, thread)
    shown = final.shown
    text, note = shown.rsplit("\n\n", 1)
    assert note == "*(Stopped by @u0human1.)*"  # the note, in italics
    assert text.strip()
    assert SLOW.startswith(text.strip())
    assert len(text.strip()) < len(SLOW.strip())
    assert TYPING_CURSOR.strip() not in shown
    assert STOP_ACTION not in buttons(final.blocks)
    assert set(buttons(final.blocks)) == {"glmbot_feedback_good", "glmbot_feedback_bad"}
    assert ephemeral(fake_slack, first) is None
    assert ephemeral(fake_slack, second) is None

    spent_pico, held = await spent(redis_url, ASKER)
    assert held == 0
    assert 0 < spent_pico < FULL_COST
    await poll(lambda: work_left(redis_url), 0)
    metrics = (await bot.http.get(f"{bot.url}/metrics")).text
    assert 'glmbot_replies_total{outcome="stopped"} 1.0' in metrics
    # The next press finds the reply finished.
    late = await press(bot, fake_slack, STOP_ACTION, stop, ASKER, final)
    await fake_slack.wait_for(lambda: ephemeral(fake_slack, late) is not None)
    assert ephemeral(fake_slack, late) == "That answer has already finished."


async def test_only_the_asker_or_an_admin_may_stop(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """Someone else's Stop is refused ephemerally and the reply completes; an admin's Stop works."""
    thread, reply, stop = await streaming_reply(bot, fake_slack, fake_model)
    refused = await press(bot, fake_slack, STOP_ACTION, stop, OTHER, reply)
    await fake_slack.wait_for(lambda: ephemeral(fake_slack, refused) is not None)
    assert (
        ephemeral(fake_slack, refused)
        == "Only the person who asked, or a glmbot admin, can stop this answer."
    )
    await fake_slack.wait_for(lambda: finished(fake_slack, thread), timeout=15)
    assert answers(fake_slack, thread)[-1].shown.strip() == SLOW.strip()
    assert fake_model.requests[0].completed
    assert fake_model.aborted_streams == 0
    assert await spent(redis_url, ASKER) == (FULL_COST, 0)

    thread, reply, stop = await streaming_reply(bot, fake_slack, fake_model)
    await press(bot, fake_slack, STOP_ACTION, stop, ADMIN, reply)
    await fake_slack.wait_for(lambda: "Stopped by @uadmin1." in answers(fake_slack, thread)[-1].shown)
    assert fake_model.aborted_streams == 1


async def test_stop_pressed_on_another_replica(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """The press reaches a replica that is not running the reply: the cancel travels through Redis."""
    _environment(monkeypatch, fake_slack, fake_model, redis_url)
    async with running_bot() as streaming:
        thread, reply, stop = await streaming_reply(streaming, fake_slack, fake_model)
        # The second replica starts once the first one owns the work, so it cannot be the one streaming.
        async with running_bot() as other:
            pressed_at = time.monotonic()
            await press(other, fake_slack, STOP_ACTION, stop, ASKER, reply)
            assert await cancelled_after(fake_model, pressed_at) < 1.0
            await fake_slack.wait_for(
                lambda: "Stopped by @u0human1." in answers(fake_slack, thread)[-1].shown
            )
        assert len(fake_model.requests) == 1
        await poll(lambda: work_left(redis_url), 0)


async def test_stop_button_only_while_streaming(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """The placeholder and every interim edit carry the Stop button; the final edit does not."""
    fake_model.script(Reply(text=SLOW[:400], chunk_chars=40, delay=0.25))
    event = mention("a medium answer")
    await bot.send_event(event)
    await fake_slack.wait_for(lambda: finished(fake_slack, event["ts"]))
    assert answers(fake_slack, event["ts"])[-1].shown.strip() == SLOW[:400].strip()
    ts = answers(fake_slack, event["ts"])[0].ts
    [placeholder] = [
        c for c in fake_slack.calls_to("chat.postMessage") if c.body.get("thread_ts") == event["ts"]
    ]
    edits = [c for c in fake_slack.calls_to("chat.update") if c.body.get("ts") == ts]
    interim, final = edits[:-1], edits[-1]
    assert interim, "expected interim edits"
    for call in [placeholder, *interim]:
        assert STOP_ACTION in _buttons_of(call), call.body
        assert call.shown.strip()  # the words still show next to the button
    assert all(c.shown.endswith(TYPING_CURSOR) for c in interim)
    assert STOP_ACTION not in _buttons_of(final)
    assert "Thinking" in placeholder.shown


def _buttons_of(call: SlackCall) -> dict[str, str]:
    blocks = call.body.get("blocks")
    return buttons(json.loads(blocks) if isinstance(blocks, str) else blocks)


async def test_feedback_is_counted_and_logged(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """👍/👎 on the last message of a finished answer (DM and a long thread answer) are counted in
    /metrics and logged with the reply's ids, never its text; the presser is thanked ephemerally."""
    dm = message("quick one", channel="D0DM", channel_type="im")
    await bot.send_event(dm)
    await fake_slack.wait_for(lambda: finished(fake_slack, dm["ts"], "D0DM"))
    [dm_answer] = fake_slack.messages_in("D0DM", dm["ts"])
    long_text = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum " * 40 for i in range(14))
    fake_model.script(Reply(text=long_text, chunk_chars=2000))
    event = mention("a long one")
    await bot.send_event(event)
    await fake_slack.wait_for(lambda: finished(fake_slack, event["ts"]))
    *earlier, last = answers(fake_slack, event["ts"])
    assert earlier, "the long answer takes more than one message"
    assert all(not buttons(m.blocks) for m in earlier)
    feedback = buttons(last.blocks)
    assert set(feedback) == {"glmbot_feedback_good", "glmbot_feedback_bad"}

    with capture_logs() as logs:
        keys = [
            await press(
                bot,
                fake_slack,
                "glmbot_feedback_good",
                buttons(dm_answer.blocks)["glmbot_feedback_good"],
                ASKER,
                dm_answer,
            ),
            await press(bot, fake_slack, "glmbot_feedback_bad", feedback["glmbot_feedback_bad"], OTHER, last),
        ]
        await fake_slack.wait_for(lambda: all(ephemeral(fake_slack, key) for key in keys))
    assert [ephemeral(fake_slack, key) for key in keys] == ["Thanks for the feedback!"] * 2
    metrics = (await bot.http.get(f"{bot.url}/metrics")).text
    assert 'glmbot_feedback_total{value="good"} 1.0' in metrics
    assert 'glmbot_feedback_total{value="bad"} 1.0' in metrics
    lines = [line for line in logs if line["event"] == "reply_feedback"]
    assert [(line["value"], line["channel"], line["message_ts"], line["user"]) for line in lines] == [
        ("good", "D0DM", dm_answer.ts, ASKER),
        ("bad", "C0TEST", last.ts, OTHER),
    ]
    assert lines[1]["reply_to"] == event["ts"]
    assert lines[1]["team"] == TEAM_ID
    assert not any("lorem" in json.dumps(line) or "quick one" in json.dumps(line) for line in logs)


async def test_unsigned_press_is_refused(bot: BotUnderTest) -> None:
    """A button press is signature-checked like an event: a bad signature gets 401."""
    body = urlencode({"payload": json.dumps({"type": "block_actions", "actions": []})}).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        **signed_headers("not-the-secret", body),
    }
    response = await bot.http.post(f"{bot.url}/slack/events", content=body, headers=headers)
    assert response.status_code == 401


async def test_stop_during_a_native_stream(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """A native stream starts with the Stop button (a ``blocks`` chunk); pressing it cancels the model
    request within a second and the stream ends with the text so far and the note."""
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url, SLACK_STREAMING="native")
    async with running_bot() as native:
        fake_model.script(slow_reply())
        event = mention("tell me a long story")
        await native.send_event(event)
        await fake_slack.wait_for(
            lambda: bool(fake_model.requests) and fake_model.requests[-1].chunks_sent >= 5
        )
        [start] = fake_slack.calls_to("chat.startStream")
        [chunk] = start.body["chunks"]
        stop = buttons(chunk["blocks"])[STOP_ACTION]
        [stream] = answers(fake_slack, event["ts"])
        pressed_at = time.monotonic()
        await press(native, fake_slack, STOP_ACTION, stop, ASKER, stream)
        assert await cancelled_after(fake_model, pressed_at) < 1.0
        await fake_slack.wait_for(lambda: all(s.stopped for s in fake_slack.streams.streams.values()))
    final = "".join(next(iter(fake_slack.streams.streams.values())).appends)
    assert "Stopped by" in final
    assert len(final) < len(SLOW) + 40
