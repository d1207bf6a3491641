"""Paying for a reply: reserve the worst case before the model is called, settle to the real cost after.

The reservation caps the reply's ``max_tokens`` at what the user can still afford, so nobody is ever
charged past their limit. Settlement uses the model's reported usage; when a stream broke and no usage
came, it charges the input estimate plus the output that did stream (estimated), and logs that it did.
Work that never happened (the model could not be reached or refused the request) is not charged.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from bot.billing.ledger import QuotaLedger, Reservation
from bot.billing.pricing import Price, cost_pico
from bot.core.domain import Notice, StreamProgress, Usage
from bot.core.messages import quota_notice
from bot.core.tokens import estimate_text_tokens

log = structlog.get_logger(__name__)


def output_tokens_estimate(progress: StreamProgress) -> int:
    """Tokens the model produced so far (answer and reasoning), estimated from the text."""
    return estimate_text_tokens(progress.text) + estimate_text_tokens(progress.reasoning)


class QuotaBilling:
    """Reserves the cost of replies against the quota ledger (implements ``core.ports.Billing``)."""

    def __init__(self, ledger: QuotaLedger, price: Price, min_reply_tokens: int) -> None:
        self._ledger = ledger
        self._price = price
        self._min_reply_tokens = min_reply_tokens

    async def reserve(self, user: str, input_tokens: int, max_tokens: int) -> HeldReply:
        """Hold the worst case; raises QuotaExceeded when not even a minimal reply is affordable."""
        reservation = await self._ledger.reserve(
            user, input_tokens, max_tokens, self._min_reply_tokens, self._price
        )
        return HeldReply(self._ledger, self._price, reservation, input_tokens)


@dataclass(frozen=True, slots=True)
class HeldReply:
    """One reply's reservation, settled once (implements ``core.ports.ReplyCharge``).

    ``input_estimate`` is the prompt's estimated tokens, charged when the model reports no usage.
    """

    ledger: QuotaLedger
    price: Price
    reservation: Reservation
    input_estimate: int

    @property
    def max_tokens(self) -> int:
        return self.reservation.max_tokens

    async def settle(self, progress: StreamProgress, usage: Usage | None) -> Notice | None:
        """Charge the real cost (or, without usage, the estimate of what was consumed)."""
        if usage is not None:
            cost = cost_pico(usage.prompt_tokens, usage.completion_tokens, self.price)
        else:
            output_estimate = output_tokens_estimate(progress)
            cost = cost_pico(self.input_estimate, output_estimate, self.price)
            log.warning(
                "cost_estimated",
                input_tokens=self.input_estimate,
                output_tokens=output_estimate,
                cost_pico=cost,
            )
        settlement = await self.ledger.settle(self.reservation, cost)
        if not settlement.notice_due:
            return None
        return quota_notice(settlement.spent_pico, settlement.limit_pico, self.reservation.period)

    async def abandon(self, progress: StreamProgress) -> None:
        """After a reply broke off: charge the work done (estimated) if the model produced anything."""
        if progress.text or progress.reasoning:
            await self.settle(progress, usage=None)
        else:
            await self.ledger.release(self.reservation)
