"""Per-user spend quotas in Redis: reserve the worst case of a reply, settle to its real cost.

The key layout and TTLs are described in ``keys``. The Lua scripts in ``lua/`` reserve, settle and read
atomically, each on one user's keys (one hash slot); ``lua/reservations.lua`` holds the helper they share.
Money is integer picodollars, exact in Lua's doubles. The scripts take every time from ARGV (the ledger's
injected clock), never from Redis TIME, so tests can move time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import redis.asyncio as redis
import structlog

from bot.billing.keys import DEFAULT_KEY, limit_key, reservations_key, settled_key, spend_key, top_key
from bot.billing.money import MAX_LIMIT_USD, PICO_PER_USD
from bot.billing.periods import Period, PeriodKind, period_at
from bot.billing.pricing import Price
from bot.billing.records import LimitSource, QuotaStatus, Reservation, Settlement
from bot.core.errors import QuotaExceeded, StoreUnavailable
from bot.store.connection import lua_source, store_errors

log = structlog.get_logger(__name__)

DEFAULT_CACHE_SECONDS = 30
HISTORY_RETENTION = timedelta(days=90)
MAX_LIMIT_PICO = int(MAX_LIMIT_USD) * PICO_PER_USD
_MAX_EXACT = 2**53  # Lua numbers are doubles: integers below this are exact
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RESERVE_SCRIPT = lua_source(__package__, "lua/reservations.lua", "lua/reserve.lua")
SETTLE_SCRIPT = lua_source(__package__, "lua/reservations.lua", "lua/settle.lua")
STATUS_SCRIPT = lua_source(__package__, "lua/reservations.lua", "lua/status.lua")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _check_limit(limit_pico: int | None) -> None:
    if limit_pico is not None and not 0 <= limit_pico <= MAX_LIMIT_PICO:
        raise ValueError(f"limit must be between 0 and {MAX_LIMIT_PICO} pico-USD, got {limit_pico}")


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
    ) -> None:
        _check_limit(default_limit_pico)
        if reservation_ttl_seconds <= 0:
            raise ValueError(f"reservation TTL must be positive, got {reservation_ttl_seconds}")
        self._client = client
        self._default_limit_pico = default_limit_pico
        self._kind: PeriodKind = period_kind
        self._clock = clock
        self._reservation_ttl_seconds = reservation_ttl_seconds
        self._reserve = client.register_script(RESERVE_SCRIPT)
        self._settle = client.register_script(SETTLE_SCRIPT)
        self._status = client.register_script(STATUS_SCRIPT)
        self._workspace_cache: tuple[datetime, int | None] | None = None

    @property
    def scripts(self) -> tuple[str, ...]:
        """The Lua sources this ledger runs, for preloading at start."""
        return (RESERVE_SCRIPT, SETTLE_SCRIPT, STATUS_SCRIPT)

    async def reserve(
        self, user: str, input_tokens: int, max_tokens: int, min_tokens: int, price: Price
    ) -> Reservation:
        """Hold the worst case of a reply, shrinking ``max_tokens`` to what the user can afford.

        Raises QuotaExceeded when not even ``min_tokens`` fit, StoreUnavailable when Redis fails.
        """
        _check_request(input_tokens, max_tokens, min_tokens, price)
        now = self._clock()
        period = period_at(now, self._kind)
        fallback = await self._fallback_limit(now)
        reservation_id = uuid4().hex
        now_ms = _epoch_ms(now)
        keys = [spend_key(user, period.label), reservations_key(user), limit_key(user)]
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
            raise QuotaExceeded(limit, first + second, period.end)
        return Reservation(reservation_id, user, period, first, second, limit)

    async def settle(self, reservation: Reservation, cost_pico: int) -> Settlement:
        """Charge the real cost, never more than was reserved, into the reservation's period."""
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
        keys = [spend_key(user, label), reservations_key(user), settled_key(user, reservation.id)]
        threshold = notice_threshold(reservation.limit_pico)
        now_ms = _epoch_ms(self._clock())
        marker_ttl = 2 * self._reservation_ttl_seconds  # a retry or a resumption comes well within it
        args: list[str | int] = [
            reservation.id,
            charge,
            threshold,
            ttl,
            now_ms,
            reservation.limit_pico,
            marker_ttl,
        ]
        with store_errors("quota settle"):
            result: Sequence[Any] = await self._settle(keys=keys, args=args)
        charged, spent, due = (int(value) for value in result)
        if charged < charge:
            log.warning("quota_charge_capped_at_limit", user=user, cost_pico=charge, charged_pico=charged)
        if charged:
            await self._bump_top(label, user, charged, ttl)
        return Settlement(charged, spent, reservation.limit_pico, bool(due))

    async def release(self, reservation: Reservation) -> None:
        """Nothing was spent: drop the reservation."""
        with store_errors("quota release"):
            await self._client.hdel(reservations_key(reservation.user), reservation.id)

    async def status(self, user: str) -> QuotaStatus:
        """The user's spend, live reservations and limit in the current period."""
        now = self._clock()
        period = period_at(now, self._kind)
        workspace = await self._workspace_default(now)
        keys = [limit_key(user), spend_key(user, period.label), reservations_key(user)]
        with store_errors("quota status"):
            own, spent, replies, reserved = await self._status(keys=keys, args=[_epoch_ms(now)])
        limit, source = self._resolve_limit(_as_int(own) if own else None, workspace)
        return QuotaStatus(user, period, _as_int(spent), int(reserved), limit, _as_int(replies), source)

    async def set_user_limit(self, user: str, limit_pico: int | None) -> None:
        """Give ``user`` their own limit; None removes it (the workspace default applies again)."""
        _check_limit(limit_pico)
        with store_errors("quota set limit"):
            if limit_pico is None:
                await self._client.delete(limit_key(user))
            else:
                await self._client.set(limit_key(user), limit_pico)

    async def set_workspace_default(self, limit_pico: int | None) -> None:
        """Set the workspace default limit (overrides the setting); None removes it."""
        _check_limit(limit_pico)
        self._workspace_cache = None
        with store_errors("quota set default"):
            if limit_pico is None:
                await self._client.delete(DEFAULT_KEY)
            else:
                await self._client.set(DEFAULT_KEY, limit_pico)

    async def reset_user(self, user: str) -> None:
        """Zero this period's spend, replies and notice flag, and drop live reservations.

        Other periods' spend is kept.
        """
        period = period_at(self._clock(), self._kind)
        with store_errors("quota reset"):
            await self._client.delete(spend_key(user, period.label), reservations_key(user))
            await self._client.zrem(top_key(period.label), user)

    async def top(self, count: int = 10) -> list[tuple[str, int]]:
        """This period's top spenders as (user, spent_pico), highest first."""
        if count <= 0:
            return []
        period = period_at(self._clock(), self._kind)
        with store_errors("quota top"):
            rows: list[Any] = await self._client.zrevrange(
                top_key(period.label), 0, count - 1, withscores=True
            )
        return [(_text(user), int(score)) for user, score in rows]

    async def _bump_top(self, label: str, user: str, charge: int, ttl: int) -> None:
        """Add ``charge`` to the user's score in the period's top set (one round trip).

        The charge is already booked, so a failure here is logged, not raised: raising would invite a
        retry of ``settle`` and charge the reply twice. The ranking is a report, the spend hash the truth.
        """
        try:
            with store_errors("quota top update"):
                async with self._client.pipeline(transaction=False) as pipe:
                    pipe.zincrby(top_key(label), charge, user)
                    pipe.expire(top_key(label), ttl)
                    await pipe.execute()
        except StoreUnavailable as exc:
            log.warning("quota_top_update_failed", error=str(exc))

    def _retention_seconds(self, period: Period) -> int:
        """Seconds from now until 90 days after ``period`` ends (at least 1)."""
        remaining = period.end + HISTORY_RETENTION - self._clock()
        return max(1, int(remaining.total_seconds()))

    def _resolve_limit(self, own: int | None, workspace: int | None) -> tuple[int, LimitSource]:
        if own is not None:
            return own, "user"
        if workspace is not None:
            return workspace, "workspace"
        return self._default_limit_pico, "setting"

    async def _fallback_limit(self, now: datetime) -> int:
        """The limit for users without their own: the workspace default, else the setting."""
        workspace = await self._workspace_default(now)
        return self._default_limit_pico if workspace is None else workspace

    async def _workspace_default(self, now: datetime) -> int | None:
        """The workspace default limit, cached for ``DEFAULT_CACHE_SECONDS`` of the injected clock."""
        cached = self._workspace_cache
        if cached is not None and timedelta(0) <= now - cached[0] < timedelta(seconds=DEFAULT_CACHE_SECONDS):
            return cached[1]
        with store_errors("quota default"):
            raw = await self._client.get(DEFAULT_KEY)
        value = None if raw is None else int(raw)
        self._workspace_cache = (now, value)
        return value


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
