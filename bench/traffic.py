"""A run's burst: N signed ``app_mention`` events POSTed at once, spread round-robin over the channels
and the replicas; some also redelivered to the other replica as Slack retries (``X-Slack-Retry-Num``).
An event whose POST fails (a killed replica) is retried on the next replica, as Slack would.

Each mention starts its own thread and comes from its own user, so no user's spend quota refuses it.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.harness import RunEnv
from tests.fakes.constants import BOT_USER_ID, SIGNING_SECRET
from tests.fakes.signing import event_body, signed_headers

ACK_TIMEOUT = 30.0  # seconds per event POST
RETRY_DELAY = 1.0  # seconds before Slack retries an event that failed (to the next replica)
MAX_RETRIES = 2


@dataclass(frozen=True, slots=True)
class Ack:
    """One event POST: HTTP status (0 on a transport error), milliseconds to the response, send time."""

    index: int
    replica: int
    retry: bool
    status: int
    ms: float
    sent_at: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST to make: mention ``index`` to replica ``replica``, as Slack's retry ``retry_num``."""

    index: int
    replica: int
    retry_num: int | None = None


def channel_for(run_no: int, index: int, channels: int) -> str:
    return f"CB{run_no:02d}{index % channels:04d}"


def thread_for(run_no: int, index: int) -> str:
    """The mention's ts, which is also the ts of the thread the answer goes in."""
    return f"1800{run_no:02d}0000.{index:06d}"


def user_for(run_no: int, index: int) -> str:
    return f"UB{run_no:02d}{index:05d}"


def signed_mention(
    run_no: int, index: int, channels: int, retry_num: int | None
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of one signed ``app_mention`` event, as Slack would POST it."""
    ts = thread_for(run_no, index)
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user_for(run_no, index),
        "text": f"<@{BOT_USER_ID}> benchmark question r{run_no}q{index}: how do replies behave under load?",
        "ts": ts,
        "channel": channel_for(run_no, index, channels),
        "event_ts": ts,
    }
    body = event_body(event, f"EvB{run_no:02d}{index:06d}")
    headers = {
        "Content-Type": "application/json",
        **signed_headers(SIGNING_SECRET, body, retry_num=retry_num),
    }
    return body, headers


def redelivered(n: int, share: float) -> list[int]:
    """``floor(n * share)`` mention indexes, evenly spread, that Slack delivers twice."""
    return [i for i in range(n) if math.floor((i + 1) * share) > math.floor(i * share)]


def deliveries(n: int, replicas: int, share: float) -> list[Delivery]:
    """Mention i goes to replica i mod K; the redelivered ones also go, as retry 1, to the next replica."""
    first = [Delivery(i, i % replicas) for i in range(n)]
    again = [Delivery(i, (i + 1) % replicas, 1) for i in redelivered(n, share)] if replicas > 1 else []
    return first + again


async def _post(session: aiohttp.ClientSession, run: RunEnv, delivery: Delivery) -> Ack:
    body, headers = signed_mention(run.run_no, delivery.index, run.options.channels, delivery.retry_num)
    url = f"{run.replicas[delivery.replica].url}/slack/events"
    sent_at = time.monotonic()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        status = 0
    ms = (time.monotonic() - sent_at) * 1000
    return Ack(delivery.index, delivery.replica, delivery.retry_num is not None, status, ms, sent_at)


async def _deliver(session: aiohttp.ClientSession, run: RunEnv, delivery: Delivery) -> list[Ack]:
    """POST one event; when it fails (no answer, or 5xx), retry it as Slack does, on the next replica."""
    acks = [await _post(session, run, delivery)]
    while (acks[-1].status == 0 or acks[-1].status >= 500) and len(acks) <= MAX_RETRIES:
        await asyncio.sleep(RETRY_DELAY)
        replica = (acks[-1].replica + 1) % len(run.replicas)
        acks.append(
            await _post(session, run, Delivery(delivery.index, replica, (delivery.retry_num or 0) + 1))
        )
    return acks


async def send_burst(run: RunEnv) -> list[Ack]:
    """Every POST of the run at once (redeliveries included), each on its own connection."""
    spec = run.spec
    plan = deliveries(spec.n, spec.replicas, spec.redeliver_share)
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=ACK_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        sent = await asyncio.gather(*(_deliver(session, run, d) for d in plan))
    return [ack for acks in sent for ack in acks]
