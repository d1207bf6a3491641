"""Load benchmark: N concurrent @mentions against the real bot process (HTTP mode, real Redis).

``python -m bench.run [--n 10 50 200] [--tokens-per-second 40] [--answer-chars 600] [--edit-interval 1.5]
[--edits-per-minute 50]``

This process runs a real ``redis-server`` (subprocess), the fake Slack Web API and the fake model server
(in this process's event loop) and the bot as a subprocess (``python -m bot serve --http``). For each N it
sends N signed ``app_mention`` events at once, each in its own channel, lets the fake model stream a
``--answer-chars`` answer at ``--tokens-per-second`` (4 characters per token), waits until every reply
shows its final text in the fake Slack (or a deadline passes) and prints one markdown table row.

Each mention comes from its own user (one user per thread), so the bot's per-user spend quota never
refuses a reply. Redis commands are counted twice: as sent by the bot (a ``MONITOR`` connection to the
bench's own redis-server, open for the round, counting lines whose source is a client address other
than the bench's own; an EVALSHA counts as one) and as run by the server (INFO commandstats, which also
counts every command a Lua script runs). Each EVALSHA is named by the bot's Lua script whose SHA1 it
carries (``evalsha(history append)``, ``evalsha(quota reserve)``, ``evalsha(quota settle)``,
``evalsha(edit budget)``). The target is at most 8 commands per reply outside edit pacing, so the main
column leaves out the edit-budget EVALSHAs (one before every interim ``chat.update``, whose number grows
with the stream's length) and they get a column of their own. ``--edits-per-minute`` is the bot's
SLACK_EDITS_PER_MINUTE, the workspace-wide budget of interim edits.

Everything listens on 127.0.0.1; every wait has a deadline; everything started is stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import math
import os
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bot.billing.lua_scripts import RESERVE as QUOTA_RESERVE
from bot.billing.lua_scripts import SETTLE as QUOTA_SETTLE
from bot.settings import Settings
from bot.store.history import APPEND_SCRIPT as HISTORY_APPEND
from handlers.reply.budget import TAKE_SCRIPT as EDIT_BUDGET_TAKE
from handlers.reply.mrkdwn import to_mrkdwn
from handlers.reply.streamer import MESSAGE_LIMIT, PLACEHOLDER, TYPING_CURSOR
from tests.fakes.bot_env import fake_backed_settings, is_bot_setting
from tests.fakes.bot_process import free_port
from tests.fakes.constants import BOT_TOKEN, BOT_USER_ID, MODEL_API_KEY, SIGNING_SECRET
from tests.fakes.model_api import FakeModel, ModelCall, Reply
from tests.fakes.redis_server import RedisServer
from tests.fakes.signing import event_body, signed_headers
from tests.fakes.slack_api import FakeSlack

REPO_ROOT = Path(__file__).resolve().parent.parent
CHARS_PER_TOKEN = 4
HEALTH_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
ACK_TIMEOUT = 30.0
POLL_INTERVAL = 0.1
# Settings the bot reads; inherited values would skew the run, so they are dropped from its environment.
# Commands the harness itself sends to Redis between two readings of INFO commandstats: the CONFIG
# RESETSTAT of RedisServer.flush() and the MONITOR of the round's monitor connection.
_HARNESS_REDIS_COMMANDS = {"config|resetstat": 1, "monitor": 1}
# The Redis on this port may be someone's real one: the bench never connects to it.
_FORBIDDEN_REDIS_PORT = 6379
MONITOR_TIMEOUT = 5.0  # connecting, MONITOR's +OK and closing
MONITOR_QUIET = 0.5  # after the last reply settles: stop once Redis was idle this long ...
MONITOR_QUIET_LIMIT = 10.0  # ... or after this many seconds
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
_OVER_QUOTA_MARKER = "spend limit"  # in bot.errors.user_message(QuotaExceeded)
_QUOTA_NOTICE_MARKER = "_You have used "  # bot.settlement.quota_notice
_CMDSTAT_PREFIX = "cmdstat_"
# The bot's default SLACK_EDITS_PER_MINUTE, read from its settings so the two cannot drift apart.
DEFAULT_EDITS_PER_MINUTE = int(Settings.model_fields["slack_edits_per_minute"].default)


def _sha1(source: str) -> str:
    """The SHA1 EVALSHA carries for a Lua source (as redis-py's register_script computes it)."""
    return hashlib.sha1(source.encode()).hexdigest()


# EVALSHA's first argument, the script's SHA1, -> the script's name in the counts.
SCRIPT_NAMES: dict[str, str] = {
    _sha1(HISTORY_APPEND): "history append",
    _sha1(QUOTA_RESERVE): "quota reserve",
    _sha1(QUOTA_SETTLE): "quota settle",
    _sha1(EDIT_BUDGET_TAKE): "edit budget",
}
EDIT_BUDGET_COMMAND = f"evalsha({SCRIPT_NAMES[_sha1(EDIT_BUDGET_TAKE)]})"
_VOCABULARY = (
    "the model reads your question and answers with care about images charts code tables "
    "tokens latency threads channels messages context memory quota streaming edits"
)


@dataclass(frozen=True, slots=True)
class Options:
    """Command-line options."""

    ns: tuple[int, ...]
    tokens_per_second: float
    answer_chars: int
    edit_interval: float
    redis_max_connections: int | None = None
    edits_per_minute: int = DEFAULT_EDITS_PER_MINUTE


@dataclass(slots=True)
class Harness:
    """What every round needs: the fakes, Redis, the bot process and the answer it should show."""

    options: Options
    slack: FakeSlack
    model: FakeModel
    redis: RedisServer
    bot: asyncio.subprocess.Process
    bot_url: str
    bot_log: Path
    expected_text: str  # the reply's final Slack text: to_mrkdwn(answer)


@dataclass(slots=True)
class RoundResult:
    """Measurements of one round of N concurrent mentions."""

    n: int
    ack_ms: list[float]
    failed_acks: int
    first_text_ms: list[float]
    completed: int
    failed_replies: int
    unsettled: int
    slack_calls: int
    slack_updates: int
    redis_sent: dict[str, int]  # commands the bot sent (MONITOR, client sources); EVALSHA by script
    redis_server: dict[str, int]  # commands the server ran, scripts' included (INFO commandstats)
    redis_script_lines: int  # MONITOR lines of commands run by Lua scripts
    redis_bench_lines: int  # MONITOR lines from the bench's own connection (left out of redis_sent)
    redis_unparsed_lines: int  # MONITOR lines not understood (should be 0)
    over_quota: int  # replies that ended in the over-quota message
    quota_notices: int  # replies that ended with the 80 % quota notice
    failure_texts: dict[str, int]  # how replies that did not show the answer ended (truncated)
    bot_cpu_seconds: float
    bot_peak_rss_mb: float
    bench_cpu_seconds: float
    wall_seconds: float
    aborted_streams: int
    bot_log_lines: int

    @property
    def edit_budget_checks(self) -> int:
        """EVALSHAs of the edit-budget script: one before every interim ``chat.update``."""
        return self.redis_sent.get(EDIT_BUDGET_COMMAND, 0)

    @property
    def redis_sent_excl_edit_pacing(self) -> int:
        """Commands the bot sent, without the edit-budget checks."""
        return sum(self.redis_sent.values()) - self.edit_budget_checks


# ---------------------------------------------------------------------------------------------- options


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="Load benchmark of the bot in HTTP mode."
    )
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50, 200], help="concurrent mentions")
    parser.add_argument("--tokens-per-second", type=float, default=40.0, help="model streaming speed")
    parser.add_argument("--answer-chars", type=int, default=600, help="length of each answer")
    parser.add_argument("--edit-interval", type=float, default=1.5, help="bot's STREAM_EDIT_INTERVAL")
    parser.add_argument(
        "--redis-max-connections",
        type=int,
        default=None,
        help="append ?max_connections=K to the bot's REDIS_URL (default: the client library's own limit)",
    )
    parser.add_argument(
        "--edits-per-minute",
        type=int,
        default=DEFAULT_EDITS_PER_MINUTE,
        help="bot's SLACK_EDITS_PER_MINUTE, the workspace's interim-edit budget "
        f"(default: {DEFAULT_EDITS_PER_MINUTE}, the bot's own default)",
    )
    args = parser.parse_args(argv)
    if any(n < 1 or n > 2000 for n in args.n):
        parser.error("--n values must be between 1 and 2000")
    if not 0.5 <= args.tokens_per_second <= 10_000:
        parser.error("--tokens-per-second must be between 0.5 and 10000")
    if not 1 <= args.answer_chars <= MESSAGE_LIMIT:
        parser.error(f"--answer-chars must be between 1 and {MESSAGE_LIMIT} (one Slack message)")
    if args.edit_interval < 0.1:
        parser.error("--edit-interval must be at least 0.1 (the bot's minimum)")
    if args.edits_per_minute < 1:
        parser.error("--edits-per-minute must be at least 1 (the bot's minimum)")
    return Options(
        ns=tuple(args.n),
        tokens_per_second=args.tokens_per_second,
        answer_chars=args.answer_chars,
        edit_interval=args.edit_interval,
        redis_max_connections=args.redis_max_connections,
        edits_per_minute=args.edits_per_minute,
    )


