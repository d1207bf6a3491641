"""Per-thread conversation history in Redis: one list per thread, appended atomically, with a TTL.

Key layout: ``glmbot:{<team>:<channel>:<thread_ts>}:history``. The braces are a Redis Cluster hash tag, so
every key of one thread lands in one slot: each script, and the two-key EXISTS and DEL (history and
``engaged``), touch that slot only, as a cluster requires
(https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/). Each entry is one JSON
object: ``role``, ``text`` and ``images`` (compact references; the bytes live in ``bot.images.cache``).
Each turn (question, answer) is appended in one script call, once per turn id (the user's message ts):
a client retry after a lost reply, or a resumed reply, appends nothing more. Entries carry their turn
id, so a turn can be taken back exactly. The list is capped so a very long thread cannot grow without
bound; trimming to the context window happens later, in ``bot.core.prompt.build_prompt``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

import redis.asyncio as redis
import structlog

from bot.core.domain import ChatMessage, ImageRef, Role, ThreadKey
from bot.store.connection import lua_source, store_errors

log = structlog.get_logger(__name__)

MAX_ENTRIES = 400
APPEND_SCRIPT = lua_source(__package__, "history_append.lua")
RETRACT_SCRIPT = lua_source(__package__, "history_retract.lua")
SEED_SCRIPT = lua_source(__package__, "history_seed.lua")


def history_key(thread: ThreadKey) -> str:
    """The Redis key of one thread's history."""
    return f"glmbot:{{{thread.tag()}}}:history"


def turn_key(thread: ThreadKey, turn_id: str) -> str:
    """The Redis key marking that a turn was appended (so it is appended once)."""
    return f"glmbot:{{{thread.tag()}}}:turn:{turn_id}"


def engaged_key(thread: ThreadKey) -> str:
    """The Redis key saying the bot was asked in this thread (before any answer was stored)."""
    return f"glmbot:{{{thread.tag()}}}:engaged"


class HistoryStore:
    """Load, append and forget thread histories (implements ``bot.core.ports.History``)."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self._client = client
        self._ttl_seconds = ttl_seconds
        self._append = client.register_script(APPEND_SCRIPT)
        self._retract = client.register_script(RETRACT_SCRIPT)

    @property
    def scripts(self) -> tuple[str, ...]:
        """The Lua sources this store runs, for preloading at start."""
        return (APPEND_SCRIPT, RETRACT_SCRIPT)

    async def load(self, thread: ThreadKey) -> list[ChatMessage]:
        """The thread's messages, oldest first."""
        with store_errors("history load"):
            raw = await self._client.lrange(history_key(thread), 0, -1)
        decoded = [_decode(entry) for entry in raw]
        return [message for message in decoded if message is not None]

    async def append(self, thread: ThreadKey, turn_id: str, messages: Sequence[ChatMessage]) -> None:
        """Append one turn's messages in one atomic step, once per ``turn_id``; renew the thread's TTL."""
        entries = [json.dumps(_encode(m, turn_id), ensure_ascii=False) for m in messages]
        keys = [history_key(thread), turn_key(thread, turn_id)]
        with store_errors("history append"):
            await self._append(keys=keys, args=[self._ttl_seconds, turn_id, MAX_ENTRIES, *entries])

    async def retract(self, thread: ThreadKey, turn_id: str, messages: Sequence[ChatMessage]) -> None:
        """Take back a turn appended with ``turn_id`` (its answer was not delivered)."""
        entries = [json.dumps(_encode(m, turn_id), ensure_ascii=False) for m in messages]
        with store_errors("history retract"):
            await self._retract(keys=[history_key(thread), turn_key(thread, turn_id)], args=entries)

    async def engage(self, thread: ThreadKey) -> None:
        """Mark the thread as one the bot talks in, from its first question on (same TTL as history)."""
        with store_errors("history engage"):
            await self._client.set(engaged_key(thread), "1", ex=self._ttl_seconds)

    async def exists(self, thread: ThreadKey) -> bool:
        """True when the bot talks in this thread: it was asked there, or has history there."""
        with store_errors("history lookup"):
            return bool(await self._client.exists(history_key(thread), engaged_key(thread)))

    async def forget(self, thread: ThreadKey) -> None:
        """Delete the thread's history."""
        with store_errors("history delete"):
            await self._client.delete(history_key(thread), engaged_key(thread))

    async def has_turns(self, thread: ThreadKey) -> bool:
        """True when the thread has stored turns (its memory), whether or not it is engaged."""
        with store_errors("history lookup"):
            return bool(await self._client.exists(history_key(thread)))

    async def seed(self, thread: ThreadKey, turn_id: str, messages: Sequence[ChatMessage]) -> bool:
        """Write ``messages`` as the thread's first history, in one atomic step, only while the thread has
        none, once per ``turn_id``; True when written (``history_seed.lua``).

        Safe to run twice: a client retry after a lost reply, a resumed reply, or a turn stored meanwhile
        finds the history or the turn's marker and writes nothing. The script is registered here (not
        preloaded with ``scripts``): only the Slack front end seeds, and it preloads ``SEED_SCRIPT``.
        """
        if not messages:
            return False
        entries = [json.dumps(_encode(m, turn_id), ensure_ascii=False) for m in messages]
        keys = [history_key(thread), turn_key(thread, turn_id)]
        script = self._client.register_script(SEED_SCRIPT)
        with store_errors("history seed"):
            written = await script(keys=keys, args=[self._ttl_seconds, turn_id, MAX_ENTRIES, *entries])
        return bool(written)


def _encode(message: ChatMessage, turn_id: str) -> dict[str, object]:
    entry: dict[str, object] = {"role": message.role, "text": message.text, "turn": turn_id}
    if message.images:
        entry["images"] = [asdict(image) for image in message.images]
    return entry


def _decode(entry: str | bytes) -> ChatMessage | None:
    """One stored message; an entry that cannot be read is skipped rather than breaking the thread."""
    try:
        data = json.loads(entry)
        role: Role = "assistant" if data["role"] == "assistant" else "user"
        images = tuple(ImageRef(**image) for image in data.get("images", ()))
        return ChatMessage(role, str(data["text"]), images)
    except (ValueError, KeyError, TypeError):
        log.warning("history_entry_unreadable")
        return None
