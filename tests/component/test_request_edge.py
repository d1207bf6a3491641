"""Refused Slack requests: 401, one log line without the body, and a hint when signatures keep failing.

The real Bolt app from ``bolt_app`` (with ``SignatureCheck``) behind the real aiohttp server, over
loopback; the rejection watch runs on a clock the test moves. A recording middleware (added after the
check, as any listener would be) shows whether a request got past it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import pytest
from structlog.testing import capture_logs

from bot.app import open_core
from bot.settings import load_settings
from handlers.front_end import bolt_app, web_client
from handlers.identity import SlackIdentity
from handlers.server import build_web_app, start_web
from handlers.slack_requests import (
    KEEP_FAILING_HINT,
    MALFORMED_TIMESTAMP,
    MISMATCH,
    NO_SIGNATURE,
    NO_TIMESTAMP,
    STALE_TIMESTAMP,
    RejectionWatch,
)
from tests.fakes.bot_env import fake_backed_settings
from tests.fakes.constants import SIGNING_SECRET
from tests.fakes.model_api import FakeModel
from tests.fakes.signing import event_body, signed_headers
from tests.fakes.slack_api import FakeSlack

BODY_MARKER = "please-never-log-this-body"
BODY = event_body(
    {"type": "app_mention", "user": "U0HUMAN1", "text": BODY_MARKER, "ts": "1.000001", "channel": "C0TEST"},
    "EvEdge1",
)
REJECTED = {"event": "slack_signature_rejected", "log_level": "info"}


@dataclass
class Edge:
    """The running endpoint, the test's clock, and what got past the signature check."""

    url: str
    http: httpx.AsyncClient
    now: list[float]
    passed: list[dict[str, Any]] = field(default_factory=list)

    async def post(self, headers: dict[str, str], body: bytes = BODY) -> httpx.Response:
        headers = {"Content-Type": "application/json", **headers}
        return await self.http.post(f"{self.url}/slack/events", content=body, headers=headers)


@pytest.fixture
async def edge(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> AsyncIterator[Edge]:
    for name, value in fake_backed_settings(fake_slack, fake_model, redis_url).items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    now = [1000.0]
    watch = RejectionWatch(clock=lambda: now[0])
    async with (
        open_core(settings) as core,
        aiohttp.ClientSession() as session,
        httpx.AsyncClient(timeout=10) as http,
    ):
        client = web_client(settings, session)
        bolt = bolt_app(settings, client, SlackIdentity(client), socket_mode=False, rejections=watch)
        runner = await start_web(build_web_app(core, bolt), "127.0.0.1", 0)
        host, port = runner.addresses[0][:2]
        running = Edge(url=f"http://{host}:{port}", http=http, now=now)

        async def record(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> None:
            running.passed.append(body)
            await next()

        bolt.middleware(record)
        try:
            yield running
        finally:
            await runner.cleanup()


def wrong_secret() -> dict[str, str]:
    return signed_headers("not-the-signing-secret", BODY)


async def test_wrong_secret_is_401_with_one_line_and_no_body(
    edge: Edge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        response = await edge.post(wrong_secret())
    assert response.status_code == 401
    assert response.json() == {"error": "invalid request"}
    assert logs == [{**REJECTED, "reason": MISMATCH}]
    assert edge.passed == []
    assert BODY_MARKER not in caplog.text
    assert not [record for record in caplog.records if record.exc_info]


async def test_hint_when_signatures_keep_failing_at_most_once_a_minute(edge: Edge) -> None:
    """5 mismatches within 60 s: one hint naming the setting; more within the minute: no more hints;
    5 more a minute later: the hint again."""
    hint = {
        "event": "slack_signatures_keep_failing",
        "log_level": "warning",
        "hint": KEEP_FAILING_HINT,
        "rejected": 5,
        "within_seconds": 60.0,
    }
    rejected = {**REJECTED, "reason": MISMATCH}
    with capture_logs() as logs:
        for _ in range(4):
            assert (await edge.post(wrong_secret())).status_code == 401
        assert logs == [rejected] * 4
        edge.now[0] += 30.0
        assert (await edge.post(wrong_secret())).status_code == 401
        assert logs == [rejected] * 5 + [hint]
        for _ in range(5):
            await edge.post(wrong_secret())
        assert logs == [rejected] * 5 + [hint] + [rejected] * 5
        edge.now[0] += 61.0
        for _ in range(5):
            await edge.post(wrong_secret())
    assert logs == [rejected] * 5 + [hint] + [rejected] * 10 + [hint]
    assert BODY_MARKER not in repr(logs)
    assert edge.passed == []


def headers_with(timestamp: str | None, signature: str | None) -> dict[str, str]:
    headers = {}
    if timestamp is not None:
        headers["X-Slack-Request-Timestamp"] = timestamp
    if signature is not None:
        headers["X-Slack-Signature"] = signature
    return headers


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        ("letters", MALFORMED_TIMESTAMP),
        ("", NO_TIMESTAMP),
        ("9" * 5000, MALFORMED_TIMESTAMP),  # slack_sdk's int() would raise past 4,300 digits
        ("99999999999999", MALFORMED_TIMESTAMP),
        ("+1700000000", MALFORMED_TIMESTAMP),
        (None, NO_TIMESTAMP),
    ],
)
async def test_malformed_timestamps_are_401_not_500(
    edge: Edge, caplog: pytest.LogCaptureFixture, timestamp: str | None, reason: str
) -> None:
    """A timestamp slack_sdk cannot read is refused like any bad signature: 401, one line, no traceback,
    and it does not count towards the hint (scanners send these; a wrong secret does not)."""
    signature = signed_headers(SIGNING_SECRET, BODY)["X-Slack-Signature"]
    with capture_logs() as logs:
        for _ in range(5):
            response = await edge.post(headers_with(timestamp, signature))
            assert response.status_code == 401
    assert logs == [{**REJECTED, "reason": reason}] * 5
    assert edge.passed == []
    assert not [record for record in caplog.records if record.exc_info]


async def test_missing_signature_and_stale_timestamp(edge: Edge) -> None:
    fresh = signed_headers(SIGNING_SECRET, BODY)
    stale = signed_headers(SIGNING_SECRET, BODY, timestamp=int(time.time()) - 600)
    with capture_logs() as logs:
        unsigned = await edge.post(headers_with(fresh["X-Slack-Request-Timestamp"], None))
        old = await edge.post(stale)
    assert [unsigned.status_code, old.status_code] == [401, 401]
    assert logs == [{**REJECTED, "reason": NO_SIGNATURE}, {**REJECTED, "reason": STALE_TIMESTAMP}]
    assert edge.passed == []


async def test_good_signature_passes_the_check(edge: Edge) -> None:
    """The check is slack_sdk's: a request signed with SLACK_SIGNING_SECRET gets through, silently."""
    with capture_logs() as logs:
        await edge.post(signed_headers(SIGNING_SECRET, BODY))
    assert [body["event_id"] for body in edge.passed] == ["EvEdge1"]
    assert [entry for entry in logs if entry["event"].startswith("slack_signature")] == []
