"""Immutable values that travel through the core.

Slack's raw JSON never gets past ``handlers/``: it is parsed into these types at the door.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ThreadKey:
    """One conversation: a Slack thread (or the console session)."""

    team: str
    channel: str
    thread_ts: str

    def tag(self) -> str:
        """A stable string naming the thread, used inside Redis hash tags."""
        return f"{self.team}:{self.channel}:{self.thread_ts}"


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A user's message that the bot should answer."""

    thread: ThreadKey
    message_ts: str
    user_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a model prompt or of a thread's stored history."""

    role: Role
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as reported by the model for one reply."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """Everything the model client needs for one streamed completion."""

    messages: tuple[ChatMessage, ...]
    max_tokens: int


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's visible text, in order."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning: counted, never shown, never stored."""

    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The stream finished normally. ``finish_reason`` is ``stop`` or ``length``; usage may be missing."""

    finish_reason: str
    usage: Usage | None


ModelEvent = TextDelta | ReasoningDelta | StreamEnd
