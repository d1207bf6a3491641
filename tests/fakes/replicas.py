"""Several real bot processes (replicas) on one Redis, for multi-replica scenarios. pytest-free.

* ``AnsweringModel``: the fake model, answering each request according to its newest user message, so
  every question has an answer of its own and a test can tell which reply answers which message.
* ``ReplicaPool``: ``python -m bot serve --http`` replicas (``bench.process``) in numbered slots, which
  a test kills (SIGKILL) and restarts; events go only to live slots, as a load balancer would send them.
* ``post_event``: one signed Events API POST, as Slack sends it (optionally as a retry).
* ``work_left``, ``work_marks_left``, ``replies_in_progress``, ``thread_history``, ``thread_line``: what
  Redis says about the work. Work keys are found by their names (``glmbot:{work…}:replies``: one stream
  for all, or one per workspace), an entry's state next to its stream (``…:state:<key>``,
  ``bot.work.queue``).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as redis
from aiohttp import web

from bench.process import REPO_ROOT, Replica, log_events, replica, tail
from bot.core.domain import ThreadKey
from bot.store.history import history_key
from bot.work.order import turns_key
from bot.work.queue import GROUP
from tests.fakes.bot_env import fake_backed_settings, is_bot_setting
from tests.fakes.constants import MODEL_API_KEY, SIGNING_SECRET
from tests.fakes.model_api import FakeModel, ModelCall, Reply
from tests.fakes.signing import signed_headers
from tests.fakes.slack_api import FakeSlack

__all__ = [
    "AnsweringModel",
    "ReplicaPool",
    "newest_text",
    "post_event",
    "replica_environment",
    "replies_in_progress",
    "thread_history",
    "thread_line",
    "work_left",
    "work_marks_left",
    "work_streams",
]

WORK_STREAMS = "glmbot:{work*}:replies"
ACK_TIMEOUT = 10.0  # seconds for one event POST (Slack gives 3 s; a loaded 2-core machine needs more)


def newest_text(call: ModelCall) -> str:
    """The text of the last user message of a model request ("" when there is none)."""
    for message in reversed(call.messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


class AnsweringModel(FakeModel):
    """A fake model whose reply is ``reply_for(newest user text)`` (scripted replies are not used)."""

    def __init__(self, reply_for: Callable[[str], Reply], api_key: str = MODEL_API_KEY) -> None:
        super().__init__(api_key=api_key)
        self.reply_for = reply_for

    async def _handle_completions(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        parsed: Any = json.loads(raw) if raw else None
        body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        call = ModelCall(body=body, headers={k.lower(): v for k, v in request.headers.items()})
        self.requests.append(call)
        if not self._authorized(request):
            return self._unauthorized()
        reply = self.reply_for(newest_text(call))
        call.reply = reply
        if not body.get("stream"):
            return self._complete_json(call, reply, body)
        return await self._stream(request, call, reply, body)


def replica_environment(
    slack: FakeSlack, model: FakeModel, redis_url: str, **settings: str
) -> dict[str, str]:
    """The replicas' environment: nothing of the bot's inherited, the fakes, Redis, then ``settings``."""
    env = {name: value for name, value in os.environ.items() if not is_bot_setting(name)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(fake_backed_settings(slack, model, redis_url))
    env.update(settings)
    return env


class ReplicaPool:
    """Replicas in slots 0..n-1; a killed slot is dead until its restart is healthy (it is not sent to).

    Every process is stopped (SIGTERM, then SIGKILL) when ``stack`` closes. Logs go to ``workdir``, one
    file per process started (``bot-<n>.log``).
    """

    def __init__(self, env: dict[str, str], workdir: Path, stack: AsyncExitStack) -> None:
        self._env = env
        self._workdir = workdir
        self._stack = stack
        self._started = 0
        self.slots: list[Replica] = []
        self.live: set[int] = set()
        self.retired: list[Replica] = []  # killed processes, for their logs
        self.restarts: list[asyncio.Task[None]] = []

    async def _launch(self) -> Replica:
        index, self._started = self._started, self._started + 1
        return await self._stack.enter_async_context(replica(index, self._env, self._workdir))

    async def start(self, count: int) -> None:
        """Start ``count`` replicas at once; returns when all are healthy."""
        self.slots = list(await asyncio.gather(*(self._launch() for _ in range(count))))
        self.live = set(range(count))

    def pick(self, preferred: int, avoid: int | None = None) -> int | None:
        """The first live slot from ``preferred`` on (cyclically) that is not ``avoid``; None if none."""
        for step in range(len(self.slots)):
            slot = (preferred + step) % len(self.slots)
            if slot in self.live and slot != avoid:
                return slot
        return None

    async def kill(self, slot: int) -> None:
        """SIGKILL the slot's process (no more events go to it), and start its replacement meanwhile."""
        self.live.discard(slot)
        victim = self.slots[slot]
        self.retired.append(victim)
        await victim.kill()
        self.restarts.append(asyncio.create_task(self._restart(slot)))

    async def _restart(self, slot: int) -> None:
        self.slots[slot] = await self._launch()  # a new port; healthy when this returns
        self.live.add(slot)

    async def restarted(self, timeout: float) -> None:  # noqa: ASYNC109 - a bound on a wait
        """Wait (at most ``timeout`` s) until every restart is done; raises what a restart raised."""
        if self.restarts:
            await asyncio.wait_for(asyncio.gather(*self.restarts), timeout)

    def processes(self) -> list[Replica]:
        """Every process started: the killed ones, then those in the slots."""
        return [*self.retired, *self.slots]

    def log_events(self) -> Counter[str]:
        """All processes' log lines, counted by ``event``."""
        total: Counter[str] = Counter()
        for process in self.processes():
            total.update(log_events(process.log_path))
        return total

    def describe(self, lines: int = 8) -> str:
        """The last log lines of every process (for failure messages)."""
        return "\n".join(f"--- {p.log_path.name}\n{tail(p.log_path, lines)}" for p in self.processes())


