"""structlog configuration: JSON in production, readable on a terminal, secrets always redacted.

Standard-library records (Bolt, slack_sdk, aiohttp) go through the same processors, so a token that a
library logs is redacted too.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"
# Slack tokens and bearer headers are redacted by shape too, in case a secret we were not told about
# (a user token pasted somewhere, a rotated token) reaches a log line.
_TOKEN_SHAPES = re.compile(r"\b(xox[abposr]|xapp)-[A-Za-z0-9-]{6,}|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}")


class OncePerSecond(logging.Filter):
    """Lets each distinct message through at most once a second (per logger it is attached to).

    When the process runs out of file descriptors, asyncio logs the failed ``accept()`` on every loop
    turn: 281,147 identical lines in 80 s were seen. One a second says the same.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(record.msg)
        now = self._clock()
        if now - self._last.get(key, float("-inf")) < 1.0:
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = now
        return True


class SecretRedactor:
    """A structlog processor that replaces known secret values and token-shaped strings."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True)

    def redact(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, REDACTED)
            return _TOKEN_SHAPES.sub(REDACTED, value)
        if isinstance(value, Mapping):
            return {key: self.redact(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact(item) for item in value]
        if isinstance(value, BaseException):
            return self.redact(repr(value))
        return value

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return {key: self.redact(value) for key, value in event_dict.items()}


def configure_logging(level: str, fmt: Literal["json", "console"] | None, secrets: Iterable[str]) -> None:
    """Configure structlog and the standard library once, at start."""
    use_json = fmt == "json" or (fmt is None and not sys.stderr.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        SecretRedactor(secrets),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _drop_positional,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO: one line per model call says nothing our own lines do not.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    asyncio_logger = logging.getLogger("asyncio")
    if not any(isinstance(f, OncePerSecond) for f in asyncio_logger.filters):
        asyncio_logger.addFilter(OncePerSecond())


def _drop_positional(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("positional_args", None)
    return event_dict
