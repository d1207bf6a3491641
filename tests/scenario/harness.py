"""Run the real bot (HTTP mode, real Redis, fake Slack and model servers) and talk to it like Slack does."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from bot.app import open_core
from bot.settings import load_settings
from handlers.front_end import build_front_end
from handlers.server import build_web_app, start_web
from tests.fakes.bot_env import fake_backed_settings
from tests.fakes.constants import SIGNING_SECRET
from tests.fakes.model_api import FakeModel
from tests.fakes.signing import event_body, signed_headers, slash_command_body
from tests.fakes.slack_api import FakeSlack

_event_ids = itertools.count(1)
_message_ts = itertools.count(1)


def next_ts() -> str:
    """A fresh Slack-style message timestamp."""
    return f"1800000000.{next(_message_ts):06d}"


@dataclass
class BotUnderTest:
    """The running bot's address, and helpers that send it signed Slack requests."""

    url: str
    http: httpx.AsyncClient
    runner: web.AppRunner

    async def post_raw(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST bytes to /slack/events with the given headers."""
        headers = {"Content-Type": "application/json", **headers}
        return await self.http.post(f"{self.url}/slack/events", content=body, headers=headers)

    async def slash_command(self, slack: FakeSlack, text: str, user: str) -> str:
        """Run ``/glm-quota text`` as ``user``; returns what the bot answered on the response URL."""
        key = f"cmd{next(_event_ids)}"
        body = slash_command_body("/glm-quota", text, user, response_url=slack.response_url(key))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            **signed_headers(SIGNING_SECRET, body),
        }
        response = await self.http.post(f"{self.url}/slack/events", content=body, headers=headers)
        assert response.status_code == 200, response.text
        await slack.wait_for(lambda: any(post.key == key for post in slack.response_posts))
        post = next(post for post in slack.response_posts if post.key == key)
        assert post.body.get("response_type", "ephemeral") == "ephemeral"
        return str(post.body["text"])

    async def send_event(
        self, event: dict[str, Any], event_id: str | None = None, retry_num: int | None = None
    ) -> httpx.Response:
        """Send one signed Events API request; returns the HTTP response (the ack)."""
        body = event_body(event, event_id or f"Ev{next(_event_ids):08d}")
        response = await self.post_raw(body, signed_headers(SIGNING_SECRET, body, retry_num=retry_num))
        assert response.status_code == 200, response.text
        return response


def bot_environment(
    monkeypatch: pytest.MonkeyPatch, slack: FakeSlack, model: FakeModel, redis_url: str, **extra: str
) -> None:
    """Point the bot's settings at the fakes and the test Redis."""
    values = {
        **fake_backed_settings(slack, model, redis_url),
        "STREAM_EDIT_INTERVAL": "0.2",
        # No SLACK_FILE_HOSTS: the fake Slack serves files where it serves the API (http on loopback),
        # which the default file hosts allow, as for a Slack-compatible gateway.
        **extra,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@asynccontextmanager
async def running_bot() -> AsyncIterator[BotUnderTest]:
    """Start the bot from the environment's settings on a free loopback port; stop it on exit."""
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
            await front.runner.stop(drain_seconds=5)
            await runner.cleanup()


def mention(
    text: str, channel: str = "C0TEST", thread_ts: str | None = None, user: str = "U0HUMAN1", **extra: Any
) -> dict[str, Any]:
    """An ``app_mention`` event from a person."""
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": f"<@UBOT0001> {text}",
        "ts": next_ts(),
        "channel": channel,
        "event_ts": "0",
        **extra,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message(
    text: str,
    channel: str = "C0TEST",
    channel_type: str = "channel",
    thread_ts: str | None = None,
    user: str = "U0HUMAN1",
    **extra: Any,
) -> dict[str, Any]:
    """A ``message`` event."""
    event: dict[str, Any] = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": next_ts(),
        "channel": channel,
        "channel_type": channel_type,
        "event_ts": "0",
        **extra,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event
