"""What the Slack listeners need, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.billing.admin import QuotaAdmin
from bot.core.conversation import ConversationService
from bot.core.domain import ThreadKey
from bot.metrics import Metrics
from handlers.admins import AdminDirectory
from handlers.files import SlackFileFetcher
from handlers.reply.budget import EditBudget, TeamEditGate
from handlers.reply.pacing import EditPacer
from handlers.reply.streamer import SlackReplyStreamer


@dataclass(frozen=True, slots=True)
class Services:
    """The core services plus Slack-side settings."""

    conversation: ConversationService
    quota_admin: QuotaAdmin
    admins: AdminDirectory
    files: SlackFileFetcher
    metrics: Metrics
    edit_interval: float
    edit_budget: EditBudget

    def streamer(self, client: AsyncWebClient, thread: ThreadKey) -> SlackReplyStreamer:
        """A reply streamer for one answer in one thread."""
        pacer = EditPacer(self.edit_interval)
        gate = TeamEditGate(self.edit_budget, thread.team)
        return SlackReplyStreamer(client, thread.channel, thread.thread_ts, pacer, gate, self.metrics)
