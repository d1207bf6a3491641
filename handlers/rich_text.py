"""The words of a message's ``rich_text`` blocks, written as Slack event text (markup and escapes).

A forwarded message may carry its words only in ``message_blocks`` (its ``text`` empty). Writing them
the way Slack writes event text (``&`` ``<`` ``>`` escaped, mentions as ``<@U…>``, links as
``<url|label>``) lets ``events.slack_to_text`` turn them into what the person wrote, names included,
like any other text. Element types: https://docs.slack.dev/reference/block-kit/blocks/rich-text-block.
Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["blocks_markup", "message_blocks_markup"]

_LINE_ENDING = frozenset({"rich_text_section", "rich_text_preformatted", "rich_text_quote"})


def message_blocks_markup(message_blocks: object) -> str:
    """The text of an attachment's ``message_blocks`` (``[{"message": {"blocks": [...]}}, ...]``)."""
    if not isinstance(message_blocks, list):
        return ""
    texts = []
    for item in message_blocks:
        message = item.get("message") if isinstance(item, dict) else None
        if isinstance(message, dict):
            texts.append(blocks_markup(message.get("blocks")))
    return "\n".join(text for text in texts if text)


def blocks_markup(blocks: object) -> str:
    """The text of ``rich_text`` blocks, one line per section, list item, quote or code block."""
    if not isinstance(blocks, list):
        return ""
    lines = [_element(block).rstrip("\n") for block in blocks if _kind(block) == "rich_text"]
    return "\n".join(line for line in lines if line).strip()


def _element(value: object) -> str:
    if isinstance(value, list):
        return "".join(_element(item) for item in value)
    if not isinstance(value, dict):
        return ""
    kind = _kind(value)
    if kind in _INLINE:
        return _INLINE[kind](value)
    if kind == "rich_text_list":
        items = value.get("elements")
        return "".join(f"- {_element(item).rstrip()}\n" for item in items) if isinstance(items, list) else ""
    text = _element(value.get("elements"))
    if kind == "rich_text_preformatted":
        return f"```\n{text}\n```\n"
    if kind == "rich_text_quote":
        return "".join(f"> {line}\n" for line in text.split("\n"))
    return text + "\n" if kind in _LINE_ENDING else text


def _kind(value: object) -> str:
    return str(value.get("type")) if isinstance(value, dict) else ""


def _escape(text: object) -> str:
    return str(text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(value: dict[str, Any]) -> str:
    url = str(value.get("url") or "")
    label = _escape(value.get("text"))
    return f"<{url}|{label}>" if label else f"<{url}>"


_INLINE: dict[str, Callable[[dict[str, Any]], str]] = {
    "text": lambda value: _escape(value.get("text")),
    "link": _link,
    "user": lambda value: f"<@{value.get('user_id', '')}>",
    "channel": lambda value: f"<#{value.get('channel_id', '')}>",
    "usergroup": lambda value: f"<!subteam^{value.get('usergroup_id', '')}>",
    "broadcast": lambda value: f"<!{value.get('range', 'here')}>",
    "emoji": lambda value: f":{value.get('name', '')}:",
    "date": lambda value: _escape(value.get("fallback") or value.get("timestamp")),
}
