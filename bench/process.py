"""The bot as subprocesses (replicas): environment, start, health, stop, SIGKILL, log, CPU and peak RSS."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.options import Options
from tests.fakes.bot_env import fake_backed_settings, is_bot_setting
from tests.fakes.bot_process import free_port
from tests.fakes.model_api import FakeModel
from tests.fakes.redis_server import RedisServer
from tests.fakes.slack_api import FakeSlack

REPO_ROOT = Path(__file__).resolve().parent.parent
HEALTH_TIMEOUT = 60.0  # seconds for a replica to answer /healthz
STOP_TIMEOUT = 15.0  # seconds after SIGTERM (then SIGKILL)
DRAIN_SECONDS = 2.0  # the bot's SHUTDOWN_DRAIN_SECONDS: a run is over when its replicas stop


@dataclass(slots=True)
class Replica:
    """One bot process: ``python -m bot serve --http`` on 127.0.0.1:``port``."""

    index: int
    process: asyncio.subprocess.Process
    port: int
    log_path: Path
    cpu_before: float = 0.0  # CPU seconds when the burst started
    cpu_used: float | None = None  # CPU seconds of the run, frozen when the replica was killed
    peak_rss_mb: float | None = None  # frozen when the replica was killed
    killed_at: float | None = None  # time.monotonic() of the SIGKILL

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mark_start(self) -> None:
        self.cpu_before = cpu_seconds(self.process.pid)

    def usage(self) -> tuple[float, float]:
        """(CPU seconds since ``mark_start``, peak RSS in MB); frozen values once killed."""
        if self.cpu_used is not None and self.peak_rss_mb is not None:
            return self.cpu_used, self.peak_rss_mb
        return cpu_seconds(self.process.pid) - self.cpu_before, peak_rss_mb(self.process.pid)

    async def kill(self) -> None:
        """SIGKILL (``kill -9``) this replica, after noting its CPU and peak RSS."""
        self.cpu_used, self.peak_rss_mb = self.usage()
        self.killed_at = time.monotonic()
        self.process.kill()
        await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)


def bot_environment(
    slack: FakeSlack, model: FakeModel, redis: RedisServer, options: Options
) -> dict[str, str]:
    """The replicas' environment: the fakes, the bench's Redis, the bench's settings; nothing inherited."""
    env = {name: value for name, value in os.environ.items() if not is_bot_setting(name)}
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    redis_url = redis.url
    if options.redis_max_connections is not None:
        redis_url += f"?max_connections={options.redis_max_connections}"
    env.update(
        {
            "PYTHONPATH": pythonpath,
            **fake_backed_settings(slack, model, redis_url),
            "STREAM_EDIT_INTERVAL": str(options.edit_interval),
            "SLACK_EDITS_PER_MINUTE": str(options.edits_per_minute),
            "SHUTDOWN_DRAIN_SECONDS": str(DRAIN_SECONDS),
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


@asynccontextmanager
async def replica(index: int, env: dict[str, str], workdir: Path) -> AsyncIterator[Replica]:
    """A started replica (output to ``workdir/bot-<index>.log``), healthy; stopped on exit."""
    port, log_path = free_port(), workdir / f"bot-{index}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot", "serve", "--http", "--port", str(port)),
            env=env,
            cwd=workdir,  # no stray .env is read
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        bot = Replica(index, process, port, log_path)
        await wait_healthy(bot)
        yield bot
    finally:
        await stop_process(process)


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after ``STOP_TIMEOUT`` seconds."""
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)


async def wait_healthy(bot: Replica) -> None:
    """Poll ``/healthz`` every 0.1 s until 200; RuntimeError when the bot exits or after the timeout."""
    deadline = time.monotonic() + HEALTH_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if bot.process.returncode is not None:
                raise RuntimeError(f"the bot exited with {bot.process.returncode}:\n{tail(bot.log_path)}")
            try:
                async with session.get(f"{bot.url}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{bot.url}/healthz not healthy after {HEALTH_TIMEOUT:.0f}s:\n{tail(bot.log_path)}")


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def log_events(path: Path) -> Counter[str]:
    """The bot's log lines by ``event`` (JSON lines; anything else counts as ``(text)``)."""
    events: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        events[str(record.get("event")) if isinstance(record, dict) else "(text)"] += 1
    return events


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (from /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """VmHWM of ``pid`` (the process's peak resident set so far) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
