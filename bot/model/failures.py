"""How a model call failed, in the few words metrics label it with (bounded sets, never free text).

``RetryableError`` is the client's internal signal that another attempt may fix a failure; its ``label``
names the reason for ``glmbot_model_retries_total{reason}``. ``error_kind`` names a final ``ModelError``
for ``glmbot_model_errors_total{kind}``.
"""

from __future__ import annotations

import re

import httpx

from bot.core.errors import ModelError, ModelRejected, ModelStreamFailed, ModelUnavailable

# httpx's transport errors by the label operators see; anything else is "transport".
_TRANSPORT_LABELS: tuple[tuple[type[httpx.TransportError], str], ...] = (
    (httpx.ConnectTimeout, "connect_timeout"),
    (httpx.ConnectError, "connect"),
    (httpx.ReadTimeout, "read_timeout"),
    (httpx.WriteTimeout, "write_timeout"),
    (httpx.PoolTimeout, "pool_timeout"),
    (httpx.ReadError, "read_error"),
    (httpx.WriteError, "write_error"),
    (httpx.RemoteProtocolError, "protocol_error"),
)
_KINDS: tuple[tuple[type[ModelError], str], ...] = (
    (ModelUnavailable, "unavailable"),
    (ModelRejected, "rejected"),
    (ModelStreamFailed, "stream_failed"),
)


class RetryableError(Exception):
    """This attempt failed in a way that another attempt may fix.

    ``reason`` is for the log line; ``label`` for the retry counter (``status_503``, ``connect``...);
    ``retry_after`` is the server's ``Retry-After`` in seconds, if it sent one.
    """

    def __init__(
        self, reason: str, label: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.label = label
        self.status = status
        self.retry_after = retry_after


def status_label(status: int) -> str:
    """``status_429`` for HTTP 429."""
    return f"status_{status}"


def transport_label(error: httpx.TransportError) -> str:
    """A connection-level failure's label: ``connect``, ``read_timeout``, ... or ``transport``."""
    for kind, label in _TRANSPORT_LABELS:
        if isinstance(error, kind):
            return label
    return "transport"


def error_kind(error: ModelError) -> str:
    """A final ``ModelError``'s label: ``unavailable``, ``rejected``, ``stream_failed``, or its class name in
    snake case (``ModelDeclined`` -> ``model_declined``) for one the client does not raise itself."""
    for kind, label in _KINDS:
        if isinstance(error, kind):
            return label
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()
