"""Rendering answers as Slack blocks: Slack's own Markdown, native tables, no pings, readable fallbacks."""

from __future__ import annotations

import json

import pytest

from handlers.reply.defuse import ZWSP
from handlers.reply.parts import MAX_TABLE_ROWS, consumed, cut, render_one
from handlers.reply.render import SlackMessage, render, render_partial, verbatim
from tests.fakes.slack_blocks import blocks_error, shown

MENTION_ELEMENTS = ('"type": "user"', '"type": "usergroup"', '"type": "broadcast"')


def _one(markdown: str) -> SlackMessage:
    [message] = render(markdown)
    assert blocks_error(list(message.blocks)) is None
    return message


def _payload(message: SlackMessage) -> str:
    return json.dumps([message.text, message.blocks], ensure_ascii=False)


# Every place a crowd or person mention can hide, in every spelling the model (or an injection) may use.
PINGS = ["<!channel>", "<!here|here>", "<!everyone>", "<!subteam^S0ONCALL|@oncall>", "<@U0BOSS1>", "<@W0X>"]
PINGS += ["&lt;!channel&gt;", "&lt;@U0BOSS1&gt;", "<!date^1700000000^{date}|today>"]
PLACES = [
    "Alert {p} now",
    "`{p}`",
    "```\n{p}\n```",
    "- first\n- item {p}",
    "> quoted {p}",
    "# Heading {p}",
    "| a | b |\n|---|---|\n| {p} | x |",
    "**{p}**",
    "[{p}](https://example.com)",
]


@pytest.mark.parametrize("ping", PINGS)
@pytest.mark.parametrize("place", PLACES)
def test_nothing_rendered_can_ping(ping: str, place: str) -> None:
    """No string in any block or fallback holds a live mention token, and no mention element exists."""
    for message in render(place.format(p=ping)):
        payload = _payload(message)
        for token in ("<!", "<@", "&lt;!", "&lt;@"):
            assert token not in payload, payload
        assert not any(kind in payload for kind in MENTION_ELEMENTS), payload
        assert blocks_error(list(message.blocks)) is None


@pytest.mark.parametrize("word", ["@channel", "@here", "@everyone", "@Channel"])
def test_crowd_words_are_broken_up(word: str) -> None:
    """The plain words Slack may also read as a crowd ping get a word joiner after the ``@``."""
    message = _one(f"hey {word}, look")
    assert word not in _payload(message)
    assert shown(message.text, message.blocks) == f"hey {word}, look"


def test_mentions_stay_readable() -> None:
    """A defused mention still reads as what the model wrote."""
    message = _one("Ping <!channel> and <@U0BOSS1>")
    assert shown(message.text, message.blocks) == "Ping ＜!channel＞ and ＜@U0BOSS1＞"


@pytest.mark.parametrize(
    ("markdown", "block_text"),
    [
        ("**bold**, *italic*, ~~gone~~", "**bold**, *italic*, ~~gone~~"),
        ("See [the docs](https://example.com/a)", "See [the docs](https://example.com/a)"),
        ("See <https://example.com/a?b=1|the docs>", "See <https://example.com/a?b=1|the docs>"),
        ("Open [https://bank.example](https://evil.example/x)", "Open <https://evil.example/x>"),
        ("Open <https://evil.example/x|https://bank.example>", "Open <https://evil.example/x>"),
        (
            "Same [https://example.com/](https://example.com)",
            "Same [https://example.com/](https://example.com)",
        ),
        ("Join <#C0DOCS|docs>", "Join <#C0DOCS|docs>"),
        ("Use `if (a < b && c > d)` here", "Use `if (a < b && c > d)` here"),
        ("# Title\n\ntext", "# Title\n\ntext"),
    ],
)
def test_markdown_goes_to_slack_as_markdown(markdown: str, block_text: str) -> None:
    """Standard Markdown reaches a ``markdown`` block, which Slack renders; links keep their form."""
    message = _one(markdown)
    assert message.blocks == ({"type": "markdown", "text": block_text},)


@pytest.mark.parametrize(
    ("markdown", "marked"),
    [
        ("这是**非常重要**的事情", f"这是{ZWSP}**非常重要**{ZWSP}的事情"),
        ("日本語の**太字**テスト", f"日本語の{ZWSP}**太字**{ZWSP}テスト"),
        ("이것은**중요한**내용", f"이것은{ZWSP}**중요한**{ZWSP}내용"),
    ],
)
def test_emphasis_renders_without_spaces_between_words(markdown: str, marked: str) -> None:
    """In Chinese, Japanese and Korean text a zero-width space lets Slack see the emphasis markers."""
    message = _one(markdown)
    assert message.blocks[0]["text"] == marked
    assert ZWSP not in message.text  # the notification text has no invisible characters


