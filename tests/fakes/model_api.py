"""A fake OpenAI-compatible chat-completions server on 127.0.0.1 (ephemeral port).

Point the bot at it with ``GLM_BASE_URL=fake.base_url`` (``http://127.0.0.1:PORT/v1``). Replies are
scripted with ``fake.script(Reply(...))``; with an empty script it answers ``fake.default_reply``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from tests.fakes.constants import MODEL_API_KEY
from tests.fakes.loopback import LoopbackServer

__all__ = ["DEFAULT_TEXT", "FakeModel", "ModelCall", "Reply"]

DEFAULT_TEXT = "Hello from the fake model."


@dataclass
class Reply:
    """One scripted answer of the fake model."""

    text: str = DEFAULT_TEXT
    chunk_chars: int = 8
    delay: float = 0.0
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    status: int = 200
    fail_after_chunks: int | None = None
    hold: asyncio.Event | None = None
    usage: bool = True


@dataclass
class ModelCall:
    """One request to ``/v1/chat/completions``: JSON body, headers (lower-cased names), arrival time."""

    body: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    reply: Reply | None = None
    chunks_sent: int = 0
    completed: bool = False
    # time.monotonic() when the first content chunk was written (None until then).
    first_chunk_at: float | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        msgs = self.body.get("messages")
        return msgs if isinstance(msgs, list) else []


class _ClosingError(Exception):
    """Raised inside a handler when the fake is being stopped."""


class FakeModel(LoopbackServer):
    """Fake OpenAI-compatible model server. ``async with FakeModel(api_key=...) as fake``."""

    def __init__(self, api_key: str = MODEL_API_KEY, model: str = "glm-4.5v") -> None:
        super().__init__()
        self.api_key = api_key
        self.model = model
        # When set, a request for any other model is refused the way OpenRouter refuses one (400).
        self.known_models: frozenset[str] | None = None
        self.default_reply: Reply = Reply()
        self.requests: list[ModelCall] = []
        self.aborted_streams = 0
        self._replies: deque[Reply] = deque()
        self._ids = itertools.count(1)
        self._closing: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("POST", "/v1/chat/completions", self._handle_completions)
        app.router.add_route("GET", "/v1/models", self._handle_models)
        return app

    async def start(self, host: str = "127.0.0.1") -> Self:
        self._closing = asyncio.Event()
        return await super().start(host)

    async def stop(self) -> None:
        if self._closing is not None:
            self._closing.set()
        await super().stop()

    @property
    def base_url(self) -> str:
        """Value for the bot's ``GLM_BASE_URL``: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.origin}/v1"

    # ------------------------------------------------------------------ test helpers

    def script(self, *replies: Reply) -> None:
        """Queue replies; each request takes the next one (then ``default_reply`` once the queue is empty)."""
        self._replies.extend(replies)

    @property
    def pending_replies(self) -> int:
        return len(self._replies)

    def _describe(self) -> str:
        lines = [f"\nFakeModel saw {len(self.requests)} request(s), {len(self._replies)} scripted left:"]
        for r in self.requests[-10:]:
            last = r.messages[-1] if r.messages else {}
            lines.append(
                f"  chunks_sent={r.chunks_sent} completed={r.completed} last_message={str(last)[:160]}"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------ internals

    async def _until_closing(self, awaitable: Awaitable[Any]) -> None:
        """Await ``awaitable`` unless the server stops first (then raise ``_ClosingError``)."""
        assert self._closing is not None
        work = asyncio.ensure_future(awaitable)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            done, _ = await asyncio.wait({work, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (work, closing):
                if not t.done():
                    t.cancel()
        if work not in done:
            raise _ClosingError
        work.result()

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.api_key}"

    @staticmethod
    def _usage(reply: Reply, body: dict[str, Any]) -> dict[str, int]:
        prompt = (
            reply.prompt_tokens
            if reply.prompt_tokens is not None
            else len(json.dumps(body.get("messages", []))) // 4
        )
        completion = (
            reply.completion_tokens if reply.completion_tokens is not None else max(1, len(reply.text) // 4)
        )
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def _handle_models(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return web.json_response(
            {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "fake"}]}
        )

    @staticmethod
    def _unauthorized() -> web.Response:
        return web.json_response(
            {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}, status=401
        )

    async def _handle_completions(self, request: web.Request) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = await request.read()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        call = ModelCall(body=parsed if isinstance(parsed, dict) else {}, headers=headers)
        self.requests.append(call)
        if not self._authorized(request):
            return self._unauthorized()
        if not isinstance(parsed, dict):
            return web.json_response({"error": {"message": "invalid JSON body", "code": 400}}, status=400)
        body: dict[str, Any] = parsed
        if self.known_models is not None and body.get("model") not in self.known_models:
            error = {"message": f"{body.get('model')} is not a valid model ID", "code": 400}
            return web.json_response({"error": error}, status=400)

        reply = self._replies.popleft() if self._replies else self.default_reply
        call.reply = reply
        try:
            if reply.hold is not None:
                await self._until_closing(reply.hold.wait())
        except _ClosingError:
            return web.json_response({"error": {"message": "server shutting down", "code": 503}}, status=503)

        if reply.status != 200:
            extra = {"Retry-After": "0"} if reply.status in (429, 503) else {}
            return web.json_response(
                {"error": {"message": "scripted failure", "code": reply.status}},
                status=reply.status,
                headers=extra,
            )
        if not body.get("stream"):
            return self._complete_json(call, reply, body)
        return await self._stream(request, call, reply, body)

    def _complete_json(self, call: ModelCall, reply: Reply, body: dict[str, Any]) -> web.Response:
        data: dict[str, Any] = {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "finish_reason": reply.finish_reason,
                }
            ],
        }
        if reply.usage:
            data["usage"] = self._usage(reply, body)
        call.completed = True
        return web.json_response(data)

    async def _stream(
        self, request: web.Request, call: ModelCall, reply: Reply, body: dict[str, Any]
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        completion_id = f"chatcmpl-fake-{next(self._ids)}"
        created = int(time.time())
        model = body.get("model", self.model)

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
            }
            payload.update(extra)
            return f"data: {json.dumps(payload)}\n\n".encode()

        size = reply.chunk_chars if reply.chunk_chars > 0 else max(1, len(reply.text))
        pieces = [reply.text[i : i + size] for i in range(0, len(reply.text), size)]
        try:
            for i, piece in enumerate(pieces):
                if reply.fail_after_chunks is not None and i >= reply.fail_after_chunks:
                    break
                if i and reply.delay > 0:
                    await self._until_closing(asyncio.sleep(reply.delay))
                delta: dict[str, Any] = {"content": piece}
                if i == 0:
                    delta = {"role": "assistant", "content": piece}
                await resp.write(chunk([{"index": 0, "delta": delta, "finish_reason": None}]))
                if call.first_chunk_at is None:
                    call.first_chunk_at = time.monotonic()
                call.chunks_sent += 1
            if reply.fail_after_chunks is not None:
                error = {"error": {"message": "scripted mid-stream failure"}}
                await resp.write(f"data: {json.dumps(error)}\n\n".encode())
                await resp.write_eof()
                return resp
            await resp.write(chunk([{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]))
            if reply.usage:
                await resp.write(chunk([], usage=self._usage(reply, body)))
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            call.completed = True
        except (ConnectionResetError, _ClosingError):
            self.aborted_streams += 1
        return resp
