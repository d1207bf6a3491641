"""QuotaLedger against a real redis-server, with a clock the tests move."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis
from redis.crc import key_slot
from structlog.testing import capture_logs

from bot.billing.keys import (
    DEFAULT_KEY,
    default_op_key,
    limit_key,
    reservations_key,
    settled_key,
    spend_key,
    top_key,
    user_op_key,
)
from bot.billing.ledger import MAX_LIMIT_PICO, QuotaLedger
from bot.billing.periods import period_at
from bot.billing.pricing import Price
from bot.billing.records import Reservation
from bot.core.errors import QuotaExceeded, StoreUnavailable
from bot.store.connection import open_store
from tests.fakes.redis_server import RedisServer
from tests.quota_spec import notice_due, plan_reply

PRICE = Price(input_pico_per_token=1_000, output_pico_per_token=2_000)
JANUARY = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC)
SETTING = 10_000_000


class Clock:
    """A settable UTC clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    connection = open_store(redis_url)
    yield connection
    await connection.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock(JANUARY)


@pytest.fixture
def ledger(client: redis.Redis, clock: Clock) -> QuotaLedger:
    return QuotaLedger(client, SETTING, "month", clock=clock, reservation_ttl_seconds=600)


async def test_concurrent_reservations_never_exceed_limit(ledger: QuotaLedger) -> None:
    """50 racing reservations of one user together stay within the limit; the rest raise QuotaExceeded."""
    results = await asyncio.gather(
        *(ledger.reserve("U1", 100, 1_000, 100, PRICE) for _ in range(50)), return_exceptions=True
    )
    granted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(error, QuotaExceeded) for error in refused)
    assert sum(r.amount_pico for r in granted) <= SETTING
    # 4 full replies (2.1 M each), then one shrunk to 750 tokens: 10 M exactly.
    assert sorted(r.max_tokens for r in granted) == [750, 1_000, 1_000, 1_000, 1_000]
    assert len(refused) == 45
    assert len({r.id for r in granted}) == 5
    status = await ledger.status("U1")
    assert status.reserved_pico == sum(r.amount_pico for r in granted) == SETTING


@pytest.mark.parametrize(
    ("limit", "input_tokens", "max_tokens", "min_tokens", "price"),
    [
        (SETTING, 100, 1_000, 1, PRICE),  # everything fits
        (1_000_000, 100, 1_000, 1, PRICE),  # shrinks to 450
        (1_000_001, 100, 1_000, 450, PRICE),  # shrinks exactly to min_tokens
        (999_999, 100, 1_000, 450, PRICE),  # one picodollar short of min_tokens
        (99_999, 100, 1_000, 0, PRICE),  # prompt alone unaffordable
        (5_000, 0, 7, 1, Price(0, 777)),  # free prompt, uneven division
        (5_000, 3, 1_000, 1, Price(1_000, 0)),  # free output: max_tokens kept
        # Near the 2**53 edge of Lua's doubles: the $9,000 cap, a long prompt, odd prices.
        (MAX_LIMIT_PICO, 1_234_567, 9_000_000_000, 1, Price(999_999_937, 999_983)),
        (MAX_LIMIT_PICO - 1, 0, 9_000_000_000, 1, Price(0, 1_000_000)),
    ],
)
async def test_reserve_matches_plan_reply(
    client: redis.Redis,
    clock: Clock,
    limit: int,
    input_tokens: int,
    max_tokens: int,
    min_tokens: int,
    price: Price,
) -> None:
    """The Lua sizing gives the same max_tokens and amount as the pure plan_reply, or refuses when it does."""
    ledger = QuotaLedger(client, limit, "month", clock=clock)
    expected = plan_reply(limit, input_tokens, max_tokens, min_tokens, price)
    if expected is None:
        with pytest.raises(QuotaExceeded) as refused:
            await ledger.reserve("U1", input_tokens, max_tokens, min_tokens, price)
        assert (refused.value.limit_pico, refused.value.spent_pico) == (limit, 0)
        return
    reservation = await ledger.reserve("U1", input_tokens, max_tokens, min_tokens, price)
    assert (reservation.max_tokens, reservation.amount_pico) == (expected.max_tokens, expected.reserve_pico)
    assert reservation.limit_pico == limit
    assert (await ledger.status("U1")).reserved_pico == expected.reserve_pico  # stored exactly, too


