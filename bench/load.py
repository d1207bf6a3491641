"""One round of load: N signed ``app_mention`` events at once, each in its own channel and from its own
user (one user per thread, so the bot's per-user spend quota never refuses a reply), then polling the
fake Slack until every reply shows its final text (or a deadline passes), and the round's measurements.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.harness import Harness
from bench.options import round_deadline
from bench.process import count_lines, cpu_seconds, peak_rss_mb
from bench.redis_monitor import (
    MonitorCounts,
    bench_redis_sources,
    monitored_redis,
    redis_command_stats,
    wait_redis_quiet,
)
from bench.report import RoundResult
from handlers.reply.streamer import PLACEHOLDER, TYPING_CURSOR
from tests.fakes.constants import BOT_USER_ID, SIGNING_SECRET
from tests.fakes.model_api import FakeModel, ModelCall
from tests.fakes.signing import event_body, signed_headers
from tests.fakes.slack_api import FakeSlack

ACK_TIMEOUT = 30.0
POLL_INTERVAL = 0.1
_OVER_QUOTA_MARKER = "spend limit"  # in the bot's user_message(QuotaExceeded)
_QUOTA_NOTICE_MARKER = "_You have used "  # in the bot's quota_notice (bot.core.messages)
_QUESTION_TAG = re.compile(r"q(\d{2})x(\d{5})")


@dataclass(slots=True)
class _Traffic:
    """What sending one round's mentions and waiting for the replies gave."""

    acks: list[tuple[int, float]]  # (HTTP status, ms) per event
    done: set[str]  # channels whose reply shows the full answer
    settled: set[str]  # channels whose reply will not change any more
    wall_seconds: float
    bench_cpu_seconds: float


def reset_recordings(slack: FakeSlack, model: FakeModel) -> None:
    slack.calls.clear()
    slack.messages.clear()
    slack.ephemerals.clear()
    model.requests.clear()
    model.aborted_streams = 0


def channel_for(round_no: int, index: int) -> str:
    return f"CB{round_no:02d}{index:05d}"


def user_for(round_no: int, index: int) -> str:
    """One user per mention (each mention starts its own thread), so no user's quota runs out."""
    return f"UB{round_no:02d}{index:05d}"


def question_for(round_no: int, index: int) -> str:
    return f"benchmark question q{round_no:02d}x{index:05d}: how do streaming replies behave under load?"


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


async def _send_and_wait(harness: Harness, round_no: int, n: int, channels: set[str]) -> _Traffic:
    """Send the round's mentions and wait until their replies settle (or the round's deadline)."""
    bench_before, started = time.process_time(), time.monotonic()
    acks = await send_mentions(harness, round_no, n)
    done, settled = await wait_for_replies(harness, channels, round_deadline(harness.options, n))
    wall = time.monotonic() - started
    bench_cpu = time.process_time() - bench_before
    return _Traffic(acks, done, settled, wall, bench_cpu)


async def run_round(harness: Harness, round_no: int, n: int) -> RoundResult:
    bench_sources = bench_redis_sources(harness.redis)
    harness.redis.flush()  # FLUSHALL + CONFIG RESETSTAT
    reset_recordings(harness.slack, harness.model)
    channels = {channel_for(round_no, index) for index in range(n)}
    log_lines, cpu_before = count_lines(harness.bot_log), cpu_seconds(harness.bot.pid)

    async with monitored_redis(harness.redis.port or 0, bench_sources) as monitor:
        traffic = await _send_and_wait(harness, round_no, n, channels)
        await wait_redis_quiet(monitor)  # the last replies' commands may still be on their way
    redis_server = redis_command_stats(harness.redis)  # after MONITOR is closed: counts are final
    return _round_result(
        harness, round_no, n, channels, traffic, monitor, redis_server, log_lines, cpu_before
    )


def _round_result(
    harness: Harness,
    round_no: int,
    n: int,
    channels: set[str],
    traffic: _Traffic,
    monitor: MonitorCounts,
    redis_server: dict[str, int],
    log_lines: int,
    cpu_before: float,
) -> RoundResult:
    """The round's measurements; the bot's CPU, RSS and log are read now, after the round."""
    calls = [c for c in harness.slack.calls if c.method != "auth.test"]
    failures = failure_texts(harness.slack, channels, harness.expected_text)
    return RoundResult(
        n=n,
        ack_ms=[ms for status, ms in traffic.acks if status == 200],
        failed_acks=sum(1 for status, _ in traffic.acks if status != 200),
        first_text_ms=first_text_latencies(harness, round_no, channels),
        completed=len(traffic.done),
        failed_replies=len(traffic.settled - traffic.done),
        unsettled=n - len(traffic.settled),
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
        bench_cpu_seconds=traffic.bench_cpu_seconds,
        wall_seconds=traffic.wall_seconds,
        aborted_streams=harness.model.aborted_streams,
        bot_log_lines=count_lines(harness.bot_log) - log_lines,
    )
