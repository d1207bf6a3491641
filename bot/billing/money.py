"""Spend quotas: money parsing and display, calendar periods, and reply budgets.

Pure functions only. Money is an exact integer number of picodollars (10**-12 USD); limits stay at or
below ``MAX_LIMIT_USD`` so every amount is below 2**53 and survives Redis Lua's doubles exactly.
Periods are calendar periods in UTC: a day, an ISO week starting Monday 00:00, or a month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

from bot.billing.pricing import Price

PICO_PER_USD = 10**12
MAX_LIMIT_USD = Decimal(9000)
PeriodKind = Literal["day", "week", "month"]

AMOUNT_ERROR = "amount must be a number of US dollars between 0 and 9000, like 5 or 2.50"
_AMOUNT = re.compile(r"\$?\s*((?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.[0-9]*)?|\.[0-9]+)")


def usd_to_pico(usd: Decimal) -> int:
    """Exact picodollars for ``usd``, rounding half up to the picodollar.

    Raises ``ValueError`` for a non-finite or negative amount, or one above ``MAX_LIMIT_USD``.
    """
    if not usd.is_finite():
        raise ValueError(f"amount must be a finite number of US dollars, got {usd}")
    if usd < 0:
        raise ValueError(f"amount must not be negative, got {usd} USD")
    if usd > MAX_LIMIT_USD:
        raise ValueError(f"amount must be at most {MAX_LIMIT_USD} USD, got {usd} USD")
    numerator, denominator = usd.as_integer_ratio()
    return (2 * numerator * PICO_PER_USD + denominator) // (2 * denominator)


def parse_usd(text: str) -> int:
    """Picodollars for a user's amount such as ``5``, ``5.50``, ``$5.50`` or ``$1,000``.

    Anything else (words, signs, exponents, NaN, infinity, an empty string, above $9,000) raises
    ``ValueError`` with ``AMOUNT_ERROR``.
    """
    match = _AMOUNT.fullmatch(text.strip())
    if match is None:
        raise ValueError(AMOUNT_ERROR)
    try:
        return usd_to_pico(Decimal(match.group(1).replace(",", "")))
    except (InvalidOperation, ValueError):
        raise ValueError(AMOUNT_ERROR) from None


def _round_half_up(pico: int, decimals: int) -> int:
    """``pico`` (non-negative) in units of 10**-decimals USD, rounded half up."""
    unit: int = 10 ** (12 - decimals)
    return (pico + unit // 2) // unit


def format_usd(pico: int) -> str:
    """A picodollar amount as dollars for people.

    Rules: zero is ``$0.00``. From $1 up: two decimals, rounded half up, with thousands separators
    (``$1,234.50``). Below $1: as many decimals as it takes to show two significant digits, but at
    least 2 and at most 6, rounded half up (``$0.50``, ``$0.0042``, ``$0.000013``); a non-zero amount
    that rounds to zero at 6 decimals shows as ``<$0.000001``. Negative amounts get a leading ``-``.
    """
    if pico < 0:
        return "-" + format_usd(-pico)
    if pico >= PICO_PER_USD:
        cents = _round_half_up(pico, 2)
        return f"${cents // 100:,}.{cents % 100:02d}"
    if pico == 0:
        return "$0.00"
    decimals = min(6, max(2, 14 - len(str(pico))))
    scaled = _round_half_up(pico, decimals)
    if decimals > 2 and scaled >= 100:  # rounding carried into a third significant digit (0.0995 -> 0.10)
        decimals -= 1
        scaled = _round_half_up(pico, decimals)
    if scaled == 0:
        return "<$0.000001"
    digits = str(scaled).rjust(decimals + 1, "0")
    return f"${digits[:-decimals]}.{digits[-decimals:]}"


@dataclass(frozen=True, slots=True)
class Period:
    """One calendar period in UTC."""

    kind: PeriodKind
    label: str  # day "2026-11-25", ISO week "2026-W48", month "2026-11"
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive (the next period's start)


def period_at(now: datetime, kind: PeriodKind) -> Period:
    """The ``kind`` period containing ``now``, which must be timezone-aware (naive raises ``ValueError``)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"period_at needs a timezone-aware datetime, got naive {now.isoformat()}")
    utc = now.astimezone(UTC)
    day = datetime(utc.year, utc.month, utc.day, tzinfo=UTC)
    if kind == "day":
        return Period(kind, day.date().isoformat(), day, day + timedelta(days=1))
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        iso = monday.date().isocalendar()
        return Period(kind, f"{iso.year}-W{iso.week:02d}", monday, monday + timedelta(days=7))
    if kind == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return Period(kind, f"{start.year:04d}-{start.month:02d}", start, end)
    raise ValueError(f"period kind must be day, week or month, got {kind!r}")


@dataclass(frozen=True, slots=True)
class ReplyBudget:
    """How long a reply may be, and the money to hold back for it."""

    max_tokens: int
    reserve_pico: int  # input_tokens * input price + max_tokens * output price


def plan_reply(
    available_pico: int, input_tokens: int, max_tokens: int, min_tokens: int, price: Price
) -> ReplyBudget | None:
    """The largest ``max_tokens`` (up to the requested one) that ``available_pico`` covers.

    This is the specification of the ledger's reserve script, which must repeat it in Lua to run
    atomically inside Redis; the component tests check that the two agree.

    The prompt is paid for first; the rest buys output tokens. ``None`` when the money does not cover
    the prompt, or covers fewer than ``min_tokens`` output tokens.
    """
    if input_tokens < 0 or max_tokens < 0 or min_tokens < 0:
        raise ValueError(f"token counts must not be negative: {input_tokens}, {max_tokens}, {min_tokens}")
    input_cost = input_tokens * price.input_pico_per_token
    if available_pico < input_cost:
        return None
    per_token = price.output_pico_per_token
    left = available_pico - input_cost
    tokens = max_tokens if per_token == 0 else min(max_tokens, left // per_token)
    if tokens < min_tokens:
        return None
    return ReplyBudget(max_tokens=tokens, reserve_pico=input_cost + tokens * per_token)


def notice_due(spent_pico: int, limit_pico: int) -> bool:
    """Whether spending has reached 80% of a positive limit (exact: ``spent * 5 >= limit * 4``).

    The specification of the settle script's notice flag; the component tests check that they agree.
    """
    return limit_pico > 0 and spent_pico * 5 >= limit_pico * 4


def format_moment(moment: datetime) -> str:
    """How a period's end (a reset time) reads to users: ``2026-12-01 00:00 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
