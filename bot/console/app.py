"""``glmbot console``: talk to the model in a terminal through the same conversation service.

Lines come from standard input (a terminal or a pipe); the answer streams to standard output.
Commands: ``/image PATH [question]`` sends an image (through the same image pipeline as Slack uploads),
``/reset`` forgets the conversation, ``/quit`` (or end of input) leaves.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from typing import TextIO

from bot.core.conversation import ConversationService
from bot.core.domain import IncomingMessage, Notice, ThreadKey
from bot.core.errors import StoreUnavailable
from bot.core.messages import user_message, with_notices
from bot.images.local import LocalFileFetcher, local_attachment

CONSOLE_THREAD = ThreadKey(team="console", channel="console", thread_ts="local")
CONSOLE_USER = "console"
HELP = (
    "Type a question. Commands: /image PATH [question] sends an image, /reset forgets the conversation, "
    "/quit leaves."
)


class ConsoleSink:
    """Prints one streaming answer (implements ``bot.core.ports.ReplySink``)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._printed = 0

    async def start(self) -> None:
        self._out.write("glm> ")
        self._out.flush()

    def show(self, text: str) -> None:
        self._out.write(text[self._printed :])
        self._out.flush()
        self._printed = len(text)

    async def finish(self, text: str, notices: Sequence[Notice] = ()) -> bool:
        self.show(with_notices(text, notices, _dress))
        self._out.write("\n")
        self._out.flush()
        return True

    async def fail(self, message: str) -> None:
        # Keep what was already printed and add the message on a line of its own.
        self._out.write(("\n" if self._printed else "") + f"[!] {message}\n")
        self._out.flush()


async def run_console(
    conversation: ConversationService, files: LocalFileFetcher, stdin: TextIO, out: TextIO
) -> None:
    """Read questions until ``/quit`` or end of input."""
    out.write(HELP + "\n")
    for turn in itertools.count(1):
        out.write("you> ")
        out.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line or line.strip() == "/quit":
            out.write("\n" if not line else "")
            return
        text = line.strip()
        if text == "/reset":
            out.write(await _reset(conversation))
        elif text.startswith("/") and not text.startswith("/image "):
            out.write(f"Unknown command {text.split()[0]}. {HELP}\n")
        elif text:
            message = console_message(text, f"{time.time():.6f}-{turn}")
            await conversation.answer(message, ConsoleSink(out), files)


async def _reset(conversation: ConversationService) -> str:
    try:
        await conversation.forget(CONSOLE_THREAD)
    except StoreUnavailable as exc:
        return f"[!] {user_message(exc)}\n"
    return "(conversation forgotten)\n"


def console_message(line: str, message_ts: str) -> IncomingMessage:
    """A console line as a message; ``/image PATH rest`` attaches PATH and asks ``rest``."""
    if not line.startswith("/image "):
        return IncomingMessage(CONSOLE_THREAD, message_ts, CONSOLE_USER, line)
    _command, path, *question = line.split(maxsplit=2)
    attachment = local_attachment(path)
    return IncomingMessage(CONSOLE_THREAD, message_ts, CONSOLE_USER, " ".join(question), (attachment,))


def _dress(notice: Notice) -> str:
    """Markdown stays as it is in a terminal; warnings are marked like failures."""
    return f"[!] {notice.text}" if notice.kind == "warning" else f"_{notice.text}_"
