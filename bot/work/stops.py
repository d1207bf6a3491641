"""Stop presses, carried through Redis to whichever replica is running the reply.

A person presses Stop on a streaming reply; Slack may deliver the press to any replica. ``request``
records it under ``glmbot:{work:<team>}:stop:<team>:<channel>:<ts>`` (the message's key, in its
workspace's work slot, next to its ``pending`` mark; ``STOP_TTL_SECONDS``), only while the message's
work is pending (``stop.lua``): a press after the reply finished records nothing and says so.

The replica running the reply watches the stop keys of its replies in progress (``watching``): one MGET
per workspace every ``POLL_SECONDS`` for all of them, so the cost does not grow with the replies, and a
stop is seen within that time. Polling, not pub/sub: nothing is missed while a connection is being
re-established, and a reply resumed by another replica after a crash still sees a stop pressed before.
Every write is safe to run twice (``SET NX``; a second press changes nothing).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as redis
import structlog

from bot.core.errors import StoreUnavailable
from bot.core.generation import StopSignal
from bot.store.connection import lua_source, store_errors
from bot.work.queue import work_key

log = structlog.get_logger(__name__)

STOP_SCRIPT = lua_source(__package__, "stop.lua")
STOP_TTL_SECONDS = 120
"""Long enough for a reply taken over after a crash (a lease, 20 s) to see it; a stop is seen in 0.3 s."""
POLL_SECONDS = 0.3

StopOutcome = Literal["stopping", "already_stopping", "finished"]


@dataclass(frozen=True, slots=True)
class Stopper:
    """Who pressed Stop: their user id (for the logs) and display name (for the note under the answer)."""

    user: str
    name: str


class StopRequests:
    """Records stop presses, and lets the replica running a reply see them."""

    def __init__(self, client: redis.Redis, poll_seconds: float = POLL_SECONDS) -> None:
        self._client = client
        self._script = client.register_script(STOP_SCRIPT)
        self._poll_seconds = poll_seconds
        self._watched: dict[str, list[StopSignal]] = {}  # stop key -> the replies in progress here
        self._poller: asyncio.Task[None] | None = None
        self._looking = False

    @property
    def scripts(self) -> tuple[str, ...]:
        """The Lua sources this runs, for preloading at start."""
        return (STOP_SCRIPT,)

    async def request(self, team: str, key: str, stopper: Stopper) -> StopOutcome:
        """Ask the reply to message ``key`` (``<team>:<channel>:<ts>``) to stop. Raises StoreUnavailable."""
        keys = [work_key(team, "stop", key), work_key(team, "pending", key)]
        value = json.dumps({"user": stopper.user, "name": stopper.name})
        with store_errors("stop request"):
            answer = await self._script(keys=keys, args=[value, STOP_TTL_SECONDS])
        outcomes: dict[int, StopOutcome] = {0: "finished", 1: "stopping"}
        return outcomes.get(int(answer), "already_stopping")

    @asynccontextmanager
    async def watching(self, team: str, key: str) -> AsyncIterator[StopSignal]:
        """A signal that is set when someone stops the reply to message ``key`` while this block runs."""
        signal = StopSignal()
        stop_key = work_key(team, "stop", key)
        self._watched.setdefault(stop_key, []).append(signal)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        try:
            yield signal
        finally:
            signals = self._watched.get(stop_key, [])
            if signal in signals:
                signals.remove(signal)
            if not signals:
                self._watched.pop(stop_key, None)
            if not self._watched and self._poller is not None and not self._looking:
                self._poller.cancel()  # asleep: nothing to watch any more (mid-MGET it ends by itself)
                self._poller = None

    async def _poll(self) -> None:
        while self._watched:
            await asyncio.sleep(self._poll_seconds)
            self._looking = True
            try:
                await self._look()
            finally:
                self._looking = False

    async def _look(self) -> None:
        """One MGET per workspace (one slot each) for the stop keys of the replies in progress."""
        slots: dict[str, list[str]] = {}
        for stop_key in self._watched:
            slots.setdefault(stop_key.partition("}")[0], []).append(stop_key)
        for keys in slots.values():
            try:
                with store_errors("stop poll"):
                    values = await self._client.mget(keys)
            except StoreUnavailable as exc:
                log.warning("stop_poll_failed", detail=str(exc))  # looked at again next time
                continue
            for stop_key, value in zip(keys, values, strict=True):
                if value is not None:
                    for signal in self._watched.get(stop_key, []):
                        signal.stop(_name(value))


def _name(value: str | bytes) -> str:
    """The display name a stop was recorded with (empty when unreadable)."""
    try:
        data = json.loads(value)
        return str(data.get("name") or data.get("user") or "") if isinstance(data, dict) else ""
    except ValueError:
        return ""
