"""The HTTP server does not hold idle connections, and a flood of identical asyncio errors is thinned."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from bot.logs import OncePerSecond
from handlers.server import start_web


async def test_idle_half_open_connection_is_closed() -> None:
    """A client that connects and never sends its headers is disconnected after the idle time."""
    runner = await start_web(web.Application(), "127.0.0.1", 0, idle_seconds=0.3)
    host, port = runner.addresses[0][:2]
    try:
        reader, writer = await asyncio.open_connection(host, port)
        closed = await asyncio.wait_for(reader.read(), timeout=5)  # b"" once the server hangs up
        assert closed == b""
        writer.close()
    finally:
        await runner.cleanup()


def test_identical_log_lines_pass_once_a_second() -> None:
    now = [100.0]
    once = OncePerSecond(clock=lambda: now[0])

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, None)

    passed = [once.filter(record("socket.accept() out of system resource")) for _ in range(1000)]
    assert passed.count(True) == 1
    assert once.filter(record("another message"))
    now[0] += 1.0
    assert once.filter(record("socket.accept() out of system resource"))
