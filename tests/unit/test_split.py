"""Splitting long Markdown answers into Slack-sized messages."""

from __future__ import annotations

import re

import pytest

from handlers.reply.render import render
from handlers.reply.split import take_chunk

FENCE_LINE = re.compile(r"^[ \t]*(?:```|~~~)\S*[ \t]*$", re.MULTILINE)


def _content(text: str) -> str:
    """The text without fence lines and without any whitespace, for reassembly checks."""
    return "".join(FENCE_LINE.sub("", text).split())


def _fences_balanced(text: str) -> bool:
    return len(FENCE_LINE.findall(text)) % 2 == 0


def _all_chunks(markdown: str, limit: int) -> list[str]:
    chunks: list[str] = []
    rest = markdown
    while rest:
        assert len(chunks) <= len(markdown), "take_chunk made no progress"
        head, rest = take_chunk(rest, limit)
        chunks.append(head)
    return chunks


def test_take_chunk_short_input_is_unchanged() -> None:
    """Input within the limit comes back whole."""
    assert take_chunk("short text", 10) == ("short text", "")
    assert take_chunk("", 5) == ("", "")


@pytest.mark.parametrize(
    ("markdown", "limit", "head", "rest"),
    [
        ("para one\nline two\n\npara two\nmore", 25, "para one\nline two", "para two\nmore"),
        ("aaa\n\nbbb\nccc\nddd", 13, "aaa", "bbb\nccc\nddd"),
        ("line one\nline two\nline three", 20, "line one\nline two", "line three"),
        ("first words and more words", 16, "first words and", "more words"),
        ("abcdefghijklmnop", 5, "abcde", "fghijklmnop"),
        ("intro\n\n```\ncode\n\nmore\n```\nend", 24, "intro", "```\ncode\n\nmore\n```\nend"),
        ("intro\n\n```\ncode\n```\n\nafter text", 25, "intro\n\n```\ncode\n```", "after text"),
    ],
)
def test_take_chunk_boundaries(markdown: str, limit: int, head: str, rest: str) -> None:
    """Paragraph breaks beat line breaks, which beat spaces, which beat hard cuts; code is not split."""
    assert take_chunk(markdown, limit) == (head, rest)


def test_take_chunk_inside_huge_code_block() -> None:
    """A code block longer than the limit is split at a line, with both halves fenced."""
    code = "```python\n" + "\n".join(f"print({n})" for n in range(20)) + "\n```"
    head, rest = take_chunk(code, 60)
    assert len(head) <= 60
    assert head.startswith("```python\nprint(0)\n")
    assert head.endswith("\n```")
    assert rest.startswith("```python\n")
    assert rest.endswith("print(19)\n```")
    assert _content(head + rest) == _content(code)
    for half in (head, rest):  # each half renders as one code block
        [message] = render(half)
        assert [block["type"] for block in message.blocks] == ["rich_text"]


def test_take_chunk_inside_one_huge_code_line() -> None:
    """A single code line longer than the limit is cut at a space and both halves stay fenced."""
    code = "~~~\n" + "token " * 30 + "\n~~~"
    head, rest = take_chunk(code, 50)
    assert len(head) <= 50
    assert head.startswith("~~~\ntoken ")
    assert head.endswith("\n~~~")
    assert rest.startswith("~~~\n")
    assert _content(head + rest) == _content(code)


def test_take_chunk_never_returns_empty_head() -> None:
    """Leading blank lines or spaces cannot produce an empty head."""
    for markdown in ("\n\n\nabcdef", "      abcdef", "\n\n```\nabc\n```"):
        for limit in range(1, len(markdown)):
            head, _ = take_chunk(markdown, limit)
            assert head
            assert len(head) <= limit


def test_take_chunk_rejects_non_positive_limit() -> None:
    """A limit below one character cannot be honoured."""
    with pytest.raises(ValueError, match="limit"):
        take_chunk("some text", 0)


CHUNK_DOCUMENT = (
    "# Report\n\nIntro paragraph with **bold** text.\nSecond line of the intro.\n\n"
    "```python\n"
    + "\n".join(f"value_{n} = compute({n})  # step" for n in range(25))
    + "\n```\n\nAfter the code.\n- item one\n- item two\n\n"
    + "word " * 60
    + "\n\n~~~\n"
    + "z" * 80
    + " tail\n~~~\nThe end."
)


def test_take_chunk_any_limit_is_safe() -> None:
    """For every limit, heads are non-empty and within the limit, and splitting terminates."""
    for limit in range(1, len(CHUNK_DOCUMENT) + 2):
        chunks = _all_chunks(CHUNK_DOCUMENT, limit)
        assert all(chunk and len(chunk) <= limit for chunk in chunks), limit


def test_take_chunk_reassembles_content() -> None:
    """Once a fence fits, chunks keep every character in order and each renders balanced code."""
    for limit in range(16, len(CHUNK_DOCUMENT) + 2):
        chunks = _all_chunks(CHUNK_DOCUMENT, limit)
        assert _content("\n".join(chunks)) == _content(CHUNK_DOCUMENT), limit
        assert all(_fences_balanced(chunk) for chunk in chunks), limit


@pytest.mark.parametrize(
    "unit",
    [
        "👨\u200d👩\u200d👧\u200d👦",  # a family: four people joined by ZWJ
        "👍🏽",  # a thumbs-up with a skin tone
        "🇯🇵",  # a flag: two regional indicators
        "e\u0301",  # e + combining acute accent
        "❤\ufe0f",  # a heart with its emoji variation selector
    ],
)
def test_hard_cut_never_splits_a_character(unit: str) -> None:
    """Text with no spaces is cut only between characters as people see them."""
    markdown = unit * 200
    for limit in range(7, 40):
        head, rest = take_chunk(markdown, limit)
        assert head + rest == markdown
        assert len(head) % len(unit) == 0, (limit, head[-3:])


@pytest.mark.parametrize(
    "span",
    [
        "[a label with several words](https://example.com/a/long/path)",
        "<https://example.com/a/long/path|a label with words>",
        "`code span with several words inside`",
        "<@U0123ABCD>",
    ],
)
def test_cut_never_lands_inside_a_link_mention_or_code_span(span: str) -> None:
    """A space inside a link label, a Slack token or a code span is never a cut point."""
    markdown = "word " * 10 + span + " tail" * 20
    for limit in range(len("word " * 10) + 2, len("word " * 10) + len(span)):
        head, rest = take_chunk(markdown, limit)
        assert span in head or span in rest, (limit, head[-20:], rest[:20])
