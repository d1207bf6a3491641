"""Counting the bot's Redis commands, twice.

As sent by the bot: a ``MONITOR`` connection to the bench's own redis-server, open for the round,
counts lines whose source is a client address other than the bench's own; an EVALSHA counts as one.
As run by the server: INFO commandstats, which also counts every command a Lua script runs.

Each EVALSHA is named by the bot's Lua script whose SHA1 it carries (``evalsha(history append)``,
``evalsha(work enqueue)``, ``evalsha(slack rate limit)``, ...; see ``SCRIPT_NAMES``).

The replicas' work runners block in XREADGROUP (one a second each) even when idle, so "Redis went
quiet" means: no command other than those for ``MONITOR_QUIET`` seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress

# The bot's Lua script sources: their SHA1s name the EVALSHAs in the counts.
from bot.billing.ledger import RESERVE_SCRIPT as QUOTA_RESERVE
from bot.billing.ledger import SETTLE_SCRIPT as QUOTA_SETTLE
from bot.billing.ledger import STATUS_SCRIPT as QUOTA_STATUS
from bot.store.history import APPEND_SCRIPT as HISTORY_APPEND
from bot.work.queue import BEGIN_SCRIPT as WORK_BEGIN
from bot.work.queue import DONE_SCRIPT as WORK_DONE
from bot.work.queue import ENQUEUE_SCRIPT as WORK_ENQUEUE
from bot.work.queue import RECORD_SCRIPT as WORK_RECORD
from bot.work.queue import RENEW_SCRIPT as WORK_RENEW
from handlers.reply.limits import RATE_LIMIT_SCRIPT as SLACK_RATE_LIMIT
from tests.fakes.redis_server import RedisServer

# Commands the harness itself sends to Redis between two readings of INFO commandstats: the CONFIG
# RESETSTAT of RedisServer.flush() and the MONITOR of the round's monitor connection.
_HARNESS_REDIS_COMMANDS = {"config|resetstat": 1, "monitor": 1}
# The Redis on this port may be someone's real one: the bench never connects to it.
_FORBIDDEN_REDIS_PORT = 6379
MONITOR_TIMEOUT = 5.0  # connecting, MONITOR's +OK and closing
MONITOR_QUIET = 0.5  # after the last reply settles: stop once Redis was idle this long (s) ...
MONITOR_QUIET_LIMIT = 10.0  # ... or after this many seconds
# Commands an idle replica sends anyway (its read loop): they do not count as activity.
_IDLE_COMMANDS = frozenset({"xreadgroup"})
_MONITOR_READ = 1 << 16
_MONITOR_LINE_HEAD = 1024  # only a line's head is parsed (source and command); the rest is skipped
_MONITOR_MAX_NAMES = 200  # distinct command names kept; further ones are counted as "(other)"
# "+<unix time> [<db> <source>] "<command>" "<arg>" ..." where <source> is ip:port, unix:<path> or lua.
_MONITOR_LINE = re.compile(rb'^\+\d+\.\d+ \[\d+ ([^\]]+)\] "((?:[^"\\]|\\.)*)"(?: "((?:[^"\\]|\\.)*)")?')
# Commands whose first argument is a subcommand, named "container|subcommand" as commandstats does.
_CONTAINER_COMMANDS = frozenset(
    {
        "acl",
        "client",
        "cluster",
        "command",
        "config",
        "function",
        "latency",
        "memory",
        "module",
        "object",
        "pubsub",
        "script",
        "slowlog",
        "xinfo",
        "xgroup",
    }
)
_CMDSTAT_PREFIX = "cmdstat_"


def _sha1(source: str) -> str:
    """The SHA1 EVALSHA carries for a Lua source (as redis-py's register_script computes it)."""
    return hashlib.sha1(source.encode()).hexdigest()


# EVALSHA's first argument, the script's SHA1, -> the script's name in the counts.
SCRIPT_NAMES: dict[str, str] = {
    _sha1(HISTORY_APPEND): "history append",
    _sha1(QUOTA_RESERVE): "quota reserve",
    _sha1(QUOTA_SETTLE): "quota settle",
    _sha1(QUOTA_STATUS): "quota status",
    _sha1(WORK_ENQUEUE): "work enqueue",
    _sha1(WORK_BEGIN): "work begin",
    _sha1(WORK_DONE): "work done",
    _sha1(WORK_RENEW): "work renew",
    _sha1(WORK_RECORD): "work record",
    _sha1(SLACK_RATE_LIMIT): "slack rate limit",
}
RATE_LIMIT_COMMAND = f"evalsha({SCRIPT_NAMES[_sha1(SLACK_RATE_LIMIT)]})"


class MonitorCounts:
    """Counts of one MONITOR stream, fed raw bytes: commands by client sources vs. scripts' commands.

    An EVALSHA is counted as ``evalsha(<name>)`` when its SHA1 (its first argument) is in
    ``script_names``, else as ``evalsha(unknown <first 8 hex digits>)``.

    Memory is bounded: only the first ``_MONITOR_LINE_HEAD`` bytes of a line are kept and at most
    ``_MONITOR_MAX_NAMES`` command names are told apart.
    """

    def __init__(self, excluded_sources: set[str], script_names: dict[str, str] | None = None) -> None:
        self.excluded_sources = excluded_sources
        self.script_names = SCRIPT_NAMES if script_names is None else script_names
        self.sent: Counter[str] = Counter()
        self.script_lines = 0
        self.excluded_lines = 0
        self.unparsed_lines = 0
        self.last_line_at = time.monotonic()
        self.last_work_at = self.last_line_at  # the last line of a command not in _IDLE_COMMANDS
        self._head = bytearray()
        self._skipping = False  # inside an overlong line whose head was already counted

    def feed(self, data: bytes) -> None:
        # Arguments are quoted with \r and \n escaped, so a raw LF only ever ends a line.
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            if not self._skipping:
                self._head += data[start:end]
                self._line(bytes(self._head))
            self._head.clear()
            self._skipping = False
            start = end + 1
        if not self._skipping:
            self._head += data[start:]
            if len(self._head) > _MONITOR_LINE_HEAD:
                self._line(bytes(self._head[:_MONITOR_LINE_HEAD]))
                self._head.clear()
                self._skipping = True

    def _line(self, raw: bytes) -> None:
        self.last_line_at = time.monotonic()
        found = _MONITOR_LINE.match(raw.removesuffix(b"\r"))
        if found is None:
            self.unparsed_lines += 1
            return
        source = found.group(1).decode(errors="replace")
        if source == "lua":
            self.script_lines += 1
        elif source in self.excluded_sources:
            self.excluded_lines += 1
        elif ":" in source:  # ip:port or unix:<path>: a client connection
            name = self._name(found.group(2), found.group(3))
            self.sent[name] += 1
            if name not in _IDLE_COMMANDS:
                self.last_work_at = self.last_line_at
        else:
            self.unparsed_lines += 1

    def _name(self, command: bytes, first_arg: bytes | None) -> str:
        name = command.decode(errors="replace").lower()[:64]
        if name in _CONTAINER_COMMANDS and first_arg:
            name = f"{name}|{first_arg.decode(errors='replace').lower()[:64]}"
        elif name in ("evalsha", "evalsha_ro") and first_arg is not None:
            sha = first_arg.decode(errors="replace").lower()
            name = f"{name}({self.script_names.get(sha) or f'unknown {sha[:8]}'})"
        if name not in self.sent and len(self.sent) >= _MONITOR_MAX_NAMES:
            return "(other)"
        return name


async def _read_monitor(reader: asyncio.StreamReader, counts: MonitorCounts) -> None:
    while data := await reader.read(_MONITOR_READ):
        counts.feed(data)


@asynccontextmanager
async def monitored_redis(port: int, excluded_sources: set[str]) -> AsyncIterator[MonitorCounts]:
    """A MONITOR connection to the bench's redis-server on 127.0.0.1:``port`` while the block runs.

    The monitor connection's own address is excluded as well (MONITOR itself is never echoed).
    """
    if port == _FORBIDDEN_REDIS_PORT:
        raise RuntimeError(f"refusing to MONITOR the Redis on port {port}: not the bench's own")
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), MONITOR_TIMEOUT)
    task: asyncio.Task[None] | None = None
    try:
        host, own_port = writer.get_extra_info("sockname")[:2]
        counts = MonitorCounts({*excluded_sources, f"{host}:{own_port}"})
        writer.write(b"MONITOR\r\n")
        await asyncio.wait_for(writer.drain(), MONITOR_TIMEOUT)
        answer = await asyncio.wait_for(reader.readline(), MONITOR_TIMEOUT)
        if answer.rstrip() != b"+OK":
            raise RuntimeError(f"MONITOR was refused: {answer[:200]!r}")
        task = asyncio.create_task(_read_monitor(reader, counts))
        yield counts
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        writer.close()
        with suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), MONITOR_TIMEOUT)


