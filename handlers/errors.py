"""The one place where Slack Web API failures become errors of the bot's tree.

Every Web API call the bot makes itself (posting and editing replies, ``files.info``, ``users.info``,
``auth.test``) runs inside ``slack_errors``; callers then handle ``SlackRateLimited``, ``SlackRefused`` or
plain ``DeliveryFailed`` and never see slack_sdk or aiohttp exceptions. (Bolt's own ``respond`` and the
Socket Mode connection are Bolt's to handle.)

Sources: a rate-limited call answers HTTP 429 with a ``Retry-After`` header in seconds
(https://api.slack.com/apis/rate-limits); a refused call answers ``{"ok": false, "error": "<code>"}``
(https://api.slack.com/web#evaluating_responses), which slack_sdk raises as ``SlackApiError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.core.errors import DeliveryFailed

# When Slack sends a 429 without Retry-After (it should not), wait this long.
DEFAULT_RETRY_AFTER_SECONDS = 1.0
# Error codes that mean "not now" rather than "not this": the same call may succeed later. Every other
# ``ok: false`` answer (msg_too_long, invalid_blocks, message_not_found, cant_update_message,
# channel_not_found, not_in_channel, is_archived, ...) is permanent for that payload.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackRefused(DeliveryFailed):
    """Slack answered ``ok: false``; ``error`` is its code (``missing_scope``, ``invalid_auth``, ...).

    ``transient`` when the same call may succeed later (a 5xx, an internal error); otherwise repeating
    it with the same payload is pointless.
    """

    def __init__(self, method: str, error: str, status: int = 200) -> None:
        super().__init__(f"{method}: {error}")
        self.error = error
        self.status = status

    @property
    def transient(self) -> bool:
        return self.status >= 500 or self.error in TRANSIENT_ERRORS


class SlackRateLimited(SlackRefused):
    """Slack answered 429 (``error`` ``ratelimited``): try again after ``retry_after`` seconds."""

    def __init__(self, method: str, retry_after: float) -> None:
        super().__init__(method, "ratelimited", 429)
        self.retry_after = retry_after


@contextmanager
def slack_errors(method: str) -> Iterator[None]:
    """Translate the failures of the Slack call(s) inside the block; ``method`` names them in messages.

    Raises ``SlackRateLimited`` (429), ``SlackRefused`` (an ``ok: false`` answer) or ``DeliveryFailed``
    (transport errors, timeouts, a closed session).
    """
    try:
        yield
    except SlackApiError as exc:
        if exc.response.status_code == 429:
            raise SlackRateLimited(method, _retry_after(exc)) from None
        error = str(exc.response.get("error") or "unknown_error")
        raise SlackRefused(method, error, exc.response.status_code) from None
    except (SlackClientError, ClientError, TimeoutError, OSError) as exc:
        raise DeliveryFailed(f"{method}: {type(exc).__name__}") from None


def _retry_after(exc: SlackApiError) -> float:
    headers = exc.response.headers
    raw = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(raw) if raw else DEFAULT_RETRY_AFTER_SECONDS
    except ValueError:
        return DEFAULT_RETRY_AFTER_SECONDS
