"""A TCP proxy on a free loopback port that can lose a reply: the command ran, the client never hears.

This is the fault behind a doubled charge: redis-py retries a command whose connection dropped while it
read the reply, so a script that already ran runs again. ``drop_next_reply()`` arms the proxy: the
next bytes the server sends on any connection are thrown away and that client connection is closed, so
the client sees a connection error after the server did the work.

Runs in the test's event loop (``async with TcpProxy(host, port) as proxy: proxy.url``).
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

__all__ = ["TcpProxy"]


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; ``drop_next_reply`` loses one reply on purpose."""

    def __init__(self, target_host: str, target_port: int | None) -> None:
        assert target_port is not None, "the target server is not started"
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._drops = 0
        self.dropped = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "the proxy is not started"
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, db: int = 0) -> str:
        """A ``redis://`` URL through the proxy."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def drop_next_reply(self, times: int = 1) -> None:
        """Lose the next ``times`` replies (each on its own connection, which is then closed)."""
        self._drops += times

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self._target)
        self._writers.update((client_writer, server_writer))
        upstream = asyncio.ensure_future(self._pipe(client_reader, server_writer, replies=False, peer=None))
        downstream = asyncio.ensure_future(
            self._pipe(server_reader, client_writer, replies=True, peer=server_writer)
        )
        for task in (upstream, downstream):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.wait({upstream, downstream}, return_when=asyncio.FIRST_COMPLETED)
        for writer in (client_writer, server_writer):
            writer.close()
            self._writers.discard(writer)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        replies: bool,
        peer: asyncio.StreamWriter | None,
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if replies and self._drops > 0:
                    self._drops -= 1
                    self.dropped += 1
                    writer.close()  # the client loses its connection before it reads the reply
                    if peer is not None:
                        peer.close()
                    return
                writer.write(data)
                await writer.drain()