def make_answer(chars: int) -> str:
    """A deterministic Markdown answer of exactly ``chars`` characters (paragraphs, bold, a list)."""
    words = _VOCABULARY.split()
    parts: list[str] = []
    length = 0
    for index in itertools.count():
        word = words[(index * 7) % len(words)]
        if index % 23 == 5:
            word = f"**{word}**"
        sep = " "
        if index % 61 == 60:
            sep = "\n\n"
        elif index % 61 in (40, 47):
            sep = "\n- "
        parts.append(word + sep)
        length += len(word) + len(sep)
        if length >= chars:
            break
    text = "".join(parts)[:chars]
    return text[:-1] + "." if text[-1].isspace() else text


def stream_seconds(options: Options) -> float:
    """How long the fake model takes to stream one answer."""
    chunks = math.ceil(options.answer_chars / CHARS_PER_TOKEN)
    return max(0, chunks - 1) / options.tokens_per_second


def round_deadline(options: Options, n: int) -> float:
    """A generous limit for one round: every reply should be done well before it."""
    return 60.0 + 3.0 * stream_seconds(options) + 0.25 * n


# ---------------------------------------------------------------------------------------------- processes


def bot_environment(
    slack: FakeSlack, model: FakeModel, redis_url: str, edit_interval: float, edits_per_minute: int
) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not is_bot_setting(name)}
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(
        {
            "PYTHONPATH": pythonpath,
            **fake_backed_settings(slack, model, redis_url),
            "STREAM_EDIT_INTERVAL": str(edit_interval),
            "SLACK_EDITS_PER_MINUTE": str(edits_per_minute),
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def bot_redis_url(server: RedisServer, options: Options) -> str:
    if options.redis_max_connections is None:
        return server.url
    return f"{server.url}?max_connections={options.redis_max_connections}"


@asynccontextmanager
async def bot_process(
    env: dict[str, str], port: int, log_path: Path, workdir: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m bot serve --http --port P`` with stdout/stderr to ``log_path``; SIGTERM on exit."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            "--http",
            "--port",
            str(port),
            env=env,
            cwd=workdir,  # an empty directory: no stray .env is read
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        yield process
    finally:
        await stop_process(process)


async def stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)


async def wait_healthy(
    session: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process, log_path: Path
) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"the bot exited with {process.returncode}:\n{tail(log_path)}")
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} not healthy after {HEALTH_TIMEOUT:.0f}s:\n{tail(log_path)}")


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def count_lines(path: Path) -> int:
    return len(path.read_bytes().splitlines())


