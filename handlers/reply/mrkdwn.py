"""Turn the model's GitHub-flavoured Markdown into Slack mrkdwn.

Pure text functions (no I/O):

- ``to_mrkdwn(markdown)`` renders a complete answer;
- ``render_partial(markdown)`` renders a prefix of an answer that is still streaming.

Inline spans are rendered by ``inline``; splitting a long answer into messages is ``split``'s
job. Rendering and splitting share the code-block state machine in ``fences``.

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
  ``<...>`` produced for links, a blockquote's leading ``>``, channel links ``<#C123|name>``, and existing
  ``&amp;``/``&lt;``/``&gt;`` (never doubled). User mentions ``<@U123>``, special mentions ``<!here>``,
  ``<!channel>``, ``<!everyone>`` and user groups ``<!subteam^S123>`` are escaped too, so they show as
  text and notify nobody.
- A link whose label is itself a different address shows its real target only.
- Backslash escapes such as ``\\*`` give the literal character.
- Line breaks and blank lines are preserved; trailing spaces are trimmed from every line.
"""

from __future__ import annotations

import re
import unicodedata

from handlers.reply.fences import Line, classify
from handlers.reply.inline import escape, inline

__all__ = ["render_partial", "to_mrkdwn"]

_RULE = "──────────"
_BULLETS = "•◦▪"

_HR = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*")
_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]+(?P<text>.*?))?(?:[ \t]+#+)?[ \t]*")
_QUOTE = re.compile(r"[ \t]*(?:>[ \t]?)+(?P<rest>.*)")
_BULLET = re.compile(r"(?P<indent>[ \t]*)[-*+](?:[ \t]+(?P<rest>.*))?")
_TASK = re.compile(r"\[(?P<mark>[ xX])\](?:[ \t]+(?P<rest>.*))?")
_ORDERED = re.compile(r"(?P<indent>[ \t]*)(?P<marker>\d{1,9}[.)])(?:[ \t]+(?P<rest>.*))?")
_TABLE_SEP = re.compile(r"[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)*[ \t]*:?-+:?[ \t]*\|?[ \t]*")
_CELL_PIPE = re.compile(r"(?<!\\)\|")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_PARTIAL_LINK = re.compile(r"!?\[(?P<label>[^\[\]]*)\]\([^)\s]*\Z")


# ---------------------------------------------------------------------------------------------- public


def to_mrkdwn(markdown: str) -> str:
    """Render a complete Markdown text as Slack mrkdwn."""
    lines = classify(_clean(markdown).split("\n"))
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
    if classify(lines)[-1].kind == "text":
        lines[-1] = _settle_tail(lines[-1])
    return to_mrkdwn("\n".join(lines))


# -------------------------------------------------------------------------------------------- blocks


def _clean(markdown: str) -> str:
    """Normalise line ends and drop the characters used for placeholders."""
    return markdown.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").replace("\x01", "")


def _render_block_line(line: Line) -> str:
    """Render one line that is not part of a table."""
    if line.kind in ("open", "close"):
        return "```"
    if line.kind == "code" and line.fence is not None:
        spaces = len(line.text) - len(line.text.lstrip(" "))
        return escape(line.text[min(spaces, len(line.fence.indent)) :])
    return _render_line(line.text)


def _render_line(line: str) -> str:
    """Render one line of ordinary Markdown text."""
    if not line.strip():
        return ""
    if _HR.fullmatch(line):
        return _RULE
    if heading := _HEADING.fullmatch(line):
        return f"*{inline(heading['text'], 'heading')}*" if heading["text"] else ""
    if quote := _QUOTE.fullmatch(line):
        return f"> {_render_line(quote['rest'])}"
    if (item := _render_list_item(line)) is not None:
        return item
    indent = line[: len(line) - len(line.lstrip())]
    return indent + inline(line.strip())


def _render_list_item(line: str) -> str | None:
    """Render a bullet, task or ordered list item; None if the line is none of those."""
    if bullet := _BULLET.fullmatch(line):
        indent = bullet["indent"].expandtabs(4)
        rest = bullet["rest"] or ""
        if task := _TASK.fullmatch(rest):
            box = "☐" if task["mark"] == " " else "☑"
            return f"{indent}{box} {inline(task['rest'] or '')}"
        depth = 0 if len(indent) < 2 else 1 if len(indent) < 6 else 2
        return f"{indent}{_BULLETS[depth]} {inline(rest)}"
    if ordered := _ORDERED.fullmatch(line):
        return f"{ordered['indent'].expandtabs(4)}{ordered['marker']} {inline(ordered['rest'] or '')}"
    return None


# -------------------------------------------------------------------------------------------- tables


def _table_end(lines: list[Line], start: int) -> int:
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
        [inline(cell, "cell") for cell in (_cells(row) + [""] * count)[:count]]
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


# ------------------------------------------------------------------------------------------ streaming


def _settle_tail(line: str) -> str:
    """Make the last, possibly half-written line of a stream display cleanly."""
    line = _PARTIAL_LINK.sub(lambda match: match["label"], line)
    for marker in ("`", "**"):
        if line.count(marker) % 2:
            stem = line.rstrip()
            line = stem.removesuffix(marker) if stem.endswith(marker) else stem + marker
    return line
