"""structlog configuration: JSON in production, readable on a terminal, secrets always redacted.

Standard-library records (Bolt, slack_sdk, aiohttp) go through the same processors, so a token that a
library logs is redacted too.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from bot.redaction import REDACTED, Redactor

__all__ = ["REDACTED", "OncePerSecond", "SecretRedactor", "configure_logging"]


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
    """A structlog processor that replaces known secret values and key-shaped strings.

    The rules (whole secrets, a leading piece of one, Slack/``sk-``/Z.ai/bearer shapes) are
    ``bot.redaction``'s. They catch a key cut short by a library that truncated text before logging it;
    our own code redacts before it cuts (``Redactor.cut``).
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self._redact = Redactor(secrets)

    def redact(self, value: Any) -> Any:
        """``value`` with secrets replaced in every string inside it (dicts, lists, exceptions' reprs)."""
        if isinstance(value, str):
            return self._redact(value)
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
