"""The error tree: every failure the bot expects, as a small hierarchy. Words for users are in ``messages``.

::

    GlmbotError                   anything the bot expects and can explain
    ├── ModelError                the model endpoint failed
    │   ├── ModelUnavailable      transport error, timeout, 429 or 5xx (after retries)
    │   ├── ModelRejected         4xx other than 429: bad key, bad request, no credit, content refused
    │   ├── ModelStreamFailed     the stream broke, reported an error, or ended without finishing
    │   ├── ModelDeclined         the model's content filter stopped the answer (charged; not worth a retry)
    │   └── EmptyAnswer           the model finished without any answer text (e.g. it only reasoned)
    ├── PromptTooLong             the newest message alone does not fit the context window
    ├── ImageRejected             one attached file cannot be used (its ``reason`` is shown to the user)
    ├── QuotaExceeded             the user cannot afford even a minimal reply this period
    ├── StoreUnavailable          Redis (or the embedded store) did not answer
    ├── StoreMayEvict             the main Redis may evict keys (maxmemory-policy is not noeviction): no start
    ├── Interrupted               the bot shut down before the reply was finished
    ├── RetriesExhausted          earlier attempts at this message all died (a crash loop)
    └── DeliveryFailed            the front end could not show the reply (Slack refused or was unreachable)
        └── SlackRefused          (handlers.errors) Slack answered ``ok: false``; ``error`` is its code
            └── SlackRateLimited  (handlers.errors) Slack answered 429; wait ``retry_after`` seconds

Third-party exceptions are translated into these in one place per library: httpx in ``bot.model.client``,
redis in ``bot.store.connection.store_errors``, slack_sdk and aiohttp in ``handlers.errors.slack_errors``.
Nothing else sees an httpx, redis or slack_sdk exception.
"""

from __future__ import annotations

from datetime import datetime


class GlmbotError(Exception):
    """Base of every error the bot expects."""


class ModelError(GlmbotError):
    """The model endpoint failed."""


class ModelUnavailable(ModelError):
    """The model could not be reached or was overloaded, even after retries."""


class ModelRejected(ModelError):
    """The model endpoint refused the request (4xx other than 429)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"model endpoint answered {status}: {detail}")
        self.status = status


class ModelStreamFailed(ModelError):
    """The answer stream broke off, carried an error, or ended without a finish."""


class ModelDeclined(ModelError):
    """The model's content filter stopped the answer (``finish_reason`` sensitive / content_filter)."""


class EmptyAnswer(ModelError):
    """The model finished without answer text; ``cut_off`` when it hit the output limit first."""

    def __init__(self, cut_off: bool) -> None:
        super().__init__("the model returned no answer text")
        self.cut_off = cut_off


class Interrupted(GlmbotError):
    """The bot stopped (a deploy, a restart) before this reply was finished."""


class RetriesExhausted(GlmbotError):
    """Every earlier attempt at this message died before answering; this one gives up visibly."""


class PromptTooLong(GlmbotError):
    """The newest message alone is larger than the context window allows."""

    def __init__(self, needed_tokens: int, budget_tokens: int) -> None:
        super().__init__(f"message needs ~{needed_tokens} tokens, budget is {budget_tokens}")
        self.needed_tokens = needed_tokens
        self.budget_tokens = budget_tokens


class ImageRejected(GlmbotError):
    """An attached file cannot be used as an image; ``reason`` completes "I couldn't use NAME: ..."."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class QuotaExceeded(GlmbotError):
    """The user's remaining budget does not cover a minimal reply. Amounts are in picodollars."""

    def __init__(self, limit_pico: int, spent_pico: int, resets_at: datetime, held_pico: int = 0) -> None:
        super().__init__(f"quota exceeded: spent {spent_pico}, held {held_pico} of {limit_pico} pico-USD")
        self.limit_pico = limit_pico
        self.spent_pico = spent_pico  # settled charges this period
        self.held_pico = held_pico  # reserved by this period's replies still in progress
        self.resets_at = resets_at


class StoreUnavailable(GlmbotError):
    """The conversation store (Redis) did not answer."""


class StoreMayEvict(GlmbotError):
    """The main Redis's ``maxmemory-policy`` is not ``noeviction``, so under memory pressure it may delete
    quota limits, spend or reservations. Raised at start; the message is one line naming the fix."""

    def __init__(self, policy: str) -> None:
        super().__init__(
            f"unsafe Redis at REDIS_URL: maxmemory-policy is {policy}, which may evict quota limits "
            "and spend under memory pressure; it must be noeviction: run `redis-cli CONFIG SET "
            "maxmemory-policy noeviction` and put `maxmemory-policy noeviction` in redis.conf"
        )
        self.policy = policy


class DeliveryFailed(GlmbotError):
    """The front end could not show the reply (for Slack: an API call failed for good)."""