async def test_max_tokens_shrinks_to_what_is_left(ledger: QuotaLedger) -> None:
    """After spending, the next reply gets only the output tokens the rest of the limit buys."""
    first = await ledger.reserve("U1", 100, 1_000, 1, PRICE)
    await ledger.settle(first, 9_000_000)  # capped to the 2.1 M reserved
    second = await ledger.reserve("U1", 100, 5_000, 1, PRICE)
    expected = plan_reply(SETTING - 2_100_000, 100, 5_000, 1, PRICE)
    assert expected is not None
    assert (second.max_tokens, second.amount_pico) == (expected.max_tokens, expected.reserve_pico)
    assert second.max_tokens == 3_900


async def test_refusal_below_min_tokens(ledger: QuotaLedger, clock: Clock) -> None:
    """When fewer than min_tokens are affordable, QuotaExceeded reports spent and held money apart, and the
    reset."""
    held = await ledger.reserve("U1", 100, 4_900, 1, PRICE)  # 9.9 M of 10 M
    with pytest.raises(QuotaExceeded) as refused:
        await ledger.reserve("U1", 0, 1_000, 51, PRICE)  # 100 k left buys 50 tokens
    assert refused.value.limit_pico == SETTING
    assert (refused.value.spent_pico, refused.value.held_pico) == (0, held.amount_pico)
    assert held.amount_pico == 9_900_000
    assert refused.value.resets_at == datetime(2026, 2, 1, tzinfo=UTC)
    assert (await ledger.reserve("U1", 0, 1_000, 50, PRICE)).max_tokens == 50


async def test_settle_charges_real_cost_and_frees_the_rest(ledger: QuotaLedger) -> None:
    """Settling charges the real cost, counts the reply and releases the unused part of the hold."""
    reservation = await ledger.reserve("U1", 100, 1_000, 1, PRICE)
    settlement = await ledger.settle(reservation, 345_678)
    assert settlement.charged_pico == settlement.spent_pico == 345_678
    assert settlement.limit_pico == SETTING
    assert not settlement.notice_due
    status = await ledger.status("U1")
    assert (status.spent_pico, status.reserved_pico, status.replies) == (345_678, 0, 1)
    assert status.limit_source == "setting"


async def test_settle_never_charges_above_reservation(ledger: QuotaLedger) -> None:
    """A real cost above the reservation charges the reservation only, with a warning."""
    reservation = await ledger.reserve("U1", 100, 1_000, 1, PRICE)
    with capture_logs() as logs:
        settlement = await ledger.settle(reservation, reservation.amount_pico + 1)
    assert settlement.charged_pico == settlement.spent_pico == reservation.amount_pico
    assert [entry["event"] for entry in logs] == ["quota_cost_above_reservation"]
    assert logs[0]["log_level"] == "warning"


async def test_release_frees_everything(ledger: QuotaLedger) -> None:
    """A released reservation costs nothing and no longer holds money."""
    reservation = await ledger.reserve("U1", 100, 4_900, 1, PRICE)
    await ledger.release(reservation)
    status = await ledger.status("U1")
    assert (status.spent_pico, status.reserved_pico, status.replies) == (0, 0, 0)
    assert (await ledger.reserve("U1", 100, 4_900, 1, PRICE)).max_tokens == 4_900


async def test_unsettled_reservation_expires(ledger: QuotaLedger, clock: Clock) -> None:
    """A reservation never settled stops holding money after reservation_ttl_seconds."""
    stale = await ledger.reserve("U1", 0, 5_000, 1, PRICE)  # the whole limit
    clock.advance(599)
    with pytest.raises(QuotaExceeded):
        await ledger.reserve("U1", 0, 1, 1, PRICE)
    assert (await ledger.status("U1")).reserved_pico == SETTING
    clock.advance(1)
    assert (await ledger.status("U1")).reserved_pico == 0
    fresh = await ledger.reserve("U1", 0, 5_000, 1, PRICE)
    assert fresh.max_tokens == 5_000
    # The late settle charges only what the limit leaves beside the fresh reservation: nothing here,
    # so the user is never charged past the limit.
    settlement = await ledger.settle(stale, 1_000)
    assert settlement.charged_pico == 0
    assert (await ledger.status("U1")).reserved_pico == fresh.amount_pico


async def test_late_settle_still_charges_within_the_limit(ledger: QuotaLedger, clock: Clock) -> None:
    """A reservation that expired during a long reply is still charged when the limit has room."""
    stale = await ledger.reserve("U1", 0, 5_000, 1, PRICE)
    clock.advance(601)
    settlement = await ledger.settle(stale, 1_000)
    assert settlement.charged_pico == 1_000
    assert (await ledger.status("U1")).spent_pico == 1_000


