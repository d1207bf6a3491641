"""SlackStreamPoster: the native-streaming calls of one reply's thread, within the shared rate limits.

Slack's streaming methods (https://docs.slack.dev/changelog/2025/10/7/chat-streaming):
``chat.startStream`` (Tier 2) starts a message in the thread and returns its ``ts``; it needs
``recipient_user_id`` and ``recipient_team_id`` in channels
(https://docs.slack.dev/reference/methods/chat.startStream). ``chat.appendStream`` (Tier 4) adds
``markdown_text`` (at most 12,000 characters a call) to it; ``chat.stopStream`` (Tier 2) ends it, with
a last ``markdown_text``. Each kind has its own budget in Redis (``SlackLimits.stream_slot``).

Starting and stopping must land: they wait for their slot, wait out 429s (sharing ``Retry-After``) and
retry transient failures, like a placeholder (``SlackPoster``, whose posting and editing calls this class
also has, for the fallback to edits). An append is tried once, when the budget has room.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bot.core.errors import DeliveryFailed
from handlers.reply.limits import StreamCall
from handlers.reply.poster import SlackPoster
from handlers.reply.render import Block

FIRST_APPEND_SPARE = 0
LATER_APPEND_SPARE = 5
"""Append slots a later append leaves free, so that other streams' first words are not held back."""
_CALLS: dict[str, StreamCall] = {
    "chat.startStream": "start",
    "chat.stopStream": "stop",
    "chat.appendStream": "append",
}


class SlackStreamPoster(SlackPoster):
    """Starts, appends to and stops native streams in one thread (and posts and edits, as SlackPoster)."""

    @property
    def team(self) -> str:
        """The workspace of the thread."""
        return self._team

    @property
    def channel(self) -> str:
        """The thread's channel."""
        return self._channel

    async def reserve_stream(self, wait: bool) -> bool:
        """Take this reply's start and stop slots now (``wait``: however long that takes).

        False when the workspace has none free right now (nothing more is taken; a stop slot taken
        before a start slot was found stays used, which errs on the side of fewer calls).
        """
        max_wait = math.inf if wait else 0.0
        for call in ("stop", "start"):
            seconds = await self._limits.stream_slot(self._team, call, max_wait=max_wait)
            if seconds is None:
                return False
            await self._sleep(seconds)
        return True

    async def start_stream(self, recipient: str | None, blocks: Sequence[Block] = ()) -> str:
        """``chat.startStream`` in the thread (its slot taken by ``reserve_stream``); the stream's ts.

        ``blocks`` (the Stop button) go first in the stream as a ``blocks`` chunk (slack_sdk's
        ``BlocksChunk``, https://docs.slack.dev/messaging/sending-and-scheduling-messages#text-streaming),
        so the asker can stop the answer while it streams.

        Raises SlackRefused (for good: the workspace or the thread refuses streams) or DeliveryFailed.
        """
        user, team = (recipient, self._team) if recipient else (None, None)
        taken = True

        async def call() -> Any:
            nonlocal taken
            await self._sleep(await self._slot_or_pause("start", taken))
            taken = False  # a retry after a failure needs a slot of its own
            return await self._client.chat_startStream(
                channel=self._channel,
                thread_ts=self._thread_ts,
                recipient_user_id=user,
                recipient_team_id=team,
                chunks=[{"type": "blocks", "blocks": list(blocks)}] if blocks else None,
            )

        response = await self._must("chat.startStream", call)
        ts = response.get("ts")
        if not ts:
            raise DeliveryFailed("chat.startStream answered without a ts")
        return str(ts)

    async def stop_stream(
        self, ts: str, markdown: str, slot_taken: bool, blocks: Sequence[Block] = ()
    ) -> None:
        """``chat.stopStream`` on ``ts`` with the last ``markdown`` (none when empty) and ``blocks`` under
        the finished message (https://docs.slack.dev/reference/methods/chat.stopStream)."""
        taken = slot_taken

        async def call() -> Any:
            nonlocal taken
            await self._sleep(await self._slot_or_pause("stop", taken))
            taken = False
            return await self._client.chat_stopStream(
                channel=self._channel, ts=ts, markdown_text=markdown or None, blocks=list(blocks) or None
            )

        await self._must("chat.stopStream", call)

    async def append(self, ts: str, markdown: str, first: bool) -> bool:
        """Try one ``chat.appendStream`` within the budget; False when it was held back or failed.

        Raises SlackRefused when Slack refuses it for good (the stream expired or was stopped).
        """
        spare = FIRST_APPEND_SPARE if first else LATER_APPEND_SPARE
        if await self._limits.stream_slot(self._team, "append", spare=spare, max_wait=0) is None:
            self._metrics.slack_calls.labels("chat.appendStream", "skipped_budget").inc()
            return False
        return await self._try_once(
            "chat.appendStream",
            lambda: self._client.chat_appendStream(channel=self._channel, ts=ts, markdown_text=markdown),
            lambda seconds: self._limits.pause_stream(self._team, "append", seconds),
        )

    async def _slot_or_pause(self, call: StreamCall, taken: bool) -> float:
        """Seconds to wait before ``call``: a 429 pause only when its slot was taken earlier, else a slot."""
        if taken:
            return await self._limits.stream_pause(self._team, call)
        return await self._limits.stream_slot(self._team, call) or 0.0

    async def _pause(self, method: str, seconds: float) -> None:
        call = _CALLS.get(method)
        if call is None:
            await super()._pause(method, seconds)
        else:
            await self._limits.pause_stream(self._team, call, seconds)
