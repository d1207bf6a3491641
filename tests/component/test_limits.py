"""Slack rate limits in real Redis: shared by replicas, per channel and per workspace, paused by 429s."""

from __future__ import annotations

import asyncio

from bot.store.connection import open_store
from handlers.reply.limits import POST_BURST, POST_INTERVAL_SECONDS, SlackLimits


async def test_posts_burst_then_one_slot_per_interval(redis_url: str) -> None:
    """A channel takes a burst of posts at once, then one per interval; waits are handed out in order."""
    limits = SlackLimits(open_store(redis_url), 50, clock=lambda: 1000.0)
    waits = [await limits.post_slot("T1", "C1") for _ in range(POST_BURST + 2)]
    assert waits[:POST_BURST] == [0.0] * POST_BURST
    assert waits[POST_BURST:] == [POST_INTERVAL_SECONDS, 2 * POST_INTERVAL_SECONDS]
    assert await limits.post_slot("T1", "C2") == 0.0  # another channel has its own bucket


async def test_replicas_share_one_workspace_edit_budget(redis_url: str) -> None:
    """Two replicas draw on one team's edit slots; the burst is shared, another team has its own."""
    now = [600.0]
    first, second = (SlackLimits(open_store(redis_url), 20, clock=lambda: now[0]) for _ in range(2))
    burst = first.update_burst
    grants = await asyncio.gather(
        *(limits.update_slot("T1", max_wait=0) for limits in [first, second] * burst)
    )
    assert sum(grant is not None for grant in grants) == burst
    assert await first.update_slot("T2", max_wait=0) == 0.0
    now[0] += 60.0
    assert await second.update_slot("T1", max_wait=0) == 0.0


async def test_no_minute_holds_more_edits_than_the_limit(redis_url: str) -> None:
    """Taking edit slots as fast as they come never puts more than per_minute of them in 60 seconds."""
    limits = SlackLimits(open_store(redis_url), 50, clock=lambda: 5000.0)
    waits = [await limits.update_slot("T1") or 0.0 for _ in range(120)]
    for start in range(len(waits)):
        in_window = [w for w in waits if waits[start] <= w < waits[start] + 60.0]
        assert len(in_window) <= 50


async def test_interim_edits_leave_spare_slots(redis_url: str) -> None:
    """An edit that must leave spare slots is refused while a final edit still gets one."""
    limits = SlackLimits(open_store(redis_url), 50, clock=lambda: 100.0)
    spare = 3
    granted = 0
    while await limits.update_slot("T1", spare=spare, max_wait=0) is not None:
        granted += 1
    assert granted == limits.update_burst - spare
    assert await limits.update_slot("T1", max_wait=0) == 0.0


async def test_a_429_pauses_every_replica(redis_url: str) -> None:
    """A Retry-After recorded by one replica holds the other's slots until it ends."""
    first, second = (SlackLimits(open_store(redis_url), 50) for _ in range(2))
    await first.pause_updates("T1", 2.0)
    assert await second.update_slot("T1", max_wait=0.5) is None
    wait = await second.update_slot("T1")
    assert wait is not None
    assert 1.5 < wait <= 2.0
    await first.pause_posts("T1", "C1", 1.0)
    assert 0.5 < await second.post_slot("T1", "C1") <= 1.0
    assert await second.post_slot("T1", "C2") == 0.0


async def test_store_down_fails_open() -> None:
    """A dead store grants the call at once: Slack's own 429 is the backstop."""
    limits = SlackLimits(open_store("redis://127.0.0.1:9/0"), 50)
    assert await limits.post_slot("T1", "C1") == 0.0
    assert await limits.update_slot("T1", spare=3, max_wait=0) == 0.0
