"""The bench's command-line options, and the runs they make (``RunSpec``)."""

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
RUN_KINDS = ("base", "redeliver", "kill", "native", "auto")
DEFAULT_RUNS = ("base", "redeliver", "kill")
"""``native`` and ``auto``: the base runs again with SLACK_STREAMING=native or auto (opt-in)."""


@dataclass(frozen=True, slots=True)
class Options:
    """Command-line options (times in seconds)."""

    ns: tuple[int, ...] = (10, 50, 200)
    replicas: tuple[int, ...] = (1, 2)
    runs: tuple[str, ...] = DEFAULT_RUNS
    special_n: int | None = None  # N of the redelivery and kill runs; None: the largest of ``ns``
    channels: int = 10
    tokens_per_second: float = 40.0
    answer_chars: int = 600
    edit_interval: float = 1.5
    edits_per_minute: int = DEFAULT_EDITS_PER_MINUTE
    redis_max_connections: int | None = None
    redeliver_share: float = 0.2
    kill_after: float = 1.0
    deadline: float = 90.0
    kill_deadline: float = 120.0


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One run: N mentions at once against ``replicas`` bot processes."""

    kind: str  # "base", "redeliver", "kill", "native" or "auto"
    n: int
    replicas: int
    redeliver_share: float = 0.0  # share of events Slack also retries to the other replica
    kill_after: float | None = None  # seconds after the burst starts when replica 0 gets SIGKILL
    deadline: float = 90.0  # seconds from the burst's start; the run stops waiting then

    @property
    def streaming(self) -> str:
        """The replicas' SLACK_STREAMING: edits, except in the native and auto runs."""
        return self.kind if self.kind in ("native", "auto") else "edit"

    @property
    def label(self) -> str:
        if self.kind in ("native", "auto"):
            return f"streaming {self.kind}"
        if self.kind == "redeliver":
            return f"redeliver {self.redeliver_share:.0%}"
        if self.kind == "kill":
            return f"kill -9 at {self.kill_after:g} s"
        return "base"


def plan(options: Options) -> list[RunSpec]:
    """The runs, in order: every N for every replica count, then the redelivery and kill runs."""
    specs: list[RunSpec] = []
    if "base" in options.runs:
        specs += [
            RunSpec("base", n, k, deadline=options.deadline) for k in options.replicas for n in options.ns
        ]
    for kind in ("native", "auto"):
        if kind in options.runs:
            specs += [
                RunSpec(kind, n, k, deadline=options.deadline) for k in options.replicas for n in options.ns
            ]
    n = options.special_n or max(options.ns)
    if "redeliver" in options.runs:
        specs.append(RunSpec("redeliver", n, 2, options.redeliver_share, deadline=options.deadline))
    if "kill" in options.runs:
        specs.append(RunSpec("kill", n, 2, kill_after=options.kill_after, deadline=options.kill_deadline))
    return specs


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description="Load benchmark of the bot in HTTP mode.")
    p.add_argument("--n", type=int, nargs="+", default=[10, 50, 200], help="mentions per burst")
    p.add_argument("--replicas", type=int, nargs="+", default=[1, 2], help="bot processes, base runs")
    p.add_argument("--runs", nargs="+", choices=RUN_KINDS, default=list(DEFAULT_RUNS), help="which runs")
    p.add_argument("--special-n", type=int, default=None, help="N of redeliver/kill (default: max --n)")
    p.add_argument("--channels", type=int, default=10, help="channels the mentions are spread over")
    p.add_argument("--tokens-per-second", type=float, default=40.0, help="model streaming speed")
    p.add_argument("--answer-chars", type=int, default=600, help="length of each answer")
    p.add_argument("--edit-interval", type=float, default=1.5, help="bot's STREAM_EDIT_INTERVAL (s)")
    p.add_argument(
        "--edits-per-minute",
        type=int,
        default=DEFAULT_EDITS_PER_MINUTE,
        help=f"bot's SLACK_EDITS_PER_MINUTE (default {DEFAULT_EDITS_PER_MINUTE}, the bot's own)",
    )
    p.add_argument("--redis-max-connections", type=int, default=None, help="?max_connections=K in REDIS_URL")
    p.add_argument("--redeliver-share", type=float, default=0.2, help="share retried to the other replica")
    p.add_argument("--kill-after", type=float, default=1.0, help="SIGKILL replica 0 this many s in")
    p.add_argument("--deadline", type=float, default=90.0, help="max seconds per run (base, redeliver)")
    p.add_argument("--kill-deadline", type=float, default=120.0, help="max seconds of the kill run")
    p.add_argument("--quick", action="store_true", help="smoke run: N=10, 1 replica, base run only")
    return p


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error (status 2) on an out-of-range value."""
    if any(not 1 <= n <= 2000 for n in [*args.n, args.special_n or 1]):
        parser.error("--n and --special-n values must be between 1 and 2000")
    if any(not 1 <= k <= 8 for k in args.replicas):
        parser.error("--replicas values must be between 1 and 8")
    if not 1 <= args.channels <= 1000:
        parser.error("--channels must be between 1 and 1000")
    if not 0.5 <= args.tokens_per_second <= 10_000:
        parser.error("--tokens-per-second must be between 0.5 and 10000")
    if not 1 <= args.answer_chars <= MARKDOWN_LIMIT:
        parser.error(f"--answer-chars must be between 1 and {MARKDOWN_LIMIT} (one Slack message)")
    if args.edit_interval < 0.1 or args.edits_per_minute < 1:
        parser.error("--edit-interval must be at least 0.1 and --edits-per-minute at least 1")
    if not 0 <= args.redeliver_share <= 1 or not 0 <= args.kill_after <= 60:
        parser.error("--redeliver-share must be in [0, 1] and --kill-after in [0, 60]")
    if not 5 <= args.deadline <= 900 or not 5 <= args.kill_deadline <= 900:
        parser.error("--deadline and --kill-deadline must be between 5 and 900 seconds")


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = _parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    quick = bool(args.quick)
    return Options(
        ns=(10,) if quick else tuple(args.n),
        replicas=(1,) if quick else tuple(args.replicas),
        runs=("base",) if quick else tuple(dict.fromkeys(args.runs)),
        special_n=args.special_n,
        channels=args.channels,
        tokens_per_second=args.tokens_per_second,
        answer_chars=args.answer_chars,
        edit_interval=args.edit_interval,
        edits_per_minute=args.edits_per_minute,
        redis_max_connections=args.redis_max_connections,
        redeliver_share=args.redeliver_share,
        kill_after=args.kill_after,
        deadline=args.deadline,
        kill_deadline=args.kill_deadline,
    )


def stream_seconds(options: Options) -> float:
    """How long the fake model takes to stream one answer, in seconds."""
    chunks = math.ceil(options.answer_chars / CHARS_PER_TOKEN)
    return max(0, chunks - 1) / options.tokens_per_second
