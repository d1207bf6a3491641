"""The HTTP surface: signature checks, URL verification, health and metrics."""

from __future__ import annotations

import asyncio
import json
import time

from tests.fakes.constants import SIGNING_SECRET
from tests.fakes.model_api import FakeModel
from tests.fakes.signing import event_body, signed_headers
from tests.fakes.slack_api import FakeSlack
from tests.scenario.harness import BotUnderTest, bot_environment, mention, message, running_bot


async def test_bad_or_stale_signature_is_401_and_does_nothing(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """Wrong secret, tampered body and a timestamp over 5 minutes old are refused; nothing runs."""
    body = event_body(mention("hi"), "EvBad1")
    wrong_secret = await bot.post_raw(body, signed_headers("not-the-secret", body))
    tampered = await bot.post_raw(body.replace(b"hi", b"yo"), signed_headers(SIGNING_SECRET, body))
    stale = await bot.post_raw(body, signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) - 600))
    unsigned = await bot.post_raw(body, {})
    assert [r.status_code for r in (wrong_secret, tampered, stale, unsigned)] == [401, 401, 401, 401]
    await bot.send_event(message("probe", channel="D0DM", channel_type="im"))
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 1)
    assert fake_model.requests[0].messages[-1]["content"] == "probe"
    assert [c.body["channel"] for c in fake_slack.calls_to("chat.postMessage")] == ["D0DM"]


async def test_url_verification_echoes_challenge(bot: BotUnderTest) -> None:
    """Slack's URL verification handshake gets its challenge back."""
    body = json.dumps({"type": "url_verification", "token": "x", "challenge": "abc123"}).encode()
    response = await bot.post_raw(body, signed_headers(SIGNING_SECRET, body))
    assert response.status_code == 200
    assert "abc123" in response.text


async def test_ack_comes_before_the_answer(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """The event is acknowledged while the model is still holding its answer back."""
    from asyncio import Event

    from tests.fakes.model_api import Reply

    hold = Event()
    fake_model.script(Reply(text="late answer", hold=hold))
    response = await bot.send_event(mention("slow one"))
    assert response.status_code == 200
    await fake_slack.wait_for(lambda: len(fake_slack.calls_to("chat.postMessage")) == 1)
    assert fake_slack.calls_to("chat.update") == []
    hold.set()
    await fake_slack.wait_for(lambda: any(m.text == "late answer" for m in fake_slack.messages.values()))


async def test_healthz_and_metrics(bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel) -> None:
    """/healthz answers 200 with JSON while the store answers; /metrics is Prometheus text."""
    health = await bot.http.get(f"{bot.url}/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    await bot.send_event(message("count me", channel="D0DM", channel_type="im"))
    await fake_slack.wait_for(
        lambda: any(m.text == "Hello from the fake model." for m in fake_slack.messages.values())
    )
    # The reply is counted once delivered and remembered, a moment after its final edit.
    ok_line = 'glmbot_replies_total{outcome="ok"} 1.0'
    for _ in range(100):
        metrics = await bot.http.get(f"{bot.url}/metrics")
        if ok_line in metrics.text:
            break
        await asyncio.sleep(0.05)
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert ok_line in metrics.text


async def test_healthz_503_when_store_down(monkeypatch, fake_slack: FakeSlack, fake_model: FakeModel) -> None:
    """With Redis unreachable, /healthz answers 503."""
    bot_environment(monkeypatch, fake_slack, fake_model, "redis://127.0.0.1:9/0")
    async with running_bot() as bot:
        health = await bot.http.get(f"{bot.url}/healthz")
    assert health.status_code == 503
