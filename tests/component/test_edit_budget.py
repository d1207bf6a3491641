"""The workspace-wide interim edit budget against a real redis-server."""

from __future__ import annotations

import asyncio

from bot.store.connection import open_store
from handlers.reply.budget import EditBudget, budget_window


def test_budget_window() -> None:
    """Windows are whole minutes; the seconds left count down to the next one."""
    assert budget_window(120.0) == (2, 60.0)
    assert budget_window(179.5) == (2, 0.5)


async def test_budget_shared_and_per_workspace(redis_url: str) -> None:
    """Two replicas share one team's budget; another team has its own; the next minute starts afresh."""
    now = [600.0]
    first, second = (EditBudget(open_store(redis_url), per_minute=3, clock=lambda: now[0]) for _ in range(2))
    grants = await asyncio.gather(*(budget.take("T1", True) for budget in (first, second, first, second)))
    assert sorted(grants) == [0.0, 0.0, 0.0, 60.0]
    assert await first.take("T2", True) == 0.0
    now[0] = 660.0
    assert await second.take("T1", True) == 0.0


async def test_first_words_keep_half_the_budget(redis_url: str) -> None:
    """Later interim edits stop at half the budget, so replies still waiting for first words get the rest."""
    budget = EditBudget(open_store(redis_url), per_minute=4, clock=lambda: 630.0)
    later = [await budget.take("T1", False) for _ in range(3)]
    assert later == [0.0, 0.0, 30.0]
    first = [await budget.take("T1", True) for _ in range(3)]
    assert first == [0.0, 0.0, 30.0]


async def test_store_down_does_not_stop_streaming() -> None:
    """A dead store grants edits (Slack limits are not money): streaming goes on at the per-message pace."""
    assert await EditBudget(open_store("redis://127.0.0.1:9/0"), per_minute=1).take("T1", False) == 0.0


async def test_rate_limit_pauses_the_whole_workspace(redis_url: str) -> None:
    """A 429's Retry-After recorded by one replica holds every replica's interim edits for that team."""
    first, second = (EditBudget(open_store(redis_url), per_minute=50) for _ in range(2))
    await first.pause("T1", 2.0)
    hold = await second.take("T1", True)
    assert 1.5 < hold <= 2.0
    assert await second.take("T2", True) == 0.0
