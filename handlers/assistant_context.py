"""The assistant panel's threads in Redis: which DM threads are panel threads, and what the user views.

One hash per panel thread, in the thread's slot: ``glmbot:{<team>:<channel>:<thread_ts>}:assistant``:

* ``panel``: ``1``, a panel thread (set by ``assistant_thread_started``, or by a user message that
  carries ``assistant_thread``);
* ``context``: JSON of the thread's context, ``{"channel_id", "team_id", "enterprise_id"}``, the channel
  the user is viewing (from ``assistant_thread_started`` and ``assistant_thread_context_changed``);
* ``greeted``: the greeting went out (a retried ``assistant_thread_started`` greets once);
* ``titled``: the title was set from the thread's first question.

It expires ``HISTORY_TTL_DAYS`` after its last write, like the thread's memory.

``PanelThreads`` is also Bolt's ``AsyncAssistantThreadContextStore``, so Bolt's ``get_thread_context`` /
``save_thread_context`` read and write Redis instead of Bolt's default, which keeps the context in the
first bot message's metadata and reads it back with ``conversations.replies`` (Tier 1 for some apps):
slack_bolt ``context/assistant/thread_context_store/default_async_store.py``. Events:
https://docs.slack.dev/reference/events/assistant_thread_started and
https://docs.slack.dev/reference/events/assistant_thread_context_changed.

``ChannelNames`` names the channel a user views (``conversations.info``, Tier 3:
https://docs.slack.dev/reference/methods/conversations.info; scopes ``channels:read``/``groups:read``),
cached; a channel the bot cannot see keeps its id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis.asyncio as redis
import structlog
from slack_bolt.context.assistant.thread_context import AssistantThreadContext
from slack_bolt.context.assistant.thread_context_store.async_store import AsyncAssistantThreadContextStore
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.domain import ThreadKey
from bot.core.errors import DeliveryFailed
from bot.store.connection import store_errors
from bot.work.queue import TeamLookup
from handlers.errors import slack_errors

log = structlog.get_logger(__name__)

NAME_CACHE_SECONDS = 600.0
CONTEXT_FIELDS = ("channel_id", "team_id", "enterprise_id")


def panel_key(thread: ThreadKey) -> str:
    """The Redis key of one panel thread's state."""
    return f"glmbot:{{{thread.tag()}}}:assistant"


@dataclass(frozen=True, slots=True)
class PanelThread:
    """A panel thread as stored: the channel the user views (None: none known, or not a channel)."""

    viewing: str | None


def context_of(raw: Mapping[str, object] | None) -> dict[str, str]:
    """The thread context's known fields, as strings (Slack sends ``{}`` when the user views no channel)."""
    raw = raw or {}
    return {name: str(raw[name]) for name in CONTEXT_FIELDS if raw.get(name)}


def viewed_channel(context: Mapping[str, str]) -> str | None:
    """The channel id the user views, when it is a channel (C…, G…), not a DM or nothing."""
    channel = context.get("channel_id") or ""
    return channel if channel[:1] in ("C", "G") else None


class PanelThreads(AsyncAssistantThreadContextStore):
    """Panel threads' state in Redis; every method raises StoreUnavailable when the store fails."""

    def __init__(self, client: redis.Redis, team: TeamLookup, ttl_seconds: int) -> None:
        self._client = client
        self._team = team
        self._ttl = ttl_seconds

    async def started(self, thread: ThreadKey, context: Mapping[str, str]) -> bool:
        """Record a new panel thread and its context; True the first time (greet then)."""
        key = panel_key(thread)
        with store_errors("assistant thread started"):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hsetnx(key, "greeted", "1")
                pipe.hset(key, mapping={"panel": "1", "context": json.dumps(dict(context))})
                pipe.expire(key, self._ttl)
                first, _, _ = await pipe.execute()
        return bool(first)

    async def remember(self, thread: ThreadKey, context: Mapping[str, str] | None = None) -> None:
        """Mark ``thread`` as a panel thread, with the channel the user now views when given."""
        key = panel_key(thread)
        with store_errors("assistant thread"):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hset(key, "panel", "1")
                if context is not None:
                    pipe.hset(key, "context", json.dumps(dict(context)))
                pipe.expire(key, self._ttl)
                await pipe.execute()

    async def lookup(self, thread: ThreadKey) -> PanelThread | None:
        """The panel thread ``thread`` is, or None when it is not one (a plain DM thread)."""
        with store_errors("assistant thread lookup"):
            panel, raw = await self._client.hmget(panel_key(thread), ["panel", "context"])
        if not panel:
            return None
        return PanelThread(viewing=viewed_channel(_parsed(raw)))

    async def claim_title(self, thread: ThreadKey) -> bool:
        """True once per thread: the first question names the thread."""
        with store_errors("assistant thread title"):
            return bool(await self._client.hsetnx(panel_key(thread), "titled", "1"))

    # Bolt's AsyncAssistantThreadContextStore (get_thread_context / save_thread_context)

    async def save(self, *, channel_id: str, thread_ts: str, context: dict[str, str]) -> None:
        await self.remember(await self._thread(channel_id, thread_ts), context_of(context))

    async def find(self, *, channel_id: str, thread_ts: str) -> AssistantThreadContext | None:
        key = panel_key(await self._thread(channel_id, thread_ts))
        with store_errors("assistant thread context"):
            raw = await self._client.hget(key, "context")
        context = _parsed(raw)
        return AssistantThreadContext(context) if context.get("channel_id") else None

    async def _thread(self, channel_id: str, thread_ts: str) -> ThreadKey:
        return ThreadKey(team=await self._team() or "", channel=channel_id, thread_ts=thread_ts)


def _parsed(raw: object) -> dict[str, str]:
    """A stored context (bytes or str of JSON); empty when missing or unreadable."""
    if isinstance(raw, bytes):
        raw = raw.decode()
    try:
        value = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return {}
    return context_of(value) if isinstance(value, dict) else {}


class ChannelNames:
    """Channel id -> name (``conversations.info``), cached; unknown names are not cached for long."""

    def __init__(self, client: AsyncWebClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}

    async def name(self, channel: str) -> str:
        """The channel's name, or "" when Slack will not tell (the bot cannot see it, a missing scope)."""
        now = self._clock()
        cached = self._cache.get(channel)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            with slack_errors("conversations.info"):
                response = await self._client.conversations_info(channel=channel)
            name = str((response.get("channel") or {}).get("name") or "")
        except DeliveryFailed as failed:
            log.info("channel_name_unknown", viewed=channel, error=str(failed))
            name = ""
        # A name that failed is asked again after a minute, not every answer.
        self._cache[channel] = (name, now + (NAME_CACHE_SECONDS if name else 60.0))
        return name
