"""Money as exact integers: picodollars (10**-12 USD), parsed from what people type and shown to them.

Pure functions only. Limits stay at or below ``MAX_LIMIT_USD`` so every amount is below 2**53 and
survives Redis Lua's doubles exactly.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

PICO_PER_USD = 10**12
MAX_LIMIT_USD = Decimal(9000)

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


def usd_text(pico: int) -> str:
    """A picodollar amount as an exact decimal number of dollars, for logs: ``5``, ``2.5``, ``0.00312``."""
    return format(Decimal(pico) / PICO_PER_USD, "f")
