"""The model's Markdown as a Slack message that Slack formats itself: ``markdown`` and ``table`` blocks.

Slack renders standard Markdown in a ``markdown`` block (bold, italic, strike, links, lists, headers,
code; https://docs.slack.dev/reference/block-kit/blocks/markdown-block), the same form native streaming
takes. The conversion is slack-markdown-parser's (``convert_markdown_to_slack_messages``): it keeps code
verbatim, turns tables into native ``table`` blocks (one per message), adds the zero-width spaces that
make ``**强调**`` render in text with no spaces between words, keeps Slack-style ``<url|label>`` links,
and neutralises stray ``<tags>`` that Slack would swallow. What this module adds:

- every message is defused (``defuse``): no mention, no crowd ping, no link hiding its target;
- ``text``, the fallback Slack shows in notifications and reads to screen readers when a message has
  blocks (https://docs.slack.dev/reference/methods/chat.postMessage#text-blocks-attachments), is the
  answer as plain words: no Markdown markers, links as ``label (url)``, mrkdwn-escaped;
- a prefix of an answer that is still streaming displays cleanly (``render_partial``).

Pure functions: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from slack_markdown_parser import build_fallback_text_from_blocks, convert_markdown_to_slack_messages

from handlers.reply.defuse import defuse_blocks, defuse_markdown, defuse_text
from handlers.reply.fences import classify

__all__ = [
    "Block",
    "SlackMessage",
    "escape",
    "plain_message",
    "render",
    "render_partial",
    "verbatim",
    "with_blocks",
    "with_note",
]

Block = dict[str, Any]

MAX_TABLE_COLUMNS = 20

_TEXT_KEYS = frozenset({"text", "alt_text", "url", "value"})
_PARTIAL_LINK = re.compile(r"!?\[(?P<label>[^\[\]]*)\]\([^)\s]*\Z")
_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt);)")
_FALLBACK_LINK = re.compile(
    r"\[(?P<label>[^\[\]\n]*)\]\((?P<url>[^()\s]+)\)|<(?P<target>[^<>|\s]+)(?:\|(?P<name>[^<>]*))?>"
)
_FALLBACK_MARKERS = re.compile(r"\*\*|__|~~|(?m:^#{1,6}[ \t]+)")


@dataclass(frozen=True)
class SlackMessage:
    """One message's content: ``blocks`` (empty: a plain ``text`` message) and the fallback ``text``."""

    text: str
    blocks: tuple[Block, ...] = ()

    @property
    def size(self) -> int:
        """Characters of content Slack counts against a message (``msg_blocks_too_long``)."""
        return _text_size(list(self.blocks)) if self.blocks else len(self.text)


def escape(text: str) -> str:
    """Escape mrkdwn's control characters (``& < >``), leaving existing entities alone."""
    return _AMPERSAND.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")


def plain_message(text: str) -> SlackMessage:
    """A message of plain ``text`` only (the placeholder): escaped, so it pings nobody."""
    return SlackMessage(text=escape(defuse_text(text)))


def render(markdown: str) -> list[SlackMessage]:
    """The messages Slack needs for ``markdown`` (more than one when it holds tables or is too big)."""
    groups = convert_markdown_to_slack_messages(defuse_markdown(_clean(markdown)))
    return [_message([_fit_table(block) for block in defuse_blocks(blocks)]) for blocks in groups]


def render_partial(markdown: str, cursor: str = "") -> list[SlackMessage]:
    """Render a prefix of an answer still streaming so it displays well now, ``cursor`` at its end.

    On the last line a half-written link ``[text](htt`` shows as its text, and an unmatched backtick or
    ``**`` is closed (or dropped when nothing follows it yet); an open code fence is closed.
    """
    lines = _clean(markdown).split("\n")
    classified = classify(lines)
    last = classified[-1]
    if last.kind == "text":
        lines[-1] = _settle_tail(lines[-1])
    elif last.kind in ("open", "code") and last.fence is not None:
        lines.append(last.fence.indent + last.fence.marker)
    messages = render("\n".join(lines))
    if not messages or not cursor:
        return messages
    *done, final = messages
    return [*done, _with_cursor(final, cursor)]


def verbatim(markdown: str, limit: int) -> SlackMessage:
    """``markdown`` shown as written in a code block, cut to ``limit`` characters: the last resort."""
    body = defuse_text(markdown.replace("```", "`\u200b``"))[: max(1, limit - 8)]
    return SlackMessage(text=escape(body), blocks=({"type": "markdown", "text": f"```\n{body}\n```"},))


