"""``glmbot serve`` in Socket Mode: a real subprocess with SLACK_APP_TOKEN, on FakeSlack's websocket."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable

import httpx

from tests.fakes.bot_env import fake_backed_settings
from tests.fakes.bot_process import free_port, start_bot, stop_bot, wait_healthy
from tests.fakes.constants import BOT_TOKEN, MODEL_API_KEY
from tests.fakes.model_api import FakeModel
from tests.fakes.signing import event_body
from tests.fakes.slack_api import FakeSlack
from tests.fakes.socket_mode import APP_TOKEN
from tests.scenario.harness import message

REPLY_SECONDS = 15.0


async def test_serve_socket_mode_answers_a_dm_and_exits_cleanly(
    fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """With SLACK_APP_TOKEN, serve takes a DM over Socket Mode, acks and answers it, exits 0 on SIGTERM."""
    port = free_port()
    settings = fake_backed_settings(fake_slack, fake_model, redis_url)
    del settings["SLACK_SIGNING_SECRET"]  # Socket Mode does not need it
    env = {**os.environ, **settings, "SLACK_APP_TOKEN": APP_TOKEN, "PORT": str(port)}
    process = await start_bot(["serve"], env)
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            await wait_healthy(http, f"http://127.0.0.1:{port}/healthz", process)
            await fake_slack.wait_for(lambda: fake_slack.socket_connected, 30, "socket connected")
            events_endpoint = await http.post(f"http://127.0.0.1:{port}/slack/events", content=b"{}")
            assert events_endpoint.status_code == 404  # HTTP mode's endpoint is not served
            health = await _health_once(http, port, lambda body: body.get("slack") == "connected")
            assert health == {"status": "ok", "slack": "connected"}
        body = json.loads(
            event_body(message("hi over the socket", channel="D0DM", channel_type="im"), "EvSock1")
        )
        envelope_id = await fake_slack.push_event(body)
        await fake_slack.wait_for(
            lambda: envelope_id in fake_slack.socket_acks, REPLY_SECONDS, "envelope acked"
        )
        await fake_slack.wait_for(
            lambda: [m.text for m in fake_slack.messages_in("D0DM")] == ["Hello from the fake model."],
            REPLY_SECONDS,
            "reply posted",
        )
    finally:
        logs = await stop_bot(process)
    assert process.returncode == 0, logs
    assert fake_slack.socket_acks == [envelope_id]
    # One by the start-up check of the app token (its URL unused), one by the connection itself.
    assert len(fake_slack.calls_to("apps.connections.open")) == 2
    assert fake_slack.socket.connections == 1
    await fake_slack.wait_for(lambda: not fake_slack.socket_connected, 5, "websocket closed by the bot")
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(r["event"] == "serving" and r.get("mode") == "socket" for r in records), logs
    for secret in (APP_TOKEN, BOT_TOKEN, MODEL_API_KEY):
        assert secret not in logs


async def test_sigterm_stops_a_bot_that_cannot_connect(
    fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """Slack failing every connection attempt (HTTP 500) keeps slack_sdk retrying; SIGTERM still stops the
    bot promptly. (A refused app token stops serve at start instead: test_cli.)"""
    port = free_port()
    settings = fake_backed_settings(fake_slack, fake_model, redis_url)
    fake_slack.fail_next("apps.connections.open", status=500, times=10_000)
    env = {**os.environ, **settings, "SLACK_APP_TOKEN": APP_TOKEN, "PORT": str(port)}
    process = await start_bot(["serve"], env)
    async with httpx.AsyncClient(timeout=5) as http:
        await wait_healthy(http, f"http://127.0.0.1:{port}/healthz", process)
        await fake_slack.wait_for(
            lambda: len(fake_slack.calls_to("apps.connections.open")) >= 2, 30, "a connect attempt"
        )
        # Still 200 (the store answers: a Slack outage must not restart every replica), but it says so.
        response = await http.get(f"http://127.0.0.1:{port}/healthz")
        assert (response.status_code, response.json()) == (200, {"status": "ok", "slack": "disconnected"})
    await stop_bot(process, seconds=10)
    assert process.returncode == 0
    assert not fake_slack.socket_connected


async def _health_once(
    http: httpx.AsyncClient, port: int, wanted: Callable[[dict[str, str]], bool]
) -> object:
    """``/healthz``'s body once ``wanted`` holds for it (polled for at most 10 s), else the last body."""
    body: dict[str, str] = {}
    for _ in range(200):
        body = (await http.get(f"http://127.0.0.1:{port}/healthz")).json()
        if wanted(body):
            break
        await asyncio.sleep(0.05)
    return body
