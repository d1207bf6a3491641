"""Turn the model's GitHub-flavoured Markdown into Slack mrkdwn, and split long answers.

Pure text functions (stdlib only, no I/O):

- ``to_mrkdwn(markdown)`` renders a complete answer;
- ``render_partial(markdown)`` renders a prefix of an answer that is still streaming;
- ``take_chunk(markdown, limit)`` cuts a long Markdown source at the best boundary.

Rendering rules:

- ``**bold**`` and ``__bold__`` -> ``*bold*``; ``*italic*`` and ``_italic_`` -> ``_italic_``;
  ``***x***`` -> ``*_x_*``; ``~~strike~~`` -> ``~strike~``. Emphasis needs a non-space right after the
  opening marker and right before the closing one, and no ASCII letter or digit outside the markers, so
  ``2*3*4``, ``a * b`` and ``snake_case_name`` stay as they are, while CJK text next to markers converts.
- ``[label](url)`` -> ``<url|label>``; ``![alt](url)`` -> ``<url|alt>``; bare ``https://...`` URLs and
  ``<https://...>`` autolinks -> ``<https://...>``. Markers inside a label are dropped.
- Headings ``#``..``######`` -> a bold line ``*Heading*`` (closing #s and inner emphasis markers dropped).
- Bullets ``-``, ``*``, ``+`` -> ``•`` (``◦`` when indented 2-5 spaces, ``▪`` deeper; indentation kept);
  ordered markers ``1.``/``1)`` are kept; task items ``- [ ]``/``- [x]`` -> ``☐``/``☑``.
- Blockquotes ``> x`` stay ``> x`` (nested quotes are flattened: Slack has one level).
- Horizontal rules (``---``, ``***``, ``___`` alone on a line) -> a line of ``─``.
- Fenced code (``` or ~~~, any indentation, optional language) -> ``` fences without the language tag;
  the content is only escaped. An unclosed fence is closed at the end of the text. Indented code is
  not recognised. Inline code spans are only escaped; nothing converts inside code.
- GFM tables (header row, ``|---|`` separator row, body rows) -> a code block with columns padded to
  equal display width (CJK counts double) and aligned as the separator's colons say; inline markers are
  stripped from cells and links show as ``label (url)``.
- Escaping: ``&`` -> ``&amp;``, ``<`` -> ``&lt;``, ``>`` -> ``&gt;`` everywhere, code included, except the
  ``<...>`` produced for links, a blockquote's leading ``>``, Slack tokens such as ``<@U123>``,
  ``<#C123>``, ``<!here>``, ``<!subteam^S123>``, and existing ``&amp;``/``&lt;``/``&gt;`` (never doubled).
- Backslash escapes such as ``\\*`` give the literal character.
- Line breaks and blank lines are preserved; trailing spaces are trimmed from every line.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["render_partial", "take_chunk", "to_mrkdwn"]

_Mode = Literal["slack", "heading", "cell"]
_Kind = Literal["text", "open", "code", "close"]

_RULE = "──────────"
_BULLETS = "•◦▪"

_FENCE = re.compile(r"(?P<indent>[ \t]*)(?P<marker>`{3,}|~{3,})(?P<info>.*)")
_HR = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*")
_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]+(?P<text>.*?))?(?:[ \t]+#+)?[ \t]*")
_QUOTE = re.compile(r"[ \t]*(?:>[ \t]?)+(?P<rest>.*)")
_BULLET = re.compile(r"(?P<indent>[ \t]*)[-*+](?:[ \t]+(?P<rest>.*))?")
_TASK = re.compile(r"\[(?P<mark>[ xX])\](?:[ \t]+(?P<rest>.*))?")
_ORDERED = re.compile(r"(?P<indent>[ \t]*)(?P<marker>\d{1,9}[.)])(?:[ \t]+(?P<rest>.*))?")
_TABLE_SEP = re.compile(r"[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)*[ \t]*:?-+:?[ \t]*\|?[ \t]*")
_CELL_PIPE = re.compile(r"(?<!\\)\|")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_LEADING_BLANKS = re.compile(r"\A(?:[ \t]*\n)+")
_PARTIAL_LINK = re.compile(r"!?\[(?P<label>[^\[\]]*)\]\([^)\s]*\Z")
_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt);)")
_PLACEHOLDER = re.compile(r"\x00(\d+)\x01")

# Things that must not be touched by escaping or emphasis, leftmost first.
_ATOM = re.compile(
    r"""
      (?P<esc>\\[\\`*_{}\[\]()\#+\-.!|~<>])
    | (?P<ticks>`+)(?P<code>.+?)(?<!`)(?P=ticks)(?!`)
    | (?P<token><[@#!][A-Za-z0-9^|@._-]+>)
    | <(?P<auto>(?:https?|mailto|ftp):[^\s<>]+)>
    | !?\[(?P<label>(?:[^\[\]]|\[[^\[\]]*\])*)\]\((?P<url>(?:[^()\s]|\([^()\s]*\))+)(?:[ \t]+"[^"]*")?\)
    | (?P<bare>https?://[^\s<>]+)
    """,
    re.VERBOSE,
)

_EMPHASIS = re.compile(
    r"(?<![A-Za-z0-9*])(?P<star>\*{1,3})(?![\s*])(?P<star_body>.+?)(?<![\s*])(?P=star)(?![A-Za-z0-9*])"
    r"|(?<![A-Za-z0-9_])(?P<under>_{1,3})(?![\s_])(?P<under_body>.+?)(?<![\s_])(?P=under)(?![A-Za-z0-9_])"
    r"|(?<!~)~~(?![\s~])(?P<tilde_body>.+?)(?<![\s~])~~(?!~)"
)


@dataclass(frozen=True, slots=True)
class _Fence:
    """The opening line of a fenced code block."""

    line: str
    indent: str
    marker: str


@dataclass(frozen=True, slots=True)
class _Line:
    """One source line, with its place in the code-block state machine."""

    text: str
    kind: _Kind
    fence: _Fence | None
    start: int

    @property
    def end(self) -> int:
        """Index of the line break that ends this line."""
        return self.start + len(self.text)

    @property
    def rank(self) -> int:
        """How good a cut right after this line is: 0 paragraph, 1 line, 2 inside code, 3 never."""
        if self.kind == "code":
            return 2
        if self.kind == "open":
            return 3
        return 0 if self.kind == "text" and not self.text.strip() else 1


# ---------------------------------------------------------------------------------------------- public


def to_mrkdwn(markdown: str) -> str:
    """Render a complete Markdown text as Slack mrkdwn."""
    lines = _classify(_clean(markdown).split("\n"))
    out: list[str] = []
    index = 0
    while index < len(lines):
        end = _table_end(lines, index)
        if end > index:
            out.extend(_render_table([line.text for line in lines[index:end]]))
            index = end
            continue
        out.append(_render_block_line(lines[index]))
        index += 1
    if lines[-1].kind in ("open", "code"):
        out.append("```")
    return "\n".join(line.rstrip() for line in out)


def render_partial(markdown: str) -> str:
    """Render a Markdown prefix (an answer still streaming) so it displays well now.

    Like ``to_mrkdwn`` (which already closes an unclosed fence), but on the last line a half-written
    link ``[text](htt`` shows as its text, and an unmatched backtick or ``**`` is closed (or dropped
    when nothing follows it yet).
    """
    lines = _clean(markdown).split("\n")
    if _classify(lines)[-1].kind == "text":
        lines[-1] = _settle_tail(lines[-1])
    return to_mrkdwn("\n".join(lines))


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
    lines = _classify(markdown[: limit + 2].split("\n"))
    candidates = [line for line in lines[:-1] if line.end <= limit + 1]
    for tier in (0, 1, 2):
        for line in reversed(candidates):
            if line.rank <= tier and (chunk := _cut_after(markdown, line, limit)):
                return chunk
    return _cut_within_line(markdown, limit, lines)


# -------------------------------------------------------------------------------------------- blocks


def _clean(markdown: str) -> str:
    """Normalise line ends and drop the characters used for placeholders."""
    return markdown.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").replace("\x01", "")


def _open_fence(line: str) -> _Fence | None:
    """The fence that ``line`` opens, if it is an opening fence line."""
    match = _FENCE.fullmatch(line)
    if match is None or (match["marker"][0] == "`" and "`" in match["info"]):
        return None
    return _Fence(line, match["indent"], match["marker"])


def _closes(line: str, fence: _Fence) -> bool:
    """Whether ``line`` closes the code block opened by ``fence``."""
    stripped = line.strip()
    return len(stripped) >= len(fence.marker) and set(stripped) == {fence.marker[0]}


def _classify(texts: list[str]) -> list[_Line]:
    """Run the code-block state machine over the lines."""
    lines: list[_Line] = []
    fence: _Fence | None = None
    start = 0
    for text in texts:
        if fence is None:
            fence = _open_fence(text)
            lines.append(_Line(text, "text" if fence is None else "open", fence, start))
        elif _closes(text, fence):
            lines.append(_Line(text, "close", fence, start))
            fence = None
        else:
            lines.append(_Line(text, "code", fence, start))
        start += len(text) + 1
    return lines


def _render_block_line(line: _Line) -> str:
    """Render one line that is not part of a table."""
    if line.kind in ("open", "close"):
        return "```"
    if line.kind == "code" and line.fence is not None:
        spaces = len(line.text) - len(line.text.lstrip(" "))
        return _escape(line.text[min(spaces, len(line.fence.indent)) :])
    return _render_line(line.text)


def _render_line(line: str) -> str:
    """Render one line of ordinary Markdown text."""
    if not line.strip():
        return ""
    if _HR.fullmatch(line):
        return _RULE
    if heading := _HEADING.fullmatch(line):
        return f"*{_inline(heading['text'], 'heading')}*" if heading["text"] else ""
    if quote := _QUOTE.fullmatch(line):
        return f"> {_render_line(quote['rest'])}"
    if (item := _render_list_item(line)) is not None:
        return item
    indent = line[: len(line) - len(line.lstrip())]
    return indent + _inline(line.strip())


def _render_list_item(line: str) -> str | None:
    """Render a bullet, task or ordered list item; None if the line is none of those."""
    if bullet := _BULLET.fullmatch(line):
        indent = bullet["indent"].expandtabs(4)
        rest = bullet["rest"] or ""
        if task := _TASK.fullmatch(rest):
            box = "☐" if task["mark"] == " " else "☑"
            return f"{indent}{box} {_inline(task['rest'] or '')}"
        depth = 0 if len(indent) < 2 else 1 if len(indent) < 6 else 2
        return f"{indent}{_BULLETS[depth]} {_inline(rest)}"
    if ordered := _ORDERED.fullmatch(line):
        return f"{ordered['indent'].expandtabs(4)}{ordered['marker']} {_inline(ordered['rest'] or '')}"
    return None


# -------------------------------------------------------------------------------------------- tables


def _table_end(lines: list[_Line], start: int) -> int:
    """Index just past the GFM table starting at ``start``, or ``start`` if none starts there."""
    if start + 1 >= len(lines) or lines[start].kind != "text" or "|" not in lines[start].text:
        return start
    separator = lines[start + 1]
    if separator.kind != "text" or "|" not in separator.text or not _TABLE_SEP.fullmatch(separator.text):
        return start
    if len(_cells(separator.text)) != len(_cells(lines[start].text)):
        return start
    end = start + 2
    while end < len(lines) and lines[end].kind == "text" and "|" in lines[end].text:
        end += 1
    return end


def _cells(row: str) -> list[str]:
    """Split a table row into its cell texts."""
    row = row.strip().removeprefix("|")
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return [_HTML_BREAK.sub(" ", cell).strip().replace("\\|", "|") for cell in _CELL_PIPE.split(row)]


def _render_table(rows: list[str]) -> list[str]:
    """Render a GFM table as a code block with padded, aligned columns."""
    aligns = [_alignment(cell) for cell in _cells(rows[1])]
    count = len(aligns)
    grid = [
        [_inline(cell, "cell") for cell in (_cells(row) + [""] * count)[:count]]
        for row in [rows[0], *rows[2:]]
    ]
    widths = [max(1, *(_width(row[column]) for row in grid)) for column in range(count)]
    lines = [" | ".join(_pad(*spec) for spec in zip(row, widths, aligns, strict=True)) for row in grid]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return ["```", *lines, "```"]


def _alignment(cell: str) -> str:
    """The alignment a separator cell asks for: ``l``, ``r`` or ``c``."""
    if cell.endswith(":"):
        return "c" if cell.startswith(":") else "r"
    return "l"


def _width(text: str) -> int:
    """Display width of escaped text in a monospace font (wide CJK characters count 2)."""
    plain = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in plain)


def _pad(text: str, width: int, align: str) -> str:
    """Pad ``text`` to ``width`` display columns."""
    gap = width - _width(text)
    if align == "r":
        return " " * gap + text
    if align == "c":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap


# -------------------------------------------------------------------------------------------- inline


def _escape(text: str) -> str:
    """Escape Slack's control characters, leaving existing entities alone."""
    return _AMPERSAND.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")


def _inline(text: str, mode: _Mode = "slack") -> str:
    """Render inline Markdown: ``slack`` converts, ``heading`` drops emphasis, ``cell`` makes plain text."""
    stash: list[str] = []

    def keep(piece: str) -> str:
        stash.append(piece)
        return f"\x00{len(stash) - 1}\x01"

    protected = _ATOM.sub(lambda match: _atom(match, mode, keep), text)
    rendered = _emphasis(_escape(protected), strip=mode != "slack")
    return _PLACEHOLDER.sub(lambda match: stash[int(match[1])], rendered)


def _atom(match: re.Match[str], mode: _Mode, keep: Callable[[str], str]) -> str:
    """Render one protected construct and hide it behind a placeholder."""
    if match["esc"]:
        return keep(_escape(match["esc"][1]))
    if match["ticks"]:
        code = match["code"]
        if code.startswith(" ") and code.endswith(" ") and code.strip():
            code = code[1:-1]
        return keep(_escape(code) if mode == "cell" else f"`{_escape(code)}`")
    if match["token"]:
        return keep(match["token"])
    if match["auto"]:
        return keep(_link(match["auto"], "", mode))
    if match["bare"]:
        url, tail = _split_url(match["bare"])
        return keep(_link(url, "", mode)) + tail
    return keep(_link(match["url"], _inline(match["label"], "cell"), mode))


def _link(url: str, label: str, mode: _Mode) -> str:
    """A Slack link, or ``label (url)`` as plain text for table cells."""
    target = _escape(url)
    if mode == "cell":
        return f"{label} ({target})" if label and label != target else target
    target = target.replace("|", "%7C")
    return f"<{target}|{label}>" if label and label != target else f"<{target}>"


def _split_url(url: str) -> tuple[str, str]:
    """Split trailing punctuation (and an unbalanced ``)``) off a bare URL."""
    end = len(url)
    while end > 0 and (
        url[end - 1] in ".,;:!?'\"*~"
        or (url[end - 1] == ")" and url.count("(", 0, end) < url.count(")", 0, end))
    ):
        end -= 1
    return url[:end], url[end:]


def _emphasis(text: str, *, strip: bool) -> str:
    """Convert (or, with ``strip``, remove) emphasis markers; nested emphasis is handled recursively."""

    def convert(match: re.Match[str]) -> str:
        body = _emphasis(match["star_body"] or match["under_body"] or match["tilde_body"], strip=strip)
        marker = match["star"] or match["under"]
        if strip:
            return body
        if marker is None:
            return f"~{body}~"
        return {1: f"_{body}_", 2: f"*{body}*"}.get(len(marker), f"*_{body}_*")

    return _EMPHASIS.sub(convert, text)


# ------------------------------------------------------------------------------------------ streaming


def _settle_tail(line: str) -> str:
    """Make the last, possibly half-written line of a stream display cleanly."""
    line = _PARTIAL_LINK.sub(lambda match: match["label"], line)
    for marker in ("`", "**"):
        if line.count(marker) % 2:
            stem = line.rstrip()
            line = stem.removesuffix(marker) if stem.endswith(marker) else stem + marker
    return line


# ---------------------------------------------------------------------------------------- splitting


def _cut_after(markdown: str, line: _Line, limit: int) -> tuple[str, str] | None:
    """Cut at the line break after ``line``; None if the head would be empty or too long."""
    if line.kind == "code" and line.fence is not None:
        head = f"{markdown[: line.end]}\n{line.fence.indent}{line.fence.marker}"
        rest = f"{line.fence.line}\n{markdown[line.end + 1 :]}"
    else:
        head = markdown[: line.end].rstrip()
        rest = _LEADING_BLANKS.sub("", markdown[line.end + 1 :])
    return (head, rest) if head and len(head) <= limit else None


def _cut_within_line(markdown: str, limit: int, lines: list[_Line]) -> tuple[str, str]:
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


def _line_at(lines: list[_Line], index: int) -> _Line:
    """The line that holds character ``index`` (a line's ending break counts as part of it)."""
    return next((line for line in reversed(lines) if line.start <= index), lines[0])


def _last_space(text: str, low: int, high: int) -> int:
    """Index of the last space or tab in ``text[low:high + 1]``, else ``high``."""
    found = max(text.rfind(" ", low, high + 1), text.rfind("\t", low, high + 1))
    return found if found >= low else high
