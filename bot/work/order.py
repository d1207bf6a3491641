"""One turn at a time per thread, in message order, across replicas.

Each thread has a sorted set of the messages taken on in it and not yet answered
(``glmbot:{<team>:<channel>:<thread_ts>}:turns``, in the thread's slot; members are message timestamps,
all scored 0 so they sort as text, which for Slack's fixed-shape timestamps is message order). A message
joins it when it is taken on, before Slack gets its ack, and leaves it when its answer is done. A reply
begins only when its message is the thread's first; until then it waits, so its prompt holds the earlier
answer and the history keeps message order.

A first message whose work is gone (its entry done, but the process died before it left the set) is
dropped from the set by whoever waits behind it: the work queue's ``pending`` mark says which is which.
Every write is safe to run twice (ZADD NX, ZREM).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import redis.asyncio as redis
from redis.asyncio.client import Pipeline

from bot.core.domain import IncomingMessage, ThreadKey
from bot.store.connection import lua_source, store_errors

FIRST_TURN_SCRIPT = lua_source(__package__, "first_turn.lua")
TURNS_TTL_SECONDS = 24 * 3600
POLL_SECONDS = 0.5
"""How often a waiting reply looks again (a reply answered in this process wakes it at once)."""

Pending = Callable[[ThreadKey, str], Awaitable[bool]]
"""Whether the message with this ts in this thread still has work waiting or running."""


def turns_key(thread: ThreadKey) -> str:
    """The Redis key of a thread's messages waiting for their turn."""
    return f"glmbot:{{{thread.tag()}}}:turns"


class ThreadOrder:
    """Lines messages up per thread and lets each reply begin only on its turn."""

    def __init__(self, client: redis.Redis, poll_seconds: float = POLL_SECONDS) -> None:
        self._client = client
        self._first = client.register_script(FIRST_TURN_SCRIPT)
        self._poll_seconds = poll_seconds
        self._wakeups: dict[ThreadKey, asyncio.Event] = {}

    @property
    def scripts(self) -> tuple[str, ...]:
        """The Lua sources this runs, for preloading at start."""
        return (FIRST_TURN_SCRIPT,)

    def line_up_in(self, pipe: Pipeline, message: IncomingMessage) -> None:
        """Queue in ``pipe`` the commands that put ``message`` in its thread's line (ZADD NX, EXPIRE)."""
        key = turns_key(message.thread)
        pipe.zadd(key, {message.message_ts: 0}, nx=True)
        pipe.expire(key, TURNS_TTL_SECONDS)

    async def line_up(self, message: IncomingMessage) -> None:
        """Put ``message`` in its thread's line, in one round trip of its own. Raises StoreUnavailable."""
        with store_errors("thread order"):
            async with self._client.pipeline(transaction=False) as pipe:
                self.line_up_in(pipe, message)
                await pipe.execute()

    async def first(self, message: IncomingMessage) -> str:
        """Line ``message`` up (again: it is idempotent) and return the ts of its thread's first message.

        Raises StoreUnavailable.
        """
        with store_errors("thread order"):
            first = await self._first(
                keys=[turns_key(message.thread)], args=[message.message_ts, TURNS_TTL_SECONDS]
            )
        return str(first) if first is not None else message.message_ts

    async def wait_turn(self, message: IncomingMessage, pending: Pending) -> None:
        """Return when ``message`` is the first of its thread still to be answered.

        Raises StoreUnavailable.
        """
        while (first := await self.first(message)) != message.message_ts:
            if not await pending(message.thread, first):
                await self.leave(message.thread, first)  # its work is gone: it must not block the thread
                continue
            wakeup = self._wakeups.setdefault(message.thread, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=self._poll_seconds)

    async def leave(self, thread: ThreadKey, message_ts: str) -> None:
        """Take a message out of its thread's line (its answer is done); wake the replies waiting here.

        Raises StoreUnavailable.
        """
        with store_errors("thread order"):
            await self._client.zrem(turns_key(thread), message_ts)
        wakeup = self._wakeups.pop(thread, None)
        if wakeup is not None:
            wakeup.set()
