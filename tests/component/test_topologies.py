"""Redis Sentinel and Redis Cluster, for real: what the bot does with its store, on both topologies.

The deployments are session fixtures (``tests/conftest.py``: three cluster masters; a master, a replica
and three sentinels) on free loopback ports. Each test runs on both, through ``open_store(REDIS_URL)``:
once-only work, the work stream and thread order, history, quota reservations, edit budgets, the image
cache, the eviction-policy check, health and the quota shell commands. A failover test kills a master of
a deployment of its own. ``test_redis_urls.py`` checks the URL forms without servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
import redis.asyncio as redis

from bot import app
from bot.billing.commands import SetLimit, Show, Top
from bot.billing.ledger import QuotaLedger
from bot.billing.pricing import Price
from bot.core.domain import CachedImage, ChatMessage, ImageRef, IncomingMessage, ThreadKey
from bot.core.errors import StoreMayEvict, StoreUnavailable
from bot.images.cache import ImageCache
from bot.settings import load_settings
from bot.store.connection import open_store, preload_scripts, store_answers, warm_pool
from bot.store.history import HistoryStore
from bot.store.policy import require_noeviction
from bot.work.order import turns_key
from bot.work.queue import WorkItem, WorkQueue, stream_key, work_key
from bot.work.runner import WorkRunner
from handlers.reply.limits import SlackLimits
from tests.fakes.loopback import poll_until
from tests.fakes.redis_cluster import RedisClusterServers
from tests.fakes.redis_sentinel import RedisSentinelServers

Deployment = RedisClusterServers | RedisSentinelServers
TEAM = "T1"
THREAD = ThreadKey(TEAM, "C1", "500.000001")
OTHER_THREAD = ThreadKey(TEAM, "C2", "500.000002")
PRICE = Price(input_pico_per_token=1_000, output_pico_per_token=2_000)
LIMIT = 10_000_000  # picodollars: four full replies of 2.1 M and a shrunk fifth


def _message(ts: str, thread: ThreadKey = THREAD) -> IncomingMessage:
    return IncomingMessage(thread, ts, "U1", f"message {ts}")


@pytest.fixture(params=["cluster", "sentinel"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """The session's cluster or sentinel deployment, flushed, every policy noeviction."""
    found: Deployment = request.getfixturevalue(f"redis_{request.param}")
    found.flush()
    return found


@pytest.fixture
async def store(deployment: Deployment) -> AsyncIterator[redis.Redis]:
    client = open_store(deployment.url)
    yield client
    await client.aclose()


async def test_a_message_enqueued_20_times_at_once_is_one_work_entry(store: redis.Redis) -> None:
    queue = WorkQueue(store, "c1", TEAM)
    await queue.ensure_group()
    added = await asyncio.gather(*(queue.enqueue(_message("500.000010")) for _ in range(20)))
    assert added.count(True) == 1
    assert await store.xlen(stream_key(TEAM)) == 1
    assert await store.zrange(turns_key(THREAD), 0, -1) == ["500.000010"]  # lined up in its thread


async def test_work_stream_read_begin_reclaim_wait_turn_done(store: redis.Redis) -> None:
    """Entries are read, begun, taken over by another consumer with their journal, answered in thread
    order, and gone when done."""
    dead, other = WorkQueue(store, "dead", TEAM), WorkQueue(store, "other", TEAM)
    await dead.ensure_group()
    for ts in ("500.000011", "500.000012"):
        await dead.enqueue(_message(ts))
    first, second = await dead.read(10, 10)
    assert (await dead.begin(first))["attempts"] == "1"
    await dead.record(first, {"messages": '["9.9"]'})
    assert await dead.renew([first.entry_id, second.entry_id]) == {first.entry_id, second.entry_id}
    await asyncio.sleep(0.05)
    taken = {item.entry_id: item for item in await other.reclaim(10, min_idle_ms=10)}
    assert set(taken) == {first.entry_id, second.entry_id}
    state = await other.begin(taken[first.entry_id])
    assert (state["attempts"], state["messages"]) == ("2", '["9.9"]')
    await other.wait_turn(taken[first.entry_id])  # first in its thread: at once
    waiting = asyncio.create_task(other.wait_turn(taken[second.entry_id]))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # the earlier message is not answered yet
    await other.done(taken[first.entry_id])
    await asyncio.wait_for(waiting, timeout=5)
    await other.done(taken[second.entry_id])
    assert await store.xlen(stream_key(TEAM)) == 0
    assert await store.exists(work_key(TEAM, "state", first.key)) == 0
    assert await store.zrange(turns_key(THREAD), 0, -1) == []


