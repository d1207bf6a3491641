"""Build signed Slack request bodies and headers the way Slack sends them to the bot."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

from tests.fakes.constants import APP_ID, BOT_USER_ID, CHANNEL_ID, TEAM_ID

__all__ = ["event_body", "signed_headers", "slash_command_body"]

# Port 9 (discard) on loopback: a POST there fails fast and never leaves the machine.
UNUSED_RESPONSE_URL = "http://127.0.0.1:9/commands/unused"


def signed_headers(
    secret: str, body: bytes, timestamp: int | None = None, retry_num: int | None = None
) -> dict[str, str]:
    """``X-Slack-Request-Timestamp`` + ``X-Slack-Signature`` (v0 HMAC-SHA256), optionally retry headers."""
    ts = int(time.time()) if timestamp is None else timestamp
    base = f"v0:{ts}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return headers


def event_body(event: dict[str, Any], event_id: str, team_id: str = TEAM_ID) -> bytes:
    """JSON bytes of an Events API ``event_callback`` envelope around ``event``."""
    envelope: dict[str, Any] = {
        "token": "unused-verification-token",
        "team_id": team_id,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-fake-{event_id}",
    }
    return json.dumps(envelope).encode()


def slash_command_body(
    command: str,
    text: str,
    user_id: str,
    channel_id: str = CHANNEL_ID,
    response_url: str = UNUSED_RESPONSE_URL,
    team_id: str = TEAM_ID,
    trigger_id: str = "1337.42.fake-trigger",
) -> bytes:
    """Form-encoded slash-command payload (``application/x-www-form-urlencoded``) like Slack sends.

    Pass ``response_url=fake_slack.response_url()`` to record what the bot posts back.
    """
    fields = {
        "token": "unused-verification-token",
        "team_id": team_id,
        "team_domain": "test",
        "channel_id": channel_id,
        "channel_name": "general",
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    return urlencode(fields).encode()
