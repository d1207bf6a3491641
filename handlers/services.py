"""What the Slack listeners need, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.conversation import ConversationService
from bot.edit_pacing import EditPacer
from bot.metrics import Metrics
from bot.quota_admin import QuotaAdmin
from handlers.admins import AdminDirectory
from handlers.reply_streamer import SlackReplyStreamer
from handlers.slack_files import SlackFileFetcher


@dataclass(frozen=True, slots=True)
class Services:
    """The core services plus Slack-side settings."""

    conversation: ConversationService
    quota_admin: QuotaAdmin
    admins: AdminDirectory
    files: SlackFileFetcher
    metrics: Metrics
    edit_interval: float

    def streamer(self, client: AsyncWebClient, channel: str, thread_ts: str) -> SlackReplyStreamer:
        """A reply streamer for one answer in one thread."""
        return SlackReplyStreamer(client, channel, thread_ts, EditPacer(self.edit_interval), self.metrics)
