"""How one reply ended: one count in ``glmbot_replies_total{outcome}`` and one ``reply_finished`` log line.

Every reply (``ConversationService.answer``) makes one ``ReplyReport`` when it starts and calls
``finish`` once when it ends, whichever way it ends, so each reply is counted once and logged once.

The ``reply_finished`` line carries, besides the ids the front end bound to the log context (in Slack:
``team``, ``channel``, ``thread_ts``, ``user``, ``entry_id``, ``event_id``):

- ``outcome``: ``ok``, ``stopped`` (by a person), ``unbilled`` (delivered, but settling failed),
  ``undelivered`` / ``undeliverable`` (Slack refused it), ``interrupted`` (shutdown), ``crashed`` (a bug),
  ``attempts_exhausted``, ``already_delivered``, ``empty_message``, ``nothing_usable``, or the name of the
  error shown instead of an answer (``QuotaExceeded``, ``ModelUnavailable``, ``StoreUnavailable``, ...);
- ``input_tokens``, ``output_tokens``: the tokens this attempt was charged for (the model's reported
  usage, else estimates, then ``cost_estimated`` is true); 0 when nothing was charged;
- ``cost_usd``: what this attempt was charged, exact dollars as a decimal string (``"0.000195"``);
- ``seconds``: from when this process took the reply up to its end;
- ``attempt``: 1, or more for a reply resumed after a process died.

Never the question or the answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from bot.billing.money import usd_text
from bot.core.ports import ReplyCharge
from bot.metrics import Metrics

log = structlog.get_logger(__name__)


class ReplyReport:
    """Collects how one reply ends; ``finish`` counts it and writes its line, once.

    ``started`` is the reply's start on ``clock`` (seconds, monotonic), for the reply-time histograms.
    """

    def __init__(
        self, metrics: Metrics, attempt: int = 1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._metrics = metrics
        self._clock = clock
        self._finished = False
        self.started = clock()
        self.attempt = attempt
        self.outcome: str | None = None
        # Set by the generator once the reply's money is held: what it charged is read at the end.
        self.charge: ReplyCharge | None = None
        # Settling failed after a complete answer (the store was down): the answer is still delivered.
        self.unbilled = False

    def end(self, outcome: str) -> None:
        """Name how the reply ended (a later call names it again)."""
        self.outcome = outcome

    def delivered(self, stopped: bool) -> None:
        """The user can see the whole answer: ``unbilled``, ``stopped`` or ``ok``."""
        self.end("unbilled" if self.unbilled else "stopped" if stopped else "ok")

    @property
    def seconds(self) -> float:
        """Seconds since the reply started."""
        return self._clock() - self.started

    def finish(self, unnamed: str = "crashed") -> None:
        """Count the reply and write its ``reply_finished`` line (``unnamed`` if no outcome was named);
        a second call does nothing."""
        if self._finished:
            return
        self._finished = True
        outcome = self.outcome or unnamed
        self._metrics.replies.labels(outcome).inc()
        billed = self.charge.billed if self.charge is not None else None
        log.info(
            "reply_finished",
            outcome=outcome,
            input_tokens=billed.input_tokens if billed else 0,
            output_tokens=billed.output_tokens if billed else 0,
            cost_usd=usd_text(billed.cost_pico if billed else 0),
            cost_estimated=billed.estimated if billed else False,
            seconds=round(self.seconds, 3),
            attempt=self.attempt,
        )
