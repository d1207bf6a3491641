"""Markdown to Slack mrkdwn rendering and streaming prefixes."""

from __future__ import annotations

import pytest

from handlers.reply.mrkdwn import render_partial, to_mrkdwn

RULE = "──────────"


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("**bold**", "*bold*"),
        ("__bold__", "*bold*"),
        ("*italic*", "_italic_"),
        ("_italic_", "_italic_"),
        ("***both***", "*_both_*"),
        ("___both___", "*_both_*"),
        ("~~strike~~", "~strike~"),
        ("a **b** c *d* e", "a *b* c _d_ e"),
        ("**Note:** read this", "*Note:* read this"),
        ("*italic with **bold** inside*", "_italic with *bold* inside_"),
        ("**bold with *italic* inside**", "*bold with _italic_ inside*"),
        ("2*3*4", "2*3*4"),
        ("a * b * c", "a * b * c"),
        ("2**10 and 3**2", "2**10 and 3**2"),
        ("snake_case_name", "snake_case_name"),
        ("call my_func_name now", "call my_func_name now"),
        ("** not bold **", "** not bold **"),
        ("~single~", "~single~"),
        ("中文**粗体**中文", "中文*粗体*中文"),
        ("这是*斜体*和~~删除~~", "这是_斜体_和~删除~"),
        (r"\*literal\* and \_x\_", "*literal* and _x_"),
    ],
)
def test_emphasis(markdown: str, expected: str) -> None:
    """Bold, italic and strike markers convert; intraword and spaced markers do not."""
    assert to_mrkdwn(markdown) == expected


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("[docs](https://example.com)", "<https://example.com|docs>"),
        ('[docs](https://example.com "Title")', "<https://example.com|docs>"),
        ("![a cat](https://img.example/cat.png)", "<https://img.example/cat.png|a cat>"),
        ("[](https://example.com)", "<https://example.com>"),
        ("[**bold** `label`](https://x.io)", "<https://x.io|bold label>"),
        ("[q](https://x.io/?a=1&b=2)", "<https://x.io/?a=1&amp;b=2|q>"),
        ("[wiki](https://en.wikipedia.org/wiki/Foo_(bar))", "<https://en.wikipedia.org/wiki/Foo_(bar)|wiki>"),
        ("see https://example.com/a_b_c.", "see <https://example.com/a_b_c>."),
        ("(https://example.com/x)", "(<https://example.com/x>)"),
        ("**https://example.com**", "*<https://example.com>*"),
        ("<https://example.com/path>", "<https://example.com/path>"),
        ("<mailto:a@example.com>", "<mailto:a@example.com>"),
        ("**[bold link](https://x.io)**", "*<https://x.io|bold link>*"),
    ],
)
def test_links(markdown: str, expected: str) -> None:
    """Links, images, autolinks and bare URLs become Slack links."""
    assert to_mrkdwn(markdown) == expected


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("# Title", "*Title*"),
        ("###### Deep", "*Deep*"),
        ("## Closed ##", "*Closed*"),
        ("### C#", "*C#*"),
        ("## **Bold** heading", "*Bold heading*"),
        ("## Use `pip`", "*Use `pip`*"),
        ("#", ""),
        ("#hashtag", "#hashtag"),
        ("####### seven", "####### seven"),
    ],
)
def test_headings(markdown: str, expected: str) -> None:
    """Headings become bold lines."""
    assert to_mrkdwn(markdown) == expected


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("- one\n* two\n+ three", "• one\n• two\n• three"),
        ("- top\n  - nested\n      - deeper", "• top\n  ◦ nested\n      ▪ deeper"),
        ("- top\n    - four spaces", "• top\n    ◦ four spaces"),
        ("1. first\n2. second\n10) tenth", "1. first\n2. second\n10) tenth"),
        ("1. step\n   - detail", "1. step\n   ◦ detail"),
        ("- [ ] todo\n- [x] done\n- [X] also", "☐ todo\n☑ done\n☑ also"),
        ("- **bold** item", "• *bold* item"),
        ("*not a list*", "_not a list_"),
        ("3.14 is pi", "3.14 is pi"),
    ],
)
def test_lists(markdown: str, expected: str) -> None:
    """Bullets, nesting, ordered and task lists."""
    assert to_mrkdwn(markdown) == expected


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("> quoted **text**", "> quoted *text*"),
        (">no space", "> no space"),
        ("> > nested", "> nested"),
        ("> - item", "> • item"),
        ("---", RULE),
        ("***", RULE),
        ("___", RULE),
        ("* * *", RULE),
        ("a\n\n---\n\nb", f"a\n\n{RULE}\n\nb"),
        ("a -> b", "a -&gt; b"),
    ],
)
def test_quotes_and_rules(markdown: str, expected: str) -> None:
    """Blockquotes stay quotes; horizontal rules become a line."""
    assert to_mrkdwn(markdown) == expected


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("```python\nx = 1\n```", "```\nx = 1\n```"),
        ("~~~bash\nls *.py\n~~~", "```\nls *.py\n```"),
        ("````\n```\ninner\n```\n````", "```\n```\ninner\n```\n```"),
        ("```\n**not bold** [x](https://y)\n```", "```\n**not bold** [x](https://y)\n```"),
        ("```js\nif (a < b && c > d) {}\n```", "```\nif (a &lt; b &amp;&amp; c &gt; d) {}\n```"),
        ("```\n  indented\n\n```", "```\n  indented\n\n```"),
        ("1. Run:\n   ```sh\n   make test\n   ```\n2. Done", "1. Run:\n```\nmake test\n```\n2. Done"),
        ("```python\nunclosed = True", "```\nunclosed = True\n```"),
        ("text ```inline``` text", "text `inline` text"),
    ],
)
def test_code_blocks(markdown: str, expected: str) -> None:
    """Fenced code drops the language tag, is only escaped, and is always closed."""
    assert to_mrkdwn(markdown) == expected


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("run `pip install **x**`", "run `pip install **x**`"),
        ("`a < b`", "`a &lt; b`"),
        ("`[x](https://y)`", "`[x](https://y)`"),
        ("`` a ` b ``", "`a ` b`"),
        ("**`code`** here", "*`code`* here"),
        ("a ` lone backtick", "a ` lone backtick"),
    ],
)
def test_inline_code(markdown: str, expected: str) -> None:
    """Inline code is escaped but never converted."""
    assert to_mrkdwn(markdown) == expected


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("hi <@U123ABC>, see <#C123ABC|general>", "hi &lt;@U123ABC&gt;, see <#C123ABC|general>"),
        ("<!here> <!channel> <!subteam^S123>", "&lt;!here&gt; &lt;!channel&gt; &lt;!subteam^S123&gt;"),
        ("&amp; &lt; &gt; stay", "&amp; &lt; &gt; stay"),
        ("&copy; & &&", "&amp;copy; &amp; &amp;&amp;"),
        ("<div>html</div>", "&lt;div&gt;html&lt;/div&gt;"),
        ("x < [link](https://a.io/?q=1&r=2) > y", "x &lt; <https://a.io/?q=1&amp;r=2|link> &gt; y"),
        ("[a <b> & c](https://a.io)", "<https://a.io|a &lt;b&gt; &amp; c>"),
    ],
)
def test_escaping(markdown: str, expected: str) -> None:
    """Control characters are escaped except in produced links and channel links; mentions never ping."""
    assert to_mrkdwn(markdown) == expected


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        (
            "| Name | Score |\n|---|---|\n| Alice | 10 |\n| Bob | 7 |",
            "```\nName  | Score\n------+------\nAlice | 10\nBob   | 7\n```",
        ),
        (
            "| L | R | C |\n|:--|--:|:-:|\n| a | 1 | x |\n| bbbb | 222 | yyyyy |",
            "```\nL    |   R |   C\n-----+-----+------\na    |   1 |   x\nbbbb | 222 | yyyyy\n```",
        ),
        (
            "Name | Note\n--- | ---\n**Bold** | `code` & [l](https://u.io)",
            "```\nName | Note\n-----+------------------------\nBold | code &amp; l (https://u.io)\n```",
        ),
        (
            "| 名前 | n |\n|---|---:|\n| 王 | 1 |\n| Bob | 22 |",
            "```\n名前 |  n\n-----+---\n王   |  1\nBob  | 22\n```",
        ),
        (
            "| a | b |\n|---|---|\n| only |\n| x \\| y | z | extra |",
            "```\na     | b\n------+--\nonly  |\nx | y | z\n```",
        ),
        ("| not | a table |\n| just | pipes |", "| not | a table |\n| just | pipes |"),
        (
            "Intro\n\n| k | v |\n|-|-|\n| 1 | 2 |\n\nAfter",
            "Intro\n\n```\nk | v\n--+--\n1 | 2\n```\n\nAfter",
        ),
    ],
)
def test_tables(markdown: str, expected: str) -> None:
    """GFM tables become padded, aligned code blocks."""
    assert to_mrkdwn(markdown) == expected


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("line one  \nline two\t", "line one\nline two"),
        ("a\n\n\nb", "a\n\n\nb"),
        ("a\r\nb", "a\nb"),
        ("", ""),
        ("plain text", "plain text"),
        ("trailing newline\n", "trailing newline\n"),
    ],
)
def test_whitespace(markdown: str, expected: str) -> None:
    """Line breaks and blank lines are kept; trailing spaces are trimmed."""
    assert to_mrkdwn(markdown) == expected


