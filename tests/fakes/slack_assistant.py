"""The fake Slack's assistant-panel methods: ``assistant.threads.setStatus``, ``.setTitle``,
``.setSuggestedPrompts``, and ``conversations.info`` for the name of the channel a user views.

Each call is checked the way Slack checks it (required arguments: https://docs.slack.dev/reference/methods/
assistant.threads.setStatus, …setTitle, …setSuggestedPrompts: at most four prompts, each with ``title``
and ``message``) and recorded in order in ``AssistantThreads.log`` as ``(method, channel_id, thread_ts,
value)``; the newest status, title and prompts of each thread are kept too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_PROMPTS = 4


@dataclass
class AssistantThreads:
    """What the bot set on assistant threads, keyed by ``(channel_id, thread_ts)``."""

    statuses: dict[tuple[str, str], str] = field(default_factory=dict)
    titles: dict[tuple[str, str], str] = field(default_factory=dict)
    prompts: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    log: list[tuple[str, str, str, Any]] = field(default_factory=list)
    channel_names: dict[str, str] = field(default_factory=dict)  # conversations.info: id -> name

    def status_history(self, channel: str, thread_ts: str) -> list[str]:
        """Every status set on the thread, in order ("" clears it)."""
        return [
            value
            for method, c, t, value in self.log
            if method == "setStatus" and (c, t) == (channel, thread_ts)
        ]

    def set_status(self, params: dict[str, Any]) -> dict[str, Any]:
        where = _thread(params)
        if where is None or "status" not in params:
            return {"ok": False, "error": "invalid_arguments"}
        loading = params.get("loading_messages")
        if loading is not None and (not isinstance(loading, list) or len(loading) > 10):
            return {"ok": False, "error": "invalid_arguments"}
        self.statuses[where] = str(params["status"])
        self.log.append(("setStatus", *where, str(params["status"])))
        return {"ok": True}

    def set_title(self, params: dict[str, Any]) -> dict[str, Any]:
        where = _thread(params)
        if where is None or not params.get("title"):
            return {"ok": False, "error": "invalid_arguments"}
        self.titles[where] = str(params["title"])
        self.log.append(("setTitle", *where, str(params["title"])))
        return {"ok": True}

    def set_suggested_prompts(self, params: dict[str, Any]) -> dict[str, Any]:
        where = _thread(params)
        prompts = params.get("prompts")
        if where is None or not isinstance(prompts, list) or len(prompts) > MAX_PROMPTS:
            return {"ok": False, "error": "invalid_arguments"}
        if not all(isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts):
            return {"ok": False, "error": "invalid_arguments"}
        self.prompts[where] = [dict(p) for p in prompts]
        self.log.append(("setSuggestedPrompts", *where, params.get("title")))
        return {"ok": True}

    def conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel") or "")
        name = self.channel_names.get(channel)
        if name is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": {"id": channel, "name": name, "is_channel": True}}


def _thread(params: dict[str, Any]) -> tuple[str, str] | None:
    channel, thread_ts = params.get("channel_id"), params.get("thread_ts")
    if not channel or not thread_ts:
        return None
    return str(channel), str(thread_ts)
