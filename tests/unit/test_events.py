"""Slack event parsing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from bot.core.domain import ThreadKey
from handlers.events import (
    SHARED_WITHOUT_COMMENT,
    incoming_message,
    is_person_message,
    mentioned_users,
    mentions,
    slack_to_text,
    strip_mention,
    thread_of,
)

BOT = "UBOT0001"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"user": "U1", "text": "hi"}, True),
        ({"user": "U1", "subtype": "file_share"}, True),
        ({"user": "U1", "subtype": "thread_broadcast"}, True),
        ({"user": "U1", "subtype": "message_changed"}, False),
        ({"subtype": "message_deleted"}, False),
        ({"user": "U1", "bot_id": "B2", "text": "beep"}, False),
        ({"subtype": "bot_message", "bot_id": "B2"}, False),
        ({"user": "U1", "subtype": "channel_join"}, False),
    ],
)
def test_person_message(event: dict[str, Any], expected: bool) -> None:
    """Only new messages written by people count."""
    assert is_person_message(event) is expected


@pytest.mark.parametrize(
    ("text", "stripped"),
    [
        (f"<@{BOT}> what is this?", "what is this?"),
        (f"hey <@{BOT}|glmbot>, help", "hey , help"),
        (f"<@{BOT}>", ""),
        ("<@UOTHER> hi", "<@UOTHER> hi"),
    ],
)
def test_strip_mention(text: str, stripped: str) -> None:
    """The bot's own mention is removed; other people's stay."""
    assert strip_mention(text, BOT) == stripped


def test_mentions() -> None:
    """A mention is found with or without a label."""
    assert mentions(f"hi <@{BOT}>", BOT)
    assert mentions(f"hi <@{BOT}|bot>", BOT)
    assert not mentions("hi <@U999>", BOT)


def test_top_level_mention_starts_a_thread() -> None:
    """A top-level message is answered in the thread it starts."""
    message = incoming_message({"ts": "1.5", "channel": "C1", "user": "U1", "text": f"<@{BOT}> q"}, "T1", BOT)
    assert message.thread == ThreadKey("T1", "C1", "1.5")
    assert message.text == "q"
    assert message.user_id == "U1"


def test_reply_in_thread_uses_thread_ts() -> None:
    """A message inside a thread is answered in that thread."""
    event = {"ts": "2.0", "thread_ts": "1.5", "channel": "C1", "user": "U1", "text": "more"}
    assert incoming_message(event, "T1", BOT).thread.thread_ts == "1.5"
    assert thread_of(event, "T1") == ThreadKey("T1", "C1", "1.5")


def test_thread_parent_is_not_a_reply() -> None:
    """A thread's parent message (ts == thread_ts) and top-level messages have no thread."""
    assert thread_of({"ts": "1.5", "thread_ts": "1.5", "channel": "C1"}, "T1") is None
    assert thread_of({"ts": "1.5", "channel": "C1"}, "T1") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("if (a &lt; b &amp;&amp; c &gt; d)", "if (a < b && c > d)"),
        ("&amp;lt; stays an entity", "&lt; stays an entity"),
        ("ask <@U0OTHER1> and <@U0NONAME>", "ask @Alice and @U0NONAME"),
        ("ask <@U0OTHER1|alice>", "ask @Alice"),
        ("ask <@U0LABEL|bob>", "ask @bob"),
        ("see <#C0123|general> and <#C0456>", "see #general and #C0456"),
        ("<https://a.io/x?q=1&amp;r=2|the docs>", "the docs (https://a.io/x?q=1&r=2)"),
        ("<https://a.io>", "https://a.io"),
        ("<mailto:a@b.io|a@b.io>", "a@b.io (mailto:a@b.io)"),
        ("<!here> <!channel> <!everyone>", "@here @channel @everyone"),
        ("<!subteam^S0123|@oncall> please", "@oncall please"),
        ("due <!date^1392734382^{date_short}|Feb 18, 2014>", "due Feb 18, 2014"),
        ("plain text", "plain text"),
    ],
)
def test_slack_markup_becomes_what_the_person_wrote(raw: str, expected: str) -> None:
    """Slack's markup and escapes are turned back into what the person typed, before the model sees it."""
    assert slack_to_text(raw, {"U0OTHER1": "Alice"}) == expected


def test_mentioned_users() -> None:
    assert mentioned_users("hi <@U1> <@W2|x> <#C3> <!here>") == {"U1", "W2"}


def _forward(comment: str, **share: object) -> dict[str, object]:
    return {
        "type": "message",
        "user": "U0HUMAN1",
        "text": comment,
        "ts": "10.1",
        "channel": "C1",
        "attachments": [{"is_share": True, "is_msg_unfurl": True, **share}],
    }


def test_forward_with_comment_quotes_the_shared_message() -> None:
    """A forwarded message's text and author become a quote in the user's turn."""
    event = _forward("what does this mean?", author_name="Bob", text="Deploy &lt;tonight&gt;\nat 9")
    message = incoming_message(event, "T1", "UBOT")
    expected = "what does this mean?\n\n> Shared message from Bob:\n> Deploy &lt;tonight&gt;\n> at 9"
    assert message.text == expected


def test_forward_without_comment_is_asked_about() -> None:
    """A forward with no words of its own is answered as the user sharing it, not as an empty mention."""
    message = incoming_message(_forward("", author_id="U0BOB", text="the numbers"), "T1", "UBOT")
    assert message.text.startswith(SHARED_WITHOUT_COMMENT)
    assert "> Shared message from <@U0BOB>:\n> the numbers" in message.text


def test_forwarded_files_go_to_the_image_pipeline() -> None:
    """Files inside a forwarded message are attachments of the turn, like the user's own."""
    file = {
        "id": "F1",
        "name": "chart.png",
        "mimetype": "image/png",
        "size": 10,
        "url_private": "https://x/y",
    }
    message = incoming_message(_forward("", text="see chart", files=[file]), "T1", "UBOT")
    assert [a.file_id for a in message.attachments] == ["F1"]


def _rich(*elements: Mapping[str, object]) -> list[dict[str, object]]:
    return [{"message": {"blocks": [{"type": "rich_text", "elements": list(elements)}]}}]


def test_forward_whose_words_are_only_in_its_blocks() -> None:
    """A forward with empty ``text`` is quoted from its ``message_blocks``, written as Slack markup."""
    section = {
        "type": "rich_text_section",
        "elements": [
            {"type": "text", "text": "ping "},
            {"type": "user", "user_id": "U0OTHER1"},
            {"type": "text", "text": " if a < b & "},
            {"type": "link", "url": "https://x.io", "text": "docs"},
            {"type": "emoji", "name": "tada"},
        ],
    }
    items = {
        "type": "rich_text_list",
        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": "one"}]}],
    }
    code = {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "x = 1"}]}
    event = _forward("", author_name="Bob", text="", message_blocks=_rich(section, items, code))
    message = incoming_message(event, "T1", "UBOT")
    quoted = message.text.split("\n\n", 1)[1]
    assert quoted == (
        "> Shared message from Bob:\n"
        "> ping <@U0OTHER1> if a &lt; b &amp; <https://x.io|docs>:tada:\n"
        "> - one\n> ```\n> x = 1\n> ```"
    )
    written = slack_to_text(quoted, {"U0OTHER1": "Alice"})
    assert "> ping @Alice if a < b & docs (https://x.io):tada:" in written


def test_forward_text_wins_over_its_blocks() -> None:
    event = _forward("", text="the text", message_blocks=_rich({"type": "text", "text": "other"}))
    assert incoming_message(event, "T1", "UBOT").text.endswith("> the text")
