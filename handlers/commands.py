"""``/glm-quota``: anyone sees their own spend; admins manage limits. Answers are ephemeral."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.billing.admin import is_admin_command
from bot.billing.commands import UsageError, parse_quota_command
from bot.core.errors import StoreUnavailable, user_message
from handlers.services import Services

REFUSED = "Only glmbot admins can do that. `/glm-quota` with no argument shows your own spend."


async def on_quota_command(
    services: Services, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any], client: AsyncWebClient
) -> None:
    """Parse, check rights, run, answer ephemerally."""
    await ack()
    caller = str(command.get("user_id", ""))
    try:
        parsed = parse_quota_command(str(command.get("text") or ""))
    except UsageError as problem:
        await respond(str(problem))
        return
    if is_admin_command(parsed, caller) and not await services.admins.is_admin(client, caller):
        await respond(REFUSED)
        return
    try:
        answer = await services.quota_admin.run(parsed, caller)
    except StoreUnavailable:
        answer = user_message(StoreUnavailable())
    await respond(answer)