async def post_event(http: httpx.AsyncClient, url: str, body: bytes, retry_num: int | None = None) -> int:
    """POST a signed Events API body to ``url``/slack/events; its HTTP status, 0 when no answer came."""
    headers = {
        "Content-Type": "application/json",
        **signed_headers(SIGNING_SECRET, body, retry_num=retry_num),
    }
    try:
        response = await http.post(f"{url}/slack/events", content=body, headers=headers, timeout=ACK_TIMEOUT)
    except httpx.TransportError:
        return 0
    return response.status_code


async def work_streams(client: redis.Redis) -> list[str]:
    """The work streams in Redis: ``glmbot:{work}:replies``, or one ``glmbot:{work:<team>}:replies`` each."""
    return sorted([str(key) async for key in client.scan_iter(match=WORK_STREAMS, _type="stream")])


async def work_left(client: redis.Redis) -> int:
    """Work entries not done yet (taken on and not delivered), over every work stream."""
    return sum([int(await client.xlen(stream)) for stream in await work_streams(client)])


async def replies_in_progress(client: redis.Redis) -> Counter[int]:
    """Process id -> how many replies that process has begun generating and not finished.

    A work entry pending in the consumer group (read, not acknowledged) whose state holds a reservation
    (``charge``) is a reply that is generating; its consumer's name holds the process id
    (``host-pid-suffix``, ``handlers.front_end.consumer_name``).
    """
    busy: Counter[int] = Counter()
    for stream in await work_streams(client):
        for entry in await client.xpending_range(stream, GROUP, "-", "+", 1000):
            found = await client.xrange(stream, entry["message_id"], entry["message_id"])
            if not found:
                continue
            key = str((found[0][1] or {}).get("key", ""))
            state = stream.removesuffix(":replies") + f":state:{key}"
            if await client.hget(state, "charge"):
                busy[int(str(entry["consumer"]).rsplit("-", 2)[-2])] += 1
    return busy


async def thread_history(client: redis.Redis, thread: ThreadKey) -> list[dict[str, Any]]:
    """The thread's stored turns, oldest first: dicts with ``role``, ``text``, ``turn``."""
    return [json.loads(entry) for entry in await client.lrange(history_key(thread), 0, -1)]


async def thread_line(client: redis.Redis, thread: ThreadKey) -> list[str]:
    """The timestamps of the messages in the thread's line (taken on, not yet answered), in order."""
    return [str(ts) for ts in await client.zrange(turns_key(thread), 0, -1)]


async def work_marks_left(client: redis.Redis) -> list[str]:
    """Work entries' ``state`` and ``pending`` keys still in Redis (each is deleted when its work is done)."""
    found: list[str] = []
    for kind in ("state", "pending"):
        found += [str(key) async for key in client.scan_iter(match=f"glmbot:{{work*}}:{kind}:*")]
    return sorted(found)
