"""Per-user spend quotas in Redis: reserve the worst case of a reply, settle to its real cost.

The key layout and TTLs are described in ``keys``. The Lua scripts in ``lua/`` reserve, settle and read
atomically, each on one user's keys (one hash slot); ``lua/reservations.lua`` holds the helper they share.
Money is integer picodollars, exact in Lua's doubles. The scripts take every time from ARGV (the ledger's
injected clock), never from Redis TIME, so tests can move time.

Every write is safe to run twice, because redis-py resends a command whose connection dropped while it
read the reply (``bot.store.connection``), after the command may already have run: reserve answers again
for the same reservation id, settle and the admin writes keep their first answer under a marker, and the
top-spenders set takes an absolute total (``top``). Limits and their writes are in ``limits``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import redis.asyncio as redis
import structlog

from bot.billing.keys import limit_key, reservations_key, settled_key, spend_key, user_op_key
from bot.billing.limits import MAX_LIMIT_PICO, LimitBook, check_limit
from bot.billing.money import PICO_PER_USD
from bot.billing.periods import Period, PeriodKind, period_at
from bot.billing.pricing import Price
from bot.billing.records import Cleared, QuotaStatus, Reservation, Settlement
from bot.billing.top import TopSpenders
from bot.core.errors import QuotaExceeded
from bot.metrics import Metrics
from bot.store.connection import lua_source, store_errors

__all__ = ["MAX_LIMIT_PICO", "QuotaLedger", "notice_threshold"]

log = structlog.get_logger(__name__)

HISTORY_RETENTION = timedelta(days=90)
_MAX_EXACT = 2**53  # Lua numbers are doubles: integers below this are exact
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RESERVE_SCRIPT = lua_source(__package__, "lua/reservations.lua", "lua/reserve.lua")
SETTLE_SCRIPT = lua_source(__package__, "lua/reservations.lua", "lua/settle.lua")
STATUS_SCRIPT = lua_source(__package__, "lua/reservations.lua", "lua/status.lua")
RESET_SCRIPT = lua_source(__package__, "lua/reservations.lua", "lua/reset.lua")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _check_request(input_tokens: int, max_tokens: int, min_tokens: int, price: Price) -> None:
    """Reject what the reserve script cannot price, and amounts Lua's doubles could not hold exactly."""
    if input_tokens < 0 or max_tokens < 0 or min_tokens < 0:
        raise ValueError(f"token counts must not be negative: {input_tokens}, {max_tokens}, {min_tokens}")
    if price.input_pico_per_token < 0 or price.output_pico_per_token < 0:
        raise ValueError(f"prices must not be negative: {price}")
    if (
        input_tokens * price.input_pico_per_token >= _MAX_EXACT
        or max_tokens * price.output_pico_per_token >= _MAX_EXACT
    ):
        raise ValueError("request too large to price exactly")


def _as_int(value: Any) -> int:
    """A number Redis returned (None or empty when the field is unset) as an int."""
    return int(value) if value not in (None, "", b"") else 0


