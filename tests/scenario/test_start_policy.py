"""Money survives memory pressure: the real ``glmbot`` refuses an evicting Redis, and images can live in a
Redis of their own while money stays in the main one."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.bot_env import fake_backed_settings
from tests.fakes.bot_process import free_port, start_bot, stop_bot, wait_healthy
from tests.fakes.constants import BOT_TOKEN, MODEL_API_KEY, SIGNING_SECRET
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.redis_server import RedisServer
from tests.fakes.slack_api import FakeSlack
from tests.scenario.harness import bot_environment, mention, message, running_bot
from tests.scenario.test_images import finished, png

EXIT_SECONDS = 60


@pytest.fixture(scope="module")
def lru_server() -> Iterator[RedisServer]:
    """A redis-server started as a cache would be: allkeys-lru, with a memory limit."""
    with RedisServer(extra_args=("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")) as server:
        yield server


async def _exit_of(process: asyncio.subprocess.Process) -> tuple[int, str]:
    _out, err = await asyncio.wait_for(process.communicate(), timeout=EXIT_SECONDS)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_serve_refuses_to_start_on_an_evicting_redis(
    fake_slack: FakeSlack, fake_model: FakeModel, lru_server: RedisServer
) -> None:
    """serve against allkeys-lru: exit 2 and exactly one problem line naming the policy and the fix
    (its start-up checks), before the model is called or anything is posted."""
    env = {**os.environ, **fake_backed_settings(fake_slack, fake_model, lru_server.url)}
    code, err = await _exit_of(await start_bot(["serve", "--http", "--port", str(free_port())], env))
    assert code == 2
    assert err.splitlines() == [
        "glmbot: redis policy: maxmemory-policy is allkeys-lru: quota limits and spend may be evicted -> "
        "run `redis-cli CONFIG SET maxmemory-policy noeviction` and put `maxmemory-policy noeviction` in "
        "redis.conf (images may go to an evicting Redis of their own: REDIS_CACHE_URL)"
    ]
    assert [call.method for call in fake_slack.calls] == ["auth.test"]
    assert fake_model.requests == []


async def test_console_refuses_to_start_on_an_evicting_redis(
    fake_slack: FakeSlack, fake_model: FakeModel, lru_server: RedisServer
) -> None:
    """console against allkeys-lru: exit 2 and exactly one line naming the policy and the fix, before the
    model is called."""
    env = {**os.environ, **fake_backed_settings(fake_slack, fake_model, lru_server.url)}
    code, err = await _exit_of(await start_bot(["console"], env))
    assert code == 2
    assert err.splitlines() == [
        "glmbot: redis policy: maxmemory-policy is allkeys-lru: quota limits and spend may be evicted -> "
        "run `redis-cli CONFIG SET maxmemory-policy noeviction` and put `maxmemory-policy noeviction` in "
        "redis.conf (images may go to an evicting Redis of their own: REDIS_CACHE_URL)"
    ]
    assert fake_slack.calls == []
    assert fake_model.requests == []


async def test_starts_on_noeviction(fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str) -> None:
    """serve against noeviction (Redis's default) starts, serves /healthz, logs the policy, exits 0."""
    port = free_port()
    env = {**os.environ, **fake_backed_settings(fake_slack, fake_model, redis_url)}
    process = await start_bot(["serve", "--http", "--port", str(port)], env)
    async with httpx.AsyncClient(timeout=5) as http:
        await wait_healthy(http, f"http://127.0.0.1:{port}/healthz", process)
    err = await stop_bot(process)
    assert process.returncode == 0, err
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(log["event"] == "store_policy" and log["maxmemory_policy"] == "noeviction" for log in logs)
    # One start-up line with the effective settings, secrets only as set/unset.
    (config,) = [log for log in logs if log["event"] == "config"]
    assert config["mode"] == "http"
    assert config["port"] == port
    assert config["REDIS_URL"] == redis_url
    assert config["GLM_MODEL"] == "glm-4.5v"
    assert config["SLACK_BOT_TOKEN"] == "set"
    assert config["SLACK_APP_TOKEN"] == "unset"
    assert config["GLM_API_KEY"] == "set"
    for secret in (BOT_TOKEN, MODEL_API_KEY, SIGNING_SECRET):
        assert secret not in err
    # HTTP mode says what Slack needs to reach it, and that a laptop wants Socket Mode.
    (serving,) = [log for log in logs if log["event"] == "serving"]
    assert serving["events_path"] == "/slack/events"
    assert "set SLACK_APP_TOKEN" in serving["hint"]


async def test_images_live_in_the_cache_redis_and_money_in_the_main_one(
    monkeypatch: pytest.MonkeyPatch,
    fake_slack: FakeSlack,
    fake_model: FakeModel,
    redis_server: RedisServer,
    redis_url: str,
    lru_server: RedisServer,
) -> None:
    """With REDIS_CACHE_URL, the image (and the cache's index) goes to the cache Redis, the follow-up is
    answered from it without a second download, and spend, history and work stay in the main store."""
    lru_server.flush()
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url, REDIS_CACHE_URL=lru_server.url)
    fake_model.script(Reply(text="A cat."), Reply(text="Orange."))
    async with running_bot() as bot:
        first = mention("what animal?", files=[fake_slack.add_file("F1", png(640, 480), name="cat.png")])
        await bot.send_event(first)
        await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 1)
        await bot.send_event(message("what colour is it?", thread_ts=first["ts"]))
        await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 2)
    resent = fake_model.requests[1].messages[1]["content"]
    assert any(part["type"] == "image_url" for part in resent)
    assert len(fake_slack.download_auth_headers) == 1
    cache_keys = {str(key) for key in lru_server.client.keys("*")}
    main_keys = {str(key) for key in redis_server.client.keys("*")}
    assert any(key.endswith(":image:F1") for key in cache_keys)
    assert {"glmbot:{images}:order", "glmbot:{images}:sizes", "glmbot:{images}:bytes"} <= cache_keys
    assert all("quota" not in key and "history" not in key for key in cache_keys)
    assert not any("image" in key for key in main_keys)
    assert any(key.startswith("glmbot:{quota:U0HUMAN1}:spend:") for key in main_keys)
    assert any(key.endswith(":history") for key in main_keys)
