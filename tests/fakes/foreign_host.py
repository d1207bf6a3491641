"""A tiny HTTP server on a host that is NOT a Slack file host, for token-leak tests.

It binds 127.0.0.2 (Linux routes all of 127.0.0.0/8 to the loopback interface). Where that address cannot
be bound it binds 127.0.0.1 and is addressed as ``localhost``: a host name that is not on the fetcher's
allow-list even though it reaches the same machine. Every request is recorded with its Authorization
header; the server answers with fixed bytes, or with a redirect when ``redirect_to`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from aiohttp import web

FOREIGN_ADDRESS = "127.0.0.2"
FALLBACK_HOST = "localhost"
FOREIGN_BODY = b"\x89PNG\r\n\x1a\nforeign"


@dataclass(frozen=True)
class ForeignRequest:
    """One request the foreign server received."""

    method: str
    path_qs: str
    authorization: str | None


class ForeignHost:
    """``async with ForeignHost() as foreign``; ``foreign.url("x.png")`` is an address on it."""

    def __init__(self) -> None:
        self.requests: list[ForeignRequest] = []
        self.redirect_to: str | None = None
        self.host = FOREIGN_ADDRESS
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    async def start(self) -> ForeignHost:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            site = web.TCPSite(runner, FOREIGN_ADDRESS, 0)
            await site.start()
            self.host = FOREIGN_ADDRESS
        except OSError:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.host = FALLBACK_HOST
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> ForeignHost:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("ForeignHost is not started")
        return f"http://{self.host}:{self._port}"

    def url(self, path: str = "file.png") -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            ForeignRequest(
                method=request.method,
                path_qs=request.path_qs,
                authorization=request.headers.get("Authorization"),
            )
        )
        if self.redirect_to is not None:
            return web.Response(status=302, headers={"Location": self.redirect_to})
        return web.Response(status=200, body=FOREIGN_BODY, headers={"Content-Type": "image/png"})
