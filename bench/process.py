"""The bot as a subprocess: its environment, starting it, waiting until healthy, stopping it, its log,
and its CPU time and peak RSS (from /proc)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from bench.options import Options
from tests.fakes.bot_env import fake_backed_settings, is_bot_setting
from tests.fakes.model_api import FakeModel
from tests.fakes.redis_server import RedisServer
from tests.fakes.slack_api import FakeSlack

REPO_ROOT = Path(__file__).resolve().parent.parent
HEALTH_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def bot_environment(
    slack: FakeSlack, model: FakeModel, redis_url: str, edit_interval: float, edits_per_minute: int
) -> dict[str, str]:
    # Settings the bot reads; inherited values would skew the run, so they are dropped from its environment.
    env = {name: value for name, value in os.environ.items() if not is_bot_setting(name)}
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(
        {
            "PYTHONPATH": pythonpath,
            **fake_backed_settings(slack, model, redis_url),
            "STREAM_EDIT_INTERVAL": str(edit_interval),
            "SLACK_EDITS_PER_MINUTE": str(edits_per_minute),
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def bot_redis_url(server: RedisServer, options: Options) -> str:
    if options.redis_max_connections is None:
        return server.url
    return f"{server.url}?max_connections={options.redis_max_connections}"


@asynccontextmanager
async def bot_process(
    env: dict[str, str], port: int, log_path: Path, workdir: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m bot serve --http --port P`` with stdout/stderr to ``log_path``; SIGTERM on exit."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            "--http",
            "--port",
            str(port),
            env=env,
            cwd=workdir,  # an empty directory: no stray .env is read
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        yield process
    finally:
        await stop_process(process)


async def stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)


async def wait_healthy(
    session: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process, log_path: Path
) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"the bot exited with {process.returncode}:\n{tail(log_path)}")
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} not healthy after {HEALTH_TIMEOUT:.0f}s:\n{tail(log_path)}")


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def count_lines(path: Path) -> int:
    return len(path.read_bytes().splitlines())


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
