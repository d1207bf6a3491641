"""``conversations.replies`` for the fake Slack: threads written by people and other bots.

A test adds a thread's messages with ``fake.threads.add(...)``; the bot's own posts in the thread
(``chat.postMessage``) belong to it too. It answers the way Slack documents
(https://docs.slack.dev/reference/methods/conversations.replies): the parent first, then replies oldest
first; ``limit`` messages a page (default 1,000); ``response_metadata.next_cursor`` for the next page
(empty on the last); ``latest`` and ``oldest`` bound the range, ``inclusive`` keeps their own messages.
``page_cap`` caps every page, as Slack caps non-Marketplace apps at 15; ``refuse_from_call`` makes
that call and every later one answer ``{"ok": false, "error": refusal}`` (a read stopped mid-way).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["SlackThreads"]

DEFAULT_LIMIT = 1000
_CURSOR_PREFIX = "next:"


@dataclass
class SlackThreads:
    """Messages by (channel, thread_ts), and the ``conversations.replies`` answer over them."""

    messages: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    page_cap: int | None = None
    refuse_from_call: int | None = None
    refusal: str = "ratelimited"
    calls: int = 0

    def add(
        self,
        channel: str,
        thread_ts: str,
        ts: str,
        text: str = "",
        *,
        user: str | None = None,
        bot_id: str | None = None,
        files: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Add one message (the parent when ``ts == thread_ts``); returns it as Slack will send it."""
        message: dict[str, Any] = {"type": "message", "ts": ts, "thread_ts": thread_ts, "text": text}
        if user is not None:
            message["user"] = user
        if bot_id is not None:
            message["bot_id"] = bot_id
        if files is not None:
            message["files"] = files
        message.update(extra)
        self.messages.setdefault((channel, thread_ts), []).append(message)
        return message

    def replies(self, params: Mapping[str, Any], posted: Iterable[dict[str, Any]]) -> dict[str, Any]:
        """The answer to ``conversations.replies`` with ``params``; ``posted``: the bot's own messages
        in that thread."""
        self.calls += 1
        if self.refuse_from_call is not None and self.calls >= self.refuse_from_call:
            return {"ok": False, "error": self.refusal}
        channel, thread_ts = str(params.get("channel") or ""), str(params.get("ts") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        thread = [*self.messages.get((channel, thread_ts), []), *posted]
        if not any(message["ts"] == thread_ts for message in thread):
            return {"ok": False, "error": "thread_not_found"}
        thread.sort(key=lambda message: Decimal(message["ts"]))
        in_range = [message for message in thread if _in_range(Decimal(message["ts"]), params)]
        cursor = str(params.get("cursor") or "")
        if cursor and not (cursor.startswith(_CURSOR_PREFIX) and cursor[len(_CURSOR_PREFIX) :].isdigit()):
            return {"ok": False, "error": "invalid_cursor"}
        start = int(cursor[len(_CURSOR_PREFIX) :]) if cursor else 0
        limit = int(params.get("limit") or DEFAULT_LIMIT)
        if self.page_cap is not None:
            limit = min(limit, self.page_cap)
        page = in_range[start : start + limit]
        more = start + limit < len(in_range)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": f"{_CURSOR_PREFIX}{start + limit}" if more else ""},
        }


def _in_range(ts: Decimal, params: Mapping[str, Any]) -> bool:
    """Within ``oldest``..``latest``; the bounds themselves only with ``inclusive``."""
    inclusive = str(params.get("inclusive") or "").lower() in ("1", "true")
    latest, oldest = params.get("latest"), params.get("oldest")
    if latest and (ts > Decimal(str(latest)) or (ts == Decimal(str(latest)) and not inclusive)):
        return False
    return not (oldest and (ts < Decimal(str(oldest)) or (ts == Decimal(str(oldest)) and not inclusive)))
