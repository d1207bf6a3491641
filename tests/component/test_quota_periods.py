"""Quota periods against a real redis-server: a reservation belongs to the period it was made in.

A reply reserved a second before the period ends holds its money in that period and is settled into it;
the new period starts with nothing spent and nothing held, so the reservation cannot block it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis

from bot.billing.admin import describe
from bot.billing.keys import spend_key
from bot.billing.ledger import QuotaLedger
from bot.billing.periods import PeriodKind
from bot.billing.pricing import Price
from bot.core.errors import QuotaExceeded
from bot.core.messages import user_message
from bot.metrics import Metrics
from bot.store.connection import open_store

PRICE = Price(input_pico_per_token=1_000, output_pico_per_token=2_000)
LIMIT = 10_000_000  # buys 5,000 output tokens at PRICE


class Clock:
    """A settable UTC clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    connection = open_store(redis_url)
    yield connection
    await connection.aclose()


@pytest.mark.parametrize(
    ("kind", "last_second", "old_label", "new_label"),
    [
        ("month", datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC), "2026-01", "2026-02"),
        ("week", datetime(2026, 2, 1, 23, 59, 59, tzinfo=UTC), "2026-W05", "2026-W06"),  # a Sunday
        ("day", datetime(2026, 3, 14, 23, 59, 59, tzinfo=UTC), "2026-03-14", "2026-03-15"),
    ],
)
async def test_reservation_at_the_last_second_does_not_block_the_new_period(
    client: redis.Redis, kind: PeriodKind, last_second: datetime, old_label: str, new_label: str
) -> None:
    """Reserved at 23:59:59 of the last day, the whole limit is held in the old period only: the new
    period shows $0 spent and $0 held and grants a full reply; the late settle charges the old period."""
    clock = Clock(last_second)
    metrics = Metrics()
    ledger = QuotaLedger(client, LIMIT, kind, clock=clock, metrics=metrics)
    late = await ledger.reserve("U1", 0, 5_000, 1, PRICE)  # all of the old period's limit
    assert late.period.label == old_label
    with pytest.raises(QuotaExceeded) as refused:
        await ledger.reserve("U1", 0, 1, 1, PRICE)
    assert (refused.value.spent_pico, refused.value.held_pico) == (0, LIMIT)

    clock.now = last_second + timedelta(seconds=1)
    status = await ledger.status("U1")
    assert (status.period.label, status.spent_pico, status.reserved_pico) == (new_label, 0, 0)
    fresh = await ledger.reserve("U1", 0, 5_000, 1, PRICE)
    assert (fresh.period.label, fresh.max_tokens) == (new_label, 5_000)

    settlement = await ledger.settle(late, 3_000_000)
    assert (settlement.charged_pico, settlement.spent_pico) == (3_000_000, 3_000_000)
    assert await client.hget(spend_key("U1", old_label), "spent") == "3000000"
    assert not await client.exists(spend_key("U1", new_label))
    status = await ledger.status("U1")
    assert (status.spent_pico, status.reserved_pico) == (0, fresh.amount_pico)
    assert await ledger.top() == []  # the new period's ranking: nothing settled in it yet
    spend = metrics.registry.get_sample_value("glmbot_spend_usd_total", {"period": old_label})
    assert spend == pytest.approx(3_000_000 / 10**12)
    assert metrics.registry.get_sample_value("glmbot_spend_usd_total", {"period": new_label}) is None
    assert metrics.registry.get_sample_value("glmbot_quota_refusals_total") == 1


async def test_old_period_settle_stays_within_the_old_limit(client: redis.Redis) -> None:
    """Two replies reserved in the old period and settled in the new one still fit the old period's limit;
    what they do not use is not carried over."""
    clock = Clock(datetime(2026, 1, 31, 23, 59, 58, tzinfo=UTC))
    ledger = QuotaLedger(client, LIMIT, "month", clock=clock)
    first = await ledger.reserve("U1", 0, 2_500, 1, PRICE)
    second = await ledger.reserve("U1", 0, 5_000, 1, PRICE)  # shrinks to what is left: 2,500 tokens
    assert second.max_tokens == 2_500
    clock.now = datetime(2026, 2, 1, 0, 0, 5, tzinfo=UTC)
    await ledger.settle(first, first.amount_pico)
    await ledger.settle(second, second.amount_pico)
    assert await client.hget(spend_key("U1", "2026-01"), "spent") == str(LIMIT)
    assert (await ledger.status("U1")).spent_pico == 0


async def test_show_names_spent_and_held_apart(client: redis.Redis) -> None:
    """The status text says what is spent and what replies in progress only hold, and what is left."""
    clock = Clock(datetime(2026, 1, 10, 9, 0, tzinfo=UTC))
    ledger = QuotaLedger(client, LIMIT, "month", clock=clock)
    await ledger.settle(await ledger.reserve("U1", 0, 1_000, 1, PRICE), 1_000_000)
    await ledger.reserve("U1", 0, 2_000, 1, PRICE)  # 4 M held by a reply in progress
    text = describe(await ledger.status("U1"), own=True)
    assert text.splitlines() == [
        "Your glmbot spend this month (2026-01): $0.000001 spent of $0.000010 (the default).",
        "Held by replies in progress: $0.000004. Left to spend: $0.000005.",
        "Replies this month: 1. Resets 2026-02-01 00:00 UTC.",
    ]


def test_refusal_says_spent_and_held_apart() -> None:
    """A user blocked only by a reply in progress is told the money is held, not that they used it."""
    resets = datetime(2026, 2, 1, tzinfo=UTC)
    held_only = user_message(QuotaExceeded(10_000_000_000, 0, resets, held_pico=9_600_000_000), "/glm-quota")
    assert held_only == (
        "You have reached your glmbot spend limit: $0.00 spent and $0.0096 held by replies still in "
        "progress, of $0.010. It resets 2026-02-01 00:00 UTC. To get more, ask a glmbot admin (they manage "
        "limits with /glm-quota)."
    )
    assert "used" not in held_only
    spent_only = user_message(QuotaExceeded(10_000_000_000, 9_900_000_000, resets))
    assert spent_only.startswith("You have reached your glmbot spend limit: $0.0099 spent, of $0.010.")
    assert "held" not in spent_only
