"""The error tree, and the one table that turns errors into words for users.

::

    GlmbotError                   anything the bot expects and can explain
    ├── ModelError                the model endpoint failed
    │   ├── ModelUnavailable      transport error, timeout, 429 or 5xx (after retries)
    │   ├── ModelRejected         4xx other than 429: bad key, bad request, no credit, content refused
    │   ├── ModelStreamFailed     the stream broke, reported an error, or ended without finishing
    │   └── EmptyAnswer           the model finished without any answer text (e.g. it only reasoned)
    ├── PromptTooLong             the newest message alone does not fit the context window
    ├── ImageRejected             one attached file cannot be used (its ``reason`` is shown to the user)
    ├── QuotaExceeded             the user cannot afford even a minimal reply this period
    ├── StoreUnavailable          Redis (or the embedded store) did not answer
    ├── Interrupted               the bot shut down before the reply was finished
    └── SlackUnavailable          the Slack Web API failed, so the user cannot be told anything

Third-party exceptions are translated into these at the edge that meets them (``model_client``,
``history_store``, ``reply_streamer``); nothing above those modules sees httpx, redis or slack_sdk errors.
"""

from __future__ import annotations

from datetime import datetime

from bot.billing.money import format_moment, format_usd


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


class EmptyAnswer(ModelError):
    """The model finished without answer text; ``cut_off`` when it hit the output limit first."""

    def __init__(self, cut_off: bool) -> None:
        super().__init__("the model returned no answer text")
        self.cut_off = cut_off


class Interrupted(GlmbotError):
    """The bot stopped (a deploy, a restart) before this reply was finished."""


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

    def __init__(self, limit_pico: int, spent_pico: int, resets_at: datetime) -> None:
        super().__init__(f"quota exceeded: spent {spent_pico} of {limit_pico} pico-USD")
        self.limit_pico = limit_pico
        self.spent_pico = spent_pico
        self.resets_at = resets_at


class StoreUnavailable(GlmbotError):
    """The conversation store (Redis) did not answer."""


class SlackUnavailable(GlmbotError):
    """A Slack Web API call failed for good."""


def user_message(error: GlmbotError) -> str:
    """The short text a user sees for ``error``: never a raw exception, never a secret."""
    if isinstance(error, PromptTooLong):
        return (
            f"Your message is too long for me: it needs about {error.needed_tokens:,} tokens and "
            f"I can take about {error.budget_tokens:,}. Please shorten it or split it up."
        )
    if isinstance(error, QuotaExceeded):
        return (
            f"You have reached your glmbot spend limit: {format_usd(error.spent_pico)} used of "
            f"{format_usd(error.limit_pico)}. It resets {format_moment(error.resets_at)}. "
            "To get more, ask a glmbot admin (they manage limits with /glm-quota)."
        )
    if isinstance(error, ModelRejected):
        if error.status in (401, 402, 403):
            return "The model service refused the request (account or access problem). Please tell an admin."
        return "The model could not handle this request. Try rephrasing it or starting a new thread."
    if isinstance(error, ModelUnavailable):
        return "The model is not answering right now. Please try again in a minute."
    if isinstance(error, EmptyAnswer) and error.cut_off:
        return (
            "The model used up its output limit while thinking and wrote no answer. Try a narrower question."
        )
    if isinstance(error, ModelStreamFailed | EmptyAnswer):
        return "The model stopped before finishing its answer. Please try again."
    if isinstance(error, Interrupted):
        return "I was restarted before I could finish. Please ask again."
    if isinstance(error, StoreUnavailable):
        return "I'm temporarily unavailable (my storage is not answering). Please try again shortly."
    return "Something went wrong on my side. Please try again."