async def test_runner_answers_each_thread_in_order(store: redis.Redis) -> None:
    answered: list[str] = []

    async def deliver(item: WorkItem, _state: dict[str, str]) -> None:
        await asyncio.sleep(0.02)
        answered.append(item.message.message_ts)

    queue = WorkQueue(store, "runner", TEAM)
    runner = WorkRunner(queue, deliver, lease_seconds=2.0)
    await runner.start()
    stamps = [f"500.0000{n}" for n in range(20, 25)]
    try:
        for ts in stamps:
            await queue.enqueue(_message(ts))
        await queue.enqueue(_message("600.000001", OTHER_THREAD))
        for _ in range(200):
            if len(answered) == len(stamps) + 1:
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.stop(drain_seconds=1)
    assert [ts for ts in answered if ts.startswith("500.")] == stamps
    assert "600.000001" in answered


async def test_history_appends_once_per_turn_in_order_and_retracts(store: redis.Redis) -> None:
    history = HistoryStore(store, ttl_seconds=60)
    turn = [ChatMessage("user", "q2"), ChatMessage("assistant", "a2")]
    await history.append(THREAD, "1", [ChatMessage("user", "q1"), ChatMessage("assistant", "a1")])
    await asyncio.gather(*(history.append(THREAD, "2", turn) for _ in range(5)))
    assert [m.text for m in await history.load(THREAD)] == ["q1", "a1", "q2", "a2"]
    await history.retract(THREAD, "2", turn)
    assert [m.text for m in await history.load(THREAD)] == ["q1", "a1"]
    await history.append(THREAD, "2", turn)  # taken back, so a later attempt appends it again
    assert [m.text for m in await history.load(THREAD)] == ["q1", "a1", "q2", "a2"]
    await history.engage(OTHER_THREAD)
    assert await history.exists(THREAD)
    assert await history.exists(OTHER_THREAD)
    await history.forget(THREAD)
    assert not await history.exists(THREAD)


async def test_20_concurrent_reservations_never_pass_the_limit(store: redis.Redis) -> None:
    ledger = QuotaLedger(store, LIMIT, "month", clock=lambda: datetime(2026, 1, 15, tzinfo=UTC))
    results = await asyncio.gather(
        *(ledger.reserve("U1", 100, 1_000, 100, PRICE) for _ in range(20)), return_exceptions=True
    )
    granted = [result for result in results if not isinstance(result, BaseException)]
    assert sum(reservation.amount_pico for reservation in granted) == LIMIT
    assert sorted(reservation.max_tokens for reservation in granted) == [750, 1_000, 1_000, 1_000, 1_000]
    settled = await ledger.settle(granted[0], 1_000_000)
    assert settled.charged_pico == 1_000_000
    assert await ledger.top() == [("U1", 1_000_000)]
    status = await ledger.status("U1")
    assert status.spent_pico + status.reserved_pico <= LIMIT


async def test_edit_budgets_are_shared_and_per_workspace(store: redis.Redis) -> None:
    """Two replicas draw on one workspace's edit bucket; another workspace's bucket is its own."""
    replicas = [SlackLimits(store, updates_per_minute=50, clock=lambda: 1000.0) for _ in range(2)]
    burst = replicas[0].update_burst
    taken = [await replicas[n % 2].update_slot(TEAM) for n in range(burst)]
    assert taken == [0.0] * burst
    assert await replicas[1].update_slot(TEAM, max_wait=0) is None
    assert await replicas[0].update_slot("T2", max_wait=0) == 0.0
    await replicas[0].pause_updates(TEAM, 5)
    assert 0 < await replicas[1].update_pause(TEAM) <= 5
    assert await replicas[0].post_slot(TEAM, "C1") == 0.0


def _image(file_id: str) -> CachedImage:
    ref = ImageRef(file_id, f"{file_id}.png", "image/png", 28, 28, 3, 2_000)
    return CachedImage(ref=ref, data_url="data:image/png;base64," + "A" * 2_000)


async def test_image_cache_evicts_across_slots_under_its_cap(store: redis.Redis) -> None:
    """Images of two threads (two slots): the oldest is evicted past the cap, the rest load."""
    cache = ImageCache(store, ttl_seconds=60, max_bytes=2 * 2_200)
    await cache.save(THREAD, [_image("F1")])
    await cache.save(OTHER_THREAD, [_image("F2")])
    await cache.save(OTHER_THREAD, [_image("F3")])
    assert await cache.load(THREAD, ["F1"]) == {}
    assert set(await cache.load(OTHER_THREAD, ["F2", "F3"])) == {"F2", "F3"}


async def test_policy_check_covers_every_node(deployment: Deployment, store: redis.Redis) -> None:
    """noeviction everywhere starts; one node (a cluster's last master, a sentinel's master) that may
    evict stops the start, named."""
    await require_noeviction(store)
    address = deployment.set_policy("allkeys-lru")
    try:
        with pytest.raises(StoreMayEvict) as refused:
            await require_noeviction(store)
    finally:
        deployment.flush()
    assert "maxmemory-policy is allkeys-lru" in str(refused.value)
    if isinstance(deployment, RedisClusterServers):
        assert f"on cluster node {address}" in str(refused.value)


