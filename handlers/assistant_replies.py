"""Answers in the assistant panel: the viewed channel as a note, a status while preparing, a title.

``PanelAnswers.adapt`` is ``SlackDelivery``'s answer hook. For a message in a panel thread (one
``PanelThreads`` knows) it returns the message with a note naming the channel the user views, and a sink
that wraps the reply's streamer:

* ``assistant.threads.setStatus`` "is thinking…" with ``loading_messages`` when the reply starts, and
  ``status: ""`` (which clears it) once the first words show, or before the answer or a failure is
  delivered. At most one set and one clear per reply attempt: the method has "special" rate limits
  (about one call a second per thread, like chat.postMessage) and Slack removes a status after two
  minutes without a message anyway. https://docs.slack.dev/reference/methods/assistant.threads.setStatus
* ``assistant.threads.setTitle`` from the thread's first question, once per thread (Tier 3 or 4:
  the docs and Slack's SDKs differ). https://docs.slack.dev/reference/methods/assistant.threads.setTitle

Both are courtesies: a failure is logged and the answer goes on. Plain DM threads and channel threads
pass through unchanged (a DM thread costs one ``HMGET``; channel threads nothing).

**Only what the user can see.** The note holds the viewed channel's name (``conversations.info``) and
id, never its messages: Slack reports the channel the user has open next to the panel, so its name is
something they see; its history might not be readable by them through the bot, so none is read.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.domain import IncomingMessage, Notice, ThreadKey
from bot.core.errors import DeliveryFailed, StoreUnavailable
from bot.core.ports import ReplySink
from handlers.assistant_context import ChannelNames, PanelThreads
from handlers.errors import slack_errors

log = structlog.get_logger(__name__)

STATUS = "is thinking…"
LOADING_MESSAGES = ["Reading your question…", "Thinking it through…", "Writing the answer…"]
STATUS_TIMEOUT_SECONDS = 5.0
TITLE_CHARS = 60


def viewing_note(channel: str, name: str) -> str:
    """The note after a panel question: which channel the user has open (its name and id, nothing else)."""
    shown = f"#{name} (channel id {channel})" if name else f"the channel with id {channel}"
    return f"(Context: in Slack, the user is viewing {shown}. Its messages are not available to you.)"


def title_of(text: str) -> str:
    """A thread title from its first question: the first line, spaces collapsed, cut at a word with "…"."""
    line = next((part for part in text.splitlines() if part.strip()), "")
    words = re.sub(r"\s+", " ", line).strip()
    if len(words) <= TITLE_CHARS:
        return words
    cut = words[: TITLE_CHARS - 1]
    if " " in cut[TITLE_CHARS // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "…"


class PanelAnswers:
    """The answer hook for panel threads (see the module docstring)."""

    def __init__(self, threads: PanelThreads, client: AsyncWebClient, names: ChannelNames) -> None:
        self._threads = threads
        self._client = client
        self._names = names

    async def adapt(self, message: IncomingMessage, sink: ReplySink) -> tuple[IncomingMessage, ReplySink]:
        """``message`` and ``sink`` as a panel answer needs them; unchanged outside panel threads."""
        thread = message.thread
        if not thread.channel.startswith("D") or thread.thread_ts == message.message_ts:
            return message, sink  # panel threads are threads in the app's DM
        try:
            panel = await self._threads.lookup(thread)
        except StoreUnavailable as exc:
            log.warning("assistant_thread_unknown", detail=str(exc))
            return message, sink
        if panel is None:
            return message, sink
        title = title_of(message.text)
        if panel.viewing is not None and message.text.strip():
            # Not for an image with no words: that one is asked about as "Describe this image."
            note = viewing_note(panel.viewing, await self._names.name(panel.viewing))
            message = replace(message, text=f"{message.text}\n\n{note}")
        status = PanelStatus(self._client, thread)
        return message, PanelSink(sink, status, lambda: self._title(thread, title))

    async def _title(self, thread: ThreadKey, title: str) -> None:
        """Name the thread after its first question (once per thread)."""
        if not title:
            return
        try:
            if not await self._threads.claim_title(thread):
                return
            with slack_errors("assistant.threads.setTitle"):
                await asyncio.wait_for(
                    self._client.assistant_threads_setTitle(
                        channel_id=thread.channel, thread_ts=thread.thread_ts, title=title
                    ),
                    STATUS_TIMEOUT_SECONDS,
                )
        except (DeliveryFailed, StoreUnavailable) as exc:
            log.warning("assistant_title_not_set", detail=str(exc))


class PanelStatus:
    """One reply attempt's status line in a panel thread: set once, cleared once."""

    def __init__(self, client: AsyncWebClient, thread: ThreadKey) -> None:
        self._client = client
        self._thread = thread
        self._shown = False
        self._clearing: asyncio.Task[bool] | None = None

    async def show(self) -> None:
        self._shown = await self._send(STATUS, LOADING_MESSAGES)

    def clear_soon(self) -> None:
        """Clear the status in the background (``show`` of the sink never blocks)."""
        if self._shown and self._clearing is None:
            self._clearing = asyncio.create_task(self._send("", None))

    async def clear(self) -> None:
        """Clear the status, and wait until Slack has it."""
        self.clear_soon()
        if self._clearing is not None:
            await self._clearing

    async def _send(self, status: str, loading: list[str] | None) -> bool:
        try:
            with slack_errors("assistant.threads.setStatus"):
                await asyncio.wait_for(
                    self._client.assistant_threads_setStatus(
                        channel_id=self._thread.channel,
                        thread_ts=self._thread.thread_ts,
                        status=status,
                        loading_messages=loading,
                    ),
                    STATUS_TIMEOUT_SECONDS,
                )
        except DeliveryFailed as failed:
            log.warning("assistant_status_not_set", detail=str(failed), clearing=not status)
            return False
        return True


class PanelSink:
    """A reply sink in a panel thread: the status and title around the reply's own sink."""

    def __init__(self, inner: ReplySink, status: PanelStatus, title: Callable[[], Awaitable[None]]) -> None:
        self._inner = inner
        self._status = status
        self._title = title

    async def start(self) -> None:
        # Status and title first, at once, then the reply's own start (a placeholder, or nothing yet).
        await asyncio.gather(self._status.show(), self._title())
        await self._inner.start()

    def show(self, text: str) -> None:
        if text.strip():
            self._status.clear_soon()
        self._inner.show(text)

    async def finish(self, text: str, notices: Sequence[Notice] = ()) -> bool:
        await self._status.clear()
        return await self._inner.finish(text, notices)

    async def fail(self, message: str) -> None:
        await self._status.clear()
        await self._inner.fail(message)
