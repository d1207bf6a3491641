"""The ``glmbot`` entry point: Ctrl-C at any moment, even while the bot's modules are still being imported
(a second or so), ends the command with status 130 and no traceback."""

from __future__ import annotations

import sys

INTERRUPTED_STATUS = 130  # 128 + SIGINT: how shells report a program stopped by Ctrl-C


def main() -> int:
    """Import and run ``bot.cli.main``; returns its exit status, or 130 after Ctrl-C."""
    try:
        from bot.cli import main as run  # imported here, so an interrupted import is caught too

        return run()
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return INTERRUPTED_STATUS
