"""The Slack app and its HTTP server: ``POST /slack/events``, ``GET /healthz``, ``GET /metrics``.

HTTP mode serves Slack's requests through Bolt's aiohttp adapter (signature checked by Bolt: a bad or
stale signature gets 401 and nothing runs). Socket Mode keeps a websocket to Slack instead, and still
serves ``/healthz`` and ``/metrics`` for the orchestrator.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import Core
from bot.core.errors import DeliveryFailed
from bot.metrics import CONTENT_TYPE
from bot.settings import Settings, SettingsError
from bot.store.connection import preload_scripts, store_answers
from handlers import register
from handlers.admins import AdminDirectory
from handlers.commands import slack_quota_admin
from handlers.errors import SlackRefused, slack_errors
from handlers.files import SlackFileFetcher
from handlers.reply.budget import TAKE_SCRIPT as EDIT_BUDGET_SCRIPT
from handlers.reply.budget import EditBudget
from handlers.services import Services

log = structlog.get_logger(__name__)
EVENTS_PATH = "/slack/events"
REFUSED_TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
    }
)
# Slack gives a container about 30 s between SIGTERM and SIGKILL in most orchestrators' defaults.
DRAIN_SECONDS = 25.0


def build_bolt_app(
    settings: Settings, core: Core, socket_mode: bool, session: aiohttp.ClientSession
) -> AsyncApp:
    """The Bolt app with every listener registered, its Slack calls sharing one connection pool."""
    client = web_client(settings, session)
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    bolt_logger = logging.getLogger("slack_bolt")
    bolt_logger.addFilter(_expected_token_notice)
    app = AsyncApp(
        client=client,
        signing_secret=secret,
        request_verification_enabled=not socket_mode,
        process_before_response=False,
        logger=bolt_logger,
    )
    files = SlackFileFetcher(
        http=core.http,
        slack=client,
        bot_token=client.token or "",
        token_hosts=settings.file_hosts,
        plain_http_hosts=settings.plain_http_file_hosts,
        max_bytes=settings.image_max_download_bytes,
    )
    services = Services(
        conversation=core.conversation,
        quota_admin=slack_quota_admin(core.ledger),
        admins=AdminDirectory(settings.admin_user_ids),
        files=files,
        metrics=core.metrics,
        edit_interval=settings.stream_edit_interval,
        edit_budget=EditBudget(core.store, settings.slack_edits_per_minute),
    )
    register(app, services)
    return app


def web_client(settings: Settings, session: aiohttp.ClientSession) -> AsyncWebClient:
    """The Slack Web API client: the bot token, the configured base URL, one shared connection pool."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    # 429s are not retried here: the reply streamer waits them out itself and sends the newest text.
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        # Without a shared session slack_sdk opens a new one (and a new connection) for every call.
        session=session,
        retry_handlers=[AsyncConnectionErrorRetryHandler(), AsyncServerErrorRetryHandler(max_retry_count=2)],
    )


def _expected_token_notice(record: logging.LogRecord) -> bool:
    """Drop Bolt's start-up warning that our client wins over SLACK_BOT_TOKEN: it reads the variable
    itself, and giving it a configured client (base URL, shared session, retry handlers) is intended."""
    return record.getMessage() != warning_client_prioritized_and_token_skipped()


def build_web_app(core: Core, bolt: AsyncApp | None) -> web.Application:
    """The aiohttp application: health and metrics, plus Slack's endpoint in HTTP mode."""

    async def healthz(request: web.Request) -> web.Response:
        ok = await store_answers(core.store)
        return web.json_response({"status": "ok" if ok else "store unavailable"}, status=200 if ok else 503)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=core.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics)])
    if bolt is not None:

        async def slack_events(request: web.Request) -> web.Response:
            return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

        app.add_routes([web.post(EVENTS_PATH, slack_events)])
    return app


async def start_web(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving ``app``; the caller cleans the runner up."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def serve(settings: Settings, core: Core, http_mode: bool, port: int) -> None:
    """Run until SIGINT/SIGTERM, in HTTP mode or Socket Mode."""
    stop = _stop_on_signals()
    async with aiohttp.ClientSession() as session:
        bolt = build_bolt_app(settings, core, socket_mode=not http_mode, session=session)
        await check_bot_token(bolt.client)
        await preload_scripts(core.store, (EDIT_BUDGET_SCRIPT,))
        runner = await start_web(build_web_app(core, bolt if http_mode else None), "0.0.0.0", port)
        socket: AsyncSocketModeHandler | None = None
        try:
            if not http_mode and settings.slack_app_token is not None:
                socket = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
                await _connect_unless_stopped(socket, stop)
            log.info("serving", mode="http" if http_mode else "socket", port=port)
            await stop.wait()
        finally:
            log.info("stopping")
            if socket is not None:
                await socket.close_async()  # type: ignore[no-untyped-call]
            await runner.cleanup()
            # Replies already accepted finish (or fail visibly) instead of leaving a spinner behind.
            await core.conversation.drain(DRAIN_SECONDS)


async def check_bot_token(client: AsyncWebClient) -> None:
    """Stop at start, naming the variable, when Slack refuses the bot token; a Slack outage only warns."""
    try:
        with slack_errors("auth.test"):
            identity = await client.auth_test()
    except SlackRefused as refused:
        if refused.error in REFUSED_TOKEN_ERRORS:
            raise SettingsError(
                f"invalid setting SLACK_BOT_TOKEN: Slack refused it ({refused.error})"
            ) from None
        log.warning("auth_test_failed", error=refused.error)
    except DeliveryFailed as failed:
        log.warning("slack_unreachable_at_start", error=str(failed))
    else:
        log.info("slack_identity", team_id=identity.get("team_id"), bot_user_id=identity.get("user_id"))


async def _connect_unless_stopped(socket: AsyncSocketModeHandler, stop: asyncio.Event) -> None:
    """Open the Socket Mode connection; a signal during the attempt wins.

    slack_sdk keeps retrying a connection it cannot open (a revoked app token, Slack unreachable), so the
    attempt must not keep SIGTERM from stopping the process.
    """
    connecting = asyncio.ensure_future(socket.connect_async())  # type: ignore[no-untyped-call]
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if connecting.done():
        connecting.result()  # re-raises a failed connection attempt
    else:
        connecting.cancel()
        log.warning("socket_mode_not_connected_before_stop")


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
