"""A small fake of the Slack Web API, served over real HTTP on 127.0.0.1 (ephemeral port).

Point the bot at it with ``SLACK_API_URL=fake.api_url``. Every call is recorded in ``fake.calls``;
messages posted with ``chat.postMessage`` and edited with ``chat.update`` are kept in ``fake.messages``.
Threads for ``conversations.replies`` are in ``fake.threads`` (``tests.fakes.slack_threads``).
Socket Mode too: ``apps.connections.open`` (app-level token) hands out a websocket on the same server,
where a test pushes events with ``await fake.push_event(body)`` (see ``tests.fakes.socket_mode``).

Slack's rate limits are enforced only when asked (``FakeSlack(enforce_limits=True)`` or
``fake.enforce_slack_limits()``; see ``SlackRateLimits``): a call beyond its limit answers HTTP 429
``{"ok": false, "error": "ratelimited"}`` with ``Retry-After`` and changes nothing; refusals are counted
per method in ``fake.rate_limited`` and kept in ``fake.rate_limited_calls``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes.constants import APP_ID, BOT_ID, BOT_SCOPES, BOT_TOKEN, BOT_USER_ID, TEAM_ID
from tests.fakes.loopback import LoopbackServer, poll_until
from tests.fakes.slack_assistant import AssistantThreads
from tests.fakes.slack_blocks import blocks_error, shown
from tests.fakes.slack_streams import SlackStreams
from tests.fakes.slack_threads import SlackThreads
from tests.fakes.socket_mode import APP_TOKEN, SOCKET_PATH, SocketModeHub

__all__ = [
    "APP_ID",
    "APP_TOKEN",
    "BOT_ID",
    "BOT_USER_ID",
    "TEAM_ID",
    "FakeMessage",
    "FakeSlack",
    "FileScript",
    "ResponseUrlPost",
    "SlackCall",
    "SlackRateLimits",
    "poll_until",
]


@dataclass(frozen=True)
class SlackCall:
    """One request to ``/api/{method}``: the merged query+body parameters and when it arrived."""

    method: str
    body: dict[str, Any]
    at: float

    @property
    def shown(self) -> str:
        """What a message posted or edited by this call shows (its blocks' text, else its ``text``)."""
        return shown(str(self.body.get("text") or ""), self.body.get("blocks"))


@dataclass
class FakeMessage:
    """A message the bot posted, with everything it has shown (``history[0]``: as posted; see ``shown``)."""

    ts: str
    channel: str
    thread_ts: str | None
    text: str
    history: list[str] = field(default_factory=list)
    blocks: Any = None
    user: str = BOT_USER_ID
    deleted: bool = False
    posted_at: float = 0.0
    updated_at: float = 0.0

    @property
    def shown(self) -> str:
        """What a person reads now: the blocks' text when the message has blocks, else ``text``."""
        return shown(self.text, self.blocks)


@dataclass(frozen=True)
class ResponseUrlPost:
    """One POST to a fake slash-command ``response_url`` (see ``FakeSlack.response_url``)."""

    key: str
    body: dict[str, Any]
    at: float


@dataclass
class FileScript:
    """How the fake answers downloads of one ``/files-pri/`` path (see ``FakeSlack.script_file``)."""

    redirect_to: str | None = None
    redirect_status: int = 302
    delay: float = 0.0
    chunked: bool = False


@dataclass
class _Fault:
    status: int = 200
    retry_after: int | None = None
    error: str = "fatal_error"
    times: int = 1


def _json(
    data: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(dict(data), status=status, headers=dict(headers or {}))


# Slack's limits as ``SlackRateLimits`` enforces them (https://api.slack.com/apis/rate-limits and each
# method's page): chat.postMessage per channel, the others per workspace in any sliding minute.
POST_RATE_PER_SECOND = 1.0
POST_BURST = 3
LIMIT_WINDOW_SECONDS = 60.0
WORKSPACE_CALLS_PER_WINDOW: dict[str, int] = {
    "chat.update": 50,
    "chat.delete": 50,
    "chat.startStream": 20,
    "chat.stopStream": 20,
    "chat.appendStream": 100,
}


@dataclass
class _TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` kept; a call takes one token."""

    rate: float
    capacity: float
    tokens: float
    at: float  # clock seconds of the last refill

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0.0: now), after refilling up to ``now``."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = max(self.at, now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self.tokens -= 1


@dataclass
class _SlidingWindow:
    """At most ``limit`` calls in any window of ``seconds`` seconds (a call at t counts in (t-s, t])."""

    limit: int
    seconds: float
    times: deque[float] = field(default_factory=deque)  # clock seconds of the calls still in the window

    def wait(self, now: float) -> float:
        """Seconds until the window has room for one more call (0.0: now)."""
        while self.times and self.times[0] <= now - self.seconds:
            self.times.popleft()
        return 0.0 if len(self.times) < self.limit else self.times[0] + self.seconds - now

    def take(self, now: float) -> None:
        self.times.append(now)


class SlackRateLimits:
    """Slack's rate limits for the methods the bot may use; every other method is unlimited.

    ``chat.postMessage``: a token bucket per channel (1 per second, bursts of 3). ``chat.update`` and
    ``chat.delete``: 50, ``chat.startStream`` and ``chat.stopStream``: 20 each, ``chat.appendStream``:
    100 calls per workspace in any sliding 60 seconds. ``clock`` gives seconds (``time.monotonic``).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._posts: dict[str, _TokenBucket] = {}
        self._windows = {
            method: _SlidingWindow(limit, LIMIT_WINDOW_SECONDS)
            for method, limit in WORKSPACE_CALLS_PER_WINDOW.items()
        }

    def admit(self, method: str, params: Mapping[str, Any]) -> float:
        """Count one call to ``method``: 0.0 when it is within the limit, else the seconds until a call
        would be (nothing is counted then)."""
        now = self.clock()
        limit: _TokenBucket | _SlidingWindow | None = self._windows.get(method)
        if method == "chat.postMessage":
            channel = str(params.get("channel") or "")
            limit = self._posts.setdefault(
                channel, _TokenBucket(POST_RATE_PER_SECOND, POST_BURST, POST_BURST, now)
            )
        if limit is None:
            return 0.0
        wait = limit.wait(now)
        if wait <= 0:
            limit.take(now)
        return max(0.0, wait)


def retry_after_header(wait: float) -> str:
    """``Retry-After`` for a call refused ``wait`` seconds before one would pass: whole seconds, >= 1."""
    return str(max(1, math.ceil(wait - 1e-9)))


_LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Slack</title></head>"
    "<body><h1>Sign in to Slack</h1><form action='/signin'></form></body></html>"
)


class FakeSlack(LoopbackServer):
    """Fake Slack Web API + private file host, reachable over real HTTP.

    Use ``async with FakeSlack(bot_token=...) as fake`` or ``await fake.start()`` / ``await fake.stop()``.
    ``enforce_limits=True`` enforces Slack's rate limits (``SlackRateLimits``, on ``clock``, in seconds).
    """

    def __init__(
        self,
        bot_token: str = BOT_TOKEN,
        app_token: str = APP_TOKEN,
        *,
        enforce_limits: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.bot_token = bot_token
        self.app_token = app_token
        self.scopes: list[str] | None = list(BOT_SCOPES)
        self.socket = SocketModeHub()
        self.calls: list[SlackCall] = []
        self.messages: dict[str, FakeMessage] = {}
        self.ephemerals: list[SlackCall] = []
        self.admins: set[str] = set()
        self.files: dict[str, dict[str, Any]] = {}
        self.file_bytes: dict[str, bytes] = {}
        self.file_content_types: dict[str, str] = {}
        self.download_auth_headers: list[str | None] = []
        self.download_paths: list[str] = []
        self.file_scripts: dict[str, FileScript] = {}
        self.response_posts: list[ResponseUrlPost] = []
        self.threads = SlackThreads()
        self.streams = SlackStreams()  # chat.startStream / appendStream / stopStream (slack_streams)
        self.assistant = AssistantThreads()  # assistant.threads.* and conversations.info (slack_assistant)
        self._faults: dict[str, deque[_Fault]] = {}
        self._ts_counter = 0
        self.limits: SlackRateLimits | None = SlackRateLimits(clock) if enforce_limits else None
        self.rate_limited: Counter[str] = Counter()  # 429s the limits gave, per method
        self.rate_limited_calls: list[SlackCall] = []  # those calls (also in ``calls``)

    # ------------------------------------------------------------------ lifecycle

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("POST", "/api/{method}", self._handle_api)
        app.router.add_route("GET", "/api/{method}", self._handle_api)
        app.router.add_route("GET", "/files-pri/{path:.*}", self._handle_file)
        app.router.add_route("POST", "/response-url/{key}", self._handle_response_url)
        app.router.add_route("GET", SOCKET_PATH, self.socket.handle)
        app.on_shutdown.append(self.socket.close_all)
        return app

    # ------------------------------------------------------------------ addresses

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return self.origin

    @property
    def api_url(self) -> str:
        """Value for the bot's ``SLACK_API_URL`` / slack_sdk ``base_url`` (ends with ``/api/``)."""
        return f"{self.base_url}/api/"

    def file_url(self, path: str) -> str:
        """URL under which ``file_bytes[path]`` is served (needs the bot token)."""
        return f"{self.base_url}/files-pri/{path}"

    def response_url(self, key: str = "1") -> str:
        """A slash-command ``response_url`` whose POSTs are recorded in ``response_posts``."""
        return f"{self.base_url}/response-url/{key}"

    @property
    def socket_url(self) -> str:
        """Base of the Socket Mode websocket URL (``apps.connections.open`` adds a ``ticket``)."""
        return f"ws://{self.host}:{self.port}{SOCKET_PATH}"

    # ------------------------------------------------------------------ Socket Mode helpers

    @property
    def socket_connected(self) -> bool:
        """True while a Socket Mode client is connected and has been sent ``hello``."""
        return self.socket.connected

    @property
    def socket_acks(self) -> list[str]:
        """Envelope ids the Socket Mode client acknowledged, in order."""
        return [ack.envelope_id for ack in self.socket.acks]

    async def push_event(
        self, body: Mapping[str, Any], retry_attempt: int = 0, retry_reason: str = ""
    ) -> str:
        """Send an ``events_api`` envelope around the ``event_callback`` ``body``; returns its envelope id."""
        return await self.socket.push(
            "events_api", body, retry_attempt=retry_attempt, retry_reason=retry_reason
        )

    # ------------------------------------------------------------------ test helpers

    def calls_to(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]

    def messages_in(
        self, channel: str, thread_ts: str | None = None, *, include_deleted: bool = False
    ) -> list[FakeMessage]:
        """Messages the bot posted in ``channel`` in posting order.

        With ``thread_ts`` only replies in that thread; without it every message in the channel.
        """
        return [
            m
            for m in self.messages.values()
            if m.channel == channel
            and (thread_ts is None or m.thread_ts == thread_ts)
            and (include_deleted or not m.deleted)
        ]

    def add_file(
        self,
        file_id: str,
        data: bytes,
        *,
        name: str = "image.png",
        mimetype: str = "image/png",
        filetype: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Register a private file (``files.info`` metadata + downloadable bytes); returns the file object."""
        path = f"{TEAM_ID}-{file_id}/{name}"
        self.file_bytes[path] = data
        self.file_content_types[path] = mimetype
        obj: dict[str, Any] = {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype or name.rsplit(".", 1)[-1].lower(),
            "size": len(data),
            "url_private": self.file_url(path),
            "url_private_download": self.file_url(path) + "?download=1",
            "is_external": False,
            "mode": "hosted",
        }
        obj.update(extra)
        self.files[file_id] = obj
        return obj

    def script_file(
        self,
        path: str,
        *,
        redirect_to: str | None = None,
        redirect_status: int = 302,
        delay: float = 0.0,
        chunked: bool = False,
    ) -> str:
        """Script downloads of ``path`` (relative to ``/files-pri/``); returns its URL.

        ``redirect_to``: answer ``redirect_status`` with that ``Location`` (whatever the token).
        ``delay``: wait that many seconds before answering. ``chunked``: send the bytes in chunks without
        ``Content-Length``, so the declared size can differ from what is sent.
        """
        self.file_scripts[path] = FileScript(
            redirect_to=redirect_to, redirect_status=redirect_status, delay=delay, chunked=chunked
        )
        return self.file_url(path)

    def fail_next(self, method: str, status: int = 429, retry_after: int = 1, times: int = 1) -> None:
        """Next ``times`` calls to ``method`` answer HTTP ``status`` (429: ``ratelimited`` + Retry-After)."""
        error = "ratelimited" if status == 429 else "fatal_error"
        self._faults.setdefault(method, deque()).append(
            _Fault(status=status, retry_after=retry_after, error=error, times=times)
        )

    def enforce_slack_limits(self, clock: Callable[[], float] = time.monotonic) -> SlackRateLimits:
        """Enforce Slack's rate limits from now on, with fresh budgets; returns the limits."""
        self.limits = SlackRateLimits(clock)
        return self.limits

    def error_next(self, method: str, error: str = "msg_too_long", times: int = 1) -> None:
        """Make the next ``times`` calls to ``method`` answer 200 ``{"ok": false, "error": error}``."""
        self._faults.setdefault(method, deque()).append(_Fault(status=200, error=error, times=times))

    def _describe(self) -> str:
        lines = [f"\nFakeSlack saw {len(self.calls)} call(s):"]
        for c in self.calls[-20:]:
            body = {k: v for k, v in c.body.items() if k in ("channel", "ts", "thread_ts", "text", "user")}
            text = str(body)
            lines.append(f"  {c.method} {text[:200]}")
        lines.append(f"messages: { {ts: m.text[:80] for ts, m in self.messages.items()} }")
        if self.socket.tickets:
            lines.append(self.socket.describe().strip())
        if self.rate_limited:
            lines.append(f"rate limited (429): {dict(self.rate_limited)}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ handlers

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.bot_token}"

    def _next_ts(self) -> str:
        self._ts_counter += 1
        micros = 1_700_000_000_000_000 + self._ts_counter * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    @staticmethod
    async def _read_params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return params
        if request.content_type == "application/json":
            data = await request.json()
            if isinstance(data, dict):
                params.update(data)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "content": value.file.read(),
                    }
                else:
                    params[key] = value
        return params

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.popleft()
        return fault

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params = await self._read_params(request)
        except ValueError:
            params = {}
            self.calls.append(SlackCall(method=method, body=params, at=time.monotonic()))
            return _json({"ok": False, "error": "invalid_json"})
        call = SlackCall(method=method, body=params, at=time.monotonic())
        self.calls.append(call)
        if method == "apps.connections.open":
            return self._apps_connections_open(request)
        if not self._authorized(request):
            return _json({"ok": False, "error": "invalid_auth"})
        fault = self._take_fault(method)
        if fault is not None:
            if fault.status != 200:
                headers = {}
                if fault.status == 429 and fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                return _json({"ok": False, "error": fault.error}, status=fault.status, headers=headers)
            return _json({"ok": False, "error": fault.error})
        wait = self.limits.admit(method, params) if self.limits is not None else 0.0
        if wait > 0:
            self.rate_limited[method] += 1
            self.rate_limited_calls.append(call)
            headers = {"Retry-After": retry_after_header(wait)}
            return _json({"ok": False, "error": "ratelimited"}, status=429, headers=headers)
        handler = self._methods.get(method)
        if handler is None:
            return _json({"ok": True})
        # Real Slack lists the token's scopes in this header of every Web API answer (Bolt reads it from
        # auth.test's); None leaves it out.
        scopes = {"x-oauth-scopes": ",".join(self.scopes)} if self.scopes is not None else {}
        return _json(handler(self, params), headers=scopes)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        self.download_auth_headers.append(request.headers.get("Authorization"))
        self.download_paths.append(request.path_qs)
        script = self.file_scripts.get(path, FileScript())
        if script.delay:
            await asyncio.sleep(script.delay)
        if script.redirect_to is not None:
            return web.Response(status=script.redirect_status, headers={"Location": script.redirect_to})
        if not self._authorized(request):
            # Real Slack answers an unauthenticated file download with its HTML sign-in page.
            return web.Response(status=200, text=_LOGIN_PAGE, content_type="text/html")
        data = self.file_bytes.get(path)
        if data is None:
            return web.Response(status=404, text="not found", content_type="text/plain")
        content_type = self.file_content_types.get(path, "application/octet-stream")
        if not script.chunked:
            return web.Response(status=200, body=data, headers={"Content-Type": content_type})
        response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for start in range(0, len(data), 64 * 1024):
                await response.write(data[start : start + 64 * 1024])
            await response.write_eof()
        except (ConnectionResetError, RuntimeError):
            pass  # the client hung up mid-body (e.g. it stopped at its size limit)
        return response

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        try:
            params = await self._read_params(request)
        except ValueError:
            params = {"_raw": await request.text()}
        self.response_posts.append(ResponseUrlPost(key=key, body=params, at=time.monotonic()))
        return web.Response(status=200, text="ok", content_type="text/plain")

    # ------------------------------------------------------------------ Web API methods

    def _apps_connections_open(self, request: web.Request) -> web.Response:
        """Only the app-level token may open a connection (Slack refuses a bot token by its type)."""
        auth = request.headers.get("Authorization", "")
        if auth == f"Bearer {self.bot_token}":
            return _json({"ok": False, "error": "not_allowed_token_type"})
        if auth != f"Bearer {self.app_token}":
            return _json({"ok": False, "error": "invalid_auth"})
        fault = self._take_fault("apps.connections.open")
        if fault is not None:
            retry = fault.status == 429 and fault.retry_after is not None
            headers = {"Retry-After": str(fault.retry_after)} if retry else {}
            return _json({"ok": False, "error": fault.error}, status=fault.status, headers=headers)
        return _json({"ok": True, "url": f"{self.socket_url}?ticket={self.socket.issue_ticket()}"})

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://test.slack.com/",
            "team": "Test",
            "team_id": TEAM_ID,
            "user": "glmbot",
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "is_enterprise_install": False,
        }

    @staticmethod
    def _message_json(msg: FakeMessage) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "message",
            "user": msg.user,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "text": msg.text,
            "ts": msg.ts,
            "team": TEAM_ID,
        }
        if msg.thread_ts is not None:
            out["thread_ts"] = msg.thread_ts
        if msg.blocks is not None:
            out["blocks"] = msg.blocks
        return out

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        text = str(params.get("text") or "")
        if not text and not params.get("blocks") and not params.get("attachments"):
            return {"ok": False, "error": "no_text"}
        if (error := blocks_error(params.get("blocks"))) is not None:
            return {"ok": False, "error": error}
        ts = self._next_ts()
        thread_ts = params.get("thread_ts") or None
        now = time.monotonic()
        msg = FakeMessage(
            ts=ts,
            channel=str(channel),
            thread_ts=str(thread_ts) if thread_ts else None,
            text=text,
            history=[shown(text, params.get("blocks"))],
            blocks=params.get("blocks"),
            posted_at=now,
            updated_at=now,
        )
        self.messages[ts] = msg
        return {"ok": True, "channel": msg.channel, "ts": ts, "message": self._message_json(msg)}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        ts = str(params.get("ts") or "")
        msg = self.messages.get(ts)
        if msg is None or msg.deleted or msg.channel != params.get("channel"):
            return {"ok": False, "error": "message_not_found"}
        if (error := blocks_error(params.get("blocks"))) is not None:
            return {"ok": False, "error": error}
        if "text" in params and params["text"] is not None:
            msg.text = str(params["text"])
        if "blocks" in params:
            msg.blocks = params["blocks"]
        msg.history.append(msg.shown)
        msg.updated_at = time.monotonic()
        return {
            "ok": True,
            "channel": msg.channel,
            "ts": ts,
            "text": msg.text,
            "message": self._message_json(msg),
        }

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        ts = str(params.get("ts") or "")
        msg = self.messages.get(ts)
        if msg is None or msg.deleted or msg.channel != params.get("channel"):
            return {"ok": False, "error": "message_not_found"}
        msg.deleted = True
        return {"ok": True, "channel": msg.channel, "ts": ts}

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        self.ephemerals.append(SlackCall(method="chat.postEphemeral", body=params, at=time.monotonic()))
        return {"ok": True, "message_ts": self._next_ts()}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = params.get("user")
        if not user:
            return {"ok": False, "error": "user_not_found"}
        uid = str(user)
        return {
            "ok": True,
            "user": {
                "id": uid,
                "team_id": TEAM_ID,
                "name": uid.lower(),
                "real_name": f"User {uid}",
                "deleted": False,
                "is_admin": uid in self.admins,
                "is_owner": False,
                "is_primary_owner": False,
                "is_bot": uid == BOT_USER_ID,
                "tz": "UTC",
                "profile": {"display_name": uid.lower(), "real_name": f"User {uid}"},
            },
        }

    def _files_info(self, params: dict[str, Any]) -> dict[str, Any]:
        file_obj = self.files.get(str(params.get("file") or ""))
        if file_obj is None:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": file_obj}

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, thread_ts = str(params.get("channel") or ""), str(params.get("ts") or "")
        posted = [self._message_json(m) for m in self.messages_in(channel, thread_ts)] if channel else []
        return self.threads.replies(params, posted)

    _methods: ClassVar[dict[str, Callable[[FakeSlack, dict[str, Any]], dict[str, Any]]]] = {
        "auth.test": _auth_test,
        "chat.postMessage": _chat_post_message,
        "chat.update": _chat_update,
        "chat.delete": _chat_delete,
        "chat.postEphemeral": _chat_post_ephemeral,
        "users.info": _users_info,
        "files.info": _files_info,
        "conversations.replies": _conversations_replies,
        "assistant.threads.setStatus": lambda fake, params: fake.assistant.set_status(params),
        "assistant.threads.setTitle": lambda fake, params: fake.assistant.set_title(params),
        "assistant.threads.setSuggestedPrompts": lambda fake, params: fake.assistant.set_suggested_prompts(
            params
        ),
        "conversations.info": lambda fake, params: fake.assistant.conversations_info(params),
        "chat.startStream": lambda fake, params: fake.streams.start(fake, params),
        "chat.appendStream": lambda fake, params: fake.streams.append(fake, params),
        "chat.stopStream": lambda fake, params: fake.streams.stop(fake, params),
    }
