"""Model prices as exact integers: picodollars per token.

Prices are published in US dollars per million tokens with at most a few decimals. One picodollar is
10**-12 USD, so a price of ``P`` USD per 1M tokens is ``P * 10**6`` picodollars per token: an exact
integer for any price with up to 6 decimals (``$0.78`` per 1M tokens = 780_000 pico per token). Costs
are then plain integer arithmetic, with no floats anywhere.

The table lives in ``bot/billing/pricing.json`` (package data); decimals are JSON strings so they stay exact.
It is keyed by the model name each provider uses for glm-4.5v: ``glm-4.5v`` (UnoRouter, Z.ai) and
``z-ai/glm-4.5v`` (OpenRouter), both at the contract's $0.78 in / $2.34 out per 1M tokens, which is at
or above every price those providers were seen to list, so quotas never let real spend run past a limit
(README "Providers" gives the sources). An operator with another price sets the two overrides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib.resources import files
from typing import Any

PICO_PER_TOKEN_PER_USD_PER_MTOK = 10**6  # 10**12 pico per USD / 10**6 tokens
_TABLE_FILE = "bot/billing/pricing.json"


class PricingError(Exception):
    """A price is missing or malformed; the message names the model or setting to fix."""


@dataclass(frozen=True, slots=True)
class Price:
    """What one token costs, in picodollars."""

    input_pico_per_token: int
    output_pico_per_token: int


def per_token_pico(usd_per_mtok: Decimal) -> int:
    """Convert USD per 1M tokens to picodollars per token, rounding up so we never undercharge.

    Raises ``ValueError`` for a negative or non-finite price.
    """
    if not usd_per_mtok.is_finite():
        raise ValueError(f"price must be a finite number of USD per 1M tokens, got {usd_per_mtok}")
    if usd_per_mtok < 0:
        raise ValueError(f"price must not be negative, got {usd_per_mtok} USD per 1M tokens")
    numerator, denominator = usd_per_mtok.as_integer_ratio()
    return -(-numerator * PICO_PER_TOKEN_PER_USD_PER_MTOK // denominator)


def _entry_price(model: str, key: str, raw: object) -> int:
    """One price field of a table entry, converted; a bad value raises ``PricingError``."""
    if not isinstance(raw, str):
        raise PricingError(f'{_TABLE_FILE}: {model!r} {key} must be a decimal string like "0.78"')
    try:
        return per_token_pico(Decimal(raw.strip()))
    except (InvalidOperation, ValueError):
        raise PricingError(
            f"{_TABLE_FILE}: {model!r} {key} must be a non-negative decimal string, got {raw!r}"
        ) from None


def _parse_entry(model: str, entry: object) -> Price:
    """One model's row of the table."""
    if not isinstance(entry, dict):
        raise PricingError(f"{_TABLE_FILE}: the entry for {model!r} must be an object")
    return Price(
        input_pico_per_token=_entry_price(model, "input_usd_per_mtok", entry.get("input_usd_per_mtok")),
        output_pico_per_token=_entry_price(model, "output_usd_per_mtok", entry.get("output_usd_per_mtok")),
    )


@cache
def _table() -> Mapping[str, Price]:
    """The parsed table, read once per process."""
    text = files("bot.billing").joinpath("pricing.json").read_text(encoding="utf-8")
    try:
        raw: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PricingError(f"{_TABLE_FILE} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise PricingError(f"{_TABLE_FILE} must be an object mapping model names to prices")
    return {str(model): _parse_entry(str(model), entry) for model, entry in raw.items()}


def _override(model: str, setting: str, usd_per_mtok: Decimal) -> int:
    """An operator's price override, converted; a bad value raises ``PricingError`` naming the setting."""
    try:
        return per_token_pico(usd_per_mtok)
    except ValueError as exc:
        raise PricingError(f"{setting} for model {model!r}: {exc}") from None


def price_for(
    model: str,
    input_usd_per_mtok: Decimal | None = None,
    output_usd_per_mtok: Decimal | None = None,
) -> Price:
    """The table's price for ``model`` with any overrides applied (USD per 1M tokens each).

    A model missing from the table needs both overrides; otherwise ``PricingError``, whose one-line
    message names GLM_MODEL and the two override settings.
    """
    table = _table()
    base = table.get(model)
    if base is None:
        if input_usd_per_mtok is None or output_usd_per_mtok is None:
            # Named by setting, not by file: inside a container the table cannot be edited, the
            # environment can.
            priced = ", ".join(sorted(table))
            raise PricingError(
                f"GLM_MODEL {model!r} has no price (the table prices {priced}): set "
                "GLM_INPUT_USD_PER_MTOK and GLM_OUTPUT_USD_PER_MTOK to its price in USD per 1M tokens"
            )
        base = Price(input_pico_per_token=0, output_pico_per_token=0)  # both replaced below
    return Price(
        input_pico_per_token=(
            base.input_pico_per_token
            if input_usd_per_mtok is None
            else _override(model, "GLM_INPUT_USD_PER_MTOK", input_usd_per_mtok)
        ),
        output_pico_per_token=(
            base.output_pico_per_token
            if output_usd_per_mtok is None
            else _override(model, "GLM_OUTPUT_USD_PER_MTOK", output_usd_per_mtok)
        ),
    )


def cost_pico(prompt_tokens: int, completion_tokens: int, price: Price) -> int:
    """Exact cost in picodollars of one model call; negative token counts raise ``ValueError``."""
    if prompt_tokens < 0 or completion_tokens < 0:
        raise ValueError(f"token counts must not be negative: {prompt_tokens}, {completion_tokens}")
    return prompt_tokens * price.input_pico_per_token + completion_tokens * price.output_pico_per_token
