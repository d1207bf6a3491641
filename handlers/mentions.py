"""``app_mention``: a person @mentioned the bot in a channel; answer in that thread."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext

from handlers.events import incoming_message, is_person_message
from handlers.log_context import bind_event
from handlers.services import Services


async def on_app_mention(
    services: Services,
    event: dict[str, Any],
    body: dict[str, Any],
    context: AsyncBoltContext,
) -> None:
    """Take the mention on as work; its answer goes in the mention's thread."""
    if not is_person_message(event):
        return
    message = incoming_message(event, context.team_id or "", context.bot_user_id or "")
    bind_event(message, body)
    await services.delivery.take_on(message, str(body.get("event_id") or ""), engage=True)
