"""One run: the burst, a replica killed if the run says so, waiting until every thread settled and the
work stream is empty (or the deadline), and the run's measurements."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter

from bench.harness import RunEnv
from bench.observe import (
    Thread,
    ThreadOutcome,
    edit_mode_counts,
    endings,
    first_text_times,
    thread_outcomes,
)
from bench.process import log_events
from bench.redis_monitor import MonitorCounts, monitored_redis, redis_command_stats, wait_redis_quiet
from bench.report import RunResult
from bench.traffic import Ack, channel_for, send_burst, thread_for
from bot.work.queue import stream_key
from tests.fakes.constants import TEAM_ID

POLL_INTERVAL = 0.1  # seconds between looks at the fake Slack


def run_threads(run: RunEnv) -> dict[Thread, int]:
    """The run's threads, each with the index of its mention."""
    return {
        (channel_for(run.run_no, i, run.options.channels), thread_for(run.run_no, i)): i
        for i in range(run.spec.n)
    }


async def _kill_later(run: RunEnv, started: float) -> None:
    """SIGKILL replica 0 ``kill_after`` seconds after ``started`` (monotonic s)."""
    assert run.spec.kill_after is not None
    await asyncio.sleep(max(0.0, started + run.spec.kill_after - time.monotonic()))
    await run.replicas[0].kill()
    print(f"  killed replica 0 (pid {run.replicas[0].process.pid})", file=sys.stderr, flush=True)


async def wait_settled(
    run: RunEnv, threads: set[Thread], deadline: float
) -> tuple[dict[Thread, ThreadOutcome], int]:
    """Poll until every thread settled and the work stream is empty, or ``deadline`` (monotonic s).

    Returns the outcomes and how many XLENs the bench sent (left out of the server's counts).
    """
    xlens = 0
    while True:
        outcomes = thread_outcomes(run.slack, threads, (run.expected_text, run.answer))
        if all(o.settled for o in outcomes.values()):
            xlens += 1
            if int(run.redis.client.xlen(stream_key(TEAM_ID))) == 0:
                return outcomes, xlens
        if time.monotonic() >= deadline:
            return outcomes, xlens
        await asyncio.sleep(POLL_INTERVAL)


async def run_one(run: RunEnv, bench_sources: set[str]) -> RunResult:
    """Send the burst and wait (Redis monitored meanwhile); the run's measurements."""
    threads = run_threads(run)
    async with monitored_redis(run.redis.port or 0, bench_sources) as monitor:
        for bot in run.replicas:
            bot.mark_start()
        started = time.monotonic()
        killer = asyncio.create_task(_kill_later(run, started)) if run.spec.kill_after is not None else None
        acks = await send_burst(run)
        outcomes, xlens = await wait_settled(run, set(threads), started + run.spec.deadline)
        wall = time.monotonic() - started
        if killer is not None:
            await killer
        await wait_redis_quiet(monitor)  # the last replies' commands may still be on their way
    redis_server = redis_command_stats(run.redis, {"xlen": xlens})
    return _result(run, threads, started, wall, acks, outcomes, monitor, redis_server)


def _first_text_s(run: RunEnv, threads: dict[Thread, int], acks: list[Ack]) -> list[float]:
    """Per thread: its mention's first POST -> the first answer text shown in it, in seconds."""
    sent: dict[int, float] = {}
    for ack in acks:
        sent[ack.index] = min(sent.get(ack.index, ack.sent_at), ack.sent_at)
    shown = first_text_times(run.slack, set(threads))
    return [at - sent[threads[t]] for t, at in shown.items() if threads[t] in sent]


def _result(
    run: RunEnv,
    threads: dict[Thread, int],
    started: float,
    wall: float,
    acks: list[Ack],
    outcomes: dict[Thread, ThreadOutcome],
    monitor: MonitorCounts,
    redis_server: dict[str, int],
) -> RunResult:
    """The measurements; CPU, RSS and logs of the replicas are read now, before they stop."""
    landed = sorted(o.completed_at - started for o in outcomes.values() if o.completed_at is not None)
    usage = [bot.usage() for bot in run.replicas]
    placeholders, interim_edits = edit_mode_counts(run.slack, set(threads))
    logs: Counter[str] = Counter()
    for bot in run.replicas:
        logs.update(log_events(bot.log_path))
    return RunResult(
        spec=run.spec,
        complete=sum(1 for o in outcomes.values() if o.complete),
        last_landed_s=landed[-1] if landed else None,
        landed_s=landed,
        duplicates=sum(1 for o in outcomes.values() if o.answers > 1),
        leftovers=sum(1 for o in outcomes.values() if o.leftover),
        unsettled=sum(1 for o in outcomes.values() if not o.settled),
        endings=dict(endings(outcomes)),
        rate_limited=dict(run.slack.rate_limited),
        ack_ms=[a.ms for a in acks if a.status == 200],
        failed_acks=sum(1 for a in acks if a.status != 200),
        first_text_s=_first_text_s(run, threads, acks),
        slack_calls=dict(Counter(c.method for c in run.slack.calls if c.method != "auth.test")),
        redis_sent=dict(monitor.sent),
        redis_server=redis_server,
        bot_cpu_s=sum(cpu for cpu, _ in usage),
        peak_rss_mb=max(rss for _, rss in usage),
        wall_s=wall,
        log_events=dict(logs),
        placeholders=placeholders,
        interim_edits=interim_edits,
        streams=len(run.slack.streams.streams),
    )