def test_code_block_is_native_and_verbatim() -> None:
    """A fenced block becomes a preformatted rich text block with its language; its text is untouched."""
    message = _one("```html\n<!DOCTYPE html>\n<p>a &amp; b</p>\n```")
    [block] = message.blocks
    assert block["elements"][0] == {
        "type": "rich_text_preformatted",
        "elements": [{"type": "text", "text": "<!DOCTYPE html>\n<p>a &amp; b</p>"}],
        "language": "html",
    }


def test_table_is_a_native_table_block() -> None:
    """A GFM table becomes a ``table`` block with one rich text cell per Markdown cell."""
    message = _one("| name | score |\n|---|---:|\n| **Ann** | 3 |")
    [block] = message.blocks
    assert block["type"] == "table"
    assert shown("", message.blocks) == "name | score\nAnn | 3"
    assert block["rows"][1][0]["elements"][0]["elements"][0] == {
        "type": "text",
        "text": "Ann",
        "style": {"bold": True},
    }


def test_wide_table_becomes_code() -> None:
    """Over 20 columns a table block would be refused; the rows are shown as code instead."""
    header = "|" + "|".join(f"c{i}" for i in range(21)) + "|"
    message = _one("\n".join([header, "|" + "---|" * 21, "|" + "|".join("x" * 21) + "|"]))
    assert message.blocks[0]["elements"][0]["type"] == "rich_text_preformatted"


@pytest.mark.parametrize(
    ("markdown", "fallback"),
    [
        ("**Bold** and ~~old~~ and `code`", "Bold and old and `code`"),
        ("# Title\n\nBody", "Title\n\nBody"),
        ("See [the docs](https://x.io/a)", "See the docs (https://x.io/a)"),
        ("See <https://x.io/a|the docs> or <https://y.io>", "See the docs (https://x.io/a) or https://y.io"),
        ("Join <#C0DOCS|docs>", "Join #docs"),
        ("if a < b & c > d", "if a ＜ b &amp; c ＞ d"),
        ("这是**非常重要**的事情", "这是非常重要的事情"),
    ],
)
def test_notification_text_is_plain_words(markdown: str, fallback: str) -> None:
    """``text`` (what notifications and screen readers show) has no Markdown markers and is escaped."""
    assert _one(markdown).text == fallback


@pytest.mark.parametrize(
    ("prefix", "shown_text"),
    [
        ("Intro\n```python\nprint(1)", "Intro\nprint(1)\n▍"),
        ("see [the docs](https://exa", "see the docs ▍"),
        ("some `code", "some `code` ▍"),
        ("a **bold", "a **bold** ▍"),
        ("| a | b |\n|---|---|\n| 1 | 2", "a | b\n1 | 2"),
    ],
)
def test_partial_answer_displays_cleanly(prefix: str, shown_text: str) -> None:
    """A streaming prefix closes its fence, hides half a link, closes a span; the cursor trails it."""
    [message] = render_partial(prefix, " ▍")
    assert blocks_error(list(message.blocks)) is None
    assert shown("", message.blocks) == shown_text


def test_verbatim_is_a_code_block_within_the_limit() -> None:
    message = verbatim("```x``` <!channel> " * 50, 300)
    assert message.size <= 300
    assert message.blocks[0]["text"].startswith("```\n")
    assert "<!" not in _payload(message)


def test_cut_puts_each_table_in_a_message_of_its_own() -> None:
    """Text, then a table, then text: cut before the table, then after it."""
    markdown = "Intro\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nOutro"
    first = cut(markdown)
    assert first is not None
    assert first[0].blocks == ({"type": "markdown", "text": "Intro"},)
    second = cut(first[1])
    assert second is not None
    assert second[0].blocks[0]["type"] == "table"
    assert second[1] == "Outro"
    assert cut(second[1]) is None


def test_cut_repeats_a_long_tables_header() -> None:
    """A table over 100 rows is cut at 100 rows; the rest starts with the header again."""
    rows = ["| n | v |", "|---|---|"] + [f"| {i} | x |" for i in range(150)]
    markdown = "\n".join(rows)
    part = cut(markdown)
    assert part is not None
    message, rest = part
    assert len(message.blocks[0]["rows"]) == MAX_TABLE_ROWS
    assert rest.startswith("| n | v |\n|---|---|\n| 99 | x |")
    assert consumed(markdown, rest) == (
        len(markdown) - len(rest) + len("| n | v |\n|---|---|\n"),
        rows[0] + "\n" + rows[1] + "\n",
    )


def test_render_one_refuses_what_needs_two_messages() -> None:
    assert render_one("a\n\n| a | b |\n|---|---|\n| 1 | 2 |") is None
    assert render_one("just text") is not None
