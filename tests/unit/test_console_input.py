"""The console's input side: what Ctrl-C means at each moment, and lines read from a real pipe."""

from __future__ import annotations

import asyncio
import io
import os

from bot.console.app import ConsoleSink, CtrlC, StdinLines, console_message, image_arguments


async def test_ctrl_c_at_the_prompt_ends_the_session() -> None:
    """With no answer in progress one press ends the wait for a line."""
    ctrl_c = CtrlC()
    waiting = asyncio.ensure_future(ctrl_c.unless_quit(asyncio.Event().wait()))
    await asyncio.sleep(0)
    ctrl_c.pressed()
    assert await asyncio.wait_for(waiting, 1) == (False, None)


async def test_first_ctrl_c_stops_the_answer_a_second_ends_the_session_quietly() -> None:
    """While an answer runs: the first press only sets its stop signal; a second (the answer has not
    ended yet) mutes its sink, so nothing misleading is printed on its way out, and ends the session."""
    ctrl_c, out = CtrlC(), io.StringIO()
    sink = ConsoleSink(out)
    with ctrl_c.answering(sink) as stop:
        answer = asyncio.ensure_future(ctrl_c.unless_quit(asyncio.Event().wait()))
        await asyncio.sleep(0)
        ctrl_c.pressed()
        await asyncio.sleep(0.05)
        assert (stop.stopped, answer.done(), sink.muted) == (True, False, False)
        ctrl_c.pressed()
        assert await asyncio.wait_for(answer, 1) == (False, None)
    assert sink.muted
    await sink.fail("I was restarted before I could finish.")
    assert out.getvalue() == ""


async def test_an_answer_that_ends_returns_its_result_and_ctrl_c_goes_back_to_the_prompt() -> None:
    """A finished answer is returned as is; afterwards a press means "leave" again."""
    ctrl_c = CtrlC()
    with ctrl_c.answering(ConsoleSink(io.StringIO())):
        assert await ctrl_c.unless_quit(asyncio.sleep(0, result="done")) == (True, "done")
    ctrl_c.pressed()
    assert await ctrl_c.unless_quit(asyncio.Event().wait()) == (False, None)


async def test_lines_from_a_pipe_arrive_whole_and_end_with_an_empty_string() -> None:
    """Lines split across writes are joined, bytes that are not UTF-8 become U+FFFD, a last line with no
    newline still counts, and the end of input reads as ""."""
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, encoding="utf-8") as stdin:
        lines = StdinLines(stdin)
        os.write(write_end, "héllo wo".encode())
        os.write(write_end, b"rld\nbad \xff byte\nlast")
        os.close(write_end)
        got = [await asyncio.wait_for(lines.readline(), 5) for _ in range(4)]
    assert got == ["héllo world\n", "bad \ufffd byte\n", "last", ""]


def test_image_arguments_take_quoted_paths_with_spaces() -> None:
    assert image_arguments("/image cat.png what is it?") == ("cat.png", "what is it?")
    assert image_arguments('/image "my photo.png" what is it?') == ("my photo.png", "what is it?")
    assert image_arguments("/image 'a b.png'") == ("a b.png", "")
    assert image_arguments("/image") is None
    assert image_arguments("/image   ") is None
    assert image_arguments('/image "unclosed.png what') is None


def test_a_quoted_path_becomes_the_attachment() -> None:
    message = console_message('/image "my photo.png" describe it', "1.0")
    assert message.text == "describe it"
    (attachment,) = message.attachments
    assert attachment.name == "my photo.png"
