"""The work queue: a Redis Stream per workspace with one consumer group, and each entry's recorded state.

Why a stream (https://redis.io/docs/latest/develop/data-types/streams/): an entry read by a replica stays
in the group's pending list until that replica acknowledges it (XACK), so work whose owner died is
still there; XAUTOCLAIM hands entries idle for longer than a lease to another replica, and an owner
keeps its lease by re-claiming its own entries (XCLAIM resets their idle time).

Keys of one workspace (Slack team id ``<team>``), all in its ``{work:<team>}`` hash slot, so each script
touches one slot (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/) and the
workspaces' streams spread over a cluster's slots:

* ``glmbot:{work:<team>}:replies`` -- the stream; one entry per message: ``key``, ``message`` (JSON),
  ``event`` (the Slack event id). Entries are deleted when done, so the stream holds only work not yet
  delivered.
* ``glmbot:{work:<team>}:claim:<team>:<channel>:<ts>`` -- the once-only claim of a message. 24 h.
* ``glmbot:{work:<team>}:state:<team>:<channel>:<ts>`` -- hash: ``attempts`` and what the reply recorded
  so far (``ReplyJournal``), so a replica that takes the entry over resumes it. Renewed to 24 h per
  attempt.
* ``glmbot:{work:<team>}:pending:<team>:<channel>:<ts>`` -- the entry id, from enqueue until done. 24 h.

A queue serves one workspace, given as a team id or as a lookup (the Slack front end learns its team from
``auth.test``, which may be unreachable at start: until it answers, the queue reads nothing). Per-thread
order lives in the thread's own slot (``order.ThreadOrder``). Every script is safe to run twice
(redis-py re-sends a command whose reply was lost): enqueue and begin carry a token of the call, done and
record are idempotent.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as redis
import structlog

from bot.core.domain import Attachment, IncomingMessage, ThreadKey
from bot.core.errors import StoreUnavailable
from bot.store.connection import is_cluster, lua_source, store_errors
from bot.work.order import ThreadOrder

log = structlog.get_logger(__name__)

GROUP = "glmbot"
# Slack retries for about five minutes; a day leaves room for slow redeliveries and clock skew.
CLAIM_TTL_SECONDS = 24 * 3600
STATE_TTL_SECONDS = 24 * 3600
ENQUEUE_SCRIPT = lua_source(__package__, "enqueue.lua")
BEGIN_SCRIPT = lua_source(__package__, "begin.lua")
DONE_SCRIPT = lua_source(__package__, "done.lua")
RENEW_SCRIPT = lua_source(__package__, "renew.lua")
RECORD_SCRIPT = lua_source(__package__, "record.lua")

TeamLookup = Callable[[], Awaitable[str | None]]
"""The workspace's team id, or None while it cannot be known yet."""


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One message to answer, as read from the stream: its entry id and the state of earlier attempts."""

    entry_id: str
    key: str
    message: IncomingMessage
    event_id: str = ""


def message_key(message: IncomingMessage) -> str:
    """``<team>:<channel>:<ts>``: names one message everywhere (claim, state, logs)."""
    return f"{message.thread.team}:{message.thread.channel}:{message.message_ts}"


def stream_key(team: str) -> str:
    """The work stream of workspace ``team``."""
    return f"glmbot:{{work:{_checked(team)}}}:replies"


def work_key(team: str, kind: str, key: str) -> str:
    """A message's ``claim``, ``state`` or ``pending`` key, in workspace ``team``'s slot."""
    return f"glmbot:{{work:{_checked(team)}}}:{kind}:{key}"


def _checked(team: str) -> str:
    """``team`` if it can be a hash tag's content; raises ValueError."""
    if not team or "{" in team or "}" in team:
        raise ValueError(f"not a usable team id: {team!r}")
    return team


