"""What the Slack listeners need, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.conversation import ConversationService
from bot.domain import ThreadKey
from bot.edit_budget import EditBudget
from bot.edit_pacing import EditPacer
from bot.metrics import Metrics
from bot.quota_admin import QuotaAdmin
from handlers.admins import AdminDirectory
from handlers.reply_streamer import SlackReplyStreamer
from handlers.slack_files import SlackFileFetcher


@dataclass(frozen=True, slots=True)
class TeamEditGate:
    """The workspace edit budget for one team (implements ``reply_streamer.EditGate``)."""

    budget: EditBudget
    team: str

    async def take(self, first_edit: bool) -> float:
        return await self.budget.take(self.team, first_edit)

    async def pause(self, seconds: float) -> None:
        await self.budget.pause(self.team, seconds)


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
