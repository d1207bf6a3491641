"""The ``glmbot`` command line: parse the arguments, load the settings, run one command of ``bot.app``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib import metadata

from bot import app
from bot.billing.commands import (
    QuotaCommand,
    Reset,
    SetDefault,
    SetLimit,
    Show,
    Top,
    UsageError,
    parse_amount,
    parse_limit,
    parse_user,
)
from bot.check.report import fail
from bot.check.runner import NotReady
from bot.core.errors import StoreMayEvict
from bot.logs import configure_logging
from bot.settings import Settings, SettingsError, load_settings
from bot.settings_report import is_set

QUOTA_USAGE = (
    "usage: glmbot quota {show USER_ID | set USER_ID USD|default | default USD | reset USER_ID | top}"
)
SHELL_CALLER = "shell"
SERVE_SETTINGS = """settings (environment, or .env in the working directory):
  required  SLACK_BOT_TOKEN, GLM_API_KEY, and SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN
            (Socket Mode)
  store     REDIS_URL (unset: an embedded store, one process, nothing kept); REDIS_CACHE_URL
  model     GLM_BASE_URL, GLM_MODEL, GLM_CONTEXT_TOKENS, GLM_MAX_OUTPUT_TOKENS, GLM_THINKING
  delivery  SLACK_STREAMING, STREAM_EDIT_INTERVAL, SLACK_EDITS_PER_MINUTE, SHUTDOWN_DRAIN_SECONDS
  quotas    QUOTA_DEFAULT_USD, QUOTA_PERIOD, ADMIN_USER_IDS, GLM_INPUT_USD_PER_MTOK, GLM_OUTPUT_USD_PER_MTOK
  serving   PORT (or --port), METRICS_PORT, SLACK_API_URL, SLACK_FILE_HOSTS, LOG_LEVEL, LOG_FORMAT
  see README.md "Settings" for every setting and its default; `glmbot check` tests them"""
CHECK_HELP = (
    """lines: ok, warn (works, worth changing), FAIL (serve would not work), skip (not checked)
exit status: 0 when serve would work (warnings allowed), 1 otherwise

"""
    + SERVE_SETTINGS
)
CONSOLE_HELP = """in the session:
  /image PATH [question]  send an image (with a question)
  /reset                  forget the conversation
  /quit                   leave (so does end of input, or Ctrl-D)
  Ctrl-C                  stop the answer that is streaming; at the prompt, leave (exit status 130)

