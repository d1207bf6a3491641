"""Load benchmark: N concurrent @mentions against the real bot process (HTTP mode, real Redis).

``python -m bench [--n 10 50 200] [--tokens-per-second 40] [--answer-chars 600] [--edit-interval 1.5]
[--edits-per-minute 50] [--redis-max-connections K]`` (formerly ``python -m bench.run``)

This process runs a real ``redis-server`` (subprocess), the fake Slack Web API and the fake model server
(in this process's event loop) and the bot as a subprocess (``python -m bot serve --http``). For each N it
sends N signed ``app_mention`` events at once, each in its own channel and from its own user, lets the
fake model stream a ``--answer-chars`` answer at ``--tokens-per-second`` (4 characters per token), waits
until every reply shows its final text in the fake Slack (or a deadline passes) and prints one markdown
table row, then notes per round. ``--edits-per-minute`` is the bot's SLACK_EDITS_PER_MINUTE, the
workspace-wide budget of interim edits.

Redis commands are counted as sent by the bot (MONITOR) and as run by the server (INFO commandstats);
see ``bench.redis_monitor``. The target is at most 8 commands per reply outside edit pacing, so the main
Redis column leaves out the edit-budget EVALSHAs (one before every interim ``chat.update``, whose number
grows with the stream's length) and they get a column of their own.

Everything listens on 127.0.0.1; every wait has a deadline; everything started is stopped on exit.
The exit code is 0 when every reply completed, 1 when some did not, 2 when Redis or the bot did not start
(or on a usage error), 130 on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence

from bench.harness import started_harness
from bench.load import run_round
from bench.options import Options, parse_args
from bench.process import tail
from bench.report import RoundResult, format_notes, format_table


async def run(options: Options) -> int:
    started = time.monotonic()
    results: list[RoundResult] = []
    async with started_harness(options) as harness:
        for round_no, n in enumerate(options.ns, start=1):
            print(f"round {round_no}: N={n} ...", file=sys.stderr, flush=True)
            results.append(await run_round(harness, round_no, n))
            if harness.bot.returncode is not None:
                print(
                    f"the bot exited with {harness.bot.returncode}:\n{tail(harness.bot_log)}", file=sys.stderr
                )
                break
        log_tail = tail(harness.bot_log, 5) if any(r.bot_log_lines for r in results) else ""
    print(format_table(results))
    print()
    print(format_notes(results, options))
    if log_tail:
        print(f"last bot log lines:\n{log_tail}")
    print(f"total run time {time.monotonic() - started:.1f}s")
    return 0 if all(r.completed == r.n for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
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
