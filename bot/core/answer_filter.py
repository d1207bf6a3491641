"""Turn the model's raw answer stream into text that is safe to show a user.

GLM-4.5V wraps final answers in ``<|begin_of_box|>`` / ``<|end_of_box|>`` special tokens and, when a
backend does not split reasoning out, writes it inline as ``<think>…</think>``. Neither may reach
Slack. Because the answer is streamed, a marker can arrive split over any number of chunks, so the
filter holds back a tail that could still grow into a marker until the next chunk decides it.
"""

from __future__ import annotations

BEGIN_BOX = "<|begin_of_box|>"
END_BOX = "<|end_of_box|>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

_MARKERS = (BEGIN_BOX, END_BOX, THINK_OPEN, THINK_CLOSE)
_BOX_MARKERS = (BEGIN_BOX, END_BOX)


def _held_tail_length(text: str, markers: tuple[str, ...]) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of one of ``markers``."""
    longest = max(len(marker) for marker in markers) - 1
    for size in range(min(len(text), longest), 0, -1):
        tail = text[-size:]
        if any(marker.startswith(tail) for marker in markers):
            return size
    return 0


def _first_marker(text: str, markers: tuple[str, ...]) -> tuple[int, str] | None:
    """Position and value of the earliest complete marker of ``markers`` in ``text``, if any."""
    found: tuple[int, str] | None = None
    for marker in markers:
        index = text.find(marker)
        if index >= 0 and (found is None or index < found[0]):
            found = (index, marker)
    return found


class AnswerFilter:
    """Stateful filter: feed it raw content deltas in order, then call ``finish`` once.

    Rules: box markers are removed and their inner text kept. Think tags mean reasoning only before
    any visible text: a ``<think>…</think>`` block there is removed (an unterminated one is dropped at
    the end), and a lone ``</think>`` there means the text before it was reasoning (some templates
    pre-fill the opening tag). Once the answer has visible text, ``<think>`` and ``</think>`` are just
    text (a coding answer may well write them). Leading whitespace of the answer is stripped.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._in_think = False
        self._shown_any = False

    def feed(self, delta: str) -> str:
        """Add a raw delta; return the text that can be shown now (possibly empty)."""
        self._pending += delta
        return self._drain(final=False)

    def finish(self) -> str:
        """End of stream: return whatever was held back; an open think block is dropped."""
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> str:
        shown: list[str] = []
        while self._pending:
            if self._in_think:
                if not self._skip_reasoning(final=final):
                    break
                continue
            markers = _BOX_MARKERS if self._shown_any else _MARKERS
            found = _first_marker(self._pending, markers)
            if found is None:
                # Only a tail that could still become a marker waits; at the end it is plain text.
                keep = 0 if final else _held_tail_length(self._pending, markers)
                shown.append(self._show(self._pending[: len(self._pending) - keep]))
                self._pending = self._pending[len(self._pending) - keep :]
                break
            index, marker = found
            before = self._pending[:index]
            if marker == THINK_OPEN and before.strip():
                # Visible text comes first: this tag, and every think tag after it, is text.
                shown.append(self._show(self._pending[: index + len(marker)]))
                self._pending = self._pending[index + len(marker) :]
                continue
            self._pending = self._pending[index + len(marker) :]
            if marker == THINK_CLOSE and not self._shown_any:
                # Lone closing tag at the start: what preceded it was reasoning.
                before = ""
            shown.append(self._show(before))
            self._in_think = marker == THINK_OPEN
        return "".join(shown)

    def _skip_reasoning(self, *, final: bool) -> bool:
        """Discard reasoning text; return True when the block closed and filtering should go on."""
        index = self._pending.find(THINK_CLOSE)
        if index >= 0:
            self._pending = self._pending[index + len(THINK_CLOSE) :]
            self._in_think = False
            return True
        # Keep only a tail that might be the start of "</think>"; the rest is reasoning.
        keep = 0 if final else _held_tail_length(self._pending, (THINK_CLOSE,))
        self._pending = self._pending[len(self._pending) - keep :] if keep else ""
        return False

    def _show(self, text: str) -> str:
        """Text about to be shown: strip leading whitespace until something visible went out."""
        if not self._shown_any:
            text = text.lstrip()
            self._shown_any = bool(text)
        return text