REALISTIC_ANSWER = """## Summary

The image shows a **bar chart** of *monthly* sales (2023–2024).

### Key points
1. **March** had the highest sales: `$12,400`.
2. Sales dipped in _July_ — likely seasonal.
   - Compare with [last year](https://example.com/report?year=2023&q=1).

| Month | Sales | Change |
|:------|------:|:------:|
| March | 12,400 | +8% |
| July | 7,100 | **-12%** |

```python
import pandas as pd
df = pd.read_csv("sales.csv")  # a < b && c > d
```

> Note: numbers are estimated from the chart.

---
Let me know if you need more, <@U123ABC>!"""

REALISTIC_MRKDWN = """*Summary*

The image shows a *bar chart* of _monthly_ sales (2023–2024).

*Key points*
1. *March* had the highest sales: `$12,400`.
2. Sales dipped in _July_ — likely seasonal.
   ◦ Compare with <https://example.com/report?year=2023&amp;q=1|last year>.

```
Month |  Sales | Change
------+--------+-------
March | 12,400 |  +8%
July  |  7,100 |  -12%
```

```
import pandas as pd
df = pd.read_csv("sales.csv")  # a &lt; b &amp;&amp; c &gt; d
```

> Note: numbers are estimated from the chart.

──────────
Let me know if you need more, &lt;@U123ABC&gt;!"""