class WorkQueue:
    """Enqueue, read, re-claim and finish one workspace's work entries for one consumer (one replica)."""

    def __init__(self, client: redis.Redis, consumer: str, team: str | TeamLookup) -> None:
        """``team``: the workspace's team id, or a lookup asked until it names one.

        Raises ValueError for a team id that cannot be a hash tag (braces, empty).
        """
        self._client = client
        self.consumer = consumer
        self._team = _checked(team) if isinstance(team, str) else None
        self._lookup = None if isinstance(team, str) else team
        self._enqueue = client.register_script(ENQUEUE_SCRIPT)
        self._begin = client.register_script(BEGIN_SCRIPT)
        self._done = client.register_script(DONE_SCRIPT)
        self._renew = client.register_script(RENEW_SCRIPT)
        self._record = client.register_script(RECORD_SCRIPT)
        self.order = ThreadOrder(client)

    @property
    def store(self) -> redis.Redis:
        """The Redis client of this queue (``stops.StopRequests`` keeps stop presses in the same slot)."""
        return self._client

    @property
    def scripts(self) -> tuple[str, ...]:
        """The Lua sources this queue runs, for preloading at start."""
        return (ENQUEUE_SCRIPT, BEGIN_SCRIPT, DONE_SCRIPT, RENEW_SCRIPT, RECORD_SCRIPT, *self.order.scripts)

    async def workspace(self) -> str | None:
        """The team id whose work this queue holds; None while the lookup cannot name it yet."""
        if self._team is None and self._lookup is not None:
            found = await self._lookup()
            self._team = _checked(found) if found else None
        return self._team

    def _known(self) -> str:
        """The workspace, known once any work was read or added. Raises StoreUnavailable before that."""
        if self._team is None:
            raise StoreUnavailable("work queue: the workspace is not known yet")
        return self._team

    async def enqueue(self, message: IncomingMessage, event_id: str = "") -> bool:
        """Record ``message`` as work unless it was already claimed; True when this call added it.

        ``event_id`` names the Slack event that announced it, for the reply's logs. The message also takes
        its place in its thread's line: in the same round trip on one server; on a cluster, where the line
        lives in another slot and redis-py refuses scripts inside a cluster pipeline, in a second call
        sent at the same time.

        Raises StoreUnavailable.
        """
        await self.workspace()
        team, key = self._known(), message_key(message)
        keys = [work_key(team, "claim", key), stream_key(team), work_key(team, "pending", key)]
        args: list[str | int] = [CLAIM_TTL_SECONDS, key, encode_message(message), event_id, uuid.uuid4().hex]
        with store_errors("work enqueue"):
            if is_cluster(self._client):
                entry, _ = await asyncio.gather(
                    self._enqueue(keys=keys, args=args), self.order.line_up(message)
                )
            else:
                async with self._client.pipeline(transaction=False) as pipe:
                    self.order.line_up_in(pipe, message)
                    await self._enqueue(keys=keys, args=args, client=pipe)
                    entry = (await pipe.execute())[-1]
        if entry == -1:
            # A copy of a message already answered (a late Slack retry): it must not stay in the line.
            await self.order.leave(message.thread, message.message_ts)
        return isinstance(entry, str)

    async def ensure_group(self) -> None:
        """Create the stream and its consumer group if they do not exist (BUSYGROUP means they do); nothing
        while the workspace is not known (``read`` makes them later)."""
        team = await self.workspace()
        if team is None:
            return
        try:
            with store_errors("work group"):
                await self._client.xgroup_create(stream_key(team), GROUP, id="0", mkstream=True)
        except StoreUnavailable as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, count: int, block_ms: int) -> list[WorkItem]:
        """Up to ``count`` new entries for this consumer, waiting up to ``block_ms`` for the first."""
        team = await self.workspace()
        if team is None:
            await asyncio.sleep(block_ms / 1000)
            return []
        try:
            with store_errors("work read"):
                reply: Any = await self._client.xreadgroup(
                    GROUP, self.consumer, {stream_key(team): ">"}, count=count, block=block_ms
                )
        except StoreUnavailable as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream or the group vanished (a flushed store): make them again and read next time.
            await self.ensure_group()
            return []
        return [item for _stream, entries in reply or [] for item in await self._items(entries)]

    async def reclaim(self, count: int, min_idle_ms: int) -> list[WorkItem]:
        """Up to ``count`` entries whose owner has not renewed them for ``min_idle_ms`` (XAUTOCLAIM)."""
        team = await self.workspace()
        if team is None:
            return []
        with store_errors("work reclaim"):
            reply: Sequence[Any] = await self._client.xautoclaim(
                stream_key(team), GROUP, self.consumer, min_idle_ms, "0-0", count=count
            )
        entries, deleted = reply[1], reply[2] if len(reply) > 2 else []
        if deleted:
            # Entries deleted while pending (done, then the ack was lost): nothing left to do.
            with store_errors("work ack"):
                await self._client.xack(stream_key(team), GROUP, *deleted)
        return await self._items(entries)

    async def renew(self, entry_ids: Sequence[str]) -> set[str]:
        """Keep the lease on ``entry_ids``; returns the ids this consumer still owns."""
        if not entry_ids:
            return set()
        keys = [stream_key(self._known())]
        with store_errors("work renew"):
            owned = await self._renew(keys=keys, args=[GROUP, self.consumer, *entry_ids])
        return {str(entry) for entry in owned}

    async def wait_turn(self, item: WorkItem) -> None:
        """Return when ``item`` is the first message of its thread still to be answered.

        Raises StoreUnavailable.
        """
        await self.order.wait_turn(item.message, self._pending)

    async def begin(self, item: WorkItem) -> dict[str, str]:
        """Count an attempt at ``item``; what earlier attempts recorded (``attempts`` included)."""
        args: list[str | int] = [STATE_TTL_SECONDS, uuid.uuid4().hex]
        with store_errors("work begin"):
            flat: Sequence[Any] = await self._begin(keys=[self._state_key(item.key)], args=args)
        return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def record(self, item: WorkItem, fields: Mapping[str, str]) -> None:
        """Save how far the reply got (fields of its state hash)."""
        with store_errors("work record"):
            pairs: list[str | int] = [value for pair in fields.items() for value in pair]
            await self._record(keys=[self._state_key(item.key)], args=[STATE_TTL_SECONDS, *pairs])

    async def done(self, item: WorkItem) -> None:
        """The answer was delivered (or the failure shown): acknowledge and delete the entry."""
        team = self._known()
        keys = [stream_key(team), self._state_key(item.key), work_key(team, "pending", item.key)]
        with store_errors("work done"):
            done = await self._done(keys=keys, args=[GROUP, item.entry_id, self.consumer])
        if not done:
            log.warning("work_taken_over_before_done", entry_id=item.entry_id)
            return
        await self.order.leave(item.message.thread, item.message.message_ts)

    async def _pending(self, thread: ThreadKey, message_ts: str) -> bool:
        """True while the message with ``message_ts`` in ``thread`` has work waiting or running."""
        key = f"{thread.team}:{thread.channel}:{message_ts}"
        with store_errors("work pending"):
            return bool(await self._client.exists(work_key(self._known(), "pending", key)))

    def _state_key(self, key: str) -> str:
        return work_key(self._known(), "state", key)

    async def _items(self, entries: Sequence[Any]) -> list[WorkItem]:
        items = []
        for entry_id, fields in entries:
            try:
                message = decode_message(fields["message"])
                event = str(fields.get("event") or "")
                items.append(WorkItem(str(entry_id), str(fields["key"]), message, event))
            except (KeyError, TypeError, ValueError):
                # Unreadable work cannot be answered: say so in the log, and drop it rather than have
                # it re-claimed every lease for ever.
                log.error("work_entry_unreadable", entry_id=entry_id)
                with store_errors("work drop"):
                    await self._client.xack(stream_key(self._known()), GROUP, entry_id)
                    await self._client.xdel(stream_key(self._known()), entry_id)
        return items


def encode_message(message: IncomingMessage) -> str:
    """``message`` as the JSON kept in a stream entry."""
    return json.dumps(asdict(message), ensure_ascii=False)


def decode_message(raw: str | bytes) -> IncomingMessage:
    """The message of a stream entry; raises ValueError, KeyError or TypeError when it is unreadable."""
    data = json.loads(raw)
    return IncomingMessage(
        thread=ThreadKey(**data["thread"]),
        message_ts=str(data["message_ts"]),
        user_id=str(data["user_id"]),
        text=str(data["text"]),
        attachments=tuple(Attachment(**attachment) for attachment in data.get("attachments", ())),
    )
