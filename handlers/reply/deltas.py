"""What a native stream may be sent of an answer that is still being written. Pure text functions.

A native stream only grows: what was appended stays (https://docs.slack.dev/reference/methods/chat.appendStream).
So a delta must never end inside something that ``defuse`` would change once it is whole: a mention
(``<!channel>``, ``&lt;!here&gt;``, ``@everyone``), a Slack link ``<url|label>`` or a Markdown link
``[label](url)``. ``safe_end`` holds back such an unfinished tail (none of them spans a line), so each
delta can be defused on its own and the stream, once whole, holds no live token. ``stream_cut`` ends a
stream that grew too long at the best boundary, keeping code fenced on both sides.
"""

from __future__ import annotations

import re

from handlers.reply.fences import classify
from handlers.reply.split import take_chunk

__all__ = ["safe_end", "stream_cut"]

_PARTIAL_TAIL = re.compile(r"(?:&[A-Za-z]{0,3}|@\w*|!)\Z")
"""An entity (``&lt``), a crowd word (``@chan``) or a ``!`` that a following ``[`` makes an image."""


def safe_end(markdown: str, start: int) -> int:
    """How far (``>= start``) ``markdown`` may be sent now: not into an unclosed ``<``, ``&lt;`` or ``[``
    on the last line, not into a partial ``@word`` or entity, and not ending in whitespace (a final
    answer may drop it)."""
    end = len(markdown)
    while True:
        line = max(start, markdown.rfind("\n", 0, end) + 1)
        held = _unclosed(markdown, line, end)
        if (tail := _PARTIAL_TAIL.search(markdown, line, end)) is not None:
            held = min(held, tail.start())
        if held >= end:
            break
        end = held
    while end > start and markdown[end - 1].isspace():
        end -= 1
    return end


def _unclosed(markdown: str, line: int, end: int) -> int:
    """Where the first opener of ``markdown[line:end]`` with no closer after it starts (``end``: none)."""
    segment = markdown[line:end]
    found = end
    angle = max(segment.rfind("<"), segment.rfind("&lt;"))
    if angle > max(segment.rfind(">"), segment.rfind("&gt;")):
        found = min(found, line + angle)
    bracket = segment.rfind("[")
    if bracket > segment.rfind("]"):
        found = min(found, line + bracket)
    link = segment.rfind("](")
    if link > segment.rfind(")"):
        found = min(found, line + max(0, segment.rfind("[", 0, link)))
    return found


def stream_cut(markdown: str, sent: int, limit: int) -> tuple[str, str]:
    """End a stream whose Markdown grew past ``limit`` characters: ``(what to add before it stops, what
    the next stream starts with)``. ``sent`` characters of ``markdown`` are in the stream already; the cut
    is at the best boundary after them (``take_chunk``). A code block open at the cut is closed there
    and reopened in the rest."""
    head, rest = take_chunk(markdown[sent:], max(1, limit - sent))
    lines = classify((markdown[:sent] + head).split("\n"))
    last = lines[-1] if lines else None
    if last is not None and last.kind in ("open", "code") and last.fence is not None:
        fence = last.fence
        head = f"{head}\n{fence.indent}{fence.marker}"
        rest = f"{fence.line}\n{rest}"
    return head, rest
