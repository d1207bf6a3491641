"""Split a long Markdown answer into pieces that each fit one Slack message.

Pure text functions (no I/O; stdlib and ``fences`` only): ``take_chunk(markdown, limit)`` cuts
at the best boundary, keeping code blocks fenced on both sides of a cut, and never inside a link, a
Slack token, a code span or a character as people see it (an emoji sequence, a flag, a letter with its
accents). Rendering the pieces is
``render``'s job.
"""

from __future__ import annotations

import re
import unicodedata

from handlers.reply.fences import Line, classify

__all__ = ["take_chunk"]

_LEADING_BLANKS = re.compile(r"\A(?:[ \t]*\n)+")
# On one line: a Markdown link or image, a <...> token or autolink, a code span. None is ever cut.
_UNBREAKABLE = re.compile(r"!?\[[^\]\n]*\]\([^)\n]*\)|<[^<>\n]*>|(`+)[^`\n]+?\1")
_ZWJ = "\u200d"
_JOINED = frozenset({_ZWJ, "\ufe0e", "\ufe0f"})
_EMOJI_MODIFIERS = ("\U0001f3fb", "\U0001f3ff")
_TAGS = ("\U000e0020", "\U000e007f")


def take_chunk(markdown: str, limit: int) -> tuple[str, str]:
    """Split a Markdown source longer than ``limit`` characters into ``(head, rest)``.

    ``head`` has at most ``limit`` characters and ends at the best boundary: the last blank line
    outside code, else the last line break outside code, else the last line break inside a code block
    (``head`` then gets a closing fence and ``rest`` starts with the reopening fence line), else the
    last space, else a hard cut. Newlines at the cut are dropped. Short input comes back as is.
    """
    if len(markdown) <= limit:
        return markdown, ""
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    lines = classify(markdown[: limit + 2].split("\n"))
    candidates = [line for line in lines[:-1] if line.end <= limit + 1]
    for tier in (0, 1, 2):
        for line in reversed(candidates):
            if _rank(line) <= tier and (chunk := _cut_after(markdown, line, limit)):
                return chunk
    return _cut_within_line(markdown, limit, lines)


def _rank(line: Line) -> int:
    """How good a cut right after ``line`` is: 0 paragraph, 1 line, 2 inside code, 3 never."""
    if line.kind == "code":
        return 2
    if line.kind == "open":
        return 3
    return 0 if line.kind == "text" and not line.text.strip() else 1


def _cut_after(markdown: str, line: Line, limit: int) -> tuple[str, str] | None:
    """Cut at the line break after ``line``; None if the head would be empty or too long."""
    if line.kind == "code" and line.fence is not None:
        head = f"{markdown[: line.end]}\n{line.fence.indent}{line.fence.marker}"
        rest = f"{line.fence.line}\n{markdown[line.end + 1 :]}"
    else:
        head = markdown[: line.end].rstrip()
        rest = _LEADING_BLANKS.sub("", markdown[line.end + 1 :])
    return (head, rest) if head and len(head) <= limit else None


def _cut_within_line(markdown: str, limit: int, lines: list[Line]) -> tuple[str, str]:
    """Cut inside a line: at the last space, else hard; a cut code line keeps its fences."""
    fence = _line_at(lines, limit).fence
    if fence is not None:
        close = f"\n{fence.indent}{fence.marker}"
        high = limit - len(close)
        line = _line_at(lines, high)
        if line.kind == "code" and high > line.start:
            cut = _last_space(markdown, line.start + 1, high)
            return markdown[:cut] + close, f"{fence.line}\n{markdown[cut:]}"
    cut = _last_space(markdown, 1, limit)
    return markdown[:cut].rstrip(" \t") or markdown[:cut], markdown[cut:].lstrip(" \t")


def _line_at(lines: list[Line], index: int) -> Line:
    """The line that holds character ``index`` (a line's ending break counts as part of it)."""
    return next((line for line in reversed(lines) if line.start <= index), lines[0])


def _last_space(text: str, low: int, high: int) -> int:
    """Where to cut in ``text[low:high + 1]``: the last space or tab outside a link, a Slack token or a
    code span; else the last place outside those that splits no character as people see it; else
    ``high``."""
    spans = _spans(text, low, high)
    for index in range(high, low - 1, -1):
        if text[index] in " \t" and not _inside(index, spans):
            return index
    for index in range(high, low, -1):
        if not _inside(index, spans) and _grapheme_boundary(text, index):
            return index
    return high


def _spans(text: str, low: int, high: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each link, Slack token or code span that overlaps ``text[low:high + 1]``."""
    start = text.rfind("\n", 0, low) + 1
    end = text.find("\n", high)
    line = text[start : end if end >= 0 else len(text)]
    return [(start + m.start(), start + m.end()) for m in _UNBREAKABLE.finditer(line)]


def _inside(index: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < index < end for start, end in spans)


def _grapheme_boundary(text: str, index: int) -> bool:
    """False when cutting before ``text[index]`` would split a character as people see it: a combining
    mark, a zero-width joiner or what it joins, a variation selector or skin tone, the second half of a
    flag (Unicode's grapheme cluster rules, approximated: https://unicode.org/reports/tr29/)."""
    char, before = text[index], text[index - 1]
    if unicodedata.combining(char) or char in _JOINED or before == _ZWJ:
        return False
    if _EMOJI_MODIFIERS[0] <= char <= _EMOJI_MODIFIERS[1] or _TAGS[0] <= char <= _TAGS[1]:
        return False
    if _is_regional(char) and _is_regional(before):
        # Flags are pairs of regional indicators: cut only at an even count from the run's start.
        run = 0
        while index - run - 1 >= 0 and _is_regional(text[index - run - 1]):
            run += 1
        return run % 2 == 0
    return True


def _is_regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"
