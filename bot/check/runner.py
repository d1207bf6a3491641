"""Which checks run when: all of them for ``glmbot check``, the fatal kinds at ``serve``'s start.

The Slack checks live with the rest of the Slack code (``handlers.checkup``); the composition root
(``bot.app``) passes them in as ``SlackCheck``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import structlog

from bot.check.model import check_model, price_line
from bot.check.ports import check_port
from bot.check.report import CheckLine, Status, fail, ok, warn
from bot.check.store import check_store
from bot.file_hosts import entry_host, is_loopback
from bot.model.client import ModelConfig
from bot.settings import Settings, SettingsError

log = structlog.get_logger(__name__)
SlackCheck = Callable[[], Awaitable[list[CheckLine]]]


async def full_check(
    settings: Settings, *, http_mode: bool, port: int, model: ModelConfig, slack: SlackCheck
) -> list[CheckLine]:
    """Every check, in the order a person fixes things: settings, Slack, model, Redis, files, ports."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)) as http:
        slack_lines, model_lines, store_lines = await asyncio.gather(
            slack(), check_model(http, model), check_store(settings.redis_url, settings.redis_cache_url)
        )
    overridden = settings.glm_input_usd_per_mtok is not None or settings.glm_output_usd_per_mtok is not None
    return [
        settings_line(settings, http_mode, port),
        *slack_lines,
        *model_lines,
        price_line(settings.price(), settings.glm_model, overridden),
        *store_lines,
        file_hosts_line(settings),
        *port_lines(settings, port, http_mode),
    ]


async def start_checks(
    settings: Settings, *, http_mode: bool, port: int, slack: SlackCheck
) -> list[CheckLine]:
    """The checks ``serve`` runs at start: Slack's tokens and scopes, Redis, the ports. Not the model: a
    probe would cost a request per start, and a model outage may pass by itself."""
    slack_lines, store_lines = await asyncio.gather(
        slack(), check_store(settings.redis_url, settings.redis_cache_url)
    )
    return [*slack_lines, *store_lines, *port_lines(settings, port, http_mode)]


def blocking(lines: list[CheckLine]) -> list[CheckLine]:
    """The failures that stop ``serve`` at start: a token Slack refuses, a Redis that is unreachable,
    refuses the password or may evict money, a port in use. Slack being unreachable and a missing scope
    are not among them (see ``CheckLine.blocks_start``)."""
    return [line for line in lines if line.status is Status.FAIL and line.blocks_start]


async def startup_problems(
    settings: Settings, *, http_mode: bool, port: int, slack: SlackCheck
) -> list[CheckLine]:
    """``blocking`` of ``start_checks``: what would stop ``serve`` now."""
    return blocking(await start_checks(settings, http_mode=http_mode, port=port, slack=slack))


def log_warnings(lines: list[CheckLine]) -> None:
    """Log (``start_check``) each warning, and each failure that does not stop the start."""
    for line in lines:
        if line.status is Status.WARN or (line.status is Status.FAIL and not line.blocks_start):
            log.warning("start_check", check=line.name, detail=line.detail, fix=line.fix)


async def store_problems(settings: Settings) -> list[CheckLine]:
    """What stops ``console`` at start: the Redis lines of ``startup_problems`` (none for the embedded
    store)."""
    if settings.redis_url is None:
        return []
    lines = await check_store(settings.redis_url, settings.redis_cache_url)
    return [line for line in lines if line.status is Status.FAIL]


def refuse_start(problems: list[CheckLine]) -> None:
    """Raise for start-up ``problems``: NotReady when each is only an unreachable service, else
    SettingsError (one line each, ``name: detail -> fix``); nothing when there are none."""
    if problems and all(line.outage for line in problems):
        raise NotReady([line.problem() for line in problems])
    if problems:
        raise SettingsError([line.problem() for line in problems])


class NotReady(Exception):
    """``serve`` cannot start yet, only because a service it needs is unreachable (Redis down or not up
    yet); ``problems`` holds one line each. Unlike a SettingsError (exit 2: fix the configuration),
    ``glmbot`` exits 1 for it, so a supervisor that does not restart on 2 (systemd's
    RestartPreventExitStatus) still tries again."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def settings_line(settings: Settings, http_mode: bool, port: int) -> CheckLine:
    """The settings were read without a problem: how ``serve`` would run with them."""
    mode = f"HTTP mode on port {port}" if http_mode else "Socket Mode"
    store = "REDIS_URL" if settings.redis_url else "the embedded store"
    return ok("settings", f"valid: {mode}, {store}, model {settings.glm_model}")


def file_hosts_line(settings: Settings) -> CheckLine:
    """Which hosts get the bot token with a file download, and over which scheme (``bot.file_hosts``)."""
    plain = {entry_host(entry): entry for entry in settings.plain_http_file_hosts}
    https_only = sorted(settings.file_hosts - set(plain))
    shown = [f"{host} (https)" for host in https_only] + [
        f"{entry} (http too)" for entry in sorted(plain.values())
    ]
    risky = sorted(entry for host, entry in plain.items() if not is_loopback(host))
    if risky:
        fix = "serve files over https, or keep plain http to a gateway on a private network"
        detail = f"the bot token goes to {', '.join(shown)}: unencrypted to {', '.join(risky)}"
        return warn("file hosts", detail, fix)
    return ok("file hosts", f"the bot token goes only to {', '.join(shown)}")


def port_lines(settings: Settings, port: int, http_mode: bool) -> list[CheckLine]:
    """The ports ``serve`` will open: the main port (Slack's requests in HTTP mode; also /healthz and
    /metrics unless METRICS_PORT is set) and METRICS_PORT. Socket Mode with METRICS_PORT opens only that."""
    lines = []
    if http_mode or settings.metrics_port is None:
        lines.append(check_port(port, "PORT or --port"))
    if settings.metrics_port == port and http_mode:  # Socket Mode with METRICS_PORT opens no main port
        fix = "choose another port, or unset METRICS_PORT to serve /metrics and /healthz on the main port"
        lines.append(fail(f"port {port}", "METRICS_PORT is the main port too (PORT / --port)", fix))
    elif settings.metrics_port is not None:
        lines.append(check_port(settings.metrics_port, "METRICS_PORT"))
    return lines