async def wait_redis_quiet(counts: MonitorCounts) -> None:
    """Until MONITOR showed no work for ``MONITOR_QUIET`` seconds, at most ``MONITOR_QUIET_LIMIT``."""
    deadline = time.monotonic() + MONITOR_QUIET_LIMIT
    while (now := time.monotonic()) < deadline and now - counts.last_work_at < MONITOR_QUIET:  # noqa: ASYNC110 - polls a timestamp
        await asyncio.sleep(0.05)


def bench_redis_sources(server: RedisServer) -> set[str]:
    """The address of the harness's own Redis connection (its INFO, FLUSHALL, CONFIG RESETSTAT)."""
    return {str(server.client.client_info()["addr"])}


def redis_command_stats(server: RedisServer, own: Mapping[str, int] | None = None) -> dict[str, int]:
    """Calls per command since the last reset, without the harness's own commands (and ``own``)."""
    stats = server.client.info("commandstats")
    harness = Counter(_HARNESS_REDIS_COMMANDS) + Counter(own or {})
    counts: dict[str, int] = {}
    for key, value in stats.items():
        if isinstance(value, dict):
            name = key.removeprefix(_CMDSTAT_PREFIX)
            calls = int(value.get("calls", 0)) - harness.get(name, 0)
            if calls > 0:
                counts[name] = calls
    return counts