# ---------------------------------------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (from /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """VmHWM of ``pid`` (the process's peak resident set so far) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------------------------------- MONITOR


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
            self.sent[self._name(found.group(2), found.group(3))] += 1
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
    """Until MONITOR showed nothing for ``MONITOR_QUIET`` seconds, at most ``MONITOR_QUIET_LIMIT``."""
    deadline = time.monotonic() + MONITOR_QUIET_LIMIT
    while (now := time.monotonic()) < deadline and now - counts.last_line_at < MONITOR_QUIET:  # noqa: ASYNC110 - polls a timestamp
        await asyncio.sleep(0.05)


def bench_redis_sources(server: RedisServer) -> set[str]:
    """The address of the harness's own Redis connection (its INFO, FLUSHALL, CONFIG RESETSTAT)."""
    return {str(server.client.client_info()["addr"])}


# ---------------------------------------------------------------------------------------------- one round


def reset_recordings(slack: FakeSlack, model: FakeModel) -> None:
    slack.calls.clear()
    slack.messages.clear()
    slack.ephemerals.clear()
    model.requests.clear()
    model.aborted_streams = 0


def redis_command_stats(server: RedisServer) -> dict[str, int]:
    """Calls per command since the last reset, without the harness's own commands."""
    stats = server.client.info("commandstats")
    counts: dict[str, int] = {}
    for key, value in stats.items():
        if isinstance(value, dict):
            name = key.removeprefix(_CMDSTAT_PREFIX)
            calls = int(value.get("calls", 0)) - _HARNESS_REDIS_COMMANDS.get(name, 0)
            if calls > 0:
                counts[name] = calls
    return counts


