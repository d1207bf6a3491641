"""What the fake Slack checks in, and shows of, a message's Block Kit ``blocks``.

Limits (the errors a real workspace answers with):

- at most 50 blocks (https://docs.slack.dev/reference/block-kit/blocks): ``invalid_blocks``;
- ``markdown`` blocks hold at most 12,000 characters in all
  (https://docs.slack.dev/reference/block-kit/blocks/markdown-block): ``msg_too_long``;
- about 13,200 characters of block text in all were refused with ``msg_blocks_too_long`` (bolt-js#2509);
- one ``table`` block per message, of at most 100 rows and 20 columns
  (https://docs.slack.dev/reference/block-kit/blocks/table-block), and only known block types:
  ``invalid_blocks``;
- an ``actions`` block holds 1 to 25 elements (https://docs.slack.dev/reference/block-kit/blocks/actions-block);
  a button has an ``action_id`` of at most 255 characters, ``plain_text`` of at most 75 and a ``value``
  of at most 2,000 (https://docs.slack.dev/reference/block-kit/block-elements/button-element):
  ``invalid_blocks``. Buttons are not text a person reads: ``shown`` leaves ``actions`` blocks out.
"""

from __future__ import annotations

from typing import Any

__all__ = ["blocks_error", "shown"]

MAX_BLOCKS = 50
MARKDOWN_LIMIT = 12_000
BLOCKS_TEXT_LIMIT = 13_200
MAX_TABLE_ROWS = 100
MAX_TABLE_COLUMNS = 20
KNOWN_TYPES = frozenset(
    {"markdown", "table", "rich_text", "section", "divider", "image", "context", "actions"}
)
MAX_ACTION_ELEMENTS = 25
_INVISIBLE = str.maketrans("", "", "\u200b\u2060\ufeff")


def blocks_error(blocks: Any) -> str | None:
    """The Slack error ``blocks`` would get, or None when Slack would take them."""
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    if any(not isinstance(b, dict) or b.get("type") not in KNOWN_TYPES for b in blocks):
        return "invalid_blocks"
    tables = [b for b in blocks if b["type"] == "table"]
    if len(tables) > 1 or any(not _table_fits(table) for table in tables):
        return "invalid_blocks"
    if any(not _actions_fit(b) for b in blocks if b["type"] == "actions"):
        return "invalid_blocks"
    if sum(len(str(b.get("text", ""))) for b in blocks if b["type"] == "markdown") > MARKDOWN_LIMIT:
        return "msg_too_long"
    if _text_size(blocks) > BLOCKS_TEXT_LIMIT:
        return "msg_blocks_too_long"
    return None


def _table_fits(table: dict[str, Any]) -> bool:
    rows = table.get("rows")
    if not isinstance(rows, list) or not rows or len(rows) > MAX_TABLE_ROWS:
        return False
    return all(isinstance(row, list) and 0 < len(row) <= MAX_TABLE_COLUMNS for row in rows)


def _actions_fit(block: dict[str, Any]) -> bool:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 0 < len(elements) <= MAX_ACTION_ELEMENTS:
        return False
    return all(isinstance(e, dict) and e.get("type") == "button" and _button_fits(e) for e in elements)


def _button_fits(button: dict[str, Any]) -> bool:
    text = button.get("text") or {}
    return (
        0 < len(str(button.get("action_id") or "")) <= 255
        and text.get("type") == "plain_text"
        and 0 < len(str(text.get("text") or "")) <= 75
        and len(str(button.get("value") or "")) <= 2000
    )


def shown(text: str, blocks: Any) -> str:
    """What a person reads: the blocks' text (cells joined by `` | ``) when there are blocks, else ``text``.

    Zero-width spaces and word joiners (added so Slack parses emphasis and mentions safely) are dropped.
    """
    readable = [b for b in blocks or () if not (isinstance(b, dict) and b.get("type") == "actions")]
    if not readable:
        return text
    return "\n".join(_block_text(block).rstrip("\n") for block in readable).translate(_INVISIBLE)


def _block_text(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "markdown":
        return str(block.get("text", ""))
    if kind == "table":
        return "\n".join(" | ".join(_inline(cell).strip() for cell in row) for row in block.get("rows", []))
    if kind == "section":
        return str((block.get("text") or {}).get("text", ""))
    return _inline(block)


def _inline(value: Any) -> str:
    """Text of a rich_text tree (sections, lists, quotes, preformatted, links) or a table cell."""
    if isinstance(value, list):
        return "".join(_inline(item) for item in value)
    if not isinstance(value, dict):
        return ""
    kind = value.get("type")
    if kind in ("text", "raw_text"):
        return str(value.get("text", ""))
    if kind == "link":
        return str(value.get("text") or value.get("url", ""))
    if kind == "emoji":
        return f":{value.get('name', '')}:"
    if kind == "rich_text_list":
        return "\n".join("- " + _inline(item).rstrip("\n") for item in value.get("elements", []))
    text = _inline(value.get("elements", []))
    return text + "\n" if kind in ("rich_text_section", "rich_text_preformatted", "rich_text_quote") else text


def _text_size(value: Any) -> int:
    if isinstance(value, dict):
        return sum(len(v) if k == "text" and isinstance(v, str) else _text_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_text_size(item) for item in value)
    return 0
