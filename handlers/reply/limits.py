"""Slack's rate limits, kept in Redis so that every replica draws on the same budgets.

Slack limits ``chat.postMessage`` to about one message per second per channel, with short bursts, and
``chat.update`` per workspace (Tier 3, about 50 a minute), counting every edit, final edits too
(https://api.slack.com/apis/rate-limits, https://api.slack.com/methods/chat.update). A 429 answer's
``Retry-After`` pauses the bucket for every replica.

Each bucket is one GCRA key, taken by ``rate_limit.lua``:

* ``glmbot:{slack:<team>}:post:<channel>`` (and ``...:paused``): posts in one channel;
* ``glmbot:{slack:<team>}:update`` (and ``...:paused``): edits in the workspace;
* ``glmbot:{slack:<team>}:stream:start``, ``...:stream:stop`` (Tier 2, 20 a minute each) and
  ``...:stream:append`` (Tier 4, 100 a minute) (and their ``...:paused``): native streaming in the
  workspace (https://docs.slack.dev/reference/methods/chat.startStream, chat.appendStream,
  chat.stopStream);
* ``glmbot:{slack:<team>}:stream:refused``: Slack refused ``chat.startStream`` for the workspace; while
  it lives (``STREAM_REFUSAL_SECONDS``) ``SLACK_STREAMING=auto`` delivers by edits there.

The update bucket allows ``burst`` calls at once and refills so that no 60-second window holds more
than ``per_minute`` calls. A store that does not answer fails open: the call goes now, and Slack's own
429 (waited out) is the backstop.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from typing import Literal

import redis.asyncio as redis
import structlog

from bot.core.errors import StoreUnavailable
from bot.store.connection import lua_source, store_errors

log = structlog.get_logger(__name__)

RATE_LIMIT_SCRIPT = lua_source(__package__, "rate_limit.lua")
POST_INTERVAL_SECONDS = 1.1  # a little slower than Slack's 1 per second, so clocks never quite collide
POST_BURST = 3
STREAM_CALLS_PER_MINUTE = {"start": 20, "stop": 20, "append": 100}
"""Native streaming budgets per workspace: chat.startStream and chat.stopStream are Tier 2 (20+ a minute),
chat.appendStream Tier 4 (100+ a minute) (https://docs.slack.dev/reference/methods/chat.appendStream)."""
STREAM_REFUSAL_SECONDS = 3600
"""How long a workspace that refused chat.startStream is served by edits (auto): an hour, so a workspace
where streaming becomes available is streamed to again the same hour, at one refused call an hour."""
StreamCall = Literal["start", "stop", "append"]


class SlackLimits:
    """Posting and editing slots, shared by every replica of the bot."""

    def __init__(
        self, client: redis.Redis, updates_per_minute: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._clock = clock
        # A fifth of the minute's edits may go at once: a few replies stream at first sight; a burst of
        # replies soon finds the bucket spent and posts whole.
        self.update_burst = max(1, updates_per_minute // 5)
        # burst + 60 s / interval <= per_minute: no minute ever sees more calls than Slack allows.
        self._update_interval = 60.0 / max(1, updates_per_minute - self.update_burst)
        self._take = client.register_script(RATE_LIMIT_SCRIPT)

    @property
    def scripts(self) -> tuple[str, ...]:
        """The Lua sources these limits run, for preloading at start."""
        return (RATE_LIMIT_SCRIPT,)

    async def post_slot(self, team: str, channel: str) -> float:
        """Take the channel's next posting slot; the seconds to wait before posting."""
        bucket = f"glmbot:{{slack:{team}}}:post:{channel}"
        wait = await self._slot(bucket, POST_INTERVAL_SECONDS, POST_BURST, 0, math.inf)
        return wait or 0.0

    async def update_slot(self, team: str, spare: int = 0, max_wait: float = math.inf) -> float | None:
        """Take an editing slot that leaves ``spare`` slots for others and comes within ``max_wait`` s.

        Returns the seconds to wait before editing, or None when no such slot is free (nothing taken).
        """
        bucket = f"glmbot:{{slack:{team}}}:update"
        spare = min(spare, self.update_burst - 1)
        return await self._slot(bucket, self._update_interval, self.update_burst, spare, max_wait)

    async def update_pause(self, team: str) -> float:
        """Seconds left of a 429 pause on the workspace's edits (0 when none): a reserved edit waits too."""
        return await self._pause_left(f"glmbot:{{slack:{team}}}:update:paused")

    async def stream_pause(self, team: str, call: StreamCall) -> float:
        """Seconds left of a 429 pause on the workspace's ``call`` streaming calls (0 when none)."""
        return await self._pause_left(f"glmbot:{{slack:{team}}}:stream:{call}:paused")

    async def _pause_left(self, key: str) -> float:
        try:
            with store_errors("slack pause"):
                left_ms = int(await self._client.pttl(key))
        except (StoreUnavailable, ValueError) as exc:
            log.warning("rate_limit_unavailable", detail=str(exc))
            return 0.0
        return max(0, left_ms) / 1000

    async def stream_slot(
        self, team: str, call: StreamCall, spare: int = 0, max_wait: float = math.inf
    ) -> float | None:
        """Take a native-streaming slot (``call``: start, stop or append) that leaves ``spare`` slots for
        others and comes within ``max_wait`` s; the seconds to wait, or None when none is free."""
        per_minute = STREAM_CALLS_PER_MINUTE[call]
        burst = max(1, per_minute // 5)  # as for edits: a fifth at once, the rest spread over the minute
        interval = 60.0 / max(1, per_minute - burst)
        bucket = f"glmbot:{{slack:{team}}}:stream:{call}"
        return await self._slot(bucket, interval, burst, min(spare, burst - 1), max_wait)

    async def pause_stream(self, team: str, call: StreamCall, seconds: float) -> None:
        """Slack answered a streaming call with 429: hold every replica's calls of that kind."""
        await self._pause(f"glmbot:{{slack:{team}}}:stream:{call}:paused", seconds)

    async def stream_refused(self, team: str) -> bool:
        """True while the workspace is remembered as refusing ``chat.startStream`` (a store error: False)."""
        try:
            with store_errors("stream refusal"):
                return bool(await self._client.exists(f"glmbot:{{slack:{team}}}:stream:refused"))
        except StoreUnavailable as exc:
            log.warning("rate_limit_unavailable", detail=str(exc))
            return False

    async def remember_stream_refusal(self, team: str, error: str) -> None:
        """Remember for ``STREAM_REFUSAL_SECONDS`` that the workspace refused ``chat.startStream``."""
        key = f"glmbot:{{slack:{team}}}:stream:refused"
        try:
            with store_errors("stream refusal"):
                await self._client.set(key, error, ex=STREAM_REFUSAL_SECONDS)
        except StoreUnavailable as exc:
            log.warning("stream_refusal_not_shared", detail=str(exc))

    async def pause_posts(self, team: str, channel: str, seconds: float) -> None:
        """Slack answered a post in ``channel`` with 429: hold every replica's posts there."""
        await self._pause(f"glmbot:{{slack:{team}}}:post:{channel}:paused", seconds)

    async def pause_updates(self, team: str, seconds: float) -> None:
        """Slack answered an edit with 429: hold every replica's edits in the workspace."""
        await self._pause(f"glmbot:{{slack:{team}}}:update:paused", seconds)

    async def _slot(
        self, bucket: str, interval: float, burst: int, spare: int, max_wait: float
    ) -> float | None:
        now_ms = int(self._clock() * 1000)
        max_wait_ms = 2**50 if math.isinf(max_wait) else int(max_wait * 1000)
        args = [now_ms, int(interval * 1000), burst, spare, max_wait_ms]
        try:
            with store_errors("slack rate limit"):
                keys = [bucket, f"{bucket}:paused", f"{bucket}:took:{uuid.uuid4().hex}"]
                wait_ms = int(await self._take(keys=keys, args=args))
        except (StoreUnavailable, ValueError) as exc:
            log.warning("rate_limit_unavailable", detail=str(exc))
            return 0.0
        return None if wait_ms < 0 else wait_ms / 1000

    async def _pause(self, key: str, seconds: float) -> None:
        try:
            with store_errors("slack pause"):
                await self._client.set(key, "1", px=max(1, int(seconds * 1000)))
        except StoreUnavailable as exc:
            log.warning("rate_limit_pause_not_shared", detail=str(exc))
