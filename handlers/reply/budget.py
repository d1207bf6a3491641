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

import redis.asyncio as redis
import structlog
from redis.exceptions import RedisError

from handlers.reply.pacing import WINDOW_SECONDS, budget_window

log = structlog.get_logger(__name__)

# KEYS: the window's counter, the workspace's pause key. ARGV: TTL seconds, how many edits this caller
# may see used. Returns 1 and counts the edit when it is granted, 0 (counting nothing) when the budget is
# spent, and minus the milliseconds left when Slack asked the workspace to pause.
TAKE_SCRIPT = """
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then
  return -paused
end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[2]) then
  return 0
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return 1
"""


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
            granted = int(await self._take(keys=keys, args=[2 * WINDOW_SECONDS, limit]))
        except (RedisError, OSError, ValueError) as exc:
            # Edits are not money: with the store down, streaming goes on at the per-message pace.
            log.warning("edit_budget_unavailable", detail=f"{type(exc).__name__}: {exc}")
            return 0.0
        if granted < 0:
            return -granted / 1000
        return 0.0 if granted else seconds_left

    async def pause(self, team: str, seconds: float) -> None:
        """Slack rate-limited ``chat.update`` for ``seconds``: hold every replica's interim edits."""
        try:
            await self._client.set(_pause_key(team), "1", px=max(1, int(seconds * 1000)))
        except (RedisError, OSError) as exc:
            log.warning("edit_pause_not_shared", detail=f"{type(exc).__name__}: {exc}")


def _pause_key(team: str) -> str:
    return f"glmbot:{{edits:{team}}}:paused"
