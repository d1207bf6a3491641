"""A tiny HTTP server on a host that is NOT a Slack file host, for token-leak tests.

It binds 127.0.0.2 (Linux routes all of 127.0.0.0/8 to the loopback interface). Where that address cannot
be bound it binds 127.0.0.1 and is addressed as ``localhost``: a host name that is not on the fetcher's
allow-list even though it reaches the same machine. Every request is recorded with its Authorization
header; the server answers with fixed bytes, or with a redirect when ``redirect_to`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

FOREIGN_ADDRESS = "127.0.0.2"
FALLBACK_HOST = "localhost"
FOREIGN_BODY = b"\x89PNG\r\n\x1a\nforeign"


@dataclass(frozen=True)
class ForeignRequest:
    """One request the foreign server received."""

    method: str
    path_qs: str
    authorization: str | None


class ForeignHost(LoopbackServer):
    """``async with ForeignHost() as foreign``; ``foreign.url("x.png")`` is an address on it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[ForeignRequest] = []
        self.redirect_to: str | None = None
        self.host = FOREIGN_ADDRESS

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        return app

    async def start(self, host: str = FOREIGN_ADDRESS) -> Self:
        """Listen on ``host``; where it cannot be bound, on 127.0.0.1 addressed as ``localhost``."""
        try:
            return await super().start(host)
        except OSError:
            await super().start("127.0.0.1")
            self.host = FALLBACK_HOST
            return self

    @property
    def base_url(self) -> str:
        return self.origin

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
