"""The main store's eviction-policy check against real redis-servers (CONFIG, the INFO fallback, ACLs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as redis
from fakeredis import FakeServer
from fakeredis.aioredis import FakeRedis
from structlog.testing import capture_logs

from bot.app import open_core
from bot.core.errors import StoreMayEvict
from bot.settings import load_settings
from bot.store.connection import open_store
from bot.store.policy import read_eviction_policy, require_noeviction
from tests.fakes.constants import MODEL_API_KEY
from tests.fakes.redis_server import RedisServer

# Users the bot may connect as: one that may not run CONFIG (a managed Redis), one that may run neither
# CONFIG nor INFO. The harness itself talks as the default user, which keeps every command.
ACL_USERS = (
    *("--user", "noconfig", "on", ">pw", "~*", "&*", "+@all", "-config"),
    *("--user", "blind", "on", ">pw", "~*", "&*", "+@all", "-config", "-info"),
)


@pytest.fixture(scope="module")
def policy_server() -> Iterator[RedisServer]:
    """A redis-server of this module's own, whose policy the tests change with CONFIG SET."""
    with RedisServer(extra_args=ACL_USERS) as server:
        yield server


@pytest.fixture
def set_policy(policy_server: RedisServer) -> Iterator[RedisServer]:
    yield policy_server
    policy_server.client.config_set("maxmemory-policy", "noeviction")


def url_as(server: RedisServer, user: str | None = None) -> str:
    return server.url if user is None else f"redis://{user}:pw@127.0.0.1:{server.port}/0"


@pytest.fixture
async def client(policy_server: RedisServer) -> AsyncIterator[redis.Redis]:
    connection = open_store(policy_server.url)
    yield connection
    await connection.aclose()


@pytest.mark.parametrize(
    "policy",
    [
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ],
)
async def test_every_evicting_policy_is_refused(set_policy: RedisServer, policy: str) -> None:
    """allkeys-* may evict limits, volatile-* spend and reservations (they have TTLs): all refused."""
    set_policy.client.config_set("maxmemory-policy", policy)
    connection = open_store(set_policy.url)
    with pytest.raises(StoreMayEvict) as refused:
        await require_noeviction(connection)
    await connection.aclose()
    assert refused.value.policy == policy
    assert f"maxmemory-policy is {policy}" in str(refused.value)


async def test_noeviction_passes(client: redis.Redis) -> None:
    """The default policy, noeviction, passes and is logged."""
    with capture_logs() as logs:
        await require_noeviction(client)
    assert {"event": "store_policy", "maxmemory_policy": "noeviction", "log_level": "info"} in logs


async def test_info_reveals_the_policy_when_config_is_denied(set_policy: RedisServer) -> None:
    """A user without CONFIG (as on managed services) still has the policy checked, through INFO."""
    set_policy.client.config_set("maxmemory-policy", "volatile-lru")
    connection = open_store(url_as(set_policy, "noconfig"))
    assert await read_eviction_policy(connection) == "volatile-lru"
    with pytest.raises(StoreMayEvict):
        await require_noeviction(connection)
    await connection.aclose()


async def test_a_hidden_policy_starts_with_a_warning(set_policy: RedisServer) -> None:
    """Neither CONFIG nor INFO allowed: the policy is unknown, the bot starts, one warning says so."""
    set_policy.client.config_set("maxmemory-policy", "allkeys-lru")
    connection = open_store(url_as(set_policy, "blind"))
    assert await read_eviction_policy(connection) is None
    with capture_logs() as logs:
        await require_noeviction(connection)
    await connection.aclose()
    assert [log["event"] for log in logs] == ["store_policy_unknown"]
    assert logs[0]["log_level"] == "warning"


async def test_renamed_commands_are_an_unknown_policy() -> None:
    """``unknown command`` for both CONFIG and INFO (fakeredis has neither) reads as an unknown policy."""
    fake = FakeRedis(server=FakeServer(), decode_responses=True)
    assert await read_eviction_policy(fake) is None
    await fake.aclose()


async def test_an_unreachable_store_is_not_checked() -> None:
    """A store that is down at start does not stop the bot (replies fail closed); a warning says so."""
    dead = open_store("redis://127.0.0.1:9/0")
    with capture_logs() as logs:
        await require_noeviction(dead)
    await dead.aclose()
    assert [log["event"] for log in logs] == ["store_policy_unchecked"]


async def test_open_core_refuses_an_evicting_main_store(
    set_policy: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The composition root runs the check for REDIS_URL, before serving anything."""
    set_policy.client.config_set("maxmemory-policy", "allkeys-lru")
    monkeypatch.setenv("GLM_API_KEY", MODEL_API_KEY)
    monkeypatch.setenv("REDIS_URL", set_policy.url)
    with pytest.raises(StoreMayEvict):
        async with open_core(load_settings()):
            pytest.fail("open_core must not yield")


async def test_the_cache_store_may_evict(
    set_policy: RedisServer, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REDIS_CACHE_URL may point at an allkeys-lru Redis: it is not checked."""
    set_policy.client.config_set("maxmemory-policy", "allkeys-lru")
    monkeypatch.setenv("GLM_API_KEY", MODEL_API_KEY)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("REDIS_CACHE_URL", set_policy.url)
    async with open_core(load_settings()) as core:
        assert await core.store.ping()