def with_note(message: SlackMessage, note: str) -> SlackMessage:
    """``message`` with a Markdown ``note`` after it (in the fallback text only, after a table)."""
    text = f"{message.text}\n\n{_fallback([{'type': 'markdown', 'text': note}])}"
    if message.blocks and message.blocks[-1].get("type") == "table":
        return SlackMessage(text=text, blocks=message.blocks)
    return SlackMessage(text=text, blocks=(*message.blocks, {"type": "markdown", "text": note}))


def with_blocks(message: SlackMessage, *extra: Block) -> SlackMessage:
    """``message`` with ``extra`` blocks (buttons) after its content. A plain-text message (the
    placeholder) gets its text as a ``section`` block first: Slack shows only the blocks when there are any.
    """
    if not extra:
        return message
    content = message.blocks or ({"type": "section", "text": {"type": "mrkdwn", "text": message.text}},)
    return SlackMessage(text=message.text, blocks=(*content, *extra))


def _fit_table(block: Block) -> Block:
    """A table wider than Slack's ``table`` block allows, as a code block of its rows instead.

    A ``table`` block holds at most 20 columns (https://docs.slack.dev/reference/block-kit/blocks/table-block);
    its 100-row limit is kept by cutting (``parts``).
    """
    rows = block.get("rows") if block.get("type") == "table" else None
    if not isinstance(rows, list) or max((len(row) for row in rows), default=0) <= MAX_TABLE_COLUMNS:
        return block
    lines = [" | ".join(_cell_text(cell) for cell in row) for row in rows]
    code = {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "\n".join(lines)}]}
    return {"type": "rich_text", "elements": [code]}


def _cell_text(cell: Any) -> str:
    if isinstance(cell, dict):
        if isinstance(cell.get("text"), str):
            return str(cell["text"])
        return "".join(_cell_text(item) for item in cell.get("elements", []))
    if isinstance(cell, list):
        return "".join(_cell_text(item) for item in cell)
    return ""


def _message(blocks: list[Block]) -> SlackMessage:
    return SlackMessage(text=_fallback(blocks), blocks=tuple(blocks))


def _fallback(blocks: list[Block]) -> str:
    """The message as plain words for notifications: no Markdown markers, links as ``label (url)``."""
    text = _FALLBACK_LINK.sub(_fallback_link, build_fallback_text_from_blocks(blocks))
    return escape(defuse_text(_FALLBACK_MARKERS.sub("", text))).strip() or " "


def _fallback_link(match: re.Match[str]) -> str:
    url = match["url"] or match["target"]
    label = (match["label"] if match["url"] else match["name"]) or ""
    if url.startswith("#"):
        return f"#{label}" if label else url  # a channel link
    return f"{label} ({url})" if label and label != url else url


def _with_cursor(message: SlackMessage, cursor: str) -> SlackMessage:
    """``message`` with a typing cursor after its text (a table stays alone in its message)."""
    blocks = list(message.blocks)
    if not blocks or blocks[-1].get("type") == "table":
        return message
    if blocks[-1].get("type") == "markdown":
        blocks[-1] = {**blocks[-1], "text": str(blocks[-1].get("text", "")) + cursor}
    else:
        blocks.append({"type": "markdown", "text": cursor.strip()})
    return SlackMessage(text=message.text, blocks=tuple(blocks))


def _clean(markdown: str) -> str:
    """Normalise line ends."""
    return markdown.replace("\r\n", "\n").replace("\r", "\n")


def _settle_tail(line: str) -> str:
    """Make the last, possibly half-written line of a stream display cleanly."""
    line = _PARTIAL_LINK.sub(lambda match: match["label"], line)
    for marker in ("`", "**"):
        if line.count(marker) % 2:
            stem = line.rstrip()
            line = stem.removesuffix(marker) if stem.endswith(marker) else stem + marker
    return line


def _text_size(value: Any) -> int:
    """Characters of every string under a content key, recursively."""
    if isinstance(value, dict):
        return sum(
            len(item) if key in _TEXT_KEYS and isinstance(item, str) else _text_size(item)
            for key, item in value.items()
        )
    if isinstance(value, list):
        return sum(_text_size(item) for item in value)
    return 0