def channel_for(round_no: int, index: int) -> str:
    return f"CB{round_no:02d}{index:05d}"


def user_for(round_no: int, index: int) -> str:
    """One user per mention (each mention starts its own thread), so no user's quota runs out."""
    return f"UB{round_no:02d}{index:05d}"


def question_for(round_no: int, index: int) -> str:
    return f"benchmark question q{round_no:02d}x{index:05d}: how do streaming replies behave under load?"


_QUESTION_TAG = re.compile(r"q(\d{2})x(\d{5})")


def signed_mention(round_no: int, index: int) -> tuple[bytes, dict[str, str]]:
    """Body and headers of one signed ``app_mention`` event, as Slack would POST it."""
    ts = f"1800{round_no:02d}0000.{index:06d}"
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user_for(round_no, index),
        "text": f"<@{BOT_USER_ID}> {question_for(round_no, index)}",
        "ts": ts,
        "channel": channel_for(round_no, index),
        "event_ts": ts,
    }
    body = event_body(event, f"EvB{round_no:02d}{index:06d}")
    headers = {"Content-Type": "application/json", **signed_headers(SIGNING_SECRET, body)}
    return body, headers


async def post_event(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, float]:
    """POST one event; returns (HTTP status or 0 on a transport error, milliseconds to the response)."""
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        status = 0
    return status, (time.perf_counter() - started) * 1000


async def send_mentions(harness: Harness, round_no: int, n: int) -> list[tuple[int, float]]:
    """Send ``n`` signed mentions at once, each on its own connection; (status, ms) per event."""
    requests = [signed_mention(round_no, index) for index in range(n)]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=ACK_TIMEOUT)
    url = f"{harness.bot_url}/slack/events"
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        return await asyncio.gather(*(post_event(session, url, body, headers) for body, headers in requests))


def is_settled(text: str, expected_text: str) -> bool:
    """True when a reply will not change any more: the full answer, or e.g. a ``:warning:`` message."""
    return text == expected_text or (text != PLACEHOLDER and not text.endswith(TYPING_CURSOR))


def reply_states(slack: FakeSlack, channels: set[str], expected_text: str) -> tuple[set[str], set[str]]:
    """Channels whose reply shows the full answer, and channels whose reply is settled (in any way)."""
    done: set[str] = set()
    settled: set[str] = set()
    for message in slack.messages.values():
        if message.channel not in channels:
            continue
        if message.text == expected_text:
            done.add(message.channel)
        if is_settled(message.text, expected_text):
            settled.add(message.channel)
    return done, settled


def failure_texts(slack: FakeSlack, channels: set[str], expected_text: str) -> Counter[str]:
    """The final texts (first 100 characters) of replies that settled without the full answer."""
    texts: Counter[str] = Counter()
    for message in slack.messages.values():
        text = message.text
        if message.channel in channels and text != expected_text and is_settled(text, expected_text):
            texts[text[:100]] += 1
    return texts


async def wait_for_replies(
    harness: Harness,
    channels: set[str],
    timeout: float,  # noqa: ASYNC109 - a deadline for polling
) -> tuple[set[str], set[str]]:
    """Poll the fake Slack until every reply is settled or ``timeout`` seconds pass; (done, settled)."""
    deadline = time.monotonic() + timeout
    done: set[str] = set()
    settled: set[str] = set()
    while time.monotonic() < deadline:
        done, settled = reply_states(harness.slack, channels, harness.expected_text)
        if settled == channels:
            break
        await asyncio.sleep(POLL_INTERVAL)
    return done, settled


def first_chunk_by_channel(requests: list[ModelCall], round_no: int) -> dict[str, float]:
    """When the fake model sent the first content chunk, keyed by the channel the question came from."""
    out: dict[str, float] = {}
    for call in requests:
        if call.first_chunk_at is None or not call.messages:
            continue
        found = _QUESTION_TAG.search(json.dumps(call.messages[-1].get("content")))
        if found and int(found.group(1)) == round_no:
            out[channel_for(round_no, int(found.group(2)))] = call.first_chunk_at
    return out


