"""Quick checks that the test harness itself works: real Redis, fake Slack, fake model, signing."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes import BOT_TOKEN, MODEL_API_KEY, SIGNING_SECRET
from tests.fakes.model_api import DEFAULT_TEXT, FakeModel, Reply
from tests.fakes.redis_server import RedisServer
from tests.fakes.signing import event_body, signed_headers, slash_command_body
from tests.fakes.slack_api import BOT_USER_ID, TEAM_ID, FakeSlack


def test_redis_ping_and_private_port(redis_url: str, redis_server: RedisServer) -> None:
    """The session redis-server answers PING on its own loopback port, not 6379."""
    assert redis_server.port != 6379
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping()
    finally:
        client.close()


@pytest.mark.parametrize("step", [1, 2])
def test_redis_flush_isolation(redis_url: str, step: int) -> None:
    """Each test starts with an empty database: a key written by the first run is gone in the second."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert client.dbsize() == 0
        client.set("leftover", str(step))
    finally:
        client.close()


def test_redis_command_count(redis_url: str, redis_server: RedisServer) -> None:
    """command_count() counts the commands others send and not the harness's own INFO calls."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.ping()
        before = redis_server.command_count()
        client.set("k", "v")
        client.get("k")
        assert redis_server.command_count() - before == 2
        assert redis_server.command_count() - before == 2
    finally:
        client.close()


def test_env_is_isolated(tmp_path: Path) -> None:
    """Bot settings are removed from the environment and the cwd is an empty temp dir."""
    assert not any(k.upper().startswith(("SLACK_", "GLM_")) or k.upper() == "REDIS_URL" for k in os.environ)
    assert Path.cwd().is_relative_to(tmp_path)
    assert list(Path.cwd().iterdir()) == []


async def test_fake_slack_records_post_and_update(fake_slack: FakeSlack) -> None:
    """A real AsyncWebClient posts and edits a threaded message; the fake keeps the text history."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    auth = await client.auth_test()
    assert auth["user_id"] == BOT_USER_ID
    assert auth["team_id"] == TEAM_ID

    posted = await client.chat_postMessage(channel="C1", thread_ts="1699999999.000001", text="thinking…")
    ts = posted["ts"]
    await client.chat_update(channel="C1", ts=ts, text="Hello")
    await client.chat_update(channel="C1", ts=ts, text="Hello world")
    second = await client.chat_postMessage(channel="C1", text="top level")
    assert float(second["ts"]) > float(ts)

    await fake_slack.wait_for(lambda: len(fake_slack.calls_to("chat.update")) == 2)
    msg = fake_slack.messages[ts]
    assert msg.text == "Hello world"
    assert msg.history == ["thinking…", "Hello", "Hello world"]
    assert [m.ts for m in fake_slack.messages_in("C1", thread_ts="1699999999.000001")] == [ts]
    assert [m.text for m in fake_slack.messages_in("C1")] == ["Hello world", "top level"]
    assert fake_slack.calls_to("chat.postMessage")[0].body["thread_ts"] == "1699999999.000001"

    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C1", ts="1.000000", text="x")
    assert err.value.response["error"] == "message_not_found"


async def test_fake_slack_form_get_and_bad_token(fake_slack: FakeSlack) -> None:
    """users.info (GET query) and files.info work; a wrong token gets invalid_auth."""
    fake_slack.admins.add("UADMIN")
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    assert (await client.users_info(user="UADMIN"))["user"]["is_admin"] is True
    assert (await client.users_info(user="UOTHER"))["user"]["is_admin"] is False
    with pytest.raises(SlackApiError) as missing:
        await client.files_info(file="FNOPE")
    assert missing.value.response["error"] == "file_not_found"

    bad = AsyncWebClient(token="xoxb-wrong", base_url=fake_slack.api_url)
    with pytest.raises(SlackApiError) as err:
        await bad.chat_postMessage(channel="C1", text="hi")
    assert err.value.response["error"] == "invalid_auth"
    assert fake_slack.messages == {}


