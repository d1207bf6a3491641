"""What the bot posts can never ping a person or a crowd: model output, echoed file names, error lines."""

from __future__ import annotations

import json

from handlers.events import SHARED_WITHOUT_COMMENT
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.slack_api import FakeSlack
from tests.scenario.harness import BotUnderTest, mention, message
from tests.scenario.test_images import png

CROWD = ("<!channel>", "<!here>", "<!everyone>", "<!subteam^S0ONCALL|@oncall>")


def _posted_payloads(slack: FakeSlack) -> list[str]:
    """Every message the bot sent to Slack (its ``text`` and ``blocks`` as JSON), edits included."""
    return [
        json.dumps([call.body.get("text"), call.body.get("blocks")], ensure_ascii=False)
        for call in slack.calls
        if call.method in ("chat.postMessage", "chat.update")
    ]


def _shown(slack: FakeSlack) -> list[str]:
    """What each posted or edited message showed."""
    return [call.shown for call in slack.calls if call.method in ("chat.postMessage", "chat.update")]


def _no_mention_elements(slack: FakeSlack) -> bool:
    """No rich_text element that notifies (user, usergroup, broadcast) was ever sent."""
    kinds = ('"type": "user"', '"type": "usergroup"', '"type": "broadcast"')
    return not any(kind in payload for payload in _posted_payloads(slack) for kind in kinds)


async def test_model_output_cannot_ping(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A model (or a prompt injection) writing crowd and user mentions posts them as plain text."""
    long_answer = "Alert! <!channel> <!here> <!everyone> <!subteam^S0ONCALL|@oncall> and <@U0BOSS1>.\n\n"
    long_answer += "\n\n".join(f"Part {i}: <!channel> " + "word " * 120 for i in range(12))
    fake_model.script(Reply(text=long_answer, chunk_chars=64))
    await bot.send_event(mention("summarise"))
    await fake_slack.wait_for(lambda: any("Part 11" in text for text in _posted_payloads(fake_slack)))
    payloads = _posted_payloads(fake_slack)
    assert len(fake_slack.calls_to("chat.postMessage")) > 1  # continuations are fresh posts: the risky case
    assert all("<!" not in text and "<@" not in text and "&lt;!" not in text for text in payloads)
    assert _no_mention_elements(fake_slack)
    assert any("!channel" in text and "@U0BOSS1" in text for text in _shown(fake_slack))


async def test_echoed_file_name_cannot_ping(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A file named like a crowd mention is named in the warning as text."""
    file = fake_slack.add_file("F9", b"%PDF-1.4", name="<!channel> urgent.pdf", mimetype="application/pdf")
    await bot.send_event(message("", channel="D0DM", channel_type="im", subtype="file_share", files=[file]))
    await fake_slack.wait_for(lambda: any("urgent.pdf" in text for text in _posted_payloads(fake_slack)))
    payloads = _posted_payloads(fake_slack)
    assert all(token not in text for text in payloads for token in CROWD)
    assert _no_mention_elements(fake_slack)
    assert any("I couldn't use ＜!channel＞ urgent.pdf" in text for text in _shown(fake_slack))
    assert fake_model.requests == []


async def test_model_reads_what_the_person_wrote(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """Slack's escapes and markup reach the model (and the thread's memory) as the person wrote them."""
    raw = "why is if (a &lt; b &amp;&amp; c &gt; d) wrong? ask <@U0OTHER1>, see <#C0DOCS|docs> and <https://a.io|this>"
    await bot.send_event(mention(raw))
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 1)
    question = fake_model.requests[0].messages[-1]["content"]
    assert question == "why is if (a < b && c > d) wrong? ask @u0other1, see #docs and this (https://a.io)"


async def test_forwarded_message_and_its_image_reach_the_model(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A forward with no comment is asked about, with its text quoted and its image sent to the model."""
    file = fake_slack.add_file("F10", png(64, 48), name="chart.png")
    share = {"is_share": True, "author_name": "Bob", "text": "Q3 numbers &amp; trend", "files": [file]}
    await bot.send_event(message("", channel="D0DM", channel_type="im", attachments=[share]))
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 1)
    parts = fake_model.requests[0].messages[-1]["content"]
    text = next(part["text"] for part in parts if part["type"] == "text")
    assert text == f"{SHARED_WITHOUT_COMMENT}\n\n> Shared message from Bob:\n> Q3 numbers & trend"
    assert any(part["type"] == "image_url" for part in parts)
