"""Pure specifications of what the quota ledger's Lua scripts compute, for the tests to check them against.

The scripts must run atomically inside Redis, so the arithmetic lives in Lua; these Python versions say
what it should be, and the component tests compare the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.billing.pricing import Price


@dataclass(frozen=True, slots=True)
class ReplyBudget:
    """How long a reply may be, and the money to hold back for it."""

    max_tokens: int
    reserve_pico: int  # input_tokens * input price + max_tokens * output price


def plan_reply(
    available_pico: int, input_tokens: int, max_tokens: int, min_tokens: int, price: Price
) -> ReplyBudget | None:
    """The largest ``max_tokens`` (up to the requested one) that ``available_pico`` covers.

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
