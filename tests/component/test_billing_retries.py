"""Billing writes run twice: a reply lost after the command ran, and redis-py resending the command.

Every test goes through ``TcpProxy`` in front of the real redis-server: ``drop_next_reply()`` makes the
server do the work while the client never hears, so redis-py's one retry on a connection error
(``bot.store.connection``) sends the very same command again. Nothing may double: spend, replies, holds,
top scores, the max_tokens a reply was granted, the old values the admin log records.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as redis
from structlog.testing import capture_logs

from bot.billing.admin import QuotaAdmin
from bot.billing.commands import QuotaCommand, Reset, SetDefault, SetLimit
from bot.billing.keys import limit_key, reservations_key, spend_key, top_key
from bot.billing.ledger import RESET_SCRIPT, QuotaLedger
from bot.billing.limits import SET_LIMIT_SCRIPT
from bot.billing.pricing import Price
from bot.billing.top import TopSpenders
from bot.metrics import Metrics
from bot.store.connection import open_store, preload_scripts
from tests.fakes.redis_server import RedisServer
from tests.fakes.tcp_proxy import TcpProxy

PRICE = Price(input_pico_per_token=1_000, output_pico_per_token=2_000)
NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
SETTING = 10_000_000


@pytest.fixture
async def proxy(redis_url: str, redis_server: RedisServer) -> AsyncIterator[TcpProxy]:
    """A proxy in front of the emptied session redis-server."""
    assert redis_server.port is not None
    async with TcpProxy("127.0.0.1", redis_server.port) as running:
        yield running


@pytest.fixture
async def client(proxy: TcpProxy) -> AsyncIterator[redis.Redis]:
    """The bot's own client (with its retry policy), connected through the proxy."""
    connection = open_store(proxy.url())
    yield connection
    await connection.aclose()


@pytest.fixture
async def direct(redis_url: str) -> AsyncIterator[redis.Redis]:
    """A client straight to the server, to look at what really happened."""
    connection = open_store(redis_url)
    yield connection
    await connection.aclose()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def ledger(client: redis.Redis, metrics: Metrics) -> QuotaLedger:
    """A ledger whose scripts are loaded and whose pooled connection is open, so the lost reply is the
    tested command's (not a NOSCRIPT or a connection handshake)."""
    made = QuotaLedger(client, SETTING, "month", clock=lambda: NOW, metrics=metrics)
    await preload_scripts(client, (*made.scripts, RESET_SCRIPT, SET_LIMIT_SCRIPT))
    await made.status("U1")  # also caches the workspace default: the next command is the tested one
    return made


def lose_one_reply(proxy: TcpProxy) -> None:
    proxy.drop_next_reply()


async def test_resent_reserve_grants_the_same_reservation(
    ledger: QuotaLedger, proxy: TcpProxy, direct: redis.Redis
) -> None:
    """The resent reserve finds its own first grant and returns it: same max_tokens, one hold."""
    lose_one_reply(proxy)
    # 100 input + 4,000 output tokens hold 8.1 M of 10 M. Counting its own first hold, the resend would
    # have shrunk the reply to 900 tokens, or refused a larger one.
    reservation = await ledger.reserve("U1", 100, 4_000, 1_000, PRICE)
    assert proxy.dropped == 1
    assert (reservation.max_tokens, reservation.amount_pico) == (4_000, 8_100_000)
    entries = await direct.hgetall(reservations_key("U1", "2026-01"))
    assert list(entries) == [reservation.id]
    assert (await ledger.status("U1")).reserved_pico == 8_100_000


async def test_resent_settle_charges_once_and_says_what_it_charged(
    ledger: QuotaLedger, proxy: TcpProxy, direct: redis.Redis, metrics: Metrics
) -> None:
    """The resent settle gets the first run's answer (not "already settled, 0"): spend, replies, the top
    score and the spend metric count the reply once."""
    reservation = await ledger.reserve("U1", 100, 1_000, 1, PRICE)
    lose_one_reply(proxy)
    settlement = await ledger.settle(reservation, 1_500_000)
    assert proxy.dropped == 1
    assert (settlement.charged_pico, settlement.spent_pico) == (1_500_000, 1_500_000)
    assert await direct.hgetall(spend_key("U1", "2026-01")) == {"spent": "1500000", "replies": "1"}
    assert await direct.hlen(reservations_key("U1", "2026-01")) == 0
    assert await ledger.top() == [("U1", 1_500_000)]
    spend = metrics.registry.get_sample_value("glmbot_spend_usd_total", {"period": "2026-01"})
    assert spend == pytest.approx(1_500_000 / 10**12)
    # Another settle of the same reservation (a second process) still charges nothing.
    assert (await ledger.settle(reservation, 1_500_000)).charged_pico == 0


