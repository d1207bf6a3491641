"""Fakes and helpers for tests: fake Slack Web API, fake model API, real redis-server."""

from tests.fakes.constants import (
    APP_ID,
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    CHANNEL_ID,
    HUMAN_USER_ID,
    MODEL_API_KEY,
    SIGNING_SECRET,
    TEAM_ID,
)

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_TOKEN",
    "BOT_USER_ID",
    "CHANNEL_ID",
    "HUMAN_USER_ID",
    "MODEL_API_KEY",
    "SIGNING_SECRET",
    "TEAM_ID",
]
