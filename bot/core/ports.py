"""The seams of the conversation service: what it needs from the world, as small Protocols.

Each has one real implementation, passed in by the composition root (``bot.app``):

==================  ==========================================  =======================================
port                real implementation                         in the console
==================  ==========================================  =======================================
``ReplySink``       ``handlers.reply.streamer.SlackReplyStreamer``  ``bot.console.app.ConsoleSink``
``ModelStream``     ``bot.model.client.ModelClient``            same
``AttachmentFetcher`` ``handlers.files.SlackFileFetcher``       ``bot.images.local.LocalFileFetcher``
``Images``          ``bot.images.pipeline.ImagePipeline``       same
``History``         ``bot.store.history.HistoryStore``          same (embedded store)
``ReplyJournal``    ``bot.work.journal.WorkJournal``            ``bot.core.conversation.NoJournal``
``Billing``         ``bot.billing.settlement.QuotaBilling``     same
==================  ==========================================  =======================================

Tests use the real implementations against real Redis and loopback fakes, not stand-ins of these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.core.domain import (
    Attachment,
    CachedImage,
    ChatMessage,
    CollectedImages,
    ModelEvent,
    ModelRequest,
    Notice,
    StreamProgress,
    ThreadKey,
    Usage,
)


class ReplySink(Protocol):
    """Shows one streaming answer to the user."""

    async def start(self) -> None:
        """Show that an answer is coming (a placeholder). Raises DeliveryFailed if that fails."""

    def show(self, text: str) -> None:
        """The answer so far (Markdown). Never blocks: the sink paces its own output."""

    async def finish(self, text: str, notices: Sequence[Notice] = ()) -> bool:
        """The whole answer (Markdown) and the notices under it; True once the user can see all of it.

        False when it could not be delivered (the sink has logged why and shown what it could).
        """

    async def fail(self, message: str) -> None:
        """Replace the pending answer with a short message for the user (Markdown)."""


class ModelStream(Protocol):
    """Streams one completion."""

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """The answer's events, ending with one StreamEnd; raises ModelError subclasses."""
        ...


class AttachmentFetcher(Protocol):
    """Gets the bytes of an attached file (from Slack, or from disk in the console)."""

    async def fetch(self, attachment: Attachment) -> bytes:
        """The file's bytes; raises ImageRejected with a reason the user can act on."""
        ...


class Images(Protocol):
    """Prepares a message's images and finds a thread's earlier ones."""

    async def collect(
        self, thread: ThreadKey, attachments: Sequence[Attachment], fetcher: AttachmentFetcher
    ) -> CollectedImages:
        """The usable images of ``attachments``, and a sentence for each file left out."""
        ...

    async def cached(self, thread: ThreadKey, file_ids: Sequence[str]) -> Mapping[str, CachedImage]:
        """Earlier images of the thread that are still cached, by file id."""
        ...


class History(Protocol):
    """Each thread's stored conversation. Every method raises StoreUnavailable when the store fails."""

    async def load(self, thread: ThreadKey) -> list[ChatMessage]:
        """The thread's messages, oldest first."""
        ...

    async def append(self, thread: ThreadKey, turn_id: str, messages: Sequence[ChatMessage]) -> None:
        """Add one turn's messages at the end, in one atomic step, once per ``turn_id``."""
        ...

    async def retract(self, thread: ThreadKey, turn_id: str, messages: Sequence[ChatMessage]) -> None:
        """Take back a turn just appended (the answer could not be delivered)."""
        ...

    async def engage(self, thread: ThreadKey) -> None:
        """Mark the thread as one the bot talks in (asked there, even before any answer)."""
        ...

    async def exists(self, thread: ThreadKey) -> bool:
        """True when the bot talks in this thread."""
        ...

    async def forget(self, thread: ThreadKey) -> None:
        """Drop the thread's conversation."""
        ...

    async def has_turns(self, thread: ThreadKey) -> bool:
        """True when the thread has stored turns (being engaged there does not count)."""
        ...

    async def seed(self, thread: ThreadKey, turn_id: str, messages: Sequence[ChatMessage]) -> bool:
        """Write the thread's first history (messages from before the bot was asked there) in one atomic
        step, only while it has none, once per ``turn_id``; True when written."""
        ...


class ReplyJournal(Protocol):
    """Where one reply records how far it got, so that another process can resume it if this one dies.

    ``record`` never raises: a journal that cannot write logs it, and the reply goes on.
    """

    @property
    def durable(self) -> bool:
        """True when another process resumes the reply if this one stops (so no apology is shown)."""
        ...

    @property
    def attempt(self) -> int:
        """1 for the first attempt at this message, 2 for the first resumption, ..."""
        ...

    def recorded(self, field: str) -> str | None:
        """What an earlier attempt (or this one) recorded under ``field``."""
        ...

    async def record(self, **fields: str) -> None:
        """Save ``fields`` (an empty string clears one)."""
        ...


@dataclass(frozen=True, slots=True)
class Billed:
    """What settling one reply charged (``ReplyCharge.billed``).

    ``input_tokens`` and ``output_tokens`` are the counts priced: the model's reported usage, or the
    estimates charged when it reported none (``estimated``). ``cost_pico`` is what the ledger charged, in
    picodollars (10^-12 USD): never more than the reservation, 0 when a repeated settle charged nothing.
    """

    input_tokens: int
    output_tokens: int
    cost_pico: int
    estimated: bool


class ReplyCharge(Protocol):
    """The money held for one reply until it is settled (made by ``Billing.reserve``)."""

    @property
    def max_tokens(self) -> int:
        """The longest answer (tokens) the user can afford; the model request's ``max_tokens``."""
        ...

    @property
    def billed(self) -> Billed | None:
        """What ``settle`` or ``abandon`` charged; None before, and when the hold was released unspent."""
        ...

    async def settle(self, progress: StreamProgress, usage: Usage | None) -> Notice | None:
        """Charge the real cost (from ``usage``, else estimated); a note when 80 % of the limit is passed."""
        ...

    async def abandon(self, progress: StreamProgress) -> None:
        """The reply broke off: charge the work it did (estimated), or release the money if there was none."""
        ...

    def record(self) -> str:
        """The reservation as text for a journal, so ``Billing.recover`` can settle it in another process."""
        ...


class Billing(Protocol):
    """Spend quotas around model calls."""

    async def reserve(self, user: str, input_tokens: int, max_tokens: int) -> ReplyCharge:
        """Hold the worst case of a reply; raises QuotaExceeded when not even a minimal one is affordable."""
        ...

    async def recover(self, record: str, output_tokens: int) -> None:
        """Settle a reservation that a dead process recorded, for ``output_tokens`` it had streamed (or
        release it when that is 0). Raises ValueError for an unreadable record, StoreUnavailable."""
        ...
