"""What a native stream may be sent of a growing answer (``handlers.reply.deltas``)."""

from __future__ import annotations

import pytest

from handlers.reply.defuse import defuse_markdown
from handlers.reply.deltas import safe_end, stream_cut
from handlers.reply.fences import classify


@pytest.mark.parametrize(
    ("text", "sendable"),
    [
        ("Hello world", "Hello world"),
        ("Hello world ", "Hello world"),
        ("Hi <!chan", "Hi"),
        ("Hi <!channel> there", "Hi <!channel> there"),
        ("Hi &lt;!he", "Hi"),
        ("Hi &l", "Hi"),
        ("ping @chan", "ping"),
        ("see [the do", "see"),
        ("see [the docs](https://exa", "see"),
        ("see [the docs](https://example.com) ok", "see [the docs](https://example.com) ok"),
        ("a <https://x.y|lab", "a"),
        ("first line <\nsecond", "first line <\nsecond"),
    ],
)
def test_safe_end_holds_back_unfinished_tokens(text: str, sendable: str) -> None:
    assert text[: safe_end(text, 0)] == sendable


def test_deltas_defused_one_by_one_never_form_a_mention() -> None:
    """However the answer grows, the defused deltas joined hold no live token."""
    answer = "Tell <!channel> and &lt;!here&gt; and <@U0123ABC> and @everyone, plus [a](https://b.c) now"
    sent, streamed = 0, ""
    for end in range(1, len(answer) + 1):
        cut = safe_end(answer[:end], sent)
        streamed += defuse_markdown(answer[sent:cut])
        sent = cut
    streamed += defuse_markdown(answer[sent:])
    assert streamed == defuse_markdown(answer)


def test_stream_cut_closes_and_reopens_code() -> None:
    code = "```python\n" + "\n".join(f"print({i})" for i in range(600)) + "\n```"
    head, rest = stream_cut(code, 100, 2000)
    whole = code[:100] + head  # what the stream holds once it is stopped
    assert len(whole) <= 2000 + len("\n```")
    assert classify(whole.split("\n"))[-1].kind == "close"
    assert rest.startswith("```python\n")
