"""Fenced code blocks in a Markdown source: which lines open, hold and close them.

Pure text functions (stdlib only, no I/O), shared by rendering (``render``) and splitting
(``split``). A fence is ``` or ~~~ (three or more), at any indentation, with an optional info
string; a backtick fence's info string may not contain a backtick. A block closes at a line holding only
the same fence character, at least as many times. Indented code is not recognised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Fence", "Kind", "Line", "classify"]

Kind = Literal["text", "open", "code", "close"]

_FENCE = re.compile(r"(?P<indent>[ \t]*)(?P<marker>`{3,}|~{3,})(?P<info>.*)")


@dataclass(frozen=True, slots=True)
class Fence:
    """The opening line of a fenced code block."""

    line: str
    indent: str
    marker: str


@dataclass(frozen=True, slots=True)
class Line:
    """One source line, with its place in the code-block state machine."""

    text: str
    kind: Kind
    fence: Fence | None
    start: int

    @property
    def end(self) -> int:
        """Index of the line break that ends this line."""
        return self.start + len(self.text)


def classify(texts: list[str]) -> list[Line]:
    """Run the code-block state machine over the lines."""
    lines: list[Line] = []
    fence: Fence | None = None
    start = 0
    for text in texts:
        if fence is None:
            fence = _open_fence(text)
            lines.append(Line(text, "text" if fence is None else "open", fence, start))
        elif _closes(text, fence):
            lines.append(Line(text, "close", fence, start))
            fence = None
        else:
            lines.append(Line(text, "code", fence, start))
        start += len(text) + 1
    return lines


def _open_fence(line: str) -> Fence | None:
    """The fence that ``line`` opens, if it is an opening fence line."""
    match = _FENCE.fullmatch(line)
    if match is None or (match["marker"][0] == "`" and "`" in match["info"]):
        return None
    return Fence(line, match["indent"], match["marker"])


def _closes(line: str, fence: Fence) -> bool:
    """Whether ``line`` closes the code block opened by ``fence``."""
    stripped = line.strip()
    return len(stripped) >= len(fence.marker) and set(stripped) == {fence.marker[0]}