def first_text_by_channel(slack: FakeSlack, channels: set[str]) -> dict[str, float]:
    """When Slack first received a non-placeholder text for each channel's reply."""
    out: dict[str, float] = {}
    for call in slack.calls:
        channel = call.body.get("channel")
        if call.method not in ("chat.update", "chat.postMessage") or channel not in channels:
            continue
        if call.body.get("text") not in (None, "", PLACEHOLDER) and channel not in out:
            out[str(channel)] = call.at
    return out


def first_text_latencies(harness: Harness, round_no: int, channels: set[str]) -> list[float]:
    tokens = first_chunk_by_channel(harness.model.requests, round_no)
    texts = first_text_by_channel(harness.slack, channels)
    return [(texts[c] - tokens[c]) * 1000 for c in channels if c in tokens and c in texts]


async def run_round(harness: Harness, round_no: int, n: int) -> RoundResult:
    bench_sources = bench_redis_sources(harness.redis)
    harness.redis.flush()  # FLUSHALL + CONFIG RESETSTAT
    reset_recordings(harness.slack, harness.model)
    channels = {channel_for(round_no, index) for index in range(n)}
    log_lines, cpu_before = count_lines(harness.bot_log), cpu_seconds(harness.bot.pid)

    async with monitored_redis(harness.redis.port or 0, bench_sources) as monitor:
        bench_before, started = time.process_time(), time.monotonic()
        acks = await send_mentions(harness, round_no, n)
        done, settled = await wait_for_replies(harness, channels, round_deadline(harness.options, n))
        wall = time.monotonic() - started
        bench_cpu = time.process_time() - bench_before
        await wait_redis_quiet(monitor)  # the last replies' commands may still be on their way
    redis_server = redis_command_stats(harness.redis)  # after MONITOR is closed: counts are final

    calls = [c for c in harness.slack.calls if c.method != "auth.test"]
    failures = failure_texts(harness.slack, channels, harness.expected_text)
    return RoundResult(
        n=n,
        ack_ms=[ms for status, ms in acks if status == 200],
        failed_acks=sum(1 for status, _ in acks if status != 200),
        first_text_ms=first_text_latencies(harness, round_no, channels),
        completed=len(done),
        failed_replies=len(settled - done),
        unsettled=n - len(settled),
        slack_calls=len(calls),
        slack_updates=sum(1 for c in calls if c.method == "chat.update"),
        redis_sent=dict(monitor.sent),
        redis_server=redis_server,
        redis_script_lines=monitor.script_lines,
        redis_bench_lines=monitor.excluded_lines,
        redis_unparsed_lines=monitor.unparsed_lines,
        over_quota=sum(k for text, k in failures.items() if _OVER_QUOTA_MARKER in text),
        quota_notices=sum(k for text, k in failures.items() if _QUOTA_NOTICE_MARKER in text),
        failure_texts=dict(failures),
        bot_cpu_seconds=cpu_seconds(harness.bot.pid) - cpu_before,
        bot_peak_rss_mb=peak_rss_mb(harness.bot.pid),
        bench_cpu_seconds=bench_cpu,
        wall_seconds=wall,
        aborted_streams=harness.model.aborted_streams,
        bot_log_lines=count_lines(harness.bot_log) - log_lines,
    )


# ---------------------------------------------------------------------------------------------- report


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


TABLE_HEADER = (
    "| N | ack p50 ms | ack p99 ms | 1st token→text p50 ms | 1st token→text p99 ms | complete "
    "| Slack calls/reply | chat.update/reply | Redis cmds/reply (sent, excl. edit pacing) "
    "| edit-budget checks/reply | Redis cmds/reply (server, incl. scripts) | bot CPU s | bot peak RSS MB "
    "| round s | bench CPU s |"
)


