"""Cut a long answer into Slack messages by the length Slack will receive, not the Markdown's length.

Rendering can grow a text a lot (a Markdown table's cells are padded to the widest one: 2,861 characters
of table once rendered to 185,254), so a part is cut from the Markdown, rendered, and cut smaller while
the rendered text is too long. Slack advises at most 4,000 characters of ``text`` per message and
refuses far longer ones with ``msg_too_long`` (https://api.slack.com/methods/chat.postMessage#truncating).
Pure text functions: no I/O.
"""

from __future__ import annotations

from handlers.reply.inline import escape
from handlers.reply.mrkdwn import to_mrkdwn
from handlers.reply.split import take_chunk

__all__ = ["MARKDOWN_LIMIT", "RENDERED_LIMIT", "consumed", "cut"]

MARKDOWN_LIMIT = 3500
"""Markdown characters per message at most: keeps each part readable and leaves room for rendering."""

RENDERED_LIMIT = 3900
"""mrkdwn characters per message at most (Slack's advice is 4,000), room left for a cursor or a note."""

MIN_LIMIT = 200
"""Below this many Markdown characters a part is not cut further: it is sent as escaped plain text."""


def cut(markdown: str, scale: float = 1.0) -> tuple[str, str] | None:
    """None when ``markdown`` fits one message; else ``(rendered head, rest of the Markdown)``.

    ``scale`` (at most 1) shrinks both limits, after Slack refused a part as too long.
    """
    markdown_limit = max(MIN_LIMIT, int(MARKDOWN_LIMIT * scale))
    rendered_limit = max(MIN_LIMIT, int(RENDERED_LIMIT * scale))
    if len(markdown) <= markdown_limit and len(to_mrkdwn(markdown)) <= rendered_limit:
        return None
    limit = min(markdown_limit, len(markdown) - 1)
    while True:
        head, rest = take_chunk(markdown, limit)
        rendered = to_mrkdwn(head)
        if len(rendered) <= rendered_limit:
            return rendered, rest
        if limit <= MIN_LIMIT:
            # Even a small piece renders too long (a very wide table): send it as plain text.
            return escape(head)[:rendered_limit], rest
        limit = max(MIN_LIMIT, limit // 2)


def consumed(remainder: str, rest: str) -> tuple[int, str]:
    """How much of ``remainder`` went into the head, and the prefix ``take_chunk`` added to ``rest``.

    ``take_chunk`` may start ``rest`` with a reopened code fence; everything after it is a suffix of
    ``remainder``.
    """
    for start in (0, rest.find("\n") + 1):
        tail = rest[start:]
        if remainder.endswith(tail):
            return len(remainder) - len(tail), rest[:start]
    return len(remainder), rest