async def test_period_rollover(ledger: QuotaLedger, client: redis.Redis, clock: Clock) -> None:
    """A new month starts at zero; last month's spend stays readable with a TTL; late settles go to it."""
    january = await ledger.settle(await ledger.reserve("U1", 100, 1_000, 1, PRICE), 500_000)
    late = await ledger.reserve("U1", 100, 1_000, 1, PRICE)
    clock.now = FEBRUARY
    status = await ledger.status("U1")
    assert (status.period.label, status.spent_pico, status.replies) == ("2026-02", 0, 0)
    await ledger.settle(late, 700_000)
    old = spend_key("U1", "2026-01")
    assert await client.hget(old, "spent") == str(january.spent_pico + 700_000)
    assert await client.hget(old, "replies") == "2"
    # The TTL counts from the injected clock: 90 days after the end of January, less the second passed.
    assert 90 * 86_400 - 5 <= await client.ttl(old) <= 90 * 86_400
    assert not await client.exists(spend_key("U1", "2026-02"))
    assert await ledger.top() == []


async def test_limit_precedence(ledger: QuotaLedger, client: redis.Redis, clock: Clock) -> None:
    """A user's own limit beats the workspace default, which beats the setting."""
    status = await ledger.status("U1")
    assert (status.limit_pico, status.limit_source) == (SETTING, "setting")
    await ledger.set_workspace_default(20_000_000)
    status = await ledger.status("U1")
    assert (status.limit_pico, status.limit_source) == (20_000_000, "workspace")
    assert (await ledger.reserve("U1", 0, 100_000, 1, PRICE)).limit_pico == 20_000_000
    await ledger.set_user_limit("U1", 3_000_000)
    status = await ledger.status("U1")
    assert (status.limit_pico, status.limit_source) == (3_000_000, "user")
    with pytest.raises(QuotaExceeded) as refused:
        await ledger.reserve("U1", 0, 1, 1, PRICE)  # the 20 M hold already exceeds the 3 M own limit
    assert refused.value.limit_pico == 3_000_000
    assert (await ledger.status("U2")).limit_source == "workspace"
    await ledger.set_user_limit("U1", None)
    assert (await ledger.status("U1")).limit_source == "workspace"
    await ledger.set_workspace_default(None)
    assert (await ledger.status("U1")).limit_source == "setting"
    assert await client.get(DEFAULT_KEY) is None
    assert await client.get(limit_key("U1")) is None


async def test_workspace_default_is_cached_for_30_seconds(client: redis.Redis, clock: Clock) -> None:
    """Another process's new default shows after at most 30 s; this process's own change at once."""
    mine = QuotaLedger(client, SETTING, "month", clock=clock)
    other = QuotaLedger(client, SETTING, "month", clock=clock)
    assert (await mine.reserve("U1", 0, 1, 1, PRICE)).limit_pico == SETTING
    await other.set_workspace_default(5_000_000)
    clock.advance(29)
    assert (await mine.reserve("U1", 0, 1, 1, PRICE)).limit_pico == SETTING
    clock.advance(1)
    assert (await mine.reserve("U1", 0, 1, 1, PRICE)).limit_pico == 5_000_000
    await mine.set_workspace_default(7_000_000)
    assert (await mine.reserve("U1", 0, 1, 1, PRICE)).limit_pico == 7_000_000


async def test_zero_limit_blocks(ledger: QuotaLedger) -> None:
    """A limit of 0 refuses every reply and never raises a notice."""
    await ledger.set_user_limit("U1", 0)
    with pytest.raises(QuotaExceeded) as refused:
        await ledger.reserve("U1", 1, 1, 1, PRICE)
    assert (refused.value.limit_pico, refused.value.spent_pico) == (0, 0)


async def test_limits_are_validated(ledger: QuotaLedger) -> None:
    """Negative limits, limits above $9,000, negative token counts and costs are rejected."""
    with pytest.raises(ValueError, match="limit"):
        await ledger.set_user_limit("U1", -1)
    with pytest.raises(ValueError, match="limit"):
        await ledger.set_workspace_default(MAX_LIMIT_PICO + 1)
    with pytest.raises(ValueError, match="negative"):
        await ledger.reserve("U1", -1, 1, 1, PRICE)
    reservation = await ledger.reserve("U1", 1, 1, 1, PRICE)
    with pytest.raises(ValueError, match="negative"):
        await ledger.settle(reservation, -1)