def notice_threshold(limit_pico: int) -> int:
    """SETTLE's threshold: the least spend with ``spent * 5 >= limit * 4`` (-1: never, for a zero limit)."""
    return -(-limit_pico * 4 // 5) if limit_pico > 0 else -1


class QuotaLedger:
    """Reserve, settle, release and report per-user spend against limits."""

    def __init__(
        self,
        client: redis.Redis,
        default_limit_pico: int,
        period_kind: PeriodKind,
        clock: Callable[[], datetime] = _utc_now,
        reservation_ttl_seconds: int = 600,
        metrics: Metrics | None = None,
    ) -> None:
        """``default_limit_pico`` is the configured setting; ``metrics`` (optional) counts spend and refusals.

        Raises ValueError for a limit out of range or a TTL that is not positive.
        """
        check_limit(default_limit_pico)
        if reservation_ttl_seconds <= 0:
            raise ValueError(f"reservation TTL must be positive, got {reservation_ttl_seconds}")
        self._client = client
        self._kind: PeriodKind = period_kind
        self._clock = clock
        self._reservation_ttl_seconds = reservation_ttl_seconds
        # Markers of settled reservations and admin writes: a resent command or a resumed reply comes
        # well within twice the reservation TTL.
        self._marker_ttl_seconds = 2 * reservation_ttl_seconds
        self._metrics = metrics
        self._reserve = client.register_script(RESERVE_SCRIPT)
        self._settle = client.register_script(SETTLE_SCRIPT)
        self._status = client.register_script(STATUS_SCRIPT)
        self._reset = client.register_script(RESET_SCRIPT)
        self._limits = LimitBook(client, default_limit_pico, self._marker_ttl_seconds)
        self._top = TopSpenders(client)

    @property
    def scripts(self) -> tuple[str, ...]:
        """The Lua sources a reply runs, for preloading at start (the admin scripts load on first use)."""
        return (RESERVE_SCRIPT, SETTLE_SCRIPT, STATUS_SCRIPT)

    async def reserve(
        self, user: str, input_tokens: int, max_tokens: int, min_tokens: int, price: Price
    ) -> Reservation:
        """Hold the worst case of a reply (picodollars) in the current period, shrinking ``max_tokens`` to
        what the user can afford.

        Raises QuotaExceeded when not even ``min_tokens`` fit, StoreUnavailable when Redis fails,
        ValueError for negative or unpriceable requests.
        """
        _check_request(input_tokens, max_tokens, min_tokens, price)
        now = self._clock()
        period = period_at(now, self._kind)
        fallback = await self._limits.fallback(now)
        # Made before the call, so a resent EVALSHA carries the same id and gets the same grant back.
        reservation_id = uuid4().hex
        now_ms = _epoch_ms(now)
        keys = [spend_key(user, period.label), reservations_key(user, period.label), limit_key(user)]
        args: list[str | int] = [
            now_ms,
            fallback,
            input_tokens,
            max_tokens,
            min_tokens,
            price.input_pico_per_token,
            price.output_pico_per_token,
            reservation_id,
            now_ms + self._reservation_ttl_seconds * 1000,
            2 * self._reservation_ttl_seconds,
        ]
        with store_errors("quota reserve"):
            result: Sequence[Any] = await self._reserve(keys=keys, args=args)
        granted, first, second, limit = (int(value) for value in result)
        if not granted:
            if self._metrics is not None:
                self._metrics.quota_refusals.inc()
            raise QuotaExceeded(limit, first, period.end, held_pico=second)
        return Reservation(reservation_id, user, period, first, second, limit)

    async def settle(self, reservation: Reservation, cost_pico: int) -> Settlement:
        """Charge the real cost (picodollars), never more than was reserved, into the reservation's period.

        Once per reservation: a second settle charges nothing. Raises ValueError for a negative cost,
        StoreUnavailable when Redis fails.
        """
        if cost_pico < 0:
            raise ValueError(f"cost must not be negative, got {cost_pico}")
        charge = min(cost_pico, reservation.amount_pico)
        if cost_pico > reservation.amount_pico:
            log.warning(
                "quota_cost_above_reservation",
                user=reservation.user,
                cost_pico=cost_pico,
                reserved_pico=reservation.amount_pico,
            )
        user, label = reservation.user, reservation.period.label
        ttl = self._retention_seconds(reservation.period)
        keys = [spend_key(user, label), reservations_key(user, label), settled_key(user, reservation.id)]
        args: list[str | int] = [
            reservation.id,
            charge,
            notice_threshold(reservation.limit_pico),
            ttl,
            _epoch_ms(self._clock()),
            reservation.limit_pico,
            self._marker_ttl_seconds,
            uuid4().hex,  # this call's id: resent, it gets its own answer back; another settle gets 0
        ]
        with store_errors("quota settle"):
            result: Sequence[Any] = await self._settle(keys=keys, args=args)
        charged, spent, due = (int(value) for value in result)
        if charged < charge:
            log.warning("quota_charge_capped_at_limit", user=user, cost_pico=charge, charged_pico=charged)
        if charged:
            await self._top.record(label, user, spent, ttl)
            if self._metrics is not None:
                self._metrics.spend_usd.labels(label).inc(charged / PICO_PER_USD)
        return Settlement(charged, spent, reservation.limit_pico, bool(due))

    async def release(self, reservation: Reservation) -> None:
        """Nothing was spent: drop the reservation (again: nothing). Raises StoreUnavailable."""
        key = reservations_key(reservation.user, reservation.period.label)
        with store_errors("quota release"):
            await self._client.hdel(key, reservation.id)

    async def status(self, user: str) -> QuotaStatus:
        """The user's spend, this period's live reservations and limit. Raises StoreUnavailable."""
        now = self._clock()
        period = period_at(now, self._kind)
        workspace = await self._limits.workspace_default(now)
        keys = [limit_key(user), spend_key(user, period.label), reservations_key(user, period.label)]
        with store_errors("quota status"):
            own, spent, replies, reserved = await self._status(keys=keys, args=[_epoch_ms(now)])
        limit, source = self._limits.resolve(_as_int(own) if own else None, workspace)
        return QuotaStatus(user, period, _as_int(spent), int(reserved), limit, _as_int(replies), source)

    async def set_user_limit(self, user: str, limit_pico: int | None) -> int | None:
        """Give ``user`` their own limit; None removes it (the workspace default applies again).

        Returns their own limit before the change (None: there was none). See ``LimitBook``.
        """
        return await self._limits.set_user_limit(user, limit_pico)

    async def set_workspace_default(self, limit_pico: int | None) -> int | None:
        """Set the workspace default limit (overrides the setting); None removes it. Returns the old one."""
        return await self._limits.set_workspace_default(limit_pico)

    async def reset_user(self, user: str) -> Cleared:
        """Zero this period's spend, replies and notice flag, and drop this period's live reservations.

        Other periods' spend is kept. Returns what was cleared; run twice, the same. Raises
        StoreUnavailable.
        """
        now = self._clock()
        period = period_at(now, self._kind)
        # The operation id is made before the call: resent, the script finds its marker and answers again.
        keys = [
            spend_key(user, period.label),
            reservations_key(user, period.label),
            user_op_key(user, uuid4().hex),
        ]
        args = [_epoch_ms(now), self._marker_ttl_seconds]
        with store_errors("quota reset"):
            result: Sequence[Any] = await self._reset(keys=keys, args=args)
        spent, replies, held = (int(value) for value in result)
        await self._top.forget(period.label, user)
        return Cleared(period, spent, replies, held)

    async def top(self, count: int = 10) -> list[tuple[str, int]]:
        """This period's top spenders as (user, spent_pico), highest first. Raises StoreUnavailable."""
        return await self._top.ranking(period_at(self._clock(), self._kind).label, count)

    def _retention_seconds(self, period: Period) -> int:
        """Seconds from now until 90 days after ``period`` ends (at least 1)."""
        remaining = period.end + HISTORY_RETENTION - self._clock()
        return max(1, int(remaining.total_seconds()))
