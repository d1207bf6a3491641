"""Build the model prompt for one turn: system prompt, as much history as fits, the newest message.

History is dropped oldest-first. The system prompt and the newest message (with its images) always stay;
when they alone do not fit, the turn is refused with PromptTooLong rather than silently cut.
Earlier images are re-sent newest-first while the budget allows; the others are replaced by a short
text note, so the model still knows they were there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.core.domain import ChatMessage, CollectedImages, ImageRef
from bot.core.errors import PromptTooLong
from bot.core.messages import default_prompt
from bot.core.tokens import REQUEST_OVERHEAD_TOKENS, estimate_message_tokens, estimate_text_tokens

DEFAULT_SYSTEM_PROMPT = (
    "You are glmbot, a helpful assistant in a team's Slack workspace, powered by the glm-4.5v "
    "vision-language model. Answer clearly and concisely. Use Markdown for structure when it helps: "
    "it is converted for Slack. When several people talk in a thread, answer the latest message."
)


@dataclass(frozen=True, slots=True)
class Prompt:
    """The messages to send, with their estimated size and how many history messages were left out."""

    messages: tuple[ChatMessage, ...]
    estimated_tokens: int
    dropped_messages: int


def image_note(image: ImageRef) -> str:
    """The text that stands in for an earlier image that is not re-sent."""
    return f"[image {image.name}, shown earlier]"


def without_images(message: ChatMessage, images: Sequence[ImageRef] | None = None) -> ChatMessage:
    """``message`` with ``images`` (default: all of them) replaced by text notes."""
    dropped = message.images if images is None else tuple(images)
    if not dropped:
        return message
    notes = "\n".join(image_note(image) for image in dropped)
    text = f"{message.text}\n{notes}" if message.text else notes
    kept = tuple(image for image in message.images if image not in dropped)
    return replace(message, text=text, images=kept)


def build_prompt(
    system: str, history: Sequence[ChatMessage], newest: ChatMessage, budget_tokens: int
) -> Prompt:
    """Fit ``system + history + newest`` into ``budget_tokens``, dropping the oldest history first."""
    system_message = ChatMessage("system", system)
    fixed = (
        REQUEST_OVERHEAD_TOKENS + estimate_message_tokens(system_message) + estimate_message_tokens(newest)
    )
    if fixed > budget_tokens:
        raise PromptTooLong(needed_tokens=fixed, budget_tokens=budget_tokens)
    noted = [without_images(message) for message in history]
    kept = _newest_that_fit(noted, budget_tokens - fixed)
    used = fixed + sum(estimate_message_tokens(m) for m in kept)
    restored, spare = _restore_images(history[len(history) - len(kept) :], kept, budget_tokens - used)
    return Prompt(
        messages=(system_message, *restored, newest),
        estimated_tokens=budget_tokens - spare,
        dropped_messages=len(history) - len(kept),
    )


def _newest_that_fit(history: Sequence[ChatMessage], budget: int) -> list[ChatMessage]:
    """The longest suffix of ``history`` within ``budget``, never starting with an assistant message."""
    start = len(history)
    for index in range(len(history) - 1, -1, -1):
        cost = estimate_message_tokens(history[index])
        if cost > budget:
            break
        budget -= cost
        start = index
    # A conversation that opens with the bot's answer confuses chat templates; drop the orphan.
    while start < len(history) and history[start].role == "assistant":
        start += 1
    return list(history[start:])


def _restore_images(
    originals: Sequence[ChatMessage], noted: Sequence[ChatMessage], spare: int
) -> tuple[list[ChatMessage], int]:
    """Put earlier images back, newest first, while ``spare`` tokens allow; returns what is left over."""
    restored = list(noted)
    for index in range(len(originals) - 1, -1, -1):
        images = originals[index].images
        fitting: list[ImageRef] = []
        for image in reversed(images):
            extra = image.tokens - estimate_text_tokens(image_note(image) + "\n")
            if extra <= spare:
                fitting.append(image)
                spare -= extra
        if fitting:
            restored[index] = without_images(originals[index], [i for i in images if i not in fitting])
    return restored, spare


def newest_message(text: str, collected: CollectedImages) -> ChatMessage | None:
    """The user's turn as the model sees it, or None when nothing usable was sent."""
    if not text.strip() and not collected.images:
        return None
    return ChatMessage("user", text.strip() or default_prompt(len(collected.images)), collected.refs)