async def test_reset_user(ledger: QuotaLedger, client: redis.Redis, clock: Clock) -> None:
    """reset_user zeroes this period's spend, replies, notice flag and holds; other periods are kept."""
    await ledger.settle(await ledger.reserve("U1", 100, 1_000, 1, PRICE), 1_000_000)
    clock.now = FEBRUARY
    await ledger.set_user_limit("U1", 1_000_000)
    assert (await ledger.settle(await ledger.reserve("U1", 0, 500, 1, PRICE), 900_000)).notice_due
    await ledger.reserve("U1", 0, 50, 1, PRICE)
    await ledger.settle(await ledger.reserve("U2", 0, 50, 1, PRICE), 10_000)
    await ledger.reset_user("U1")
    status = await ledger.status("U1")
    assert (status.spent_pico, status.reserved_pico, status.replies) == (0, 0, 0)
    assert await ledger.top() == [("U2", 10_000)]
    assert await client.hget(spend_key("U1", "2026-01"), "spent") == "1000000"
    assert (await ledger.settle(await ledger.reserve("U1", 0, 500, 1, PRICE), 800_000)).notice_due


async def test_top_orders_users(ledger: QuotaLedger, client: redis.Redis, clock: Clock) -> None:
    """top lists this period's spenders, highest first, up to count."""
    for user, cost in [("U1", 300_000), ("U2", 900_000), ("U3", 100_000), ("U1", 700_000)]:
        await ledger.settle(await ledger.reserve(user, 100, 1_000, 1, PRICE), cost)
    await ledger.release(await ledger.reserve("U4", 100, 1_000, 1, PRICE))
    assert await ledger.top() == [("U1", 1_000_000), ("U2", 900_000), ("U3", 100_000)]
    assert await ledger.top(2) == [("U1", 1_000_000), ("U2", 900_000)]
    assert await ledger.top(0) == []
    assert await client.ttl(top_key("2026-01")) > 90 * 86_400
    clock.now = FEBRUARY
    assert await ledger.top() == []


async def test_notice_due_once_per_period_at_80_percent(ledger: QuotaLedger, clock: Clock) -> None:
    """notice_due is True for the one settlement that crosses 80 % of the limit, again next period."""
    await ledger.set_user_limit("U1", 1_000_000)
    for cost, expected in [(500_000, False), (299_999, False), (1, True), (100_000, False)]:
        settlement = await ledger.settle(await ledger.reserve("U1", 0, 400, 1, PRICE), cost)
        assert settlement.notice_due is expected
        assert notice_due(settlement.spent_pico, 1_000_000) == (settlement.spent_pico >= 800_000)
    clock.now = FEBRUARY
    settlement = await ledger.settle(await ledger.reserve("U1", 0, 500, 1, PRICE), 850_000)
    assert settlement.notice_due


async def test_notice_threshold_rounds_like_notice_due(ledger: QuotaLedger) -> None:
    """With a limit not divisible by 5 the flag rises exactly where notice_due turns True."""
    await ledger.set_user_limit("U1", 1_000_003)  # 80 % = 800_002.4
    price = Price(0, 1)
    assert not (await ledger.settle(await ledger.reserve("U1", 0, 800_002, 1, price), 800_002)).notice_due
    assert not notice_due(800_002, 1_000_003)
    assert (await ledger.settle(await ledger.reserve("U1", 0, 1, 1, price), 1)).notice_due
    assert notice_due(800_003, 1_000_003)


async def test_every_key_has_a_ttl_except_limits(ledger: QuotaLedger, client: redis.Redis) -> None:
    """Spend hashes, holds, markers and top sets expire; only the limit and default keys are permanent."""
    await ledger.set_workspace_default(SETTING)
    await ledger.set_user_limit("U1", SETTING)
    settled = await ledger.reserve("U1", 100, 1_000, 1, PRICE)
    await ledger.settle(settled, 1_000)
    await ledger.reserve("U1", 100, 1_000, 1, PRICE)
    keys = sorted([key async for key in client.scan_iter("glmbot:*")])
    permanent = {DEFAULT_KEY, limit_key("U1")}
    expiring = {spend_key("U1", "2026-01"), reservations_key("U1", "2026-01"), top_key("2026-01")}
    # The two admin writes left one operation marker each (their answer, for a resent command).
    markers = {key for key in keys if ":op:" in key}
    assert len(markers) == 2
    assert set(keys) - markers == permanent | expiring | {settled_key("U1", settled.id)}
    for key in keys:
        ttl = await client.ttl(key)
        assert (ttl == -1) if key in permanent else ttl > 0, key
    assert await client.ttl(reservations_key("U1", "2026-01")) == 1_200


