"""What the fake HTTP servers share: an aiohttp app on a loopback address (ephemeral port), and polling.

A fake subclasses ``LoopbackServer``, overrides ``_build_app`` (and ``_describe`` for its failure messages)
and is used as ``async with Fake() as fake`` or ``await fake.start()`` / ``await fake.stop()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Self

from aiohttp import web

__all__ = ["POLL_INTERVAL", "LoopbackServer", "poll_until"]

POLL_INTERVAL = 0.01


async def poll_until(
    predicate: Callable[[], bool],
    timeout: float,  # noqa: ASYNC109 - a deadline for polling, not an I/O timeout
    describe: Callable[[], str] | None = None,
    what: str | None = None,
) -> None:
    """Poll ``predicate`` every 10 ms until it is true; raise AssertionError after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if predicate():
            return
        if loop.time() >= deadline:
            label = what or getattr(predicate, "__name__", repr(predicate))
            detail = describe() if describe is not None else ""
            raise AssertionError(f"condition {label!r} still false after {timeout:.2f}s{detail}")
        await asyncio.sleep(POLL_INTERVAL)


class LoopbackServer:
    """An aiohttp server on ``host`` (default 127.0.0.1) and an ephemeral port; subclasses build the app."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def _build_app(self) -> web.Application:
        """The application to serve (a fresh one on every ``start``)."""
        raise NotImplementedError

    def _describe(self) -> str:
        """What the fake recorded, appended to ``wait_for``'s AssertionError."""
        return ""

    async def start(self, host: str = "127.0.0.1") -> Self:
        runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, 0).start()
        except BaseException:
            await runner.cleanup()
            raise
        self.host = host
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def origin(self) -> str:
        """``http://HOST:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for polling, part of the harness API
        what: str | None = None,
    ) -> None:
        """Poll ``predicate`` every 10 ms; AssertionError (with ``_describe()``) after ``timeout`` s."""
        await poll_until(predicate, timeout, self._describe, what)
