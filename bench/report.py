"""A run's measurements (RunResult) and how they are printed: the table, the notes, the targets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.options import Options, RunSpec, stream_seconds

SLOW_ACK_MS = 3000.0  # Slack retries an event not acknowledged within 3 s
TARGET_N = 200
TARGET_LAST_LANDED_S = 60.0
TARGET_MAX_429 = 20  # fewer than this many in total
LANDED_MARKS_S = (10, 20, 30, 40, 60, 90)


@dataclass(slots=True)
class RunResult:
    """Measurements of one run (times in ms or s as named)."""

    spec: RunSpec
    complete: int
    last_landed_s: float | None  # burst start -> the last complete reply's final text
    landed_s: list[float]  # burst start -> each complete reply's final text
    duplicates: int  # threads with more than one answer message
    leftovers: int  # threads still showing a placeholder or a typing cursor
    unsettled: int  # threads that were still changing (or empty) when the run stopped waiting
    endings: dict[str, int]  # how incomplete threads end (first 100 characters)
    rate_limited: dict[str, int]  # 429s the fake Slack gave, per method
    ack_ms: list[float]  # every event POST answered 200 (redeliveries included)
    failed_acks: int  # POSTs answered otherwise, or not at all
    first_text_s: list[float]  # mention POST -> first answer text visible in its thread
    slack_calls: dict[str, int]  # Web API calls per method (auth.test left out), 429s included
    redis_sent: dict[str, int]  # commands the replicas sent (MONITOR); EVALSHA by script
    redis_server: dict[str, int]  # commands the server ran, scripts' included (INFO commandstats)
    bot_cpu_s: float  # all replicas, from the burst to the end (a killed one: to its kill)
    peak_rss_mb: float  # the largest replica's peak
    wall_s: float  # burst start -> the run stopped waiting
    log_events: dict[str, int] = field(default_factory=dict)  # the replicas' WARNING+ log, by event
    placeholders: int = 0  # threads whose reply began as a placeholder (edit mode; else posted whole)
    interim_edits: int = 0  # accepted chat.update calls showing a typing cursor
    streams: int = 0  # native streams started (SLACK_STREAMING native or auto)

    @property
    def n(self) -> int:
        return self.spec.n

    @property
    def slow_acks(self) -> int:
        return sum(1 for ms in self.ack_ms if ms > SLOW_ACK_MS)

    @property
    def total_429(self) -> int:
        return sum(self.rate_limited.values())


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _short(method: str) -> str:
    return method.removeprefix("chat.")


def fmt_429(rate_limited: dict[str, int]) -> str:
    """``0``, or the total and its methods: ``12 (update 10, postMessage 2)``."""
    total = sum(rate_limited.values())
    if not total:
        return "0"
    parts = ", ".join(f"{_short(m)} {k}" for m, k in sorted(rate_limited.items(), key=lambda i: -i[1]))
    return f"{total} ({parts})"


TABLE_HEADER = (
    "| run | replicas | N | complete | last landed s | dup threads | 429s | ack p50 ms | ack p99 ms "
    "| ack max ms | acks > 3 s | 1st text p50 s | 1st text p99 s | Slack calls/reply | Redis cmds/reply "
    "| bot CPU s | peak RSS MB |"
)


def table_row(r: RunResult) -> str:
    cells = [
        r.spec.label,
        str(r.spec.replicas),
        str(r.n),
        f"{r.complete}/{r.n}",
        fmt(r.last_landed_s, 1),
        str(r.duplicates),
        fmt_429(r.rate_limited),
        fmt(percentile(r.ack_ms, 50), 1),
        fmt(percentile(r.ack_ms, 99), 1),
        fmt(max(r.ack_ms, default=None), 1),
        str(r.slow_acks + r.failed_acks),
        fmt(percentile(r.first_text_s, 50), 2),
        fmt(percentile(r.first_text_s, 99), 2),
        f"{sum(r.slack_calls.values()) / r.n:.2f}",
        f"{sum(r.redis_sent.values()) / r.n:.1f}",
        f"{r.bot_cpu_s:.1f}",
        f"{r.peak_rss_mb:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def format_table(results: Sequence[RunResult]) -> str:
    columns = TABLE_HEADER.count("|") - 1
    separator = "|---|" + "---:|" * (columns - 1)
    return "\n".join([TABLE_HEADER, separator, *(table_row(r) for r in results)])


def setup_line(options: Options) -> str:
    return (
        f"answer {options.answer_chars} chars at {options.tokens_per_second:g} tok/s "
        f"({stream_seconds(options):.2f} s of streaming), {options.channels} channels, "
        f"STREAM_EDIT_INTERVAL={options.edit_interval:g}, SLACK_EDITS_PER_MINUTE={options.edits_per_minute}"
        + (
            f", REDIS_URL ?max_connections={options.redis_max_connections}"
            if options.redis_max_connections
            else ""
        )
    )


def _counts(values: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "none"


def run_notes(number: int, r: RunResult) -> list[str]:
    """A few lines on one run: what the table leaves out."""
    landed = "/".join(str(sum(1 for s in r.landed_s if s <= mark)) for mark in LANDED_MARKS_S)
    lines = [
        f"run {number} ({r.spec.label}, {r.spec.replicas} replica(s), N={r.n}): waited {r.wall_s:.1f} s; "
        f"landed by {'/'.join(map(str, LANDED_MARKS_S))} s: {landed}; leftover placeholders {r.leftovers}, "
        f"unsettled {r.unsettled}, failed acks {r.failed_acks}, POSTs {len(r.ack_ms) + r.failed_acks}",
        f"  Slack calls: {_counts(r.slack_calls)}; 429s: {_counts(r.rate_limited)}; "
        f"replies begun as a placeholder {r.placeholders}, as a native stream {r.streams} (the rest "
        f"posted whole), interim edits {r.interim_edits}",
        f"  Redis sent (MONITOR): {_counts(r.redis_sent)}",
        f"  Redis run by server (incl. scripts): {sum(r.redis_server.values()) / r.n:.1f}/reply",
    ]
    if r.log_events:
        lines.append(f"  bot log (WARNING+) by event: {_counts(r.log_events)}")
    for text, count in sorted(r.endings.items(), key=lambda item: -item[1])[:3]:
        lines.append(f"  {count}x not complete, ending: {text!r}")
    return lines


LEGEND = (
    "columns: last landed = burst start -> the last complete reply's final text; dup threads = threads "
    "with more than one answer message; 429s = the fake Slack's refusals; acks > 3 s counts failed POSTs "
    "too; 1st text = a mention's POST -> the first answer text visible in its thread; Slack calls/reply "
    "include refused ones; Redis cmds/reply = every command the replicas sent (MONITOR, an EVALSHA is "
    "one, idle read loops included); bot CPU = all replicas, burst -> end (a killed one: to its kill); "
    "peak RSS = the largest replica"
)


def format_notes(results: Sequence[RunResult], options: Options) -> str:
    lines = [setup_line(options), LEGEND]
    for number, r in enumerate(results, start=1):
        lines.extend(run_notes(number, r))
    return "\n".join(lines)


def _target_lines(r: RunResult) -> list[tuple[bool, str]]:
    if r.spec.kind == "kill":
        return [
            (r.complete == r.n, f"every reply complete: {r.complete}/{r.n}"),
            (r.duplicates == 0, f"none duplicated: {r.duplicates}"),
        ]
    landed_ok = r.complete == r.n and (r.last_landed_s or math.inf) <= TARGET_LAST_LANDED_S
    return [
        (
            landed_ok,
            f"{r.n}/{r.n} within {TARGET_LAST_LANDED_S:.0f} s: {r.complete}/{r.n}, "
            f"last {fmt(r.last_landed_s, 1)} s",
        ),
        (r.duplicates == 0, f"0 duplicates: {r.duplicates}"),
        (r.slow_acks + r.failed_acks == 0, f"0 acks over 3 s: {r.slow_acks} (+{r.failed_acks} failed)"),
        (r.total_429 < TARGET_MAX_429, f"fewer than {TARGET_MAX_429} 429s: {fmt_429(r.rate_limited)}"),
    ]


def format_targets(results: Sequence[RunResult]) -> tuple[str, bool]:
    """The issue's targets for the N = 200 runs and the kill run; (text, all met)."""
    lines, all_met = ["Targets:"], True
    for number, r in enumerate(results, start=1):
        if r.n < TARGET_N and r.spec.kind != "kill":
            continue
        for met, text in _target_lines(r):
            all_met &= met
            verdict = "met" if met else "MISSED"
            lines.append(f"- run {number} ({r.spec.label}, {r.spec.replicas} replica(s)): {verdict} - {text}")
    if len(lines) == 1:
        lines.append(f"- none apply (they are set for N = {TARGET_N} and for the kill run)")
    return "\n".join(lines), all_met
