"""The bench's command-line options and the timings derived from them."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bot.settings import Settings
from handlers.reply.parts import MARKDOWN_LIMIT

CHARS_PER_TOKEN = 4
# The bot's default SLACK_EDITS_PER_MINUTE, read from its settings so the two cannot drift apart.
DEFAULT_EDITS_PER_MINUTE = int(Settings.model_fields["slack_edits_per_minute"].default)


@dataclass(frozen=True, slots=True)
class Options:
    """Command-line options."""

    ns: tuple[int, ...]
    tokens_per_second: float
    answer_chars: int
    edit_interval: float
    redis_max_connections: int | None = None
    edits_per_minute: int = DEFAULT_EDITS_PER_MINUTE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Load benchmark of the bot in HTTP mode."
    )
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50, 200], help="concurrent mentions")
    parser.add_argument("--tokens-per-second", type=float, default=40.0, help="model streaming speed")
    parser.add_argument("--answer-chars", type=int, default=600, help="length of each answer")
    parser.add_argument("--edit-interval", type=float, default=1.5, help="bot's STREAM_EDIT_INTERVAL")
    parser.add_argument(
        "--redis-max-connections",
        type=int,
        default=None,
        help="append ?max_connections=K to the bot's REDIS_URL (default: the client library's own limit)",
    )
    parser.add_argument(
        "--edits-per-minute",
        type=int,
        default=DEFAULT_EDITS_PER_MINUTE,
        help="bot's SLACK_EDITS_PER_MINUTE, the workspace's interim-edit budget "
        f"(default: {DEFAULT_EDITS_PER_MINUTE}, the bot's own default)",
    )
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error (status 2) on an out-of-range value."""
    if any(n < 1 or n > 2000 for n in args.n):
        parser.error("--n values must be between 1 and 2000")
    if not 0.5 <= args.tokens_per_second <= 10_000:
        parser.error("--tokens-per-second must be between 0.5 and 10000")
    if not 1 <= args.answer_chars <= MARKDOWN_LIMIT:
        parser.error(f"--answer-chars must be between 1 and {MARKDOWN_LIMIT} (one Slack message)")
    if args.edit_interval < 0.1:
        parser.error("--edit-interval must be at least 0.1 (the bot's minimum)")
    if args.edits_per_minute < 1:
        parser.error("--edits-per-minute must be at least 1 (the bot's minimum)")


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = _parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    return Options(
        ns=tuple(args.n),
        tokens_per_second=args.tokens_per_second,
        answer_chars=args.answer_chars,
        edit_interval=args.edit_interval,
        redis_max_connections=args.redis_max_connections,
        edits_per_minute=args.edits_per_minute,
    )


def stream_seconds(options: Options) -> float:
    """How long the fake model takes to stream one answer."""
    chunks = math.ceil(options.answer_chars / CHARS_PER_TOKEN)
    return max(0, chunks - 1) / options.tokens_per_second


def round_deadline(options: Options, n: int) -> float:
    """A generous limit for one round: every reply should be done well before it."""
    return 60.0 + 3.0 * stream_seconds(options) + 0.25 * n
