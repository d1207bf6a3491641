"""Every sentence the conversation shows a user, in plain Markdown: no Slack syntax, no front-end names.

Front ends add their own dressing (Slack puts ``:warning:`` before a warning; the console puts ``[!]``).
Amounts are shown with ``billing.money.format_usd``, reset times with ``billing.periods.format_moment``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.billing.money import format_usd
from bot.billing.periods import Period, format_moment
from bot.core.domain import Notice
from bot.core.errors import (
    EmptyAnswer,
    GlmbotError,
    Interrupted,
    ModelDeclined,
    ModelRejected,
    ModelStreamFailed,
    ModelUnavailable,
    PromptTooLong,
    QuotaExceeded,
    RetriesExhausted,
    StoreUnavailable,
)

EMPTY_MESSAGE_REPLY = "Hi! Ask me anything, or attach an image and ask about it."
ONE_IMAGE_PROMPT = "Describe this image."
IMAGES_PROMPT = "Describe these images."


def user_message(error: GlmbotError, quota_command: str = "") -> str:
    """The short text a user sees for ``error``: never a raw exception, never a secret.

    ``quota_command`` is how this front end's admins manage limits (``/glm-quota`` in Slack), named in
    the over-quota message when given.
    """
    if isinstance(error, PromptTooLong):
        return (
            f"Your message is too long for me: it needs about {error.needed_tokens:,} tokens and "
            f"I can take about {error.budget_tokens:,}. Please shorten it or split it up."
        )
    if isinstance(error, QuotaExceeded):
        return quota_refusal(error, quota_command)
    if isinstance(error, ModelRejected):
        if error.status in (401, 402, 403):
            return "The model service refused the request (account or access problem). Please tell an admin."
        return "The model could not handle this request. Try rephrasing it or starting a new thread."
    if isinstance(error, ModelDeclined):
        return "The model declined to answer this request."
    if isinstance(error, ModelUnavailable):
        return "The model is not answering right now. Please try again in a minute."
    if isinstance(error, EmptyAnswer) and error.cut_off:
        return (
            "The model used up its output limit while thinking and wrote no answer. Try a narrower question."
        )
    if isinstance(error, ModelStreamFailed | EmptyAnswer):
        return "The model stopped before finishing its answer. Please try again."
    if isinstance(error, RetriesExhausted):
        return "I couldn't finish an answer to this after several tries. Please ask again, maybe differently."
    if isinstance(error, Interrupted):
        return "I was restarted before I could finish. Please ask again."
    if isinstance(error, StoreUnavailable):
        return "I'm temporarily unavailable (my storage is not answering). Please try again shortly."
    return "Something went wrong on my side. Please try again."


def operator_message(error: GlmbotError) -> str | None:
    """What the person running the bot (the console) sees for ``error``: its cause and the setting to
    fix, where a Slack user would be told to ask an admin; None where ``user_message`` says it already."""
    if isinstance(error, ModelRejected):
        if error.status in (401, 403):
            return (
                f"The model endpoint refused the key ({error}). Check GLM_API_KEY and GLM_BASE_URL: {_CHECK}."
            )
        return (
            f"The model endpoint refused the request ({error}). Check GLM_MODEL and GLM_BASE_URL: {_CHECK}."
        )
    if isinstance(error, ModelUnavailable):
        return f"The model endpoint is not answering ({error}). Check GLM_BASE_URL and the network: {_CHECK}."
    if isinstance(error, StoreUnavailable):
        return f"Redis is not answering ({error}). Check REDIS_URL and that Redis runs: {_CHECK}."
    return None


_CHECK = "`glmbot check` tests each setting"


def with_notices(text: str, notices: Sequence[Notice], dress: Callable[[Notice], str]) -> str:
    """An answer with its notices under it, each dressed by the front end, separated by blank lines."""
    lines = [dress(notice) for notice in notices]
    return "\n\n".join([text, *lines] if text else lines)


def default_prompt(image_count: int) -> str:
    """What an image sent without words asks the model."""
    return ONE_IMAGE_PROMPT if image_count == 1 else IMAGES_PROMPT


def cut_off_notice(max_tokens: int) -> Notice:
    """The note under an answer that hit the output limit."""
    return Notice("note", f"(Answer cut off: it reached the {max_tokens:,}-token output limit.)")


def stopped_notice(by: str) -> Notice:
    """The note under an answer that a person stopped while it streamed (``by``: their display name)."""
    return Notice("note", f"(Stopped by @{by}.)" if by else "(Stopped.)")


def quota_refusal(error: QuotaExceeded, quota_command: str = "") -> str:
    """The refusal of a reply the user cannot afford: their limit, what is spent and what is only held
    by replies still in progress (money that comes back if those cost less), and when it resets."""
    how = f" (they manage limits with {quota_command})" if quota_command else ""
    usage = f"{format_usd(error.spent_pico)} spent"
    if error.held_pico:
        usage += f" and {format_usd(error.held_pico)} held by replies still in progress"
    return (
        f"You have reached your glmbot spend limit: {usage}, of {format_usd(error.limit_pico)}. "
        f"It resets {format_moment(error.resets_at)}. To get more, ask a glmbot admin{how}."
    )


def quota_notice(spent_pico: int, limit_pico: int, period: Period) -> Notice:
    """The once-per-period note telling a user they passed 80 % of their limit."""
    return Notice(
        "note",
        f"You have used {format_usd(spent_pico)} of your {format_usd(limit_pico)} "
        f"limit for this {period.kind}; it resets {format_moment(period.end)}.",
    )


def file_problem(name: str, reason: str) -> str:
    """The sentence for a file that was left out; ``reason`` completes "I couldn't use NAME: ..."."""
    return f"I couldn't use {name}: {reason.rstrip('.')}."


def too_many_images(limit: int, skipped: list[str]) -> str:
    """The sentence for the images past the per-message limit."""
    return f"I look at up to {limit} images per message, so I skipped: {', '.join(skipped)}."
