"""Per-thread conversation history in Redis: one list per thread, appended atomically, with a TTL.

Key layout: ``glmbot:{<team>:<channel>:<thread_ts>}:history``. The braces are a Redis Cluster hash tag, so
every key of one thread lands in one slot. Each entry is one JSON object: ``role``, ``text`` and
``images`` (compact references; the bytes live in ``image_cache``).
Two replies racing in one thread each append their (question, answer) pair in one script call, so the
pairs never interleave. The list is capped so a very long thread cannot grow without bound; trimming to
the context window happens later, in ``prompt.build_prompt``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

import redis.asyncio as redis
from redis.exceptions import RedisError

from bot.domain import ChatMessage, ImageRef, Role, ThreadKey
from bot.store import store_error

MAX_ENTRIES = 400
_APPEND = """
redis.call('RPUSH', KEYS[1], unpack(ARGV, 3))
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


def history_key(thread: ThreadKey) -> str:
    """The Redis key of one thread's history."""
    return f"glmbot:{{{thread.tag()}}}:history"


class HistoryStore:
    """Load, append and forget thread histories."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self._client = client
        self._ttl_seconds = ttl_seconds
        self._append = client.register_script(_APPEND)

    async def load(self, thread: ThreadKey) -> list[ChatMessage]:
        """The thread's messages, oldest first."""
        try:
            raw = await self._client.lrange(history_key(thread), 0, -1)
        except (RedisError, OSError) as exc:
            raise store_error("history load", exc) from exc
        return [_decode(entry) for entry in raw]

    async def append(self, thread: ThreadKey, messages: Sequence[ChatMessage]) -> None:
        """Append messages in one atomic step and renew the thread's TTL."""
        entries = [json.dumps(_encode(m), ensure_ascii=False) for m in messages]
        try:
            await self._append(keys=[history_key(thread)], args=[self._ttl_seconds, MAX_ENTRIES, *entries])
        except (RedisError, OSError) as exc:
            raise store_error("history append", exc) from exc

    async def exists(self, thread: ThreadKey) -> bool:
        """True when the bot has a conversation in this thread."""
        try:
            return bool(await self._client.exists(history_key(thread)))
        except (RedisError, OSError) as exc:
            raise store_error("history lookup", exc) from exc

    async def forget(self, thread: ThreadKey) -> None:
        """Delete the thread's history."""
        try:
            await self._client.delete(history_key(thread))
        except (RedisError, OSError) as exc:
            raise store_error("history delete", exc) from exc


def _encode(message: ChatMessage) -> dict[str, object]:
    entry: dict[str, object] = {"role": message.role, "text": message.text}
    if message.images:
        entry["images"] = [asdict(image) for image in message.images]
    return entry


def _decode(entry: str | bytes) -> ChatMessage:
    data = json.loads(entry)
    role: Role = "assistant" if data["role"] == "assistant" else "user"
    images = tuple(ImageRef(**image) for image in data.get("images", ()))
    return ChatMessage(role, str(data["text"]), images)
