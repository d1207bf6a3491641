"""Thread catch-up, the platform-free part: a thread's earlier messages as the first turns of its history.

The first time the bot answers in a thread it has no memory of, the front end reads the messages written
there before (``handlers.catchup``). Here they become history turns: the bot's own messages are assistant
turns (consecutive ones, the parts of one long answer, are joined); everyone else's, people's and other
bots', are user turns naming their author (``Alice: text``). They are kept within what the prompt can
hold next to the question: the context window less the reply's output budget, the system prompt, the
request overhead and the question itself (``catchup_budget``); the oldest are dropped first. Images count
their exact token estimates (``ImageRef.tokens``). A note says when messages were left out, at the start
(over the budget) or at the end (not read), so the model does not take a part for the whole.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.domain import ChatMessage, ImageRef
from bot.core.tokens import REQUEST_OVERHEAD_TOKENS, estimate_message_tokens

LEFT_OUT_NOTE = "[Earlier messages of this thread are left out: they do not fit.]"
NOT_READ_NOTE = "[Later messages of this thread, up to the next one, were not read.]"


@dataclass(frozen=True, slots=True)
class EarlierMessage:
    """One message written in a thread before the bot was asked there, as its author wrote it.

    ``own``: the bot wrote it (an assistant turn). Otherwise ``author`` names who wrote it, a person or
    another bot. ``images`` are the message's prepared images.
    """

    author: str
    text: str
    own: bool = False
    images: tuple[ImageRef, ...] = ()


def catchup_budget(context_tokens: int, max_output_tokens: int, system_prompt: str, question: str) -> int:
    """Tokens the earlier messages may take: what ``prompt.build_prompt`` has left for history once the
    system prompt, the request overhead and ``question`` (the message being answered, its text) are in;
    0 when nothing is left."""
    fixed = (
        REQUEST_OVERHEAD_TOKENS
        + estimate_message_tokens(ChatMessage("system", system_prompt))
        + estimate_message_tokens(ChatMessage("user", question))
    )
    return max(0, context_tokens - max_output_tokens - fixed)


def image_words(count: int) -> str:
    """What stands for the words of a message that is only images."""
    return "[image]" if count == 1 else f"[{count} images]"


def earlier_turn(message: EarlierMessage) -> ChatMessage | None:
    """The history turn of one earlier message; None when it has neither words nor images."""
    text = message.text.strip()
    if not text and not message.images:
        return None
    if message.own:
        return ChatMessage("assistant", text)
    words = text or image_words(len(message.images))
    return ChatMessage("user", f"{message.author}: {words}", message.images)


def fit_newest(messages: Sequence[EarlierMessage], budget_tokens: int) -> list[EarlierMessage]:
    """The newest ``messages`` whose turns fit together in ``budget_tokens`` (the oldest dropped first)."""
    start = len(messages)
    for index in range(len(messages) - 1, -1, -1):
        turn = earlier_turn(messages[index])
        cost = estimate_message_tokens(turn) if turn is not None else 0
        if cost > budget_tokens:
            break
        budget_tokens -= cost
        start = index
    return list(messages[start:])


def catchup_turns(
    messages: Sequence[EarlierMessage], budget_tokens: int, *, left_out: bool, unread_after: bool
) -> list[ChatMessage]:
    """The history turns of a thread's earlier ``messages`` (oldest first), within ``budget_tokens``.

    ``left_out``: older messages were dropped already (a first fit without images); ``unread_after``:
    messages after these were not read (the read stopped at its limit). Each adds its note. Empty when
    no message fits.
    """
    notes = ChatMessage("user", LEFT_OUT_NOTE), ChatMessage("user", NOT_READ_NOTE)
    kept = fit_newest(messages, budget_tokens - sum(estimate_message_tokens(note) for note in notes))
    turns = _joined([turn for message in kept if (turn := earlier_turn(message)) is not None])
    if not turns:
        return []
    if left_out or len(kept) < len(messages):
        turns.insert(0, notes[0])
    if unread_after:
        turns.append(notes[1])
    return turns


def _joined(turns: list[ChatMessage]) -> list[ChatMessage]:
    """Consecutive assistant turns as one: a long answer was posted as several messages."""
    joined: list[ChatMessage] = []
    for turn in turns:
        if joined and turn.role == "assistant" and joined[-1].role == "assistant":
            joined[-1] = ChatMessage("assistant", f"{joined[-1].text}\n\n{turn.text}")
        else:
            joined.append(turn)
    return joined
