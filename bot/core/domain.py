"""Immutable values that travel through the core.

Slack's raw JSON never gets past ``handlers/``: it is parsed into these types at the door.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
class Attachment:
    """A file attached to a message, as the platform describes it (nothing downloaded yet).

    ``location`` is where the bytes are: a Slack file URL, or a local path in the console.
    ``needs_lookup`` means the platform sent a partial object (Slack's ``file_access: check_file_info``).
    """

    file_id: str
    name: str
    mimetype: str
    size: int | None
    location: str
    needs_lookup: bool = False


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A user's message that the bot should answer."""

    thread: ThreadKey
    message_ts: str
    user_id: str
    text: str
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A prepared (downscaled) image as history remembers it; the bytes live in the image cache."""

    file_id: str
    name: str
    mime: str
    width: int
    height: int
    tokens: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a model prompt or of a thread's stored history."""

    role: Role
    text: str
    images: tuple[ImageRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as reported by the model for one reply."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """Everything the model client needs for one streamed completion.

    ``images`` maps the file id of every image in ``messages`` to its ``data:`` URL.
    """

    messages: tuple[ChatMessage, ...]
    max_tokens: int
    images: Mapping[str, str] = field(default_factory=dict)


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
    """The stream finished: ``finish_reason`` is ``stop``, ``length`` or ``declined`` (a content filter
    stopped it); usage may be missing."""

    finish_reason: str
    usage: Usage | None


ModelEvent = TextDelta | ReasoningDelta | StreamEnd


@dataclass(frozen=True, slots=True)
class CachedImage:
    """A prepared image: what history remembers of it, and the bytes as a ``data:`` URL."""

    ref: ImageRef
    data_url: str


@dataclass(frozen=True, slots=True)
class CollectedImages:
    """The usable images of one message, and a sentence for each file left out."""

    images: tuple[CachedImage, ...]
    problems: tuple[str, ...]

    @property
    def refs(self) -> tuple[ImageRef, ...]:
        return tuple(image.ref for image in self.images)


@dataclass(slots=True)
class StreamProgress:
    """What a reply's stream produced so far, kept current while it runs (so a failure knows it too)."""

    text: str = ""
    reasoning: str = ""


NoticeKind = Literal["warning", "note"]


@dataclass(frozen=True, slots=True)
class Notice:
    """A line shown under an answer, in Markdown: a ``warning`` (a file left out) or a ``note``.

    Each front end dresses it its own way (Slack: ``:warning:`` or italics).
    """

    kind: NoticeKind
    text: str
