"""The work stream against a real redis-server and the embedded store: once-only, leases, resumption."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from bot.core.domain import Attachment, IncomingMessage, ThreadKey
from bot.core.errors import StoreUnavailable
from bot.store.connection import open_store
from bot.work.journal import WorkJournal
from bot.work.queue import WorkItem, WorkQueue, decode_message, encode_message, stream_key
from bot.work.runner import WorkRunner
from tests.fakes.redis_server import RedisServer

THREAD = ThreadKey("T1", "C1", "100.1")
TEAM = THREAD.team
STREAM = stream_key(TEAM)


def _message(ts: str = "100.2", text: str = "hello") -> IncomingMessage:
    return IncomingMessage(THREAD, ts, "U1", text)


@pytest.fixture(params=["redis", "embedded"])
async def client(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[redis.Redis]:
    """A real redis-server, and the embedded store: the same code must run on both."""
    connection = open_store(redis_url if request.param == "redis" else None)
    yield connection
    await connection.aclose()


def test_messages_round_trip_through_json() -> None:
    message = IncomingMessage(
        THREAD, "1.5", "U1", "hé <b>", (Attachment("F1", "a.png", "image/png", 12, "https://x/y", True),)
    )
    assert decode_message(encode_message(message)) == message


async def test_enqueue_once_per_message(client: redis.Redis) -> None:
    """Of many concurrent copies of one message exactly one becomes work."""
    queue = WorkQueue(client, "c1", TEAM)
    await queue.ensure_group()
    added = await asyncio.gather(*(queue.enqueue(_message()) for _ in range(20)))
    assert added.count(True) == 1
    assert await client.xlen(STREAM) == 1
    assert 86000 < await client.ttl("glmbot:{work:T1}:claim:T1:C1:100.2") <= 86400


async def test_read_begin_record_done(client: redis.Redis) -> None:
    """An entry is read once, carries its journal between attempts, and is gone when done."""
    queue = WorkQueue(client, "c1", TEAM)
    await queue.ensure_group()
    await queue.enqueue(_message())
    [item] = await queue.read(10, 10)
    assert item.message == _message()
    assert await queue.read(10, 10) == []
    state = await queue.begin(item)
    assert state["attempts"] == "1"
    journal = WorkJournal(queue, item, state)
    await journal.record(messages='["1.1"]', charge="{}")
    again = await queue.begin(item)
    assert again["attempts"] == "2"
    assert again["messages"] == '["1.1"]'
    await queue.done(item)
    assert await client.xlen(STREAM) == 0
    assert await client.exists("glmbot:{work:T1}:state:T1:C1:100.2") == 0


async def test_idle_entries_move_to_another_consumer(client: redis.Redis) -> None:
    """An entry whose owner stopped renewing is re-claimed by another consumer; a renewing owner keeps it."""
    dead, alive, other = (WorkQueue(client, name, TEAM) for name in ("dead", "alive", "other"))
    await dead.ensure_group()
    await dead.enqueue(_message("1.1"))
    await dead.enqueue(_message("1.2"))
    [first] = await dead.read(1, 10)
    [second] = await alive.read(1, 10)
    await asyncio.sleep(0.15)
    assert await alive.renew([second.entry_id]) == {second.entry_id}
    taken = await other.reclaim(10, min_idle_ms=100)
    assert [item.entry_id for item in taken] == [first.entry_id]
    assert await dead.renew([first.entry_id]) == set()  # the dead owner lost its lease


async def test_runner_delivers_and_resumes_after_a_crash(client: redis.Redis) -> None:
    """A runner answers new work; work abandoned by a dead runner is resumed by another with its journal."""
    queue = WorkQueue(client, "dead", TEAM)
    await queue.ensure_group()
    await queue.enqueue(_message("2.1"))
    [orphan] = await queue.read(1, 10)
    state = await queue.begin(orphan)
    await WorkJournal(queue, orphan, state).record(messages='["9.9"]')

    seen: list[tuple[str, str]] = []

    async def deliver(item: WorkItem, state: dict[str, str]) -> None:
        seen.append((item.message.message_ts, state.get("messages", "")))

    runner = WorkRunner(WorkQueue(client, "alive", TEAM), deliver, lease_seconds=0.2)
    await runner.start()
    await queue.enqueue(_message("2.2"))
    for _ in range(100):
        if len(seen) == 2:
            break
        await asyncio.sleep(0.05)
    await runner.stop(drain_seconds=1)
    assert sorted(seen) == [("2.1", '["9.9"]'), ("2.2", "")]
    assert await client.xlen(STREAM) == 0


async def test_stopped_runner_leaves_unfinished_work(client: redis.Redis) -> None:
    """A reply cancelled by a shutdown is not acknowledged: it stays in the stream for another replica."""
    started = asyncio.Event()

    async def deliver(item: WorkItem, state: dict[str, str]) -> None:
        started.set()
        await asyncio.sleep(60)

    queue = WorkQueue(client, "c1", TEAM)
    runner = WorkRunner(queue, deliver)
    await runner.start()
    await queue.enqueue(_message("3.1"))
    await asyncio.wait_for(started.wait(), 5)
    await runner.stop(drain_seconds=0.05)
    assert await client.xlen(STREAM) == 1
    pending = await client.xpending(STREAM, "glmbot")
    assert pending["pending"] == 1


async def test_renew_keeps_every_owned_entry(client: redis.Redis) -> None:
    """A consumer with older entries pending still keeps the lease on all the ones it asks about."""
    queue = WorkQueue(client, "c1", TEAM)
    await queue.ensure_group()
    for i in range(6):
        await queue.enqueue(_message(f"4.{i}"))
    ids = [item.entry_id for item in await queue.read(10, 10)]
    assert await queue.renew(ids[3:]) == set(ids[3:])
    assert await queue.renew(ids) == set(ids)


async def test_done_by_a_replaced_owner_leaves_the_entry(client: redis.Redis) -> None:
    """An owner that lost the entry to another consumer does not acknowledge or delete it."""
    slow, other = WorkQueue(client, "slow", TEAM), WorkQueue(client, "other", TEAM)
    await slow.ensure_group()
    await slow.enqueue(_message("5.1"))
    [item] = await slow.read(1, 10)
    await asyncio.sleep(0.05)
    [taken] = await other.reclaim(10, min_idle_ms=10)
    await slow.done(item)
    assert await client.xlen(STREAM) == 1
    await other.done(taken)
    assert await client.xlen(STREAM) == 0


async def test_unreadable_entry_is_dropped(client: redis.Redis) -> None:
    """An entry that cannot be decoded is logged and removed, not re-claimed for ever."""
    queue = WorkQueue(client, "c1", TEAM)
    await queue.ensure_group()
    await client.xadd(STREAM, {"key": "T1:C1:6.1", "message": "not json"})
    assert await queue.read(10, 10) == []
    assert await client.xlen(STREAM) == 0
    assert (await client.xpending(STREAM, "glmbot"))["pending"] == 0


async def test_replies_stop_when_leases_cannot_be_renewed() -> None:
    """A replica that cannot renew its leases stops its replies before another may take them over."""
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def deliver(item: WorkItem, state: dict[str, str]) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    private = RedisServer().start()  # this test stops its own server
    client = open_store(private.url)
    queue = WorkQueue(client, "c1", TEAM)
    runner = WorkRunner(queue, deliver, lease_seconds=1.0)
    try:
        await runner.start()
        await queue.enqueue(_message("7.1"))
        await asyncio.wait_for(started.wait(), 5)
        private.stop()  # the store stops answering this replica
        await asyncio.wait_for(cancelled.wait(), 5)
        await runner.stop(drain_seconds=0.1)
    finally:
        private.stop()
        await client.aclose()


async def test_each_workspace_has_its_own_stream(client: redis.Redis) -> None:
    """Work of two workspaces lives in two streams (two hash slots); a queue reads only its own."""
    ours, theirs = WorkQueue(client, "c1", TEAM), WorkQueue(client, "c1", "T2")
    for queue in (ours, theirs):
        await queue.ensure_group()
    await theirs.enqueue(IncomingMessage(ThreadKey("T2", "C1", "8.1"), "8.1", "U1", "hi"))
    assert await ours.read(10, 10) == []
    assert [item.key for item in await theirs.read(10, 10)] == ["T2:C1:8.1"]
    assert await client.xlen(stream_key("T2")) == 1
    with pytest.raises(ValueError, match="team id"):
        WorkQueue(client, "c1", "T{1}")


async def test_a_workspace_not_known_yet_reads_nothing_until_it_is(client: redis.Redis) -> None:
    """The Slack front end's team comes from auth.test, which may not answer at start: until the lookup
    names it, the queue reads and reclaims nothing and refuses new work; then it serves that team."""
    known: list[str] = []

    async def lookup() -> str | None:
        return known[0] if known else None

    queue = WorkQueue(client, "c1", lookup)
    await queue.ensure_group()
    assert await queue.read(10, 10) == []
    assert await queue.reclaim(10, 0) == []
    with pytest.raises(StoreUnavailable):
        await queue.enqueue(_message("9.1"))
    known.append(TEAM)
    assert await queue.workspace() == TEAM
    assert await queue.enqueue(_message("9.1"))
    assert await queue.read(10, 10) == []  # the stream had no group yet: made now
    [item] = await queue.read(10, 10)
    assert item.message == _message("9.1")
