"""WorkJournal: a reply's journal, kept in its work entry's state hash (``core.ports.ReplyJournal``)."""

from __future__ import annotations

import structlog

from bot.core.errors import StoreUnavailable
from bot.work.queue import WorkItem, WorkQueue

log = structlog.get_logger(__name__)


class WorkJournal:
    """What this attempt and earlier ones recorded about one reply; writes go to Redis at once."""

    durable = True

    def __init__(self, queue: WorkQueue, item: WorkItem, state: dict[str, str]) -> None:
        self._queue = queue
        self._item = item
        self._state = dict(state)

    @property
    def attempt(self) -> int:
        """1 for the first attempt at this message, then one more for each resumption."""
        return int(self._state.get("attempts") or 1)

    def recorded(self, field: str) -> str | None:
        """The recorded value of ``field``; None when unset or cleared."""
        return self._state.get(field) or None

    async def record(self, **fields: str) -> None:
        """Save ``fields``; a store that does not answer is logged, not raised (the reply goes on)."""
        self._state.update(fields)
        try:
            await self._queue.record(self._item, fields)
        except StoreUnavailable as exc:
            log.warning("journal_not_written", fields=sorted(fields), detail=str(exc))
