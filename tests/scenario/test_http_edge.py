"""Broken requests to POST /slack/events, sent to the whole bot: 401 or 400, no traceback, nothing runs."""

from __future__ import annotations

import logging
import time

import pytest

from tests.fakes.constants import SIGNING_SECRET
from tests.fakes.model_api import FakeModel
from tests.fakes.signing import event_body, signed_headers
from tests.fakes.slack_api import FakeSlack
from tests.scenario.harness import BotUnderTest, mention, message

BODY = event_body(mention("hi"), "EvEdge1")
SIGNATURE = signed_headers(SIGNING_SECRET, BODY)["X-Slack-Signature"]


def fresh() -> str:
    return str(int(time.time()))


def signed(body: bytes) -> dict[str, str]:
    return signed_headers(SIGNING_SECRET, body)


async def test_broken_requests_get_4xx_without_traceback(
    bot: BotUnderTest,
    fake_slack: FakeSlack,
    fake_model: FakeModel,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bad timestamps and signatures: 401. Bodies that cannot be read (signed or not): 400. Nothing is
    answered, nothing is logged with a traceback, and the bot still answers a good request after."""
    caplog.set_level(logging.INFO)
    header_cases = [
        {"X-Slack-Request-Timestamp": "letters", "X-Slack-Signature": SIGNATURE},
        {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": SIGNATURE},
        {"X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": SIGNATURE},
        {"X-Slack-Signature": SIGNATURE},
        {"X-Slack-Request-Timestamp": fresh()},
        {},
        signed_headers("not-the-secret", BODY),
    ]
    body_cases = [
        b"\xff\xfe{",  # not UTF-8
        b"{not json",
        b"[1, 2]",  # JSON, but not an object
        b"[" * 100_000,  # nesting deeper than the JSON parser goes
        b'{"authorizations": {"a": 1}}',  # an object Bolt's lookups trip over
        b"payload=%7Bnot-json",
        b"{" + b" " * (2 * 1024 * 1024) + b"}",  # over the 1 MiB limit
    ]
    statuses = [(await bot.post_raw(BODY, headers)).status_code for headers in header_cases]
    unsigned = [(await bot.post_raw(body, {"X-Slack-Signature": "v0=0"})).status_code for body in body_cases]
    # Signed correctly: still unreadable (the signature is checked on text, which these are not).
    signed_ones = [(await bot.post_raw(body, signed(body))).status_code for body in body_cases[1:-1]]

    assert statuses == [401] * len(header_cases)
    assert unsigned == [400] * len(body_cases)
    assert signed_ones == [400] * (len(body_cases) - 2)
    await bot.send_event(message("probe", channel="D0DM", channel_type="im"))
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 1)
    assert fake_model.requests[0].messages[-1]["content"] == "probe"
    assert [call.body["channel"] for call in fake_slack.calls_to("chat.postMessage")] == ["D0DM"]
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err + caplog.text
    assert [record for record in caplog.records if record.exc_info] == []
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []
