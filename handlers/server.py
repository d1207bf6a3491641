"""The HTTP server and the process's life: ``POST /slack/events``, ``GET /healthz``, ``GET /metrics``.

HTTP mode serves Slack's requests through Bolt's aiohttp adapter (signature checked by Bolt: a bad or
stale signature gets 401 and nothing runs). Socket Mode keeps a websocket to Slack instead, and still
serves ``/healthz`` and ``/metrics`` for the orchestrator. On SIGTERM ``/healthz`` turns 503
("draining") so a load balancer stops sending, the work runner takes no more work, and replies in
progress get ``SHUTDOWN_DRAIN_SECONDS`` to finish; the rest are left for another replica to resume.
"""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.app import Core
from bot.metrics import CONTENT_TYPE
from bot.settings import Settings
from bot.store.connection import store_answers
from handlers.front_end import AcksInFlight, build_front_end

log = structlog.get_logger(__name__)
EVENTS_PATH = "/slack/events"
# Slack sends small JSON bodies at once; a client that dawdles over its headers or body is cut off, so
# idle half-open sockets cannot pile up until the process runs out of file descriptors. (aiohttp arms
# its keep-alive timer as soon as a connection opens, so it also bounds the wait for the first headers.)
READ_TIMEOUT_SECONDS = 10.0


class Health:
    """What ``/healthz`` reports: the store, and whether this process is draining."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self.draining = False

    async def report(self) -> tuple[str, int]:
        """The status text and HTTP status."""
        if self.draining:
            return "draining", 503
        if await store_answers(self._core.store):
            return "ok", 200
        return "store unavailable", 503


def build_web_app(
    core: Core, bolt: AsyncApp | None, health: Health | None = None, acks: AcksInFlight | None = None
) -> web.Application:
    """The aiohttp application: health and metrics, plus Slack's endpoint in HTTP mode."""
    health = health or Health(core)
    in_flight = acks or AcksInFlight()

    async def healthz(request: web.Request) -> web.Response:
        status, code = await health.report()
        return web.json_response({"status": status}, status=code)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=core.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application(client_max_size=1024 * 1024)
    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics)])
    if bolt is not None:

        async def slack_events(request: web.Request) -> web.Response:
            in_flight.count += 1
            try:
                async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                    bolt_request = await to_bolt_request(request)
                return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))
            finally:
                in_flight.count -= 1

        app.add_routes([web.post(EVENTS_PATH, slack_events)])
    return app


async def start_web(
    app: web.Application, host: str, port: int, idle_seconds: float = READ_TIMEOUT_SECONDS
) -> web.AppRunner:
    """Start serving ``app``, closing connections idle for ``idle_seconds``; the caller cleans up."""
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=idle_seconds)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def serve(settings: Settings, core: Core, http_mode: bool, port: int) -> None:
    """Run until SIGINT/SIGTERM, in HTTP mode or Socket Mode."""
    stop = _stop_on_signals()
    async with aiohttp.ClientSession() as session:
        front = await build_front_end(settings, core, socket_mode=not http_mode, session=session)
        await front.identity.check()
        health = Health(core)
        runner = await start_web(
            build_web_app(core, front.bolt if http_mode else None, health, front.acks), "0.0.0.0", port
        )
        await front.runner.start()
        socket: AsyncSocketModeHandler | None = None
        try:
            if not http_mode and settings.slack_app_token is not None:
                socket = AsyncSocketModeHandler(front.bolt, settings.slack_app_token.get_secret_value())
                await _connect_unless_stopped(socket, stop)
            log.info("serving", mode="http" if http_mode else "socket", port=port)
            await stop.wait()
        finally:
            log.info("stopping")
            health.draining = True
            if socket is not None:
                await socket.close_async()  # type: ignore[no-untyped-call]
            # Replies in progress finish; the rest stay in the work stream for another replica.
            await front.runner.stop(settings.shutdown_drain_seconds)
            await runner.cleanup()


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
