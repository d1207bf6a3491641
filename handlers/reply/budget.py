"""The workspace-wide budget of interim ``chat.update`` calls, shared by every replica through Redis.

Slack rates ``chat.update`` per workspace (Tier 3, about 50 a minute), not per process, so replicas must
share one count: ``glmbot:{edits:<team>}:<minute>`` is incremented per interim edit and expires after the
window. When the minute's budget is spent, replies skip interim edits until the next window; final edits
(which hold the whole answer) are never held back and are not counted here.

When Slack answers a ``chat.update`` with 429, its ``Retry-After`` is recorded in
``glmbot:{edits:<team>}:paused`` so every replica holds its interim edits until then, not just the reply
that was refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as redis
import structlog

from bot.core.errors import StoreUnavailable
from bot.store.connection import lua_source, store_errors

log = structlog.get_logger(__name__)

WINDOW_SECONDS = 60
TAKE_SCRIPT = lua_source(__package__, "edit_budget.lua")


def budget_window(now: float) -> tuple[int, float]:
    """The fixed one-minute window at ``now`` (epoch seconds): its number and the seconds left in it."""
    return int(now // WINDOW_SECONDS), WINDOW_SECONDS - now % WINDOW_SECONDS


class EditBudget:
    """Grants interim edits while the workspace's per-minute budget lasts."""

    def __init__(self, client: redis.Redis, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._per_minute = per_minute
        self._clock = clock
        self._take = client.register_script(TAKE_SCRIPT)

    @property
    def scripts(self) -> tuple[str, ...]:
        """The Lua sources this budget runs, for preloading at start."""
        return (TAKE_SCRIPT,)

    async def take(self, team: str, first_edit: bool) -> float:
        """0 when an interim edit may go now, else the seconds until the next window."""
        window, seconds_left = budget_window(self._clock())
        limit = self._per_minute if first_edit else (self._per_minute + 1) // 2
        keys = [f"glmbot:{{edits:{team}}}:{window}", _pause_key(team)]
        try:
            with store_errors("edit budget"):
                granted = int(await self._take(keys=keys, args=[2 * WINDOW_SECONDS, limit]))
        except StoreUnavailable as exc:
            # Edits are not money: with the store down, streaming goes on at the per-message pace.
            log.warning("edit_budget_unavailable", detail=str(exc))
            return 0.0
        if granted < 0:
            return -granted / 1000
        return 0.0 if granted else seconds_left

    async def pause(self, team: str, seconds: float) -> None:
        """Slack rate-limited ``chat.update`` for ``seconds``: hold every replica's interim edits."""
        try:
            with store_errors("edit pause"):
                await self._client.set(_pause_key(team), "1", px=max(1, int(seconds * 1000)))
        except StoreUnavailable as exc:
            log.warning("edit_pause_not_shared", detail=str(exc))


def _pause_key(team: str) -> str:
    return f"glmbot:{{edits:{team}}}:paused"


@dataclass(frozen=True, slots=True)
class TeamEditGate:
    """The workspace edit budget for one team (implements ``streamer.EditGate``)."""

    budget: EditBudget
    team: str

    async def take(self, first_edit: bool) -> float:
        return await self.budget.take(self.team, first_edit)

    async def pause(self, seconds: float) -> None:
        await self.budget.pause(self.team, seconds)
