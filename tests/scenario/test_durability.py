"""Through crashes: a bot process killed mid-reply (SIGKILL) is replaced, and its reply is resumed.

Real subprocesses (``python -m bot serve --http``) on one real redis-server, the fake Slack and model.
Marked ``slow``: they start several processes and wait out a work lease.
"""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from bot.store.connection import open_store
from bot.work.queue import stream_key
from handlers.reply.streamer import TYPING_CURSOR
from tests.fakes.bot_env import fake_backed_settings
from tests.fakes.bot_process import free_port, start_bot, stop_bot, wait_healthy
from tests.fakes.constants import SIGNING_SECRET, TEAM_ID
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.signing import event_body, signed_headers
from tests.fakes.slack_api import FakeSlack
from tests.rendered import slack_text
from tests.scenario.harness import mention

pytestmark = pytest.mark.slow

LEASE_SECONDS = "2"
SLOW_ANSWER = "This answer streams slowly, word by word, " * 6
FULL_ANSWER = "The complete answer, written by the replica that took over."


async def _start(env: dict[str, str], http: httpx.AsyncClient) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    process = await start_bot(["serve", "--http", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}"
    await wait_healthy(http, f"{url}/healthz", process)
    return process, url


async def _send(http: httpx.AsyncClient, url: str, event: dict[str, object], event_id: str) -> None:
    body = event_body(event, event_id)
    headers = {"Content-Type": "application/json", **signed_headers(SIGNING_SECRET, body)}
    response = await http.post(f"{url}/slack/events", content=body, headers=headers)
    assert response.status_code == 200


async def test_killed_reply_is_resumed_on_the_same_placeholder(
    fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """kill -9 mid-reply: another process resumes it on the same message, once, and settles the money."""
    env = {
        **os.environ,
        **fake_backed_settings(fake_slack, fake_model, redis_url),
        "WORK_LEASE_SECONDS": LEASE_SECONDS,
        "STREAM_EDIT_INTERVAL": "0.2",
    }
    fake_model.script(Reply(text=SLOW_ANSWER, chunk_chars=6, delay=0.2), Reply(text=FULL_ANSWER))
    event = mention("please answer slowly")
    async with httpx.AsyncClient(timeout=10) as http:
        first, url = await _start(env, http)
        await _send(http, url, event, "EvKill1")
        await fake_slack.wait_for(
            lambda: any(TYPING_CURSOR in m.shown and len(m.text) > 20 for m in fake_slack.messages.values()),
            timeout=20,
        )
        first.kill()
        await first.wait()
        # Slack redelivers the event it never saw acknowledged in time: it must not start a second reply.
        second, url = await _start(env, http)
        await _send(http, url, event, "EvKill1")
        try:
            await fake_slack.wait_for(
                lambda: (
                    [m.text for m in fake_slack.messages_in("C0TEST", event["ts"])]
                    == [slack_text(FULL_ANSWER)]
                ),
                timeout=30,
            )
        finally:
            await stop_bot(second)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # one placeholder, resumed, never a second
    assert len(fake_model.requests) == 2
    store = open_store(redis_url)
    try:
        reservations = await store.hgetall("glmbot:{quota:U0HUMAN1}:reservations")
        spend = await store.hgetall(
            next(iter([k async for k in store.scan_iter("glmbot:{quota:U0HUMAN1}:spend:*")]))
        )
        assert await store.xlen(stream_key(TEAM_ID)) == 0
    finally:
        await store.aclose()
    assert reservations == {}
    assert spend["replies"] == "2"  # the dead attempt was settled for what it streamed, then the answer
    assert int(spend["spent"]) > 0
