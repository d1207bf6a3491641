"""A round's measurements (RoundResult) and how they are printed: the markdown table and the notes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.options import Options, stream_seconds
from bench.redis_monitor import EDIT_BUDGET_COMMAND


@dataclass(slots=True)
class RoundResult:
    """Measurements of one round of N concurrent mentions."""

    n: int
    ack_ms: list[float]
    failed_acks: int
    first_text_ms: list[float]
    completed: int
    failed_replies: int
    unsettled: int
    slack_calls: int
    slack_updates: int
    redis_sent: dict[str, int]  # commands the bot sent (MONITOR, client sources); EVALSHA by script
    redis_server: dict[str, int]  # commands the server ran, scripts' included (INFO commandstats)
    redis_script_lines: int  # MONITOR lines of commands run by Lua scripts
    redis_bench_lines: int  # MONITOR lines from the bench's own connection (left out of redis_sent)
    redis_unparsed_lines: int  # MONITOR lines not understood (should be 0)
    over_quota: int  # replies that ended in the over-quota message
    quota_notices: int  # replies that ended with the 80 % quota notice
    failure_texts: dict[str, int]  # how replies that did not show the answer ended (truncated)
    bot_cpu_seconds: float
    bot_peak_rss_mb: float
    bench_cpu_seconds: float
    wall_seconds: float
    aborted_streams: int
    bot_log_lines: int

    @property
    def edit_budget_checks(self) -> int:
        """EVALSHAs of the edit-budget script: one before every interim ``chat.update``."""
        return self.redis_sent.get(EDIT_BUDGET_COMMAND, 0)

    @property
    def redis_sent_excl_edit_pacing(self) -> int:
        """Commands the bot sent, without the edit-budget checks."""
        return sum(self.redis_sent.values()) - self.edit_budget_checks


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


TABLE_HEADER = (
    "| N | ack p50 ms | ack p99 ms | 1st token→text p50 ms | 1st token→text p99 ms | complete "
    "| Slack calls/reply | chat.update/reply | Redis cmds/reply (sent, excl. edit pacing) "
    "| edit-budget checks/reply | Redis cmds/reply (server, incl. scripts) | bot CPU s | bot peak RSS MB "
    "| round s | bench CPU s |"
)


def table_row(r: RoundResult) -> str:
    cells = [
        str(r.n),
        fmt(percentile(r.ack_ms, 50), 1),
        fmt(percentile(r.ack_ms, 99), 1),
        fmt(percentile(r.first_text_ms, 50)),
        fmt(percentile(r.first_text_ms, 99)),
        f"{r.completed}/{r.n}",
        f"{r.slack_calls / r.n:.2f}",
        f"{r.slack_updates / r.n:.2f}",
        f"{r.redis_sent_excl_edit_pacing / r.n:.2f}",
        f"{r.edit_budget_checks / r.n:.2f}",
        f"{sum(r.redis_server.values()) / r.n:.2f}",
        f"{r.bot_cpu_seconds:.2f}",
        f"{r.bot_peak_rss_mb:.1f}",
        f"{r.wall_seconds:.1f}",
        f"{r.bench_cpu_seconds:.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def format_table(results: Sequence[RoundResult]) -> str:
    columns = TABLE_HEADER.count("|") - 1
    separator = "|" + "---:|" * columns
    return "\n".join([TABLE_HEADER, separator, *(table_row(r) for r in results)])


def _setup_line(options: Options) -> str:
    setup = (
        f"answer {options.answer_chars} chars at {options.tokens_per_second:g} tok/s "
        f"({stream_seconds(options):.2f}s of streaming), STREAM_EDIT_INTERVAL={options.edit_interval:g}, "
        f"SLACK_EDITS_PER_MINUTE={options.edits_per_minute}"
    )
    if options.redis_max_connections is not None:
        setup += f", bot's REDIS_URL with ?max_connections={options.redis_max_connections}"
    return setup


def _round_notes(r: RoundResult) -> list[str]:
    sent = ", ".join(f"{k}={v}" for k, v in sorted(r.redis_sent.items()))
    server = ", ".join(f"{k}={v}" for k, v in sorted(r.redis_server.items()))
    lines = [
        f"N={r.n}: failed acks {r.failed_acks}, replies ending in an error message {r.failed_replies} "
        f"(over quota {r.over_quota}, with a quota notice {r.quota_notices}), "
        f"unfinished at the deadline {r.unsettled}, first-text samples {len(r.first_text_ms)}, "
        f"aborted model streams {r.aborted_streams}, bot log lines {r.bot_log_lines}",
        f"  Redis sent by bot (MONITOR): {sent or 'none'}",
        f"  Redis run by server (commandstats, incl. {r.redis_script_lines} by scripts): "
        f"{server or 'none'}"
        + (f"; bench's own lines left out: {r.redis_bench_lines}" if r.redis_bench_lines else "")
        + (f"; unparsed MONITOR lines: {r.redis_unparsed_lines}" if r.redis_unparsed_lines else ""),
    ]
    for text, count in sorted(r.failure_texts.items(), key=lambda item: -item[1])[:3]:
        lines.append(f"  {count}x ended as: {text!r}")
    return lines


def format_notes(results: Sequence[RoundResult], options: Options) -> str:
    lines = [_setup_line(options)]
    for r in results:
        lines.extend(_round_notes(r))
    return "\n".join(lines)
