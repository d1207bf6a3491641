"""AnswerFilter: markers and reasoning never reach the user, whatever the chunking."""

from __future__ import annotations

import pytest

from bot.core.answer_filter import AnswerFilter

# (raw model content, text the user should see). Each case must give the same result however the
# raw text is cut into chunks.
CASES: list[tuple[str, str]] = [
    ("Hello world", "Hello world"),
    ("<|begin_of_box|>42<|end_of_box|>", "42"),
    ("The answer is <|begin_of_box|>42<|end_of_box|>.", "The answer is 42."),
    ("<|begin_of_box|>Box <b>bold</b> [1, 2]<|end_of_box|>", "Box <b>bold</b> [1, 2]"),
    ("<|begin_of_box|>\nA<|end_of_box|>", "A"),
    ("<<|begin_of_box|>x<|end_of_box|>>", "<x>"),
    ("stray end<|end_of_box|>", "stray end"),
    ("<think>hmm, let me see</think>Hello", "Hello"),
    ("<think>hmm\n</think>\n\nHello", "Hello"),
    ("Hi <think>aside</think>there", "Hi <think>aside</think>there"),
    ("<think><|begin_of_box|>r<|end_of_box|></think>ok", "ok"),
    ("<think>< </thi </think>ok", "ok"),
    ("<think>never closed", ""),
    ("Answer<think>trailing reasoning", "Answer<think>trailing reasoning"),
    (
        "Use `<think>` tags like this: <think>x</think>. Done.",
        "Use `<think>` tags like this: <think>x</think>. Done.",
    ),
    ("a < b and c <| d", "a < b and c <| d"),
    ("x <", "x <"),
    ("ends with <|", "ends with <|"),
    ("<|begin_of_box", "<|begin_of_box"),
    ("</thin", "</thin"),
    ("<thinking>", "<thinking>"),
    ("\n\n  Hello\n", "Hello\n"),
    ("   ", ""),
    ("Grüße <|begin_of_box|>日本<|end_of_box|>", "Grüße 日本"),
]


def _run(chunks: list[str]) -> tuple[str, list[str]]:
    """Feed ``chunks``; return the whole output and every piece it came out in."""
    answer_filter = AnswerFilter()
    pieces = [answer_filter.feed(chunk) for chunk in chunks]
    pieces.append(answer_filter.finish())
    return "".join(pieces), pieces


def _assert_no_marker_fragment(pieces: list[str], expected: str) -> None:
    """When the answer has no '<', no streamed piece may carry part of a marker."""
    if "<" not in expected:
        assert all("<" not in piece for piece in pieces), pieces


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_single_chunk(raw: str, expected: str) -> None:
    """The whole answer in one chunk is filtered correctly."""
    assert _run([raw])[0] == expected


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_every_two_way_split(raw: str, expected: str) -> None:
    """Cutting the answer at any single position gives the same result."""
    for cut in range(len(raw) + 1):
        output, pieces = _run([raw[:cut], raw[cut:]])
        assert output == expected, f"cut at {cut}"
        _assert_no_marker_fragment(pieces, expected)


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_every_three_way_split(raw: str, expected: str) -> None:
    """Cutting the answer at any two positions gives the same result."""
    for first in range(len(raw) + 1):
        for second in range(first, len(raw) + 1):
            output, pieces = _run([raw[:first], raw[first:second], raw[second:]])
            assert output == expected, f"cuts at {first}, {second}"
            _assert_no_marker_fragment(pieces, expected)


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_one_character_chunks(raw: str, expected: str) -> None:
    """One character per chunk gives the same result and never shows half a marker."""
    output, pieces = _run(list(raw))
    assert output == expected
    _assert_no_marker_fragment(pieces, expected)


def test_text_is_not_held_back_needlessly() -> None:
    """Plain text is shown as soon as it arrives; only a possible marker start waits."""
    answer_filter = AnswerFilter()
    assert answer_filter.feed("Hello ") == "Hello "
    assert answer_filter.feed("there <|beg") == "there "
    assert answer_filter.feed("in_of_box|>X") == "X"
    assert answer_filter.feed(" a<") == " a"
    assert answer_filter.feed("b") == "<b"
    assert answer_filter.finish() == ""


def test_held_back_lookalike_is_released_by_finish() -> None:
    """A tail that only looks like a marker start comes out at finish()."""
    answer_filter = AnswerFilter()
    assert answer_filter.feed("see <") == "see "
    assert answer_filter.feed("|end_of") == ""
    assert answer_filter.finish() == "<|end_of"


def test_think_block_across_many_chunks() -> None:
    """Reasoning spread over several chunks is dropped and the answer after it kept."""
    chunks = ["<thi", "nk>step one", ", step two", "</th", "ink>", "\nDone", "."]
    assert _run(chunks)[0] == "Done."


def test_unterminated_think_dropped_at_finish() -> None:
    """A think block still open at the end of the stream is dropped, partial close tag included."""
    assert _run(["<think>more thoughts", "</thi"])[0] == ""


def test_think_tag_after_visible_text_is_text() -> None:
    """A literal <think> in the middle of an answer no longer swallows the rest of it."""
    assert _run(["Yes.", "<think>more thoughts", "</thi"])[0] == "Yes.<think>more thoughts</thi"
    assert _run(["Write ", "<thi", "nk> in your template, then the rest."])[0] == (
        "Write <think> in your template, then the rest."
    )


def test_lone_close_tag_at_start_marks_reasoning() -> None:
    """Text before a lone </think> at the start of the answer is reasoning (pre-filled <think>)."""
    assert _run(["I should greet.</think>\n\nHello!"])[0] == "Hello!"
    assert _run(["\n", "</thi", "nk>", "\nHello!"])[0] == "Hello!"
    # Only text not yet shown can be treated so: once text went out, think tags are text.
    assert _run(["I should greet.", "</think>Hello!"])[0] == "I should greet.</think>Hello!"


def test_lone_close_tag_after_visible_text_is_text() -> None:
    """Once visible text went out, a later lone </think> is just text."""
    assert _run(["Hello", " there</think> friend"])[0] == "Hello there</think> friend"


def test_leading_whitespace_stripped_only_at_start() -> None:
    """Leading newlines go; whitespace inside the answer stays, even in later chunks."""
    assert _run(["\n", " \n", "Hi", "\n\n", "  there"])[0] == "Hi\n\n  there"


def test_empty_stream() -> None:
    """No input gives no output."""
    assert _run([])[0] == ""
    assert _run(["", ""])[0] == ""
