"""Cut a long answer into Slack messages, each one message's worth of blocks.

A message holds at most ``MARKDOWN_LIMIT`` characters of Markdown (Slack takes 12,000 per message in
``markdown`` blocks, https://docs.slack.dev/reference/block-kit/blocks/markdown-block; less reads better
and re-rendering a message at each streamed edit costs CPU in proportion), and a table stands alone in
its message (slack-markdown-parser's measured rule: one ``table`` block per message). A part is cut
from the Markdown at the best boundary (``split``), rendered, and cut smaller while it still needs more
than one message or more than ``SIZE_LIMIT`` characters of block text (``msg_blocks_too_long`` was seen
at about 13,200). Pure text functions: no I/O.
"""

from __future__ import annotations

import re

from handlers.reply.fences import Line, classify
from handlers.reply.render import SlackMessage, render, verbatim
from handlers.reply.split import take_chunk

__all__ = ["MARKDOWN_LIMIT", "SIZE_LIMIT", "consumed", "cut", "render_one"]

MARKDOWN_LIMIT = 5000
"""Markdown characters per message at most."""

SIZE_LIMIT = 11_500
"""Characters of block text per message at most: under Slack's 12,000, room left for a cursor or a note."""

MAX_TABLE_ROWS = 100
"""Rows of a ``table`` block at most, its header included."""

MIN_LIMIT = 200
"""Below this many Markdown characters a part is not cut further: it is shown verbatim."""

_TABLE_SEPARATOR = re.compile(r"[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)*[ \t]*:?-+:?[ \t]*\|?[ \t]*")


def cut(markdown: str, scale: float = 1.0, *, exact: bool = True) -> tuple[SlackMessage, str] | None:
    """None when ``markdown`` fits one message; else ``(the head's message, rest of the Markdown)``.

    ``scale`` (at most 1) shrinks both limits, after Slack refused a part as too long. Without
    ``exact`` a text under the limits that holds no table boundary is taken to fit without rendering it
    (for interim edits: the final edit renders and checks).
    """
    if not markdown.strip():
        return None
    markdown_limit = max(MIN_LIMIT, int(MARKDOWN_LIMIT * scale))
    size_limit = max(MIN_LIMIT, int(SIZE_LIMIT * scale))
    boundary = _table_boundary(markdown)
    fits = len(markdown) <= markdown_limit and boundary >= len(markdown)
    if fits and (not exact or render_one(markdown, size_limit) is not None):
        return None
    if (table := _long_table(markdown)) is not None and (first := render_one(table[0], size_limit)):
        return first, table[1]
    limit = min(markdown_limit, len(markdown) - 1, boundary)
    while True:
        head, rest = take_chunk(markdown, limit)
        message = render_one(head, size_limit)
        if message is not None:
            return message, rest
        if limit <= MIN_LIMIT:
            return verbatim(head, size_limit), rest
        limit = max(MIN_LIMIT, limit // 2)


def render_one(markdown: str, size_limit: int = SIZE_LIMIT) -> SlackMessage | None:
    """``markdown`` as one message within ``size_limit``; None when it needs more than one."""
    messages = render(markdown)
    if len(messages) == 1 and messages[0].size <= size_limit and _rows(messages[0]) <= MAX_TABLE_ROWS:
        return messages[0]
    if not messages and markdown.strip():
        return verbatim(markdown, size_limit)  # nothing the renderer would show (stray markers only)
    return None


def consumed(remainder: str, rest: str) -> tuple[int, str]:
    """How much of ``remainder`` went into the head, and the prefix ``take_chunk`` added to ``rest``.

    ``rest`` may start with a reopened code fence or a repeated table header (up to two lines);
    everything after that is a suffix of ``remainder``.
    """
    starts = [0]
    for _ in range(2):
        starts.append(rest.find("\n", starts[-1]) + 1 or len(rest))
    for start in starts:
        tail = rest[start:]
        if remainder.endswith(tail):
            return len(remainder) - len(tail), rest[:start]
    return len(remainder), rest


def _rows(message: SlackMessage) -> int:
    """Rows of the message's longest table block (0 without one)."""
    return max(
        (len(block.get("rows") or ()) for block in message.blocks if block.get("type") == "table"), default=0
    )


def _table_boundary(markdown: str) -> int:
    """Where the first message must end for its table to stand alone.

    The end of the table when ``markdown`` starts with one, the start of the first table otherwise, or
    ``len(markdown)`` when it holds none.
    """
    lines = classify(markdown.split("\n"))
    table = _first_table(lines)
    if table is None:
        return len(markdown)
    start, end = table
    if markdown[: lines[start].start].strip():
        return lines[start].start
    return len(markdown) if end >= len(lines) else lines[end - 1].end


def _long_table(markdown: str) -> tuple[str, str] | None:
    """``(first MAX_TABLE_ROWS rows, the header again + the other rows + the rest)`` for a text that
    starts with a table longer than a ``table`` block may be (100 rows,
    https://docs.slack.dev/reference/block-kit/blocks/table-block); None otherwise."""
    lines = classify(markdown.split("\n"))
    table = _first_table(lines)
    if table is None or markdown[: lines[table[0]].start].strip():
        return None
    start, end = table
    cut_at = start + MAX_TABLE_ROWS + 1  # the separator row is not a row of the table
    if end <= cut_at:
        return None
    header = "\n".join(line.text for line in lines[start : start + 2])
    return markdown[: lines[cut_at - 1].end], header + "\n" + markdown[lines[cut_at].start :]


def _first_table(lines: list[Line]) -> tuple[int, int] | None:
    """``(first line, line after the last)`` of the first GFM table outside code: a row with ``|``,
    a separator row, and the rows with ``|`` that follow."""
    for index, line in enumerate(lines[:-1]):
        following = lines[index + 1]
        if not (line.kind == "text" and "|" in line.text and following.kind == "text"):
            continue
        if "|" not in following.text or not _TABLE_SEPARATOR.fullmatch(following.text):
            continue
        end = index + 2
        while end < len(lines) and lines[end].kind == "text" and "|" in lines[end].text:
            end += 1
        return index, end
    return None
