"""The ``glmbot`` command: the composition root (settings -> logging -> core -> Slack app or console).

This is the one module of ``bot`` that may reach into ``handlers``: it wires the Slack side onto the core.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.console import run_console
from bot.local_files import LocalFileFetcher
from bot.logs import configure_logging
from bot.runtime import open_core
from bot.settings import Settings, SettingsError, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glmbot", description="glm-4.5v in your Slack.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the Slack bot (Socket Mode if SLACK_APP_TOKEN is set)")
    serve.add_argument("--http", action="store_true", help="HTTP mode even if SLACK_APP_TOKEN is set")
    serve.add_argument("--port", type=int, help="HTTP port (default: PORT, else 3000)")
    commands.add_parser("console", help="chat with the model in this terminal")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "serve":
            http_mode = args.http or settings.slack_app_token is None
            settings.require(
                "SLACK_BOT_TOKEN", "GLM_API_KEY", *(["SLACK_SIGNING_SECRET"] if http_mode else [])
            )
        else:
            settings.require("GLM_API_KEY")
    except SettingsError as exc:
        print(f"glmbot: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, settings.secrets())
    if args.command == "serve":
        asyncio.run(_serve(settings, http_mode, args.port or settings.port))
    else:
        asyncio.run(_console(settings))
    return 0


async def _serve(settings: Settings, http_mode: bool, port: int) -> None:
    from handlers.server import serve  # the Slack side is only loaded when serving

    async with open_core(settings) as core:
        await serve(settings, core, http_mode=http_mode, port=port)


async def _console(settings: Settings) -> None:
    async with open_core(settings) as core:
        files = LocalFileFetcher(max_bytes=settings.image_max_download_bytes)
        await run_console(core.conversation, files, sys.stdin, sys.stdout)
