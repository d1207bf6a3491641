"""HistoryStore against a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from bot.core.domain import ChatMessage, IncomingMessage, ThreadKey
from bot.core.errors import StoreUnavailable
from bot.store.connection import open_store, preload_scripts, store_answers
from bot.store.history import MAX_ENTRIES, HistoryStore, history_key
from bot.work.queue import WorkQueue
from tests.fakes.redis_server import RedisServer
from tests.fakes.tcp_proxy import TcpProxy

THREAD = ThreadKey("T1", "C1", "1700000000.000100")


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    connection = open_store(redis_url)
    yield connection
    await connection.aclose()


async def test_append_and_load_in_order(client: redis.Redis) -> None:
    """Appended messages come back oldest first, with a TTL on the key."""
    store = HistoryStore(client, ttl_seconds=3600)
    await store.append(THREAD, "1.0", [ChatMessage("user", "q1"), ChatMessage("assistant", "a1")])
    await store.append(
        THREAD, "2.0", [ChatMessage("user", "q2 ünïcødé 你好"), ChatMessage("assistant", "a2")]
    )
    assert [m.text for m in await store.load(THREAD)] == ["q1", "a1", "q2 ünïcødé 你好", "a2"]
    assert 3590 < await client.ttl(history_key(THREAD)) <= 3600
    assert await store.exists(THREAD)
    assert not await store.exists(ThreadKey("T1", "C1", "other"))


async def test_key_uses_one_hash_tag_per_thread() -> None:
    """The thread id sits in a {hash tag}, so Redis Cluster keeps a thread in one slot."""
    assert history_key(THREAD) == "glmbot:{T1:C1:1700000000.000100}:history"


async def test_racing_appends_never_interleave(client: redis.Redis) -> None:
    """Concurrent turns in one thread land as whole (question, answer) pairs."""
    store = HistoryStore(client, ttl_seconds=60)
    await asyncio.gather(
        *(
            store.append(THREAD, f"{i}.1", [ChatMessage("user", f"q{i}"), ChatMessage("assistant", f"a{i}")])
            for i in range(50)
        )
    )
    texts = [m.text for m in await store.load(THREAD)]
    assert len(texts) == 100
    for question, answer in zip(texts[::2], texts[1::2], strict=True):
        assert question[1:] == answer[1:]


async def test_history_capped(client: redis.Redis) -> None:
    """A very long thread keeps only the newest MAX_ENTRIES entries."""
    store = HistoryStore(client, ttl_seconds=60)
    for i in range(0, MAX_ENTRIES + 10, 2):
        await store.append(
            THREAD, f"{i}.1", [ChatMessage("user", f"q{i}"), ChatMessage("assistant", f"a{i}")]
        )
    loaded = await store.load(THREAD)
    assert len(loaded) == MAX_ENTRIES
    assert loaded[-1].text == f"a{MAX_ENTRIES + 8}"


async def test_forget(client: redis.Redis) -> None:
    """forget removes the thread's memory."""
    store = HistoryStore(client, ttl_seconds=60)
    await store.append(THREAD, "3.0", [ChatMessage("user", "q")])
    await store.forget(THREAD)
    assert await store.load(THREAD) == []


async def test_unreachable_store_raises_store_unavailable() -> None:
    """Every operation against a dead Redis turns into StoreUnavailable."""
    dead = open_store("redis://127.0.0.1:9/0")
    store = HistoryStore(dead, ttl_seconds=60)
    assert not await store_answers(dead)
    with pytest.raises(StoreUnavailable):
        await store.load(THREAD)
    with pytest.raises(StoreUnavailable):
        await store.append(THREAD, "4.0", [ChatMessage("user", "q")])
    with pytest.raises(StoreUnavailable):
        await WorkQueue(dead, "c1", THREAD.team).enqueue(IncomingMessage(THREAD, "1", "U1", "hi"))
    await dead.aclose()


