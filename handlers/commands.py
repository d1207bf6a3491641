"""``/glm-quota``: anyone sees their own spend; admins manage limits. Answers are ephemeral."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.billing.admin import QuotaAdmin, is_admin_command
from bot.billing.commands import UsageError, parse_quota_command
from bot.billing.ledger import QuotaLedger
from bot.core.errors import StoreUnavailable
from bot.core.messages import user_message
from handlers.reply.render import escape
from handlers.services import Services

QUOTA_COMMAND = "/glm-quota"
USAGE = f"Usage: {QUOTA_COMMAND} [show @user | set @user USD|default | default USD | reset @user | top]"
REFUSED = f"Only glmbot admins can do that. `{QUOTA_COMMAND}` with no argument shows your own spend."


def mention(user: str) -> str:
    """How Slack names a user in a message: a mention, shown as their name."""
    return f"<@{user}>"


def slack_quota_admin(ledger: QuotaLedger) -> QuotaAdmin:
    """Quota answers that name users with Slack mentions."""
    return QuotaAdmin(ledger, user_label=mention)


async def on_quota_command(
    services: Services, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any], client: AsyncWebClient
) -> None:
    """Parse, check rights, run, answer ephemerally."""
    await ack()
    caller = str(command.get("user_id", ""))
    try:
        parsed = parse_quota_command(str(command.get("text") or ""))
    except UsageError as problem:
        # The reason may quote what the caller typed: shown as text, never as a live mention.
        await respond(f"{escape(problem.reason)} {USAGE}".strip())
        return
    if is_admin_command(parsed, caller) and not await services.admins.is_admin(client, caller):
        await respond(REFUSED)
        return
    try:
        answer = await services.quota_admin.run(parsed, caller)
    except StoreUnavailable:
        answer = user_message(StoreUnavailable())
    await respond(answer)
