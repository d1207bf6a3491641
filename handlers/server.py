"""The HTTP server and the process's life: ``POST /slack/events``, ``GET /healthz``, ``GET /metrics``.

HTTP mode serves Slack's requests through Bolt's aiohttp adapter (signature checked by Bolt: a bad or
stale signature gets 401 and nothing runs). Socket Mode keeps a websocket to Slack instead, and still
serves ``/healthz`` and ``/metrics`` for the orchestrator. On SIGTERM ``/healthz`` turns 503
("draining") so a load balancer stops sending, the work runner takes no more work, and replies in
progress get ``SHUTDOWN_DRAIN_SECONDS`` to finish; the rest are left for another replica to resume.

With ``METRICS_PORT`` set, ``/healthz`` and ``/metrics`` are served on that port only: the main port
then serves just ``/slack/events`` (HTTP mode), and Socket Mode opens no main port at all. A port that
is already taken stops the process with one line (``SettingsError``), not a traceback.
"""

from __future__ import annotations

import asyncio
import errno
import signal
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.app import Core
from bot.metrics import CONTENT_TYPE
from bot.settings import Settings, SettingsError
from bot.store.connection import store_answers
from handlers.front_end import AcksInFlight, build_front_end
from handlers.slack_requests import UnreadableRequest, read_slack_request

log = structlog.get_logger(__name__)
EVENTS_PATH = "/slack/events"
# Slack sends small JSON bodies at once; a client that dawdles over its headers or body is cut off, so
# idle half-open sockets cannot pile up until the process runs out of file descriptors. (aiohttp arms
# its keep-alive timer as soon as a connection opens, so it also bounds the wait for the first headers.)
READ_TIMEOUT_SECONDS = 10.0
# What an operator changes when a port is taken, named in the one-line error.
MAIN_PORT_SETTING = "PORT / --port"
METRICS_PORT_SETTING = "METRICS_PORT"


class Health:
    """What ``/healthz`` reports: the store, and whether this process is draining; in Socket Mode also
    whether the websocket to Slack is up (``socket_connected``, set once it is opened).

    The status code follows the store only (the contract): a Slack outage must not make an orchestrator
    restart every replica. The ``slack`` field shows an operator a Socket Mode connection that slack_sdk
    keeps failing to reopen (a revoked app token, say), which no status code did.
    """

    def __init__(self, core: Core) -> None:
        self._core = core
        self.draining = False
        self.socket_connected: Callable[[], Awaitable[bool]] | None = None

    async def report(self) -> tuple[str, int]:
        """The status text and HTTP status."""
        if self.draining:
            return "draining", 503
        if await store_answers(self._core.store):
            return "ok", 200
        return "store unavailable", 503

    async def body(self) -> tuple[dict[str, str], int]:
        """``/healthz``'s JSON body and HTTP status."""
        status, code = await self.report()
        if self.socket_connected is None:
            return {"status": status}, code
        slack = "connected" if await self.socket_connected() else "disconnected"
        return {"status": status, "slack": slack}, code


def build_web_app(
    core: Core,
    bolt: AsyncApp | None,
    health: Health | None = None,
    acks: AcksInFlight | None = None,
    with_status: bool = True,
) -> web.Application:
    """The aiohttp application: health and metrics (unless ``with_status`` is False: they are served on
    METRICS_PORT), plus Slack's endpoint in HTTP mode."""
    health = health or Health(core)
    in_flight = acks or AcksInFlight()

    async def healthz(request: web.Request) -> web.Response:
        body, code = await health.body()
        return web.json_response(body, status=code)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=core.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application(client_max_size=1024 * 1024)
    if with_status:
        app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics)])
    if bolt is not None:

        async def slack_events(request: web.Request) -> web.Response:
            in_flight.count += 1
            try:
                try:
                    bolt_request = await read_slack_request(request, READ_TIMEOUT_SECONDS)
                except UnreadableRequest as unreadable:
                    # Nothing runs; one line, never the body (it is unverified and may be anything).
                    log.info("slack_request_unreadable", reason=unreadable.reason)
                    return web.json_response({"error": "unreadable request"}, status=400)
                return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))
            finally:
                in_flight.count -= 1

        app.add_routes([web.post(EVENTS_PATH, slack_events)])
    return app


