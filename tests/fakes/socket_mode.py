"""Slack's side of Socket Mode for ``FakeSlack``: ``apps.connections.open`` tickets and the websocket.

The bot calls ``apps.connections.open`` with the app-level token and gets a ``ws://`` URL on the fake;
on connecting it receives ``{"type": "hello", ...}``. A test then pushes envelopes
(``await fake.push_event(body)``) and reads the bot's acknowledgements (``fake.socket_acks``).
Pings are answered by aiohttp (``autoping``); a client that closes is simply forgotten.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from tests.fakes.constants import APP_ID

__all__ = ["APP_TOKEN", "SOCKET_PATH", "SocketAck", "SocketModeHub"]

APP_TOKEN = "xapp-test-token"
SOCKET_PATH = "/socket-mode"


@dataclass(frozen=True)
class SocketAck:
    """One acknowledgement the client sent: the envelope it answers and any response payload."""

    envelope_id: str
    payload: dict[str, Any] | None
    at: float


class SocketModeHub:
    """Issued tickets, open websockets, pushed envelopes and the client's acknowledgements."""

    def __init__(self) -> None:
        self.tickets: list[str] = []
        self.connections = 0  # websockets ever accepted (a reconnect counts again)
        self.envelopes: list[dict[str, Any]] = []
        self.acks: list[SocketAck] = []
        self.other_messages: list[str] = []  # text frames that were not acknowledgements
        self._open: list[web.WebSocketResponse] = []

    # ------------------------------------------------------------------ state

    @property
    def connected(self) -> bool:
        """True while at least one websocket has been greeted and is still open."""
        return any(not ws.closed for ws in self._open)

    @property
    def open_count(self) -> int:
        return sum(1 for ws in self._open if not ws.closed)

    def issue_ticket(self) -> str:
        """A new ticket for the websocket URL (tickets stay valid, so a client may retry with one)."""
        ticket = uuid.uuid4().hex
        self.tickets.append(ticket)
        return ticket

    # ------------------------------------------------------------------ pushing

    async def push(
        self,
        envelope_type: str,
        payload: Mapping[str, Any],
        *,
        accepts_response_payload: bool = False,
        **extra: Any,
    ) -> str:
        """Send one envelope on the newest open websocket; returns its ``envelope_id``."""
        ws = next((ws for ws in reversed(self._open) if not ws.closed), None)
        if ws is None:
            raise RuntimeError("no Socket Mode client is connected to FakeSlack")
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "accepts_response_payload": accepts_response_payload,
            "payload": dict(payload),
            **extra,
        }
        self.envelopes.append(envelope)
        await ws.send_json(envelope)
        return envelope_id

    # ------------------------------------------------------------------ server side

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``GET /socket-mode?ticket=...``: upgrade, say hello, then record what the client sends."""
        if request.query.get("ticket") not in self.tickets:
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections += 1
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": self.open_count + 1,
                    "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": APP_ID},
                }
            )
        except (ConnectionError, RuntimeError):
            return ws  # the client went away before the greeting
        self._open.append(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._record(str(msg.data))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._open.remove(ws)
        return ws

    def _record(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("envelope_id"), str):
            payload = data.get("payload")
            self.acks.append(
                SocketAck(
                    envelope_id=data["envelope_id"],
                    payload=payload if isinstance(payload, dict) else None,
                    at=time.monotonic(),
                )
            )
        else:
            self.other_messages.append(text)

    async def close_all(self, _app: web.Application | None = None) -> None:
        """Close every open websocket (``going away``); used as the server's ``on_shutdown`` hook."""
        for ws in list(self._open):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    def describe(self) -> str:
        return (
            f"\nSocket Mode: {len(self.tickets)} ticket(s), {self.connections} connection(s), "
            f"{self.open_count} open, {len(self.envelopes)} envelope(s) pushed, "
            f"acks {[a.envelope_id for a in self.acks]}, other messages {self.other_messages[-5:]}"
        )
