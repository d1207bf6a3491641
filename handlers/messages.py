"""``message`` events: DMs are always answered; channel thread replies only where the bot already talks.

A channel message that mentions the bot is left to ``app_mention``, which Slack sends for it too.
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.context.async_context import AsyncBoltContext

from bot.core.errors import StoreUnavailable
from handlers.events import incoming_message, is_person_message, mentions, thread_of
from handlers.log_context import bind_event
from handlers.services import Services

log = structlog.get_logger(__name__)


async def on_message(
    services: Services,
    event: dict[str, Any],
    body: dict[str, Any],
    context: AsyncBoltContext,
) -> None:
    """Take a DM or a follow-up in a known thread on as work; ignore anything else."""
    if not is_person_message(event):
        return
    team_id, bot_user_id = context.team_id or "", context.bot_user_id or ""
    if event.get("channel_type") != "im":
        thread = thread_of(event, team_id)
        if thread is None or mentions(str(event.get("text") or ""), bot_user_id):
            return
        try:
            if not await services.conversation.knows_thread(thread):
                return
        except StoreUnavailable as exc:
            # Whether this thread is ours is unknown; answering every thread reply would be worse.
            log.error("follow_up_check_failed", detail=str(exc))
            return
    message = incoming_message(event, team_id, bot_user_id)
    bind_event(message, body)
    await services.delivery.take_on(message, str(body.get("event_id") or ""))