settings: GLM_API_KEY (required), GLM_BASE_URL, GLM_MODEL; REDIS_URL to share quotas and history"""


def _version() -> str:
    """The installed package's version (``pyproject.toml``), or ``unknown`` when run from a bare tree."""
    try:
        return metadata.version("glmbot")
    except metadata.PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glmbot", description="glm-4.5v in your Slack.")
    parser.add_argument("--version", action="version", version=f"glmbot {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the Slack bot (Socket Mode if SLACK_APP_TOKEN is set)",
        description="Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP mode.",
        epilog=SERVE_SETTINGS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--http", action="store_true", help="HTTP mode even if SLACK_APP_TOKEN is set")
    serve.add_argument("--port", type=int, help="HTTP port (default: PORT, else 3000)")
    check = commands.add_parser(
        "check",
        help="verify settings, Slack tokens and scopes, the model endpoint, Redis and ports",
        description="Check everything `glmbot serve` needs and print one line per check, with a fix for "
        "each problem. Exit status 0 only when serve would work. Costs one model request of at most 8 "
        "output tokens.",
        epilog=CHECK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--http", action="store_true", help="check HTTP mode even if SLACK_APP_TOKEN is set")
    check.add_argument("--port", type=int, help="the port serve would use (default: PORT, else 3000)")
    commands.add_parser(
        "console",
        help="chat with the model in this terminal",
        description="Chat with the model in this terminal (history, quotas, images, streaming).",
        epilog=CONSOLE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_quota(commands)
    return parser


def _add_quota(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``glmbot quota show|set|default|reset|top``."""
    quota = commands.add_parser(
        "quota",
        help="view and change spend quotas (needs REDIS_URL)",
        epilog="Settings: REDIS_URL (required: the bot's store), QUOTA_DEFAULT_USD, QUOTA_PERIOD.",
    )
    actions = quota.add_subparsers(dest="action", required=True)
    actions.add_parser("show", help="a user's spend and limit").add_argument("user")
    limit = actions.add_parser("set", help="set a user's limit in USD (default: remove it)")
    limit.add_argument("user")
    limit.add_argument("usd")
    actions.add_parser("default", help="set the workspace default limit in USD").add_argument("usd")
    actions.add_parser("reset", help="zero a user's spend for this period").add_argument("user")
    actions.add_parser("top", help="this period's top spenders")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (Ctrl-C: ``bot.launch``)."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(_required(args), slack=args.command in ("serve", "check"))
        command = _quota_command(args) if args.command == "quota" else None
    except SettingsError as exc:
        if args.command == "check":
            return _settings_failed(exc)
        _print_problems(exc)
        return 2
    except UsageError as exc:
        print(f"glmbot: {exc.reason}\n{QUOTA_USAGE}" if exc.reason else QUOTA_USAGE, file=sys.stderr)
        return 2
    configure_logging(_log_level(args, settings), settings.log_format, settings.secrets())
    if command is not None:
        return asyncio.run(app.quota(settings, command, SHELL_CALLER))
    return _run(args, settings)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    """``serve``, ``check`` or ``console``; a problem only the outside world reveals ends it with exit 2."""
    http_mode = args.command != "console" and (args.http or settings.slack_app_token is None)
    try:
        if args.command == "serve":
            asyncio.run(app.serve(settings, http_mode, args.port or settings.port))
        elif args.command == "check":
            return asyncio.run(app.check(settings, http_mode, args.port or settings.port))
        else:
            asyncio.run(app.console(settings))
    # Settings only the outside world can judge: a token Slack refuses, a Redis that may evict money.
    except SettingsError as exc:
        _print_problems(exc)
        return 2
    except StoreMayEvict as exc:
        print(f"glmbot: {exc}", file=sys.stderr)
        return 2
    except NotReady as exc:
        for problem in exc.problems:
            print(f"glmbot: {problem}", file=sys.stderr)
        return 1  # worth retrying as it is (SettingsError's 2 is not)
    return 0


def _settings_failed(exc: SettingsError) -> int:
    """``glmbot check`` with settings that do not load: each problem as a failed line; nothing else can
    be checked without them."""
    for problem in exc.problems:
        print(fail("settings", problem, "").render())
    print("the other checks need valid settings: fix these first")
    return 1


def _log_level(args: argparse.Namespace, settings: Settings) -> str:
    """LOG_LEVEL, except that ``console`` and ``check`` talk to a person in this terminal: their log lines
    would land between the answers (or the checklist's lines), so only warnings and errors show unless
    LOG_LEVEL is set explicitly."""
    if args.command in ("console", "check") and not is_set("LOG_LEVEL"):
        return "WARNING"
    return settings.log_level


def _print_problems(exc: SettingsError) -> None:
    for problem in exc.problems:
        print(f"glmbot: {problem}", file=sys.stderr)


def _required(args: argparse.Namespace) -> list[str]:
    """The settings the command cannot run without (``check`` reports missing ones as failures too)."""
    if args.command in ("serve", "check"):
        http_mode = args.http or not is_set("SLACK_APP_TOKEN")
        return ["SLACK_BOT_TOKEN", "GLM_API_KEY", "SLACK_SIGNING_SECRET" if http_mode else "SLACK_APP_TOKEN"]
    if args.command == "console":
        return ["GLM_API_KEY"]
    # The embedded store lives inside one bot process: a shell command would see an empty one.
    return ["REDIS_URL"]


def _quota_command(args: argparse.Namespace) -> QuotaCommand:
    if args.action == "show":
        return Show(parse_user(args.user))
    if args.action == "set":
        return SetLimit(parse_user(args.user), parse_limit(args.usd))
    if args.action == "default":
        return SetDefault(parse_amount(args.usd))
    if args.action == "reset":
        return Reset(parse_user(args.user))
    return Top()
