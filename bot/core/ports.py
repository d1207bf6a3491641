"""The seam between the conversation service and wherever the answer is shown (Slack or a terminal)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from bot.core.domain import Attachment, ModelEvent, ModelRequest


class ReplySink(Protocol):
    """Shows one streaming answer to the user."""

    async def start(self) -> None:
        """Show that an answer is coming (a placeholder). Raises SlackUnavailable if that fails."""

    def show(self, text: str) -> None:
        """The answer so far (Markdown). Never blocks: the sink paces its own output."""

    async def finish(self, text: str) -> None:
        """The whole answer (Markdown); returns once it is displayed."""

    async def fail(self, message: str) -> None:
        """Replace the pending answer with a short message for the user."""


class ModelStream(Protocol):
    """Streams one completion (implemented by ``model_client.ModelClient``)."""

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """The answer's events, ending with one StreamEnd; raises ModelError subclasses."""
        ...


class AttachmentFetcher(Protocol):
    """Gets the bytes of an attached file (from Slack, or from disk in the console)."""

    async def fetch(self, attachment: Attachment) -> bytes:
        """The file's bytes; raises ImageRejected with a reason the user can act on."""
        ...
