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
from bot.core.errors import StoreMayEvict
from bot.logs import configure_logging
from bot.settings import Settings, SettingsError, load_settings

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
  quotas    QUOTA_DEFAULT_USD, QUOTA_PERIOD, ADMIN_USER_IDS
  see README.md "Settings" for every setting and its default"""
CONSOLE_HELP = """in the session:
  /image PATH [question]  send an image (with a question)
  /reset                  forget the conversation
  /quit                   leave (so does end of input, or Ctrl-D)

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
    commands.add_parser(
        "console",
        help="chat with the model in this terminal",
        description="Chat with the model in this terminal (history, quotas, images, streaming).",
        epilog=CONSOLE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        _require(settings, args)
        command = _quota_command(args) if args.command == "quota" else None
    except SettingsError as exc:
        print(f"glmbot: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"glmbot: {exc.reason}\n{QUOTA_USAGE}" if exc.reason else QUOTA_USAGE, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, settings.secrets())
    if command is not None:
        return asyncio.run(app.quota(settings, command, SHELL_CALLER))
    try:
        if args.command == "serve":
            http_mode = args.http or settings.slack_app_token is None
            asyncio.run(app.serve(settings, http_mode, args.port or settings.port))
        else:
            asyncio.run(app.console(settings))
    # Settings only the outside world can judge: a token Slack refuses, a Redis that may evict money.
    except (SettingsError, StoreMayEvict) as exc:
        print(f"glmbot: {exc}", file=sys.stderr)
        return 2
    return 0


def _require(settings: Settings, args: argparse.Namespace) -> None:
    """Stop early, naming the variable, when the command's settings are missing."""
    if args.command == "serve":
        http_mode = args.http or settings.slack_app_token is None
        settings.require("SLACK_BOT_TOKEN", "GLM_API_KEY", *(["SLACK_SIGNING_SECRET"] if http_mode else []))
    elif args.command == "console":
        settings.require("GLM_API_KEY")
    else:
        # The embedded store lives inside one bot process: a shell command would see an empty one.
        settings.require("REDIS_URL")


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
