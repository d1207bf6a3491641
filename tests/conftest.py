"""Shared fixtures: a real redis-server, the fake Slack and model servers, and a clean environment."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.fakes.bot_env import is_bot_setting
from tests.fakes.constants import BOT_TOKEN, MODEL_API_KEY
from tests.fakes.model_api import FakeModel
from tests.fakes.redis_cluster import RedisClusterServers
from tests.fakes.redis_sentinel import RedisSentinelServers
from tests.fakes.redis_server import RedisServer
from tests.fakes.slack_api import FakeSlack


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Drop every bot setting from the environment and run in an empty directory (no stray ``.env``)."""
    for name in list(os.environ):
        if is_bot_setting(name):
            monkeypatch.delenv(name, raising=False)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server on a free loopback port for the whole session."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session redis-server, emptied (FLUSHALL) and with zeroed command stats."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    """A started FakeSlack accepting ``BOT_TOKEN``; ``fake_slack.api_url`` is the bot's SLACK_API_URL."""
    async with FakeSlack(bot_token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
async def fake_model() -> AsyncIterator[FakeModel]:
    """A started FakeModel accepting ``MODEL_API_KEY``; ``fake_model.base_url`` is the bot's GLM_BASE_URL."""
    async with FakeModel(api_key=MODEL_API_KEY) as fake:
        yield fake


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """One real three-master Redis Cluster on free loopback ports for the whole session (started on first
    use); tests flush it with ``redis_cluster.flush()``."""
    cluster = RedisClusterServers().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[RedisSentinelServers]:
    """One real Sentinel deployment (master, replica, three sentinels) on free loopback ports for the whole
    session (started on first use). Tests that kill its master start a deployment of their own."""
    deployment = RedisSentinelServers().start()
    try:
        yield deployment
    finally:
        deployment.stop()