async def test_resent_top_update_does_not_double(
    client: redis.Redis, proxy: TcpProxy, direct: redis.Redis
) -> None:
    """The top set takes the absolute spent total (ZADD GT): resent, or late, it cannot double or go back."""
    top = TopSpenders(client)
    await client.ping()  # the pooled connection is open: the lost reply is the update's
    lose_one_reply(proxy)
    await top.record("2026-01", "U1", 700_000, 3_600)
    assert proxy.dropped == 1
    assert await direct.zscore(top_key("2026-01"), "U1") == 700_000
    await top.record("2026-01", "U1", 500_000, 3_600)  # an earlier settle's total, arriving late
    assert await top.ranking("2026-01", 10) == [("U1", 700_000)]
    assert 0 < await direct.ttl(top_key("2026-01")) <= 3_600


async def test_resent_release_is_harmless(ledger: QuotaLedger, proxy: TcpProxy) -> None:
    """Releasing twice drops the one hold and nothing else."""
    kept = await ledger.reserve("U1", 0, 1_000, 1, PRICE)
    dropped = await ledger.reserve("U1", 0, 1_000, 1, PRICE)
    lose_one_reply(proxy)
    await ledger.release(dropped)
    assert proxy.dropped == 1
    assert (await ledger.status("U1")).reserved_pico == kept.amount_pico


@pytest.mark.parametrize(("before", "after"), [(None, 5_000_000), (5_000_000, 7_000_000), (5_000_000, None)])
async def test_resent_user_limit_write_returns_the_old_limit(
    ledger: QuotaLedger, proxy: TcpProxy, direct: redis.Redis, before: int | None, after: int | None
) -> None:
    """Setting or removing a personal limit, resent, reports the limit before the change, not its own."""
    if before is not None:
        await ledger.set_user_limit("U1", before)
    lose_one_reply(proxy)
    assert await ledger.set_user_limit("U1", after) == before
    assert proxy.dropped == 1
    assert await direct.get(limit_key("U1")) == (None if after is None else str(after))


async def test_resent_default_write_returns_the_old_default(ledger: QuotaLedger, proxy: TcpProxy) -> None:
    """Setting the workspace default, resent, reports the default before the change."""
    assert await ledger.set_workspace_default(2_000_000) is None
    lose_one_reply(proxy)
    assert await ledger.set_workspace_default(3_000_000) == 2_000_000
    assert proxy.dropped == 1
    assert (await ledger.status("U1")).limit_pico == 3_000_000


async def test_resent_reset_reports_what_it_cleared(ledger: QuotaLedger, proxy: TcpProxy) -> None:
    """A resent reset finds its own marker and answers with the spend it cleared, not the zeros it left."""
    await ledger.settle(await ledger.reserve("U1", 0, 1_000, 1, PRICE), 400_000)
    held = await ledger.reserve("U1", 0, 1_000, 1, PRICE)
    lose_one_reply(proxy)
    cleared = await ledger.reset_user("U1")
    assert proxy.dropped == 1
    assert (cleared.spent_pico, cleared.replies, cleared.held_pico) == (400_000, 1, held.amount_pico)
    status = await ledger.status("U1")
    assert (status.spent_pico, status.replies, status.reserved_pico) == (0, 0, 0)
    assert await ledger.top() == []


async def test_admin_log_records_true_old_values_through_lost_replies(
    ledger: QuotaLedger, proxy: TcpProxy
) -> None:
    """Each admin change through QuotaAdmin is one log line with actor, action, old and new, right even
    when every write's reply was lost once."""
    admin = QuotaAdmin(ledger)
    await ledger.settle(await ledger.reserve("U1", 0, 1_000, 1, PRICE), 250_000)
    commands: list[QuotaCommand] = [
        SetLimit("U1", 5 * 10**12),
        SetLimit("U1", None),
        SetDefault(2 * 10**12),
        Reset("U1"),
    ]
    with capture_logs() as logs:
        for command in commands:
            lose_one_reply(proxy)
            await admin.run(command, "UADMIN1")
    assert proxy.dropped == len(commands)
    changes = [
        {key: value for key, value in entry.items() if key != "log_level"}
        for entry in logs
        if entry["event"] == "quota_admin_change"
    ]
    base = {"event": "quota_admin_change", "actor": "UADMIN1"}
    assert changes == [
        {**base, "action": "set_limit", "user": "U1", "old_usd": None, "new_usd": "5"},
        {**base, "action": "remove_limit", "user": "U1", "old_usd": "5", "new_usd": None},
        {**base, "action": "set_default", "old_usd": None, "new_usd": "2"},
        {
            **base,
            "action": "reset",
            "user": "U1",
            "period": "2026-01",
            "old_usd": "0.00000025",
            "new_usd": "0",
            "held_usd": "0",
            "replies": 1,
        },
    ]