async def test_keys_of_one_user_share_a_slot() -> None:
    """Every key of one user carries the {quota:<user>} hash tag and hashes to one cluster slot."""
    keys = [
        limit_key("U1"),
        spend_key("U1", "2026-01"),
        spend_key("U1", "2026-W05"),
        reservations_key("U1", "2026-01"),
        settled_key("U1", "r1"),
        user_op_key("U1", "op1"),
    ]
    assert all("{quota:U1}" in key for key in keys)
    assert len({key_slot(key.encode()) for key in keys}) == 1
    # The workspace default's operation markers share the default key's slot (set_limit.lua uses both).
    assert key_slot(default_op_key("op1").encode()) == key_slot(DEFAULT_KEY.encode())
    with pytest.raises(ValueError, match="user id"):
        limit_key("U}1")


async def test_a_reply_costs_four_commands(ledger: QuotaLedger, redis_server: RedisServer) -> None:
    """With scripts loaded and the default cached, a reply sends EVALSHA x2 + ZADD + EXPIRE."""
    await ledger.settle(await ledger.reserve("U1", 100, 1_000, 1, PRICE), 1_000)
    redis_server.reset_stats()
    await ledger.settle(await ledger.reserve("U1", 100, 1_000, 1, PRICE), 1_000)
    # The server also counts the commands run inside the scripts: reserve HGET(retry check) GET HGETALL
    # HGET HSET EXPIRE, settle GET(marker) HDEL HGETALL HGET HINCRBY HINCRBY EXPIRE SET(marker); outside
    # them ZADD EXPIRE. No GET of the workspace default.
    assert redis_server.command_count() == 2 + 6 + 8 + 2
    calls = {name: stat["calls"] for name, stat in redis_server.client.info("commandstats").items()}
    assert (calls["cmdstat_evalsha"], calls["cmdstat_zadd"]) == (2, 1)


async def test_embedded_store_runs_the_same_scripts(clock: Clock) -> None:
    """Without REDIS_URL the in-process store runs the same reserve and settle scripts."""
    embedded = open_store(None)
    ledger = QuotaLedger(embedded, 1_000_000, "month", clock=clock)
    reservation = await ledger.reserve("U1", 100, 1_000, 1, PRICE)
    assert (reservation.max_tokens, reservation.amount_pico) == (450, 1_000_000)
    settlement = await ledger.settle(reservation, 850_000)
    assert (settlement.spent_pico, settlement.notice_due) == (850_000, True)
    assert await ledger.top() == [("U1", 850_000)]
    assert (await ledger.status("U1")).reserved_pico == 0
    await embedded.aclose()


async def test_dead_redis_raises_store_unavailable(clock: Clock) -> None:
    """Every ledger operation against an unreachable Redis raises StoreUnavailable."""
    dead = open_store("redis://127.0.0.1:9/0")
    ledger = QuotaLedger(dead, SETTING, "month", clock=clock)
    with pytest.raises(StoreUnavailable):
        await ledger.reserve("U1", 1, 1, 1, PRICE)
    held = Reservation("r1", "U1", period_at(clock(), "month"), 1, 1, SETTING)
    for operation in (
        ledger.settle(held, 1),
        ledger.release(held),
        ledger.status("U1"),
        ledger.set_user_limit("U1", 1),
        ledger.set_workspace_default(1),
        ledger.reset_user("U1"),
        ledger.top(),
    ):
        with pytest.raises(StoreUnavailable):
            await operation
    await dead.aclose()


async def test_settling_twice_charges_once(ledger: QuotaLedger) -> None:
    """A second settle of the same reservation (a retry, a resumed reply) charges nothing."""
    reservation = await ledger.reserve("U1", 100, 1000, 10, PRICE)
    first = await ledger.settle(reservation, 1_000_000)
    again = await ledger.settle(reservation, 1_000_000)
    assert first.charged_pico == 1_000_000
    assert again.charged_pico == 0
    status = await ledger.status("U1")
    assert (status.spent_pico, status.replies) == (1_000_000, 1)