async def test_fake_slack_scripted_faults(fake_slack: FakeSlack) -> None:
    """fail_next answers HTTP 429 with Retry-After once; error_next answers ok=false; then normal again."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=3)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="hi")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "3"
    assert err.value.response["error"] == "ratelimited"

    fake_slack.error_next("chat.postMessage", error="msg_too_long", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as err2:
            await client.chat_postMessage(channel="C1", text="hi")
        assert err2.value.response["error"] == "msg_too_long"

    ok = await client.chat_postMessage(channel="C1", text="hi")
    assert ok["ok"] is True
    assert len(fake_slack.calls_to("chat.postMessage")) == 4
    assert len(fake_slack.messages) == 1


async def test_fake_slack_file_download_needs_token(fake_slack: FakeSlack) -> None:
    """Private files are served with the bot token and answer the HTML login page without it."""
    file_obj = fake_slack.add_file("F1", b"\x89PNG fake", name="cat.png", mimetype="image/png")
    async with httpx.AsyncClient() as http:
        good = await http.get(file_obj["url_private"], headers={"Authorization": f"Bearer {BOT_TOKEN}"})
        anon = await http.get(file_obj["url_private"])
    assert good.status_code == 200
    assert good.content == b"\x89PNG fake"
    assert good.headers["content-type"] == "image/png"
    assert anon.status_code == 200
    assert anon.headers["content-type"].startswith("text/html")
    assert fake_slack.download_auth_headers == [f"Bearer {BOT_TOKEN}", None]

    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    assert (await client.files_info(file="F1"))["file"]["mimetype"] == "image/png"


async def test_fake_slack_wait_for_times_out(fake_slack: FakeSlack) -> None:
    """wait_for raises AssertionError with a description once the deadline passes."""
    with pytest.raises(AssertionError, match="FakeSlack saw 0 call"):
        await fake_slack.wait_for(lambda: False, timeout=0.05)


async def _read_sse(response: httpx.Response) -> list[Any]:
    events: list[Any] = []
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


async def test_fake_model_streams_scripted_reply(fake_model: FakeModel) -> None:
    """A scripted reply streams in chunk_chars pieces, then finish, then a usage chunk, then [DONE]."""
    fake_model.script(Reply(text="abcdefghij", chunk_chars=4, prompt_tokens=11))
    messages = [{"role": "user", "content": "hi"}]
    async with (
        httpx.AsyncClient(base_url=fake_model.base_url) as http,
        http.stream(
            "POST",
            "/chat/completions",
            json={"model": "glm-4.5v", "messages": messages, "stream": True},
            headers={"Authorization": f"Bearer {MODEL_API_KEY}"},
        ) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = await _read_sse(resp)

    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert pieces[:3] == ["abcd", "efgh", "ij"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}

    assert len(fake_model.requests) == 1
    assert fake_model.requests[0].messages == messages
    assert fake_model.requests[0].headers["authorization"] == f"Bearer {MODEL_API_KEY}"
    assert fake_model.requests[0].completed


async def test_fake_model_default_failures_and_auth(fake_model: FakeModel) -> None:
    """Empty script -> default reply; scripted 429 carries Retry-After; mid-stream error; wrong key -> 401."""
    fake_model.script(Reply(status=429), Reply(text="0123456789", chunk_chars=2, fail_after_chunks=2))
    body = {"model": "glm-4.5v", "messages": [{"role": "user", "content": "x"}], "stream": True}
    auth = {"Authorization": f"Bearer {MODEL_API_KEY}"}
    async with httpx.AsyncClient(base_url=fake_model.base_url) as http:
        limited = await http.post("/chat/completions", json=body, headers=auth)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "0"
        assert limited.json()["error"]["code"] == 429

        async with http.stream("POST", "/chat/completions", json=body, headers=auth) as resp:
            events = await _read_sse(resp)
        assert [e["choices"][0]["delta"]["content"] for e in events[:2]] == ["01", "23"]
        assert events[2] == {"error": {"message": "scripted mid-stream failure"}}
        assert len(events) == 3

        async with http.stream("POST", "/chat/completions", json=body, headers=auth) as resp:
            events = await _read_sse(resp)
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"])
        assert text == DEFAULT_TEXT

        denied = await http.post("/chat/completions", json=body, headers={"Authorization": "Bearer nope"})
        assert denied.status_code == 401
    assert len(fake_model.requests) == 4


async def test_fake_model_hold_controls_timing(fake_model: FakeModel) -> None:
    """A reply with hold= does not start until the test sets the event."""
    gate = asyncio.Event()
    fake_model.script(Reply(text="late", hold=gate))
    body = {"model": "glm-4.5v", "messages": [], "stream": False}
    async with httpx.AsyncClient(base_url=fake_model.base_url) as http:
        task = asyncio.create_task(
            http.post("/chat/completions", json=body, headers={"Authorization": f"Bearer {MODEL_API_KEY}"})
        )
        await fake_model.wait_for(lambda: len(fake_model.requests) == 1)
        assert not task.done()
        gate.set()
        resp = await asyncio.wait_for(task, timeout=10)
    assert resp.json()["choices"][0]["message"]["content"] == "late"


def test_signed_headers_verify_with_slack_sdk() -> None:
    """signed_headers output passes slack_sdk's SignatureVerifier; a wrong secret does not."""
    body = event_body({"type": "app_mention", "user": "U1", "text": "hi", "channel": "C1"}, "Ev1")
    headers = signed_headers(SIGNING_SECRET, body, retry_num=1)
    assert headers["X-Slack-Retry-Num"] == "1"
    assert headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert SignatureVerifier(SIGNING_SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)
    envelope = json.loads(body)
    assert envelope["type"] == "event_callback"
    assert envelope["authorizations"][0]["user_id"] == BOT_USER_ID

    form = slash_command_body("/glm", "usage", "U1")
    assert SignatureVerifier(SIGNING_SECRET).is_valid_request(form, signed_headers(SIGNING_SECRET, form))
    assert b"command=%2Fglm" in form
