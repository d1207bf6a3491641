"""Per-event log context, bound once so every log line of the reply carries it."""

from __future__ import annotations

from typing import Any

import structlog

from bot.core.domain import IncomingMessage


def bind_event(message: IncomingMessage, body: dict[str, Any]) -> None:
    """Bind team, channel, thread, user and event id for this event's task."""
    structlog.contextvars.bind_contextvars(
        team=message.thread.team,
        channel=message.thread.channel,
        thread_ts=message.thread.thread_ts,
        user=message.user_id,
        event_id=body.get("event_id"),
    )