def test_realistic_answer() -> None:
    """A typical model answer mixing every construct renders as expected."""
    assert to_mrkdwn(REALISTIC_ANSWER) == REALISTIC_MRKDWN


def test_complete_answer_renders_the_same_partially() -> None:
    """A finished answer renders the same through render_partial."""
    assert render_partial(REALISTIC_ANSWER) == REALISTIC_MRKDWN


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("Hello **wor", "Hello *wor*"),
        ("Hello **", "Hello"),
        ("use `pip ins", "use `pip ins`"),
        ("use `", "use"),
        ("see [the docs](https://exa", "see the docs"),
        ("see [the docs](", "see the docs"),
        ("see [the do", "see [the do"),
        ("**done** and **hal", "*done* and *hal*"),
        ("- item\n- ", "• item\n•"),
        ("## Head", "*Head*"),
        ("```python\nprint('hi')", "```\nprint('hi')\n```"),
        ("Text\n```", "Text\n```\n```"),
        ("```\ncode with ** and ` inside", "```\ncode with ** and ` inside\n```"),
    ],
)
def test_render_partial(prefix: str, expected: str) -> None:
    """A streaming prefix closes its fence and settles a half-written tail."""
    assert render_partial(prefix) == expected


def test_render_partial_unclosed_fence_keeps_text() -> None:
    """An unclosed fence gets a closing fence and keeps all the text before and in it."""
    rendered = render_partial("Here you go:\n\n```python\ndef f(x):\n    return x * 2\n")
    assert rendered.startswith("Here you go:\n\n```\ndef f(x):\n    return x * 2")
    assert rendered.endswith("\n```")
    assert rendered.count("```") == 2


def test_render_partial_never_fails_on_any_prefix() -> None:
    """Every prefix of an answer renders, with balanced code fences."""
    for cut in range(len(REALISTIC_ANSWER) + 1):
        assert render_partial(REALISTIC_ANSWER[:cut]).count("```") % 2 == 0, cut


@pytest.mark.parametrize(
    "markdown",
    [
        "<!channel> read this",
        "Hey <!here>!",
        "<!everyone> hello",
        "<!subteam^S0123|@oncall> please",
        "ping <@U0123ABCD> now",
        "**<!channel>** and `<!here>` and > <!everyone>",
        "- <!channel>\n- [click](https://a.io) <!here>",
        "| a | b |\n|---|---|\n| <!channel> | <@U1> |",
    ],
)
def test_nothing_rendered_can_ping(markdown: str) -> None:
    """No rendering of model text (complete or partial) contains a live mention of a person or a crowd."""
    for rendered in (to_mrkdwn(markdown), render_partial(markdown)):
        assert "<!" not in rendered
        assert "<@" not in rendered


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("[https://bank.example](https://evil.example/login)", "<https://evil.example/login>"),
        ("[www.bank.example](https://evil.example)", "<https://evil.example>"),
        ("[https://a.io/](https://a.io)", "<https://a.io|https://a.io/>"),
        ("[the docs](https://a.io)", "<https://a.io|the docs>"),
    ],
)
def test_link_labels_never_hide_another_address(markdown: str, expected: str) -> None:
    """A label that is itself a different address is dropped: the link shows where it really goes."""
    assert to_mrkdwn(markdown) == expected


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("see <https://a.io/docs|the docs>", "see <https://a.io/docs|the docs>"),
        ("<https://a.io/x?q=1&r=2|x & y>", "<https://a.io/x?q=1&amp;r=2|x &amp; y>"),
        ("<mailto:a@b.io|mail me>", "<mailto:a@b.io|mail me>"),
    ],
)
def test_slack_style_links_from_the_model_survive(markdown: str, expected: str) -> None:
    """A model that writes Slack's own link form keeps a working link, not a mangled URL."""
    assert to_mrkdwn(markdown) == expected