async def test_embedded_store_runs_the_same_scripts() -> None:
    """Without REDIS_URL the in-process store runs the same Lua append."""
    embedded = open_store(None)
    store = HistoryStore(embedded, ttl_seconds=60)
    await store.append(THREAD, "5.0", [ChatMessage("user", "q"), ChatMessage("assistant", "a")])
    assert [m.role for m in await store.load(THREAD)] == ["user", "assistant"]
    assert await store_answers(embedded)
    await embedded.aclose()


async def test_unreadable_entry_is_skipped(client: redis.Redis) -> None:
    """A corrupt entry in a thread's history is skipped; the rest of the thread still loads."""
    store = HistoryStore(client, ttl_seconds=60)
    await store.append(THREAD, "6.0", [ChatMessage("user", "q1")])
    await client.rpush(history_key(THREAD), "{not json", '{"role": "user"}')
    await store.append(THREAD, "7.0", [ChatMessage("assistant", "a1")])
    assert [m.text for m in await store.load(THREAD)] == ["q1", "a1"]


async def test_dropped_connections_are_retried(client: redis.Redis, redis_server: RedisServer) -> None:
    """After Redis drops the bot's pooled connections (a restart, an idle timeout), the next call works."""
    store = HistoryStore(client, ttl_seconds=60)
    await store.append(THREAD, "8.0", [ChatMessage("user", "before")])
    redis_server.client.client_kill_filter(_type="normal", skipme=True)
    assert [m.text for m in await store.load(THREAD)] == ["before"]


async def test_retract_takes_back_only_its_turn(client: redis.Redis) -> None:
    """A turn whose answer could not be delivered is taken back; an earlier identical turn stays, and
    the turn may be appended again afterwards (by the attempt that delivers it)."""
    store = HistoryStore(client, ttl_seconds=60)
    turn = [ChatMessage("user", "same question"), ChatMessage("assistant", "same answer")]
    await store.append(THREAD, "10.0", turn)
    await store.append(THREAD, "9.0", [ChatMessage("user", "other"), ChatMessage("assistant", "reply")])
    await store.append(THREAD, "11.0", turn)
    await store.retract(THREAD, "11.0", turn)
    await store.retract(THREAD, "11.0", turn)  # twice is the same as once
    assert [m.text for m in await store.load(THREAD)] == ["same question", "same answer", "other", "reply"]

    await store.append(THREAD, "11.0", turn)
    assert [m.text for m in await store.load(THREAD)][-2:] == ["same question", "same answer"]


async def test_a_turn_is_appended_once(client: redis.Redis) -> None:
    """Appending the same turn again (a resumed reply) adds nothing."""
    store = HistoryStore(client, ttl_seconds=60)
    turn = [ChatMessage("user", "q"), ChatMessage("assistant", "a")]
    await store.append(THREAD, "12.0", turn)
    await store.append(THREAD, "12.0", turn)
    assert [m.text for m in await store.load(THREAD)] == ["q", "a"]


async def test_append_survives_a_lost_reply(redis_server: RedisServer) -> None:
    """The connection drops after the append ran: redis-py retries it, and the turn is still there once."""
    async with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        client = open_store(proxy.url())
        store = HistoryStore(client, ttl_seconds=60)
        await preload_scripts(client, store.scripts)  # the lost reply must be the script's, not NOSCRIPT
        thread = ThreadKey("T1", "C1", "lost.reply")
        proxy.drop_next_reply()
        await store.append(thread, "13.0", [ChatMessage("user", "q"), ChatMessage("assistant", "a")])
        assert proxy.dropped == 1
        assert [m.text for m in await store.load(thread)] == ["q", "a"]
        proxy.drop_next_reply()
        await store.retract(thread, "13.0", [ChatMessage("user", "q"), ChatMessage("assistant", "a")])
        assert await store.load(thread) == []
        await client.aclose()
