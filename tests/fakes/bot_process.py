"""Running ``python -m bot`` as a real subprocess: free ports, health waits, a bounded stop. pytest-free."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

import httpx

START_SECONDS = 30.0
EXIT_SECONDS = 30.0


def free_port() -> int:
    """A loopback port that was free a moment ago (bind to 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_bot(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    """``python -m bot ARGS`` with ``env``, its output captured."""
    return await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "bot", *args],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_healthy(http: httpx.AsyncClient, url: str, process: asyncio.subprocess.Process) -> None:
    """Poll ``url`` until it answers 200; fail early if the bot exits, or after ``START_SECONDS``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_SECONDS
    while loop.time() < deadline:
        if process.returncode is not None:
            raise AssertionError(f"the bot exited with {process.returncode} before {url} answered")
        try:
            if (await http.get(url)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never became healthy")


async def stop_bot(process: asyncio.subprocess.Process, seconds: float = EXIT_SECONDS) -> str:
    """SIGTERM the bot and wait a bounded time for it to exit (killed if it hangs); returns its stderr."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        _out, err = await asyncio.wait_for(process.communicate(), timeout=seconds)
    except TimeoutError:
        process.kill()
        _out, err = await process.communicate()
        raise AssertionError(f"the bot did not exit within {seconds}s of SIGTERM:\n{err.decode()}") from None
    return err.decode()


async def run_glmbot(
    args: list[str], env: dict[str, str], stdin: bytes = b"", seconds: float = 60.0
) -> tuple[int, str, str]:
    """``python -m bot ARGS`` run to its end with ``stdin`` piped in: exit status, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "bot", *args],
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=seconds)
    return process.returncode or 0, out.decode(), err.decode()
