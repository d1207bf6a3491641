"""Split a long Markdown answer into pieces that each fit one Slack message.

Pure text functions (no I/O; stdlib and ``fences`` only): ``take_chunk(markdown, limit)`` cuts
at the best boundary, keeping code blocks fenced on both sides of a cut. Rendering the pieces is
``mrkdwn``'s job.
"""

from __future__ import annotations

import re

from handlers.reply.fences import Line, classify

__all__ = ["take_chunk"]

_LEADING_BLANKS = re.compile(r"\A(?:[ \t]*\n)+")


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
    """Index of the last space or tab in ``text[low:high + 1]``, else ``high``."""
    found = max(text.rfind(" ", low, high + 1), text.rfind("\t", low, high + 1))
    return found if found >= low else high
