"""Paying for a reply: reserve the worst case before the model is called, settle to the real cost after.

The reservation caps the reply's ``max_tokens`` at what the user can still afford, so nobody is ever
charged past their limit. Settlement uses the model's reported usage; when a stream broke and no usage
came, it charges the input estimate plus the output that did stream (estimated), and logs that it did.
Work that never happened (the model could not be reached or refused the request) is not charged.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from bot.billing.ledger import QuotaLedger, Reservation, Settlement
from bot.billing.money import format_moment, format_usd
from bot.billing.pricing import Price, cost_pico
from bot.core.domain import Usage
from bot.core.tokens import estimate_text_tokens

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class StreamProgress:
    """What a stream produced so far, kept up to date while it runs (so a failure knows it too)."""

    text: str = ""
    reasoning: str = ""

    def output_tokens_estimate(self) -> int:
        return estimate_text_tokens(self.text) + estimate_text_tokens(self.reasoning)


class Billing:
    """Reserves and settles the cost of replies against the quota ledger."""

    def __init__(self, ledger: QuotaLedger, price: Price, min_reply_tokens: int) -> None:
        self._ledger = ledger
        self._price = price
        self._min_reply_tokens = min_reply_tokens

    async def reserve(self, user: str, input_tokens: int, max_tokens: int) -> Reservation:
        """Hold the worst case; raises QuotaExceeded when not even a minimal reply is affordable."""
        return await self._ledger.reserve(user, input_tokens, max_tokens, self._min_reply_tokens, self._price)

    async def settle(
        self, reservation: Reservation, input_estimate: int, progress: StreamProgress, usage: Usage | None
    ) -> Settlement:
        """Charge the real cost (or, without usage, the estimate of what was consumed)."""
        if usage is not None:
            cost = cost_pico(usage.prompt_tokens, usage.completion_tokens, self._price)
        else:
            output_estimate = progress.output_tokens_estimate()
            cost = cost_pico(input_estimate, output_estimate, self._price)
            log.warning(
                "cost_estimated", input_tokens=input_estimate, output_tokens=output_estimate, cost_pico=cost
            )
        return await self._ledger.settle(reservation, cost)

    async def settle_or_release(
        self, reservation: Reservation, input_estimate: int, progress: StreamProgress
    ) -> None:
        """After a reply broke off: charge the work done (estimated) if the model produced anything."""
        if progress.text or progress.reasoning:
            await self.settle(reservation, input_estimate, progress, usage=None)
        else:
            await self.release(reservation)

    async def release(self, reservation: Reservation) -> None:
        """Nothing was consumed: give the whole reservation back."""
        await self._ledger.release(reservation)


def quota_notice(settlement: Settlement, reservation: Reservation) -> str:
    """The once-per-period line telling a user they passed 80 % of their limit."""
    if not settlement.notice_due:
        return ""
    period = reservation.period
    return (
        f"\n\n_You have used {format_usd(settlement.spent_pico)} of your {format_usd(settlement.limit_pico)} "
        f"limit for this {period.kind}; it resets {format_moment(period.end)}._"
    )
