"""The model's Markdown shown with Slack's own Markdown: markdown blocks, native tables, plain fallbacks."""

from __future__ import annotations

from handlers.reply.defuse import ZWSP
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.slack_api import FakeMessage, FakeSlack
from tests.scenario.harness import BotUnderTest, mention

ANSWER = (
    "## 结果\n\n"
    "这是**非常重要**的事情。See <https://example.com/guide|the guide> and [the API](https://example.com/api).\n\n"
    "| 名前 | score |\n|---|---:|\n| **Ann** | 3 |\n| Bo | 12 |\n\n"
    "```python\nif a < b and c > d:\n    print('<!channel>')\n```\n\n"
    "Done."
)


def _thread(slack: FakeSlack, thread_ts: str) -> list[FakeMessage]:
    return slack.messages_in("C0TEST", thread_ts)


async def test_answer_is_rendered_by_slack(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """Headings, CJK emphasis and both link forms go in markdown blocks; the table goes alone in a
    table block; code stays verbatim; every message carries plain words for its notification."""
    fake_model.script(Reply(text=ANSWER, chunk_chars=16, delay=0.01))
    event = mention("summarise")
    await bot.send_event(event)
    await fake_slack.wait_for(
        lambda: any(m.shown.endswith("Done.") for m in _thread(fake_slack, event["ts"]))
    )
    first, table, last = _thread(fake_slack, event["ts"])

    assert first.blocks == [
        {
            "type": "markdown",
            "text": f"## 结果\n\n这是{ZWSP}**非常重要**{ZWSP}的事情。"
            "See <https://example.com/guide|the guide> and [the API](https://example.com/api).",
        }
    ]
    assert first.text == (
        "结果\n\n这是非常重要的事情。See the guide (https://example.com/guide) and the API (https://example.com/api)."
    )
    assert [block["type"] for block in table.blocks] == ["table"]
    assert table.shown == "名前 | score\nAnn | 3\nBo | 12"
    code, done, feedback = last.blocks  # the answer's last message ends with the feedback buttons
    assert feedback["type"] == "actions"
    assert code["elements"][0]["elements"][0]["text"] == "if a < b and c > d:\n    print('<\u200b!channel>')"
    assert done == {"type": "markdown", "text": "Done."}
    assert "Done." in last.text
