"""``POST /slack/events`` before any listener: reading the request (400) and checking its signature (401).

Anyone can reach the endpoint, so nothing in a request is trusted until its signature is checked, and no
request, however broken, may end in a 500 or a traceback in the logs:

* ``read_slack_request`` turns the HTTP request into Bolt's request. A body that cannot be read (over
  ``client_max_size``, not sent in time, not UTF-8, not a JSON object or a form Bolt can parse) raises
  ``UnreadableRequest``: the server answers 400 and logs one line with the reason, never the body.
* ``SignatureCheck`` is Bolt's own ``AsyncRequestVerification`` (signature checked by slack_sdk's
  ``SignatureVerifier``: HMAC-SHA256 of ``v0:<timestamp>:<body>``, timestamp within 5 minutes;
  https://docs.slack.dev/authentication/verifying-requests-from-slack/), with two changes:

  - a timestamp that is not a plain number is refused before slack_sdk's ``int()`` raises on it;
  - a refusal logs one line, ``slack_signature_rejected`` with its reason, in place of Bolt's line
    that holds the whole request body; and when signatures keep failing (``RejectionWatch``: 5
    mismatches within 60 s) a hint, at most once a minute, names the setting to check.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Callable

import structlog
from aiohttp import web
from slack_bolt.middleware.request_verification.async_request_verification import AsyncRequestVerification
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import Clock, SignatureVerifier

__all__ = [
    "KEEP_FAILING_HINT",
    "RejectionWatch",
    "SignatureCheck",
    "UnreadableRequest",
    "read_slack_request",
    "rejection_reason",
]

log = structlog.get_logger(__name__)

KEEP_FAILING_HINT = (
    "signatures keep failing: check SLACK_SIGNING_SECRET matches the app's Signing Secret (Basic Information)"
)
# Slack's X-Slack-Request-Timestamp is Unix time in seconds: ten digits today. Twelve leaves room and
# keeps slack_sdk's int() away from letters, signs, spaces and 5,000-digit numbers.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# slack_sdk refuses a timestamp further than this from its clock (a replayed request).
MAX_AGE_SECONDS = 5 * 60
NO_SIGNATURE = "no signature"
NO_TIMESTAMP = "no timestamp"
MALFORMED_TIMESTAMP = "malformed timestamp"
STALE_TIMESTAMP = "timestamp more than 5 minutes from this machine's clock"
MISMATCH = "signature mismatch"


class UnreadableRequest(Exception):
    """The request's body cannot be read as a Slack payload; ``reason`` says why (never the body)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def read_slack_request(request: web.Request, timeout_seconds: float) -> AsyncBoltRequest:
    """Bolt's request for ``request``: its body read within ``timeout_seconds``, UTF-8, parsed by Bolt.

    Raises ``UnreadableRequest`` for a body over the application's ``client_max_size``, one not received in
    time, one that is not UTF-8, and one Bolt cannot parse into a payload object.
    """
    try:
        async with asyncio.timeout(timeout_seconds):
            raw = await request.read()
    except TimeoutError:
        raise UnreadableRequest(f"body not received within {timeout_seconds:g} s") from None
    except web.HTTPRequestEntityTooLarge:
        raise UnreadableRequest("body over the size limit") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableRequest("body is not UTF-8") from None
    try:
        # Bolt parses the body (JSON, or a form with a JSON `payload`) and looks up team, user and
        # channel in it while building the request; odd shapes make those lookups raise.
        bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=dict(request.headers))
    except (ValueError, LookupError, TypeError, AttributeError, RecursionError):
        raise UnreadableRequest("body is not a Slack payload (JSON object or form)") from None
    if not isinstance(bolt_request.body, dict):
        raise UnreadableRequest("body is not a Slack payload (JSON object or form)")
    return bolt_request


def rejection_reason(signature: str, timestamp: str, now: float) -> str:
    """Why slack_sdk refused a request with these headers (Bolt passes "" and "0" for missing ones);
    ``now`` in Unix seconds."""
    if not signature:
        return NO_SIGNATURE
    if timestamp in ("", "0"):
        return NO_TIMESTAMP
    if not _TIMESTAMP.fullmatch(timestamp):
        return MALFORMED_TIMESTAMP
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return STALE_TIMESTAMP
    return MISMATCH


class RejectionWatch:
    """Says when signature mismatches have become a pattern worth a hint.

    ``rejected()`` counts one; it is True when ``threshold`` of them fell within ``window_seconds`` and
    no hint was given in the last ``window_seconds`` (so at most one hint a window). ``clock``: seconds,
    monotonic.
    """

    def __init__(
        self, threshold: int = 5, window_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.window_seconds = window_seconds
        self._clock = clock
        self._recent: deque[float] = deque(maxlen=threshold)
        self._hinted_at = -math.inf

    def rejected(self) -> bool:
        """Count one mismatch; True when the hint is due now."""
        now = self._clock()
        self._recent.append(now)
        pattern = len(self._recent) == self.threshold and now - self._recent[0] <= self.window_seconds
        if pattern and now - self._hinted_at >= self.window_seconds:
            self._hinted_at = now
            return True
        return False


class _WallClock(Clock):
    """slack_sdk's clock, read from ``now`` (Unix seconds)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class _WellFormedVerifier(SignatureVerifier):
    """slack_sdk's verifier, refusing a malformed timestamp itself instead of raising ValueError on it."""

    def is_valid(self, body: str | bytes, timestamp: str | None, signature: str | None) -> bool:
        if timestamp is None or not _TIMESTAMP.fullmatch(timestamp):
            return False
        return super().is_valid(body, timestamp, signature)


class SignatureCheck(AsyncRequestVerification):
    """Bolt's request verification, logging one line per refusal (never the body) and the hint.

    Give it to ``AsyncApp(request_verification_enabled=False, before_authorize=...)``: Bolt then runs it
    where its own would run (after the SSL check, before authorization). ``wall_clock``: Unix seconds,
    for the 5-minute window; ``watch`` decides when the hint is due.
    """

    def __init__(
        self,
        signing_secret: str,
        watch: RejectionWatch | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(signing_secret)
        self._wall_clock = wall_clock
        self._watch = watch if watch is not None else RejectionWatch()
        # Built now, not on the first request: an empty secret fails at start (ValueError).
        self._checker = _WellFormedVerifier(signing_secret, clock=_WallClock(wall_clock))

    @property
    def verifier(self) -> SignatureVerifier:
        return self._checker

    def _debug_log_error(self, signature: str, timestamp: str, body: str) -> None:
        """Bolt calls this for each refused request (it logged the whole body here)."""
        reason = rejection_reason(signature, timestamp, self._wall_clock())
        log.info("slack_signature_rejected", reason=reason)
        # Only a wrong signature points at the secret; scanners send no signature or none that parses.
        if reason == MISMATCH and self._watch.rejected():
            log.warning(
                "slack_signatures_keep_failing",
                hint=KEEP_FAILING_HINT,
                rejected=self._watch.threshold,
                within_seconds=self._watch.window_seconds,
            )
