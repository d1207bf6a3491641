"""The bot's settings as environment variables, pointed at the fakes. pytest-free: the bench uses it."""

from __future__ import annotations

from tests.fakes.constants import BOT_TOKEN, MODEL_API_KEY, SIGNING_SECRET
from tests.fakes.model_api import FakeModel
from tests.fakes.slack_api import FakeSlack

# Every variable the bot reads starts with one of these or is one of the names below.
BOT_ENV_PREFIXES = ("SLACK_", "GLM_", "QUOTA_", "LOG_", "IMAGE_")
BOT_ENV_NAMES = frozenset(
    {
        "REDIS_URL",
        "REDIS_CACHE_URL",
        "ADMIN_USER_IDS",
        "STREAM_EDIT_INTERVAL",
        "PORT",
        "METRICS_PORT",
        "SYSTEM_PROMPT",
        "HISTORY_TTL_DAYS",
        "SHUTDOWN_DRAIN_SECONDS",
        "WORK_LEASE_SECONDS",
        "THREAD_CATCHUP_MESSAGES",
    }
)


def is_bot_setting(name: str) -> bool:
    """True for an environment variable the bot reads (names match case-insensitively, as in pydantic)."""
    upper = name.upper()
    return upper in BOT_ENV_NAMES or upper.startswith(BOT_ENV_PREFIXES)


def fake_backed_settings(slack: FakeSlack, model: FakeModel, redis_url: str) -> dict[str, str]:
    """Tokens, URLs and Redis for a bot that talks only to the fakes and the test redis-server."""
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "GLM_API_KEY": MODEL_API_KEY,
        "GLM_BASE_URL": model.base_url,
        "REDIS_URL": redis_url,
        "LOG_FORMAT": "json",
        # Delivery by edits, which most tests are about; native streaming has tests of its own.
        "SLACK_STREAMING": "edit",
    }
