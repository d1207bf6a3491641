"""Shared credentials and identifiers used by the test harness (all fake)."""

from __future__ import annotations

BOT_TOKEN = "xoxb-test-token"
MODEL_API_KEY = "test-model-key"
SIGNING_SECRET = "test-signing-secret"

# Slack identities the fakes hand out.
TEAM_ID = "T0TEST"
BOT_USER_ID = "UBOT0001"
BOT_ID = "BBOT0001"
APP_ID = "A0TEST"
CHANNEL_ID = "C0TEST"
HUMAN_USER_ID = "U0HUMAN1"

# The bot scopes deploy/slack-manifest.yaml asks for (the fake grants them all unless told otherwise).
BOT_SCOPES = (
    "app_mentions:read",
    "chat:write",
    "im:history",
    "channels:history",
    "groups:history",
    "mpim:history",
    "files:read",
    "users:read",
    "commands",
    "assistant:write",
    "channels:read",
    "groups:read",
)
