"""Paying for a reply: reserve the worst case before the model is called, settle to the real cost after.

The reservation caps the reply's ``max_tokens`` at what the user can still afford, so nobody is ever
charged past their limit. Settlement uses the model's reported usage; when a stream broke and no usage
came, it charges the input estimate plus the output that did stream (estimated), and logs that it did.
Work that never happened (the model could not be reached or refused the request) is not charged.
Reported usage that cannot be true (more output than the ``max_tokens`` sent, a prompt larger than the
context window) is logged as an anomaly and replaced by the estimate.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime

import structlog

from bot.billing.ledger import QuotaLedger
from bot.billing.periods import Period
from bot.billing.pricing import Price, cost_pico
from bot.billing.records import Reservation, Settlement
from bot.core.domain import Notice, StreamProgress, Usage
from bot.core.messages import quota_notice
from bot.core.ports import Billed
from bot.core.tokens import estimate_output_tokens

log = structlog.get_logger(__name__)


class QuotaBilling:
    """Reserves the cost of replies against the quota ledger (implements ``core.ports.Billing``)."""

    def __init__(self, ledger: QuotaLedger, price: Price, min_reply_tokens: int, context_tokens: int) -> None:
        self._ledger = ledger
        self._price = price
        self._min_reply_tokens = min_reply_tokens
        self._context_tokens = context_tokens

    async def reserve(self, user: str, input_tokens: int, max_tokens: int) -> HeldReply:
        """Hold the worst case; raises QuotaExceeded when not even a minimal reply is affordable."""
        reservation = await self._ledger.reserve(
            user, input_tokens, max_tokens, self._min_reply_tokens, self._price
        )
        return HeldReply(self._ledger, self._price, reservation, input_tokens, self._context_tokens)

    async def recover(self, record: str, output_tokens: int) -> None:
        """Settle a reservation recorded by a process that died, for the output it had streamed."""
        try:
            held = HeldReply.from_record(self._ledger, self._price, self._context_tokens, record)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"unreadable reservation record: {type(exc).__name__}") from None
        if output_tokens <= 0:
            await self._ledger.release(held.reservation)
            return
        log.info("dead_attempt_settled", output_tokens=output_tokens)
        await held.charge(held.input_estimate, output_tokens, estimated=True)


@dataclass(slots=True)
class HeldReply:
    """One reply's reservation, settled once (implements ``core.ports.ReplyCharge``).

    ``input_estimate`` is the prompt's estimated tokens, charged when the model reports no usage.
    ``billed`` is what settling charged (for the reply's ``reply_finished`` line); None until then.
    """

    ledger: QuotaLedger
    price: Price
    reservation: Reservation
    input_estimate: int
    context_tokens: int
    billed: Billed | None = None

    @property
    def max_tokens(self) -> int:
        return self.reservation.max_tokens

    async def settle(self, progress: StreamProgress, usage: Usage | None) -> Notice | None:
        """Charge the real cost (or, without believable usage, the estimate of what was consumed)."""
        if usage is not None and self._believable(usage):
            settlement = await self.charge(usage.prompt_tokens, usage.completion_tokens)
        else:
            output_estimate = estimate_output_tokens(progress)
            log.warning("cost_estimated", input_tokens=self.input_estimate, output_tokens=output_estimate)
            settlement = await self.charge(self.input_estimate, output_estimate, estimated=True)
        if not settlement.notice_due:
            return None
        return quota_notice(settlement.spent_pico, settlement.limit_pico, self.reservation.period)

    async def charge(self, prompt_tokens: int, completion_tokens: int, estimated: bool = False) -> Settlement:
        """Settle the reservation at the price of these token counts (``estimated``: not reported usage)."""
        cost = cost_pico(prompt_tokens, completion_tokens, self.price)
        settlement = await self.ledger.settle(self.reservation, cost)
        self.billed = Billed(prompt_tokens, completion_tokens, settlement.charged_pico, estimated)
        return settlement

    def _believable(self, usage: Usage) -> bool:
        """False for usage no request of ours can have used (more than was sent or allowed)."""
        if (
            usage.completion_tokens <= self.reservation.max_tokens
            and usage.prompt_tokens <= self.context_tokens
        ):
            return True
        log.error(
            "usage_anomaly",
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            max_tokens=self.reservation.max_tokens,
        )
        return False

    def record(self) -> str:
        """The reservation as JSON, for the reply's journal."""
        reservation = asdict(self.reservation)
        period = self.reservation.period
        reservation["period"] = {
            **asdict(period),
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
        }
        return json.dumps({"reservation": reservation, "input_estimate": self.input_estimate})

    @staticmethod
    def from_record(ledger: QuotaLedger, price: Price, context_tokens: int, record: str) -> HeldReply:
        """The reservation in ``record``; raises ValueError, KeyError or TypeError when unreadable."""
        data = json.loads(record)
        raw = dict(data["reservation"])
        period = dict(raw.pop("period"))
        reservation = Reservation(
            **raw,
            period=Period(
                kind=period["kind"],
                label=period["label"],
                start=datetime.fromisoformat(period["start"]),
                end=datetime.fromisoformat(period["end"]),
            ),
        )
        return HeldReply(ledger, price, reservation, int(data["input_estimate"]), context_tokens)

    async def abandon(self, progress: StreamProgress) -> None:
        """After a reply broke off: charge the work done (estimated) if the model produced anything."""
        if progress.text or progress.reasoning:
            await self.settle(progress, usage=None)
        else:
            await self.ledger.release(self.reservation)
