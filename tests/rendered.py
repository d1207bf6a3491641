"""What the bot sends Slack for an answer, computed the way the product does (for expected values)."""

from __future__ import annotations

from handlers.reply.parts import render_one
from handlers.reply.render import SlackMessage

__all__ = ["message_for", "slack_text"]


def message_for(markdown: str) -> SlackMessage:
    """The one message ``markdown`` is delivered in (the test's answer must fit one message)."""
    message = render_one(markdown)
    assert message is not None, "the answer must fit one Slack message"
    return message


def slack_text(markdown: str) -> str:
    """The fallback ``text`` (what notifications show) of the message ``markdown`` is delivered in."""
    return message_for(markdown).text
