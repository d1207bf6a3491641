"""Load benchmark: bursts of concurrent @mentions against real bot processes, within Slack's rate limits.

``python -m bench [--n 10 50 200] [--replicas 1 2] [--runs base redeliver kill] [--quick] ...``
(``--help`` lists every flag).

A real ``redis-server`` (subprocess, flushed before every run), and per run: a fresh fake Slack Web
API that enforces Slack's limits (``tests.fakes.slack_api.SlackRateLimits``: chat.postMessage 1/s per
channel with bursts of 3, chat.update 50 per minute per workspace, ...; 429 + Retry-After beyond), a
fresh fake model, and 1 or 2 bot replicas (``python -m bot serve --http``) sharing the Redis.

Runs: for every replica count and every N, N signed ``app_mention`` events POSTed at once, round-robin
over ``--channels`` channels and over the replicas. Then, with 2 replicas and the largest N: a run where
20 % of the events are also redelivered to the other replica as Slack retries (``X-Slack-Retry-Num: 1``,
sent at the same moment), and a run where replica 0 gets SIGKILL 1 s into the burst (the survivor takes
its work over when the 20 s lease runs out). A run ends when every thread settled and the work stream
is empty, or at its deadline (90 s; the kill run 120 s).

Printed: a markdown table (one row per run, ready for the README), notes per run, the issue's targets.
Everything listens on 127.0.0.1; every wait has a deadline; everything started is stopped on exit.
Exit code: 0 when every target was met, 1 when not, 2 when Redis or the bot did not start (or on a usage
error), 130 on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Sequence

from bench.harness import started_run
from bench.load import run_one
from bench.options import Options, parse_args, plan
from bench.redis_monitor import bench_redis_sources
from bench.report import RunResult, format_notes, format_table, format_targets, table_row
from tests.fakes.redis_server import RedisServer


class _KilledPeerNoise(logging.Filter):
    """Drops the fake servers' tracebacks for requests a SIGKILLed replica left half-sent (expected)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionResetError)


async def run(options: Options) -> int:
    started = time.monotonic()
    results: list[RunResult] = []
    with RedisServer() as redis:
        sources = bench_redis_sources(redis)
        for number, spec in enumerate(plan(options), start=1):
            print(
                f"run {number}: {spec.label}, {spec.replicas} replica(s), N={spec.n} ...",
                file=sys.stderr,
                flush=True,
            )
            async with started_run(options, spec, number, redis) as env:
                result = await run_one(env, sources)
            results.append(result)
            print(f"  {table_row(result)}", file=sys.stderr, flush=True)
    targets, all_met = format_targets(results)
    print(format_table(results))
    print()
    print(format_notes(results, options))
    print()
    print(targets)
    print(f"total run time {time.monotonic() - started:.1f} s")
    return 0 if all_met else 1


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    logging.getLogger("aiohttp.server").addFilter(_KilledPeerNoise())
    try:
        return asyncio.run(run(options))
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:  # redis-server or the bot did not start
        print(f"bench: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
