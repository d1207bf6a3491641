"""Nothing the bot posts may ping a crowd, mention a person, or hide where a link goes.

Model output is untrusted text (a prompt injection in a pasted page or an image can ask for ``<!channel>``),
and so is anything the bot echoes (a file name, a user's words in an error line). Pure text functions
(stdlib only, no I/O), applied twice:

- ``defuse_markdown`` before rendering, so the renderer never sees a live token;
- ``defuse_blocks`` over every string of the rendered blocks, so nothing the renderer decoded or built
  (it turns ``&lt;!here&gt;`` back into ``<!here>`` and ``<!here>`` into a ``broadcast`` element) can
  ping either.

What is neutralised: Slack's special mentions ``<!here>``, ``<!channel>``, ``<!everyone>``, user-group
mentions ``<!subteam^S…>``, dates ``<!date^…>`` and user mentions ``<@U…>``, also written with ``&lt;``,
and the plain words ``@here``, ``@channel``, ``@everyone``. A zero-width space after ``<`` (a word
joiner after ``@``) keeps them looking the same while Slack no longer reads them as a token
(https://docs.slack.dev/messaging/formatting-message-text#mentioning-users). Channel links ``<#C…>``
notify nobody and stay links. A link whose label is itself a different address shows its real target.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["ZWSP", "defuse_blocks", "defuse_markdown", "defuse_text"]

ZWSP = "\u200b"
WORD_JOINER = "\u2060"

# Only the shapes Slack reads as a mention: ``<!DOCTYPE html>`` in a code sample stays as written.
_TOKEN_START = re.compile(
    r"(<|&lt;)(?=!(?:here|channel|everyone|group|subteam\^|date\^)|@[UW][A-Z0-9])", re.IGNORECASE
)
_BROADCAST_WORD = re.compile(r"(?<![\w@])@(?=(?:here|channel|everyone)\b)", re.IGNORECASE)
_URL_LIKE = re.compile(r"\s*(?:[a-z][a-z0-9+.-]*://|www\.)", re.IGNORECASE)
_MARKDOWN_LINK = re.compile(r"(?<!!)\[(?P<label>[^\[\]\n]*)\]\((?P<url>[^()\s]+)\)")
_SLACK_LINK = re.compile(r"<(?P<url>(?:https?|mailto|ftp):[^\s<>|]+)\|(?P<label>[^<>\n]*)>")
_MENTION_ELEMENTS = {"user": "user_id", "usergroup": "usergroup_id", "broadcast": "range"}


def defuse_text(text: str) -> str:
    """``text`` with every mention token and crowd word made inert (it looks the same)."""
    text = _TOKEN_START.sub(lambda match: match[1] + ZWSP, text)
    return _BROADCAST_WORD.sub("@" + WORD_JOINER, text)


def defuse_markdown(markdown: str) -> str:
    """The model's Markdown with no live mention and no link that hides its target."""
    return _honest_links(defuse_text(markdown))


def defuse_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rendered Block Kit blocks with every string defused and every mention element turned into text.

    ``rich_text`` mention elements (``user``, ``usergroup``, ``broadcast``;
    https://docs.slack.dev/reference/block-kit/blocks/rich-text-block) become ``text`` elements.
    """
    return [_defuse_value(block) for block in blocks]


def _defuse_value(value: Any) -> Any:
    if isinstance(value, str):
        return defuse_text(value)
    if isinstance(value, list):
        return [_defuse_value(item) for item in value]
    if isinstance(value, dict):
        field = _MENTION_ELEMENTS.get(str(value.get("type")))
        if field is not None:
            return {"type": "text", "text": defuse_text(f"@{value.get(field, '')}")}
        return {key: _defuse_value(item) for key, item in value.items()}
    return value


def _honest_links(markdown: str) -> str:
    """Links labelled with a different address show the address they really go to."""

    def markdown_link(match: re.Match[str]) -> str:
        return f"<{match['url']}>" if _misleading(match["label"], match["url"]) else match[0]

    def slack_link(match: re.Match[str]) -> str:
        return f"<{match['url']}>" if _misleading(match["label"], match["url"]) else match[0]

    return _SLACK_LINK.sub(slack_link, _MARKDOWN_LINK.sub(markdown_link, markdown))


def _misleading(label: str, url: str) -> bool:
    return bool(_URL_LIKE.match(label)) and label.strip().rstrip("/") != url.rstrip("/")