async def test_health_warm_up_and_script_loading(store: redis.Redis) -> None:
    queue = WorkQueue(store, "c1", TEAM)
    await warm_pool(store, connections=8)
    await preload_scripts(store, (*queue.scripts, *SlackLimits(store, 50).scripts))
    assert await store_answers(store)


@pytest.mark.parametrize(
    "url",
    ["redis+cluster://127.0.0.1:9", "redis+sentinel://127.0.0.1:9/mymaster"],
    ids=["cluster", "sentinel"],
)
async def test_unreachable_topology_is_unhealthy_not_an_error(url: str) -> None:
    client = open_store(url)
    try:
        assert not await store_answers(client)
    finally:
        await client.aclose()


async def test_quota_shell_commands(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What ``glmbot quota set|show|top`` run, with REDIS_URL naming the deployment."""
    monkeypatch.setenv("REDIS_URL", deployment.url)
    settings = load_settings()
    assert await app.quota(settings, SetLimit("U0HUMAN1", 5 * 10**12), "shell") == 0
    assert await app.quota(settings, Show("U0HUMAN1"), "shell") == 0
    assert await app.quota(settings, Top(), "shell") == 0
    out = capsys.readouterr().out
    assert "U0HUMAN1's limit is now $5.00" in out
    assert "$0.00 spent of $5.00" in out
    assert "Nobody has spent" in out


async def test_a_fresh_cluster_client_takes_a_burst(redis_cluster: RedisClusterServers) -> None:
    """200 commands at once on a client that has not mapped the slots yet, three times: no errors (a
    MOVED reply patches the slot map; it does not drop connections other commands are using)."""
    redis_cluster.flush()
    client = open_store(redis_cluster.url)
    history = HistoryStore(client, ttl_seconds=60)
    ledger = QuotaLedger(client, LIMIT, "month", clock=lambda: datetime(2026, 1, 15, tzinfo=UTC))
    try:
        for _ in range(3):
            calls: list[Awaitable[object]] = [
                history.load(ThreadKey(TEAM, f"C{n}", "1.0")) for n in range(100)
            ]
            calls += [ledger.status(f"U{n}") for n in range(100)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert [r for r in results if isinstance(r, BaseException)] == []
    finally:
        await client.aclose()


async def _retrying(attempt: Callable[[], Awaitable[object]], tries: int = 60, pause: float = 0.5) -> int:
    """Run ``attempt`` until it does not raise StoreUnavailable, at most ``tries`` times ``pause`` s apart;
    returns how many attempts failed. Raises the last StoreUnavailable when every try failed."""
    for failed in range(tries):
        try:
            await attempt()
        except StoreUnavailable:
            if failed == tries - 1:
                raise
            await asyncio.sleep(pause)
        else:
            return failed
    raise AssertionError("unreachable")


@pytest.mark.slow
async def test_sentinel_failover_during_a_run_is_followed() -> None:
    """The master is killed while a runner works: the sentinels promote the replica, the same client finds
    it, and work, history and quotas carry on (after a bounded retry while no master answers)."""
    answered: list[str] = []

    async def deliver(item: WorkItem, _state: dict[str, str]) -> None:
        answered.append(item.message.message_ts)

    with RedisSentinelServers() as deployment:
        client = open_store(deployment.url)
        queue, history = WorkQueue(client, "c1", TEAM), HistoryStore(client, ttl_seconds=60)
        ledger = QuotaLedger(client, LIMIT, "month", clock=lambda: datetime(2026, 1, 15, tzinfo=UTC))
        runner = WorkRunner(queue, deliver, lease_seconds=2.0)
        await runner.start()
        try:
            await queue.enqueue(_message("700.000001"))
            await history.append(THREAD, "700.000001", [ChatMessage("user", "before")])
            held = await ledger.reserve("U1", 100, 1_000, 100, PRICE)
            await poll_until(lambda: answered == ["700.000001"], timeout=10)
            assert await client.wait(1, 5000) == 1  # the replica has every write so far
            old = deployment.kill_master()
            failed = await _retrying(lambda: queue.enqueue(_message("700.000002")))
            await poll_until(lambda: len(answered) == 2, timeout=30)
            assert deployment.master_port() != old
            assert [m.text for m in await history.load(THREAD)] == ["before"]
            assert (await ledger.settle(held, 500_000)).charged_pico == 500_000
            assert failed < 60
        finally:
            await runner.stop(drain_seconds=1)
            await client.aclose()
    assert answered == ["700.000001", "700.000002"]
