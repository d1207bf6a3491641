"""``glmbot console``: talk to the model in a terminal through the same conversation service.

Lines come from standard input (a terminal or a pipe); the answer streams to standard output.
Commands: ``/image PATH [question]`` sends an image (through the same image pipeline as Slack uploads),
``/reset`` forgets the conversation, ``/quit`` (or end of input) leaves.

Ctrl-C does what it does in most terminal programs that stream output:
- while an answer streams, it stops that answer like Slack's Stop button (what streamed so far stays,
  is remembered and charged for the work done, with a "(Stopped.)" note) and the prompt comes back;
- at the prompt, or a second time while an answer is being stopped, it ends the session with exit
  status 130 (128 + SIGINT, how shells report a program interrupted by Ctrl-C), with no traceback.

Everything printed is plain text: no Slack markup, and notes are not dressed as Markdown.
"""

from __future__ import annotations

import asyncio
import codecs
import io
import itertools
import os
import signal
import threading
import time
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import NoReturn, TextIO, TypeVar

from bot.core.conversation import ConversationService
from bot.core.domain import IncomingMessage, Notice, ThreadKey
from bot.core.errors import StoreUnavailable
from bot.core.generation import StopSignal
from bot.core.messages import operator_message, user_message, with_notices
from bot.images.local import LocalFileFetcher, local_attachment

CONSOLE_THREAD = ThreadKey(team="console", channel="console", thread_ts="local")
CONSOLE_USER = "console"
HELP = (
    "Type a question. Commands: /image PATH [question] sends an image, /reset forgets the conversation, "
    "/quit leaves. Ctrl-C stops an answer; at the prompt it leaves."
)
INTERRUPTED_STATUS = 130  # 128 + SIGINT
READ_BYTES = 64 * 1024
T = TypeVar("T")


class ConsoleSink:
    """Prints one streaming answer (implements ``bot.core.ports.ReplySink``)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._printed = 0
        # Set when the session is ending: the cancelled answer must not claim a restart.
        self.muted = False

    async def start(self) -> None:
        self._out.write("glm> ")
        self._out.flush()

    def show(self, text: str) -> None:
        if self.muted:
            return
        self._out.write(text[self._printed :])
        self._out.flush()
        self._printed = len(text)

    async def finish(self, text: str, notices: Sequence[Notice] = ()) -> bool:
        self.show(with_notices(text, notices, _dress))
        if not self.muted:
            self._out.write("\n")
            self._out.flush()
        return True

    async def fail(self, message: str) -> None:
        if self.muted:
            return
        # Keep what was already printed and add the message on a line of its own.
        self._out.write(("\n" if self._printed else "") + f"[!] {message}\n")
        self._out.flush()


class StdinLines:
    """The lines of standard input, read ahead by a daemon thread; ``""`` marks the end of input.

    Not ``asyncio.to_thread``: that parks a blocked read in the default executor, which ``asyncio.run``
    joins at exit, so Ctrl-C at the prompt would wait for the next Enter. A daemon thread is simply left
    behind at exit. It reads the file descriptor itself (``os.read``) rather than through ``sys.stdin``'s
    buffer, whose lock a thread blocked in a read would hold while the exiting interpreter closes it.
    """

    def __init__(self, stdin: TextIO) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._stdin = stdin
        threading.Thread(target=self._pump, name="console-stdin", daemon=True).start()

    async def readline(self) -> str:
        """The next line with its newline, or ``""`` at the end of input."""
        return await self._queue.get()

    def _pump(self) -> None:
        pending = ""
        for chunk in _chunks(self._stdin):
            pending += chunk
            *complete, pending = pending.split("\n")
            for line in complete:
                self._put(line + "\n")
        self._put(pending)
        self._put("")

    def _put(self, line: str) -> None:
        with suppress(RuntimeError):  # the loop closed while this thread was reading: nobody listens
            self._loop.call_soon_threadsafe(self._queue.put_nowait, line)


def _chunks(stdin: TextIO) -> Iterator[str]:
    """Text from ``stdin`` as it arrives, until the end of input (read errors count as the end)."""
    try:
        fd = stdin.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        yield from iter(stdin.readline, "")  # not a file (a StringIO): its own reads never block
        return
    # Bytes that are not valid text become U+FFFD rather than ending the session.
    decoder = codecs.getincrementaldecoder(stdin.encoding or "utf-8")(errors="replace")
    while True:
        try:
            data = os.read(fd, READ_BYTES)
        except OSError:
            data = b""
        text = decoder.decode(data, final=not data)
        if text:
            yield text
        if not data:
            return


class CtrlC:
    """What Ctrl-C means right now: it stops the answer in progress, else it ends the session."""

    def __init__(self) -> None:
        self._answer: tuple[StopSignal, ConsoleSink] | None = None
        self._quit = asyncio.Event()

    @contextmanager
    def answering(self, sink: ConsoleSink) -> Iterator[StopSignal]:
        """Inside the block Ctrl-C stops the answer streaming into ``sink`` (the signal yielded)."""
        self._answer = (StopSignal(), sink)
        try:
            yield self._answer[0]
        finally:
            self._answer = None

    def pressed(self) -> None:
        """The SIGINT handler."""
        if self._answer is None:
            self._quit.set()
            return
        stop, sink = self._answer
        if not stop.stopped:
            stop.stop("")
            return
        # Muted before the answer is cancelled: its way out must not print "I was restarted".
        sink.muted = True
        self._quit.set()

    async def unless_quit(self, work: Awaitable[T]) -> tuple[bool, T | None]:
        """``(True, result)`` of ``work``, or ``(False, None)`` once Ctrl-C ends the session (``work``
        is then cancelled and awaited)."""
        task = asyncio.ensure_future(work)
        quitting = asyncio.ensure_future(self._quit.wait())
        try:
            await asyncio.wait({task, quitting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            quitting.cancel()
        if task.done():
            return True, task.result()
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        return False, None


@contextmanager
def _handling_ctrl_c(ctrl_c: CtrlC) -> Iterator[None]:
    """SIGINT goes to ``ctrl_c`` inside the block; where signals cannot be handled here (not the main
    thread, or no signal support), Python's default stays."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, ctrl_c.pressed)
    except (NotImplementedError, RuntimeError, ValueError):
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def run_console(
    conversation: ConversationService, files: LocalFileFetcher, stdin: TextIO, out: TextIO
) -> None:
    """Read questions until ``/quit`` or end of input.

    Raises ``SystemExit(130)`` when Ctrl-C ends the session (see the module's docstring).
    """
    out.write(HELP + "\n")
    lines, ctrl_c = StdinLines(stdin), CtrlC()
    with _handling_ctrl_c(ctrl_c):
        for turn in itertools.count(1):
            out.write("you> ")
            out.flush()
            read, line = await ctrl_c.unless_quit(lines.readline())
            if not read:
                _leave(out)
            if not line or line.strip() == "/quit":
                out.write("\n" if not line else "")
                return
            if not await _handle(conversation, files, ctrl_c, line.strip(), turn, out):
                _leave(out)


