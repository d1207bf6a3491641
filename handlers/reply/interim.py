"""The paced loop both reply senders run while an answer streams: after each change, one interim write
(a ``chat.update`` edit, or a ``chat.appendStream`` append), never sooner than the sender allows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def write_when_due(
    changed: asyncio.Event,
    finishing: asyncio.Event,
    wait_time: Callable[[], float],
    write: Callable[[], Awaitable[None]],
) -> None:
    """Until ``finishing`` is set: wait for ``changed``, then ``wait_time()`` seconds (the pacer's
    interval, a budget held back), then clear ``changed`` and ``write()`` the latest text.

    Returns as soon as ``finishing`` is set, also mid-wait: the final delivery takes over. Whatever
    ``write`` raises propagates (each sender decides which failures end its interim writes).
    """
    while not finishing.is_set():
        await changed.wait()
        wait = wait_time()
        if wait > 0 and await wait_for_event(finishing, wait):
            return
        if finishing.is_set():
            return
        changed.clear()
        await write()


async def wait_for_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``event``; True when it was set."""
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