async def start_web(
    app: web.Application,
    host: str,
    port: int,
    idle_seconds: float = READ_TIMEOUT_SECONDS,
    setting: str = MAIN_PORT_SETTING,
) -> web.AppRunner:
    """Start serving ``app``, closing connections idle for ``idle_seconds``; the caller cleans up.

    Raises SettingsError naming ``setting`` (the variable that chose ``port``) when the port is in use.
    """
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=idle_seconds)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise SettingsError(
                f"port {port} is already in use: stop the other process or set {setting}"
            ) from None
        raise
    return runner


async def serve(settings: Settings, core: Core, http_mode: bool, port: int) -> None:
    """Run until SIGINT/SIGTERM, in HTTP mode or Socket Mode, on ``port`` (and METRICS_PORT, if set).

    Raises SettingsError when METRICS_PORT is the main port, or when a port is already in use.
    """
    metrics_port = _metrics_port(settings, port, http_mode)
    stop = _stop_on_signals()
    # Exited after the ``finally`` below: /healthz answers "draining" until the replies have finished.
    async with aiohttp.ClientSession() as session, AsyncExitStack() as listening:
        front = await build_front_end(settings, core, socket_mode=not http_mode, session=session)
        await front.identity.check()
        health = Health(core)
        bolt = front.bolt if http_mode else None
        for app, app_port, setting in _sites(core, bolt, health, front.acks, port, metrics_port):
            runner = await start_web(app, "0.0.0.0", app_port, setting=setting)
            listening.push_async_callback(runner.cleanup)
        await front.runner.start()
        socket: AsyncSocketModeHandler | None = None
        try:
            if not http_mode and settings.slack_app_token is not None:
                socket = AsyncSocketModeHandler(front.bolt, settings.slack_app_token.get_secret_value())
                health.socket_connected = socket.client.is_connected
                await _connect_unless_stopped(socket, stop)
            main_port = port if http_mode or metrics_port is None else None  # None: not opened
            mode = "http" if http_mode else "socket"
            log.info(
                "serving", mode=mode, port=main_port, metrics_port=metrics_port, **_reach_hint(http_mode)
            )
            await stop.wait()
        finally:
            log.info("stopping")
            health.draining = True
            if socket is not None:
                await socket.close_async()  # type: ignore[no-untyped-call]
            # Replies in progress finish; the rest stay in the work stream for another replica.
            await front.runner.stop(settings.shutdown_drain_seconds)


def _metrics_port(settings: Settings, port: int, http_mode: bool) -> int | None:
    """METRICS_PORT, if set; raises SettingsError when it is the main port ``port`` in HTTP mode (Socket
    Mode with METRICS_PORT opens no main port)."""
    if settings.metrics_port == port and http_mode:
        raise SettingsError(
            f"invalid setting METRICS_PORT: {port} is the main port too ({MAIN_PORT_SETTING}); choose "
            "another port, or unset METRICS_PORT to serve /metrics and /healthz on the main port"
        )
    return settings.metrics_port


def _sites(
    core: Core,
    bolt: AsyncApp | None,
    health: Health,
    acks: AcksInFlight,
    port: int,
    metrics_port: int | None,
) -> list[tuple[web.Application, int, str]]:
    """What to serve on which port, with the setting that chose the port: everything on ``port``; or,
    with ``metrics_port``, Slack's endpoint on ``port`` (HTTP mode only: ``bolt`` is None in Socket
    Mode, where Slack comes over the websocket) and health and metrics on ``metrics_port``."""
    if metrics_port is None:
        return [(build_web_app(core, bolt, health, acks), port, MAIN_PORT_SETTING)]
    status = (build_web_app(core, None, health), metrics_port, METRICS_PORT_SETTING)
    if bolt is None:
        return [status]
    return [(build_web_app(core, bolt, health, acks, with_status=False), port, MAIN_PORT_SETTING), status]


HTTP_HINT = (
    "Slack must reach this port at https://YOUR-HOST/slack/events (an ingress, a load balancer or a "
    "tunnel); on a laptop, Socket Mode needs no public URL: set SLACK_APP_TOKEN"
)


def _reach_hint(http_mode: bool) -> dict[str, str]:
    """HTTP mode only works once Slack can reach it: say so where a first-time user looks."""
    return {"events_path": EVENTS_PATH, "hint": HTTP_HINT} if http_mode else {}


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
