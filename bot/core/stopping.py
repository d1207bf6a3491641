"""A person's stop of one streaming reply: the signal, and racing the model's stream against it.

The front end sets the signal (from any replica, through ``bot.work.stops``); ``unless_stopped`` cancels
the stream's reading when it comes, which closes the model request's connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class StopSignal:
    """A person asked to stop one reply (set by the front end, from any replica); the first stop counts."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.by = ""  # who stopped it: a display name for the note

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def stop(self, by: str) -> None:
        """Stop the reply; ``by`` names who asked. A second stop changes nothing."""
        if not self._event.is_set():
            self.by = by
            self._event.set()

    async def wait(self) -> None:
        """Return once the reply was stopped."""
        await self._event.wait()


async def unless_stopped(reading: Coroutine[Any, Any, T], stop: StopSignal) -> T | None:
    """``reading``'s result, or None when ``stop`` comes first: ``reading`` is then cancelled, which
    closes the model request's connection. A stream that ended first wins; its errors are raised."""
    task = asyncio.ensure_future(reading)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Also on a shutdown's cancellation: the request never outlives the reply.
        stopped.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    if task.cancelled():
        return None
    return task.result()
