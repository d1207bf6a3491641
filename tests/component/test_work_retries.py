"""Work, order and rate-limit scripts run twice by a client retry change nothing more; threads keep order
across replicas. Real redis-server, reached through a proxy that loses replies after the command ran."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from bot.core.domain import IncomingMessage, ThreadKey
from bot.store.connection import open_store, preload_scripts
from bot.work.order import turns_key
from bot.work.queue import WorkItem, WorkQueue, stream_key
from bot.work.runner import WorkRunner
from handlers.reply.limits import SlackLimits
from tests.fakes.redis_server import RedisServer
from tests.fakes.tcp_proxy import TcpProxy

THREAD = ThreadKey("T1", "C9", "300.000001")
TEAM = THREAD.team
STREAM = stream_key(TEAM)


def _message(ts: str) -> IncomingMessage:
    return IncomingMessage(THREAD, ts, "U1", f"message {ts}")


@pytest.fixture
async def lossy(redis_server: RedisServer) -> AsyncIterator[tuple[TcpProxy, redis.Redis]]:
    """A client whose replies the proxy can lose, on a flushed server, its scripts loaded (so the lost
    reply is the script's own, not a NOSCRIPT error)."""
    redis_server.flush()
    async with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        client = open_store(proxy.url())
        await preload_scripts(
            client, [*WorkQueue(client, "x", TEAM).scripts, *SlackLimits(client, 50).scripts]
        )
        yield proxy, client
        await client.aclose()


async def test_enqueue_retried_after_a_lost_reply_adds_once(lossy: tuple[TcpProxy, redis.Redis]) -> None:
    """The enqueue ran but its reply was lost: the retry says "added", and there is one entry."""
    proxy, client = lossy
    queue = WorkQueue(client, "c1", TEAM)
    await queue.ensure_group()
    proxy.drop_next_reply()
    assert await queue.enqueue(_message("300.000002"))
    assert proxy.dropped == 1
    assert await client.xlen(STREAM) == 1
    assert not await queue.enqueue(_message("300.000002"))  # a real duplicate is still refused
    assert await client.zrange(turns_key(THREAD), 0, -1) == ["300.000002"]


async def test_begin_and_done_retried_count_once(lossy: tuple[TcpProxy, redis.Redis]) -> None:
    """A lost reply to begin does not count a second attempt; a lost reply to done still finishes."""
    proxy, client = lossy
    queue = WorkQueue(client, "c1", TEAM)
    await queue.ensure_group()
    await queue.enqueue(_message("300.000003"))
    [item] = await queue.read(1, 10)
    proxy.drop_next_reply()
    state = await queue.begin(item)
    assert state["attempts"] == "1"
    proxy.drop_next_reply()
    await queue.done(item)
    assert proxy.dropped == 2
    assert await client.xlen(STREAM) == 0
    assert await client.zrange(turns_key(THREAD), 0, -1) == []  # the turn left its thread's line


async def test_rate_limit_slot_retried_is_taken_once(lossy: tuple[TcpProxy, redis.Redis]) -> None:
    """A lost reply to a slot request does not take a second slot: the next call waits one interval."""
    proxy, client = lossy
    limits = SlackLimits(client, updates_per_minute=50, clock=lambda: 1000.0)
    taken = [await limits.update_slot("T1") for _ in range(limits.update_burst - 1)]
    proxy.drop_next_reply()
    taken.append(await limits.update_slot("T1"))
    assert proxy.dropped == 1
    assert taken == [0.0] * limits.update_burst  # the whole burst, the retried call included
    assert await limits.update_slot("T1", max_wait=0) is None  # and nothing beyond it


async def test_stale_first_turn_does_not_block_the_thread(redis_url: str) -> None:
    """A message whose work is gone but which is still first in its thread's line is skipped."""
    client = open_store(redis_url)
    queue = WorkQueue(client, "c1", TEAM)
    await queue.ensure_group()
    await client.zadd(turns_key(THREAD), {"300.000001": 0})  # work done, process died before it left
    await queue.enqueue(_message("300.000005"))
    [item] = await queue.read(1, 10)
    await asyncio.wait_for(queue.wait_turn(item), timeout=5)
    assert await client.zrange(turns_key(THREAD), 0, -1) == ["300.000005"]
    await queue.done(item)
    await client.aclose()


async def test_two_replicas_answer_one_thread_in_order(redis_url: str) -> None:
    """Messages of one thread taken by two replicas are answered one at a time, in message order."""
    clients = [open_store(redis_url), open_store(redis_url)]
    answered: list[str] = []
    running: list[str] = []

    async def deliver(item: WorkItem, _state: dict[str, str]) -> None:
        running.append(item.message.message_ts)
        assert len(running) == 1, f"two turns of one thread at once: {running}"
        await asyncio.sleep(0.05)
        answered.append(item.message.message_ts)
        running.remove(item.message.message_ts)

    first = WorkQueue(clients[0], "replica-a", TEAM)
    await first.ensure_group()
    stamps = [f"300.0000{n:02d}" for n in range(10, 18)]
    for ts in stamps:
        await first.enqueue(_message(ts))
    runners = [
        WorkRunner(WorkQueue(c, name, TEAM), deliver) for c, name in zip(clients, ("a", "b"), strict=True)
    ]
    for runner in runners:
        await runner.start()
    for _ in range(200):
        if len(answered) == len(stamps):
            break
        await asyncio.sleep(0.05)
    for runner in runners:
        await runner.stop(drain_seconds=1)
    for client in clients:
        await client.aclose()
    assert answered == stamps
