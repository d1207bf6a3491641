"""What the quota ledger hands out: a reservation, a settlement, a user's status. Plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.billing.periods import Period

LimitSource = Literal["user", "workspace", "setting"]


@dataclass(frozen=True, slots=True)
class Reservation:
    """Money held back for one reply, in the period it was made in."""

    id: str
    user: str
    period: Period
    max_tokens: int
    amount_pico: int
    limit_pico: int


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """One user's spend in the current period."""

    user: str
    period: Period
    spent_pico: int  # settled charges this period
    reserved_pico: int  # held by this period's replies in progress (not spent yet)
    limit_pico: int
    replies: int
    limit_source: LimitSource


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a settled reply cost; ``notice_due`` is True once per period, at the 80% crossing."""

    charged_pico: int
    spent_pico: int
    limit_pico: int
    notice_due: bool


@dataclass(frozen=True, slots=True)
class Cleared:
    """What an admin's reset took away from one user's period: spend and holds in picodollars, replies."""

    period: Period
    spent_pico: int
    replies: int
    held_pico: int
