"""Build the model prompt for one turn: system prompt, as much history as fits, the newest message.

History is dropped oldest-first. The system prompt and the newest message always stay; when they alone do
not fit, the turn is refused with PromptTooLong rather than silently cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain import ChatMessage
from bot.errors import PromptTooLong
from bot.tokens import REQUEST_OVERHEAD_TOKENS, estimate_message_tokens

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
    kept = _newest_that_fit(history, budget_tokens - fixed)
    used = fixed + sum(estimate_message_tokens(m) for m in kept)
    return Prompt(
        messages=(system_message, *kept, newest),
        estimated_tokens=used,
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