async def _handle(
    conversation: ConversationService,
    files: LocalFileFetcher,
    ctrl_c: CtrlC,
    text: str,
    turn: int,
    out: TextIO,
) -> bool:
    """Run one line; False when Ctrl-C ended the session meanwhile."""
    if text == "/reset":
        out.write(await _reset(conversation))
    elif _is_image_command(text) and image_arguments(text) is None:
        out.write(f"{IMAGE_USAGE}\n")
    elif text.startswith("/") and not _is_image_command(text):
        out.write(f"Unknown command {text.split()[0]}. {HELP}\n")
    elif text:
        message = console_message(text, f"{time.time():.6f}-{turn}")
        sink = ConsoleSink(out)
        with ctrl_c.answering(sink) as stop:
            answered, _ = await ctrl_c.unless_quit(conversation.answer(message, sink, files, stop=stop))
        return answered
    return True


def _leave(out: TextIO) -> NoReturn:
    """End the session after Ctrl-C, the way shells report an interrupted program (a line break first,
    so the shell's prompt starts on a line of its own)."""
    out.write("\n")
    out.flush()
    raise SystemExit(INTERRUPTED_STATUS)


async def _reset(conversation: ConversationService) -> str:
    try:
        await conversation.forget(CONSOLE_THREAD)
    except StoreUnavailable as exc:
        return f"[!] {operator_message(exc) or user_message(exc)}\n"
    return "(conversation forgotten)\n"


IMAGE_USAGE = 'usage: /image PATH [question]  (quote a path with spaces: /image "my photo.png" what is it?)'


def _is_image_command(text: str) -> bool:
    return text == "/image" or text.startswith("/image ")


def image_arguments(line: str) -> tuple[str, str] | None:
    """``/image PATH [question]`` as (path, question); a path in single or double quotes may hold spaces.
    None when there is no path (or its quote is not closed)."""
    rest = line.removeprefix("/image").strip()
    if not rest:
        return None
    if rest[0] in "\"'":
        end = rest.find(rest[0], 1)
        return (rest[1:end], rest[end + 1 :].strip()) if end > 1 else None
    path, _, question = rest.partition(" ")
    return path, question.strip()


def console_message(line: str, message_ts: str) -> IncomingMessage:
    """A console line as a message; ``/image PATH rest`` attaches PATH and asks ``rest``."""
    arguments = image_arguments(line) if _is_image_command(line) else None
    if arguments is None:
        return IncomingMessage(CONSOLE_THREAD, message_ts, CONSOLE_USER, line)
    path, question = arguments
    return IncomingMessage(CONSOLE_THREAD, message_ts, CONSOLE_USER, question, (local_attachment(path),))


def _dress(notice: Notice) -> str:
    """Plain text for a terminal: notes as written (they carry their own parentheses), warnings marked
    like failures."""
    return f"[!] {notice.text}" if notice.kind == "warning" else notice.text
