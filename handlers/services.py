"""What the Slack listeners need, built once by ``handlers.front_end``."""

from __future__ import annotations

from dataclasses import dataclass

from bot.billing.admin import QuotaAdmin
from bot.core.conversation import ConversationService
from handlers.admins import AdminDirectory
from handlers.delivery import SlackDelivery


@dataclass(frozen=True, slots=True)
class Services:
    """The core services the listeners call, and the Slack side's own."""

    conversation: ConversationService
    quota_admin: QuotaAdmin
    admins: AdminDirectory
    delivery: SlackDelivery