def table_row(r: RoundResult) -> str:
    cells = [
        str(r.n),
        fmt(percentile(r.ack_ms, 50), 1),
        fmt(percentile(r.ack_ms, 99), 1),
        fmt(percentile(r.first_text_ms, 50)),
        fmt(percentile(r.first_text_ms, 99)),
        f"{r.completed}/{r.n}",
        f"{r.slack_calls / r.n:.2f}",
        f"{r.slack_updates / r.n:.2f}",
        f"{r.redis_sent_excl_edit_pacing / r.n:.2f}",
        f"{r.edit_budget_checks / r.n:.2f}",
        f"{sum(r.redis_server.values()) / r.n:.2f}",
        f"{r.bot_cpu_seconds:.2f}",
        f"{r.bot_peak_rss_mb:.1f}",
        f"{r.wall_seconds:.1f}",
        f"{r.bench_cpu_seconds:.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def format_table(results: Sequence[RoundResult]) -> str:
    columns = TABLE_HEADER.count("|") - 1
    separator = "|" + "---:|" * columns
    return "\n".join([TABLE_HEADER, separator, *(table_row(r) for r in results)])


def format_notes(results: Sequence[RoundResult], options: Options) -> str:
    setup = (
        f"answer {options.answer_chars} chars at {options.tokens_per_second:g} tok/s "
        f"({stream_seconds(options):.2f}s of streaming), STREAM_EDIT_INTERVAL={options.edit_interval:g}, "
        f"SLACK_EDITS_PER_MINUTE={options.edits_per_minute}"
    )
    if options.redis_max_connections is not None:
        setup += f", bot's REDIS_URL with ?max_connections={options.redis_max_connections}"
    lines = [setup]
    for r in results:
        sent = ", ".join(f"{k}={v}" for k, v in sorted(r.redis_sent.items()))
        server = ", ".join(f"{k}={v}" for k, v in sorted(r.redis_server.items()))
        lines.append(
            f"N={r.n}: failed acks {r.failed_acks}, replies ending in an error message {r.failed_replies} "
            f"(over quota {r.over_quota}, with a quota notice {r.quota_notices}), "
            f"unfinished at the deadline {r.unsettled}, first-text samples {len(r.first_text_ms)}, "
            f"aborted model streams {r.aborted_streams}, bot log lines {r.bot_log_lines}"
        )
        lines.append(f"  Redis sent by bot (MONITOR): {sent or 'none'}")
        lines.append(
            f"  Redis run by server (commandstats, incl. {r.redis_script_lines} by scripts): "
            f"{server or 'none'}"
            + (f"; bench's own lines left out: {r.redis_bench_lines}" if r.redis_bench_lines else "")
            + (f"; unparsed MONITOR lines: {r.redis_unparsed_lines}" if r.redis_unparsed_lines else "")
        )
        for text, count in sorted(r.failure_texts.items(), key=lambda item: -item[1])[:3]:
            lines.append(f"  {count}x ended as: {text!r}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- main


@asynccontextmanager
async def started_harness(options: Options) -> AsyncIterator[Harness]:
    """Redis, the fakes and the bot, all started; everything stopped on exit (also on errors)."""
    async with AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="glmbot-bench-")))
        redis_server = stack.enter_context(RedisServer())
        slack = await stack.enter_async_context(FakeSlack(bot_token=BOT_TOKEN))
        model = await stack.enter_async_context(FakeModel(api_key=MODEL_API_KEY))
        answer = make_answer(options.answer_chars)
        model.default_reply = Reply(
            text=answer, chunk_chars=CHARS_PER_TOKEN, delay=1.0 / options.tokens_per_second
        )
        port, log_path = free_port(), workdir / "bot.log"
        env = bot_environment(
            slack,
            model,
            bot_redis_url(redis_server, options),
            options.edit_interval,
            options.edits_per_minute,
        )
        bot = await stack.enter_async_context(bot_process(env, port, log_path, workdir))
        bot_url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, f"{bot_url}/healthz", bot, log_path)
        yield Harness(options, slack, model, redis_server, bot, bot_url, log_path, to_mrkdwn(answer))


async def run(options: Options) -> int:
    started = time.monotonic()
    results: list[RoundResult] = []
    async with started_harness(options) as harness:
        for round_no, n in enumerate(options.ns, start=1):
            print(f"round {round_no}: N={n} ...", file=sys.stderr, flush=True)
            results.append(await run_round(harness, round_no, n))
            if harness.bot.returncode is not None:
                print(
                    f"the bot exited with {harness.bot.returncode}:\n{tail(harness.bot_log)}", file=sys.stderr
                )
                break
        log_tail = tail(harness.bot_log, 5) if any(r.bot_log_lines for r in results) else ""
    print(format_table(results))
    print()
    print(format_notes(results, options))
    if log_tail:
        print(f"last bot log lines:\n{log_tail}")
    print(f"total run time {time.monotonic() - started:.1f}s")
    return 0 if all(r.completed == r.n for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        return asyncio.run(run(options))
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:  # redis-server or the bot did not start
        print(f"bench: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
