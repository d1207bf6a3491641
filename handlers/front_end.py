"""The Slack front end, built from the core: the Web API client, the Bolt app, the work runner.

The Bolt app only records work (``process_before_response``: the listener runs before the ack, so an
acknowledged message is already in the work stream); the work runner answers it, in this replica or,
when this one dies, in another.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from uuid import uuid4

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import Core
from bot.core.errors import DeliveryFailed
from bot.core.prompt import DEFAULT_SYSTEM_PROMPT
from bot.settings import Settings, SettingsError
from bot.store.connection import preload_scripts
from bot.store.history import SEED_SCRIPT
from bot.work.queue import TeamLookup, WorkQueue
from bot.work.runner import WorkRunner
from handlers import register
from handlers.admins import AdminDirectory
from handlers.assistant import PanelSetup
from handlers.assistant_context import ChannelNames, PanelThreads
from handlers.assistant_replies import PanelAnswers
from handlers.catchup import CatchUpConfig, ThreadCatchUp
from handlers.commands import slack_quota_admin
from handlers.delivery import SlackDelivery
from handlers.files import SlackFileFetcher
from handlers.identity import SlackIdentity
from handlers.people import PeopleDirectory
from handlers.reply.limits import SlackLimits
from handlers.services import Services
from handlers.slack_requests import RejectionWatch, SignatureCheck


class AcksInFlight:
    """Slack requests being handled right now (the work runner lets them go first)."""

    def __init__(self) -> None:
        self.count = 0

    def busy(self) -> bool:
        return self.count > 0


@dataclass(frozen=True, slots=True)
class SlackFrontEnd:
    """What ``serve`` runs: Bolt for events and commands, the runner for answers."""

    bolt: AsyncApp
    identity: SlackIdentity
    runner: WorkRunner
    acks: AcksInFlight


async def build_front_end(
    settings: Settings, core: Core, socket_mode: bool, session: aiohttp.ClientSession
) -> SlackFrontEnd:
    """Every Slack-side object, wired onto ``core``; nothing is started yet."""
    client = web_client(settings, session)
    identity = SlackIdentity(client)
    limits = SlackLimits(core.store, settings.slack_edits_per_minute)
    queue = WorkQueue(core.store, consumer_name(), workspace_of(identity))
    await preload_scripts(core.store, (*limits.scripts, *queue.scripts, SEED_SCRIPT))
    files = SlackFileFetcher(
        http=core.http,
        slack=client,
        bot_token=client.token or "",
        token_hosts=settings.file_hosts,
        plain_http_hosts=settings.plain_http_file_hosts,
        max_bytes=settings.image_max_download_bytes,
    )
    people = PeopleDirectory()
    catchup = ThreadCatchUp(
        client, identity, people, core.history, core.images, files, catchup_config(settings), core.metrics
    )
    panel = panel_setup(settings, core, identity)
    delivery = SlackDelivery(
        queue,
        core.conversation,
        client,
        files,
        limits,
        core.metrics,
        settings.stream_edit_interval,
        people=people,
        catchup=catchup,
        panel=PanelAnswers(panel.threads, client, ChannelNames(client)),
        streaming=settings.slack_streaming,
    )
    services = Services(
        conversation=core.conversation,
        quota_admin=slack_quota_admin(core.ledger),
        admins=AdminDirectory(settings.admin_user_ids),
        delivery=delivery,
    )
    bolt = bolt_app(settings, client, identity, socket_mode)
    register(bolt, services, panel)
    acks = AcksInFlight()
    runner = WorkRunner(queue, delivery.deliver, lease_seconds=settings.work_lease_seconds, acking=acks.busy)
    return SlackFrontEnd(bolt=bolt, identity=identity, runner=runner, acks=acks)


def panel_setup(settings: Settings, core: Core, identity: SlackIdentity) -> PanelSetup:
    """The assistant panel's threads (kept as long as thread memory) and its suggested prompts."""
    threads = PanelThreads(core.store, workspace_of(identity), settings.history_ttl_days * 24 * 3600)
    return PanelSetup(threads=threads, prompts=tuple(settings.assistant_prompts))


def catchup_config(settings: Settings) -> CatchUpConfig:
    """Thread catch-up's settings: THREAD_CATCHUP_MESSAGES and the prompt's budget."""
    return CatchUpConfig(
        max_messages=settings.thread_catchup_messages,
        context_tokens=settings.glm_context_tokens,
        max_output_tokens=settings.glm_max_output_tokens,
        system_prompt=settings.system_prompt or DEFAULT_SYSTEM_PROMPT,
    )


def bolt_app(
    settings: Settings,
    client: AsyncWebClient,
    identity: SlackIdentity,
    socket_mode: bool,
    rejections: RejectionWatch | None = None,
) -> AsyncApp:
    """The Bolt app: signatures checked (HTTP mode), the identity known, listeners run before the ack.

    In HTTP mode every request goes through ``SignatureCheck`` (``rejections`` decides when repeated
    mismatches earn a hint); raises SettingsError when SLACK_SIGNING_SECRET is unset, so that an HTTP
    front end can never be built without signatures checked. Socket Mode requests come over Slack's
    own authenticated websocket and are not signed.
    """
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    verification: SignatureCheck | None = None
    if not socket_mode:
        if not secret:
            raise SettingsError(
                "missing setting SLACK_SIGNING_SECRET: HTTP mode checks every request with it"
            )
        verification = SignatureCheck(secret, rejections)
    # Bolt's own client has no token: each request's client gets it from ``authorize``, so Bolt never
    # calls auth.test per request.
    tokenless = AsyncWebClient(
        base_url=client.base_url, session=client.session, retry_handlers=client.retry_handlers
    )
    return AsyncApp(
        client=tokenless,
        authorize=identity.authorize,
        signing_secret=secret,
        # Bolt's own check logs the whole body of every refused request; ours is Bolt's with one line
        # instead, and ``before_authorize`` is the built-in check's place in the chain (after the SSL
        # check, before authorization and URL verification).
        request_verification_enabled=False,
        before_authorize=verification,
        process_before_response=True,
        logger=_bolt_logger(),
    )


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("slack_bolt")
    logger.addFilter(_expected_token_notice)
    return logger


def _expected_token_notice(record: logging.LogRecord) -> bool:
    """Drop Bolt's start-up warning that our client wins over SLACK_BOT_TOKEN: Bolt reads the variable
    itself, and giving it a configured client (base URL, shared session, retry handlers) is intended."""
    return record.getMessage() != warning_client_prioritized_and_token_skipped()


def web_client(settings: Settings, session: aiohttp.ClientSession) -> AsyncWebClient:
    """The Slack Web API client: the bot token, the configured base URL, one shared connection pool."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    # 429s are not retried here: the reply's poster waits them out itself and sends the newest text.
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        # Without a shared session slack_sdk opens a new one (and a new connection) for every call.
        session=session,
        retry_handlers=[AsyncConnectionErrorRetryHandler(), AsyncServerErrorRetryHandler(max_retry_count=2)],
    )


def workspace_of(identity: SlackIdentity) -> TeamLookup:
    """The work queue's workspace: the team id of ``auth.test`` (asked once, then known); None while Slack
    cannot be reached, so the work stream of the right workspace is read once it answers."""

    async def team() -> str | None:
        try:
            return (await identity.authorize(None)).team_id
        except DeliveryFailed:
            return None

    return team


def consumer_name() -> str:
    """This process's name in the work group: host, pid and a random part (a restarted pid differs)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid4().hex[:6]}"
