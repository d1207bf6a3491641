"""The assistant side panel: greeting and prompts, answers with status and title, the viewed channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import DEFAULT_ASSISTANT_PROMPTS, SettingsError, load_settings
from handlers.assistant import GREETING
from handlers.assistant_replies import STATUS, title_of
from handlers.reply.buttons import FEEDBACK_ACTIONS, STOP_ACTION
from handlers.reply.streamer import PLACEHOLDER, TYPING_CURSOR
from tests.fakes.constants import TEAM_ID
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.slack_api import FakeSlack
from tests.rendered import slack_text
from tests.scenario.harness import BotUnderTest, bot_environment, message, next_ts, running_bot

PANEL = "D0PANEL"
USER = "U0HUMAN1"
ROOT = Path(__file__).resolve().parents[2]


def thread_event(kind: str, thread_ts: str, viewing: str | None) -> dict[str, Any]:
    """``assistant_thread_started`` / ``assistant_thread_context_changed`` as Slack sends them."""
    context = {"channel_id": viewing, "team_id": TEAM_ID} if viewing else {}
    return {
        "type": kind,
        "assistant_thread": {
            "user_id": USER,
            "context": context,
            "channel_id": PANEL,
            "thread_ts": thread_ts,
        },
        "event_ts": next_ts(),
    }


def panel_message(text: str, thread_ts: str, **extra: Any) -> dict[str, Any]:
    """A person's message in the panel thread (Slack adds ``assistant_thread`` with an action token)."""
    return message(
        text,
        channel=PANEL,
        channel_type="im",
        thread_ts=thread_ts,
        user=USER,
        assistant_thread={"action_token": "10000.20000.abc"},
        parent_user_id="UBOT0001",
        **extra,
    )


def answers(slack: FakeSlack, thread_ts: str) -> list[str]:
    """Finished bot messages in the panel thread after the greeting."""
    return [
        m.text
        for m in slack.messages_in(PANEL, thread_ts)
        if m.text not in (PLACEHOLDER, GREETING) and not m.shown.endswith(TYPING_CURSOR)
    ]


async def open_panel(bot: BotUnderTest, slack: FakeSlack, viewing: str | None = "C0VIEW") -> str:
    """Open a panel thread and wait for its greeting; returns its thread_ts."""
    thread_ts = next_ts()
    await bot.send_event(thread_event("assistant_thread_started", thread_ts, viewing))
    await slack.wait_for(lambda: (PANEL, thread_ts) in slack.assistant.prompts)
    return thread_ts


async def test_panel_greets_once_with_suggested_prompts(bot: BotUnderTest, fake_slack: FakeSlack) -> None:
    """A new panel thread gets a greeting and the suggested prompts; Slack's retry greets no second time."""
    thread_ts = next_ts()
    started = thread_event("assistant_thread_started", thread_ts, "C0VIEW")
    await bot.send_event(started, event_id="EvStarted")
    await bot.send_event(started, event_id="EvStarted", retry_num=1)
    await fake_slack.wait_for(lambda: (PANEL, thread_ts) in fake_slack.assistant.prompts)
    [greeting] = fake_slack.messages_in(PANEL, thread_ts)
    assert greeting.text == GREETING
    prompts = fake_slack.assistant.prompts[(PANEL, thread_ts)]
    assert [p["message"] for p in prompts] == list(DEFAULT_ASSISTANT_PROMPTS)
    assert all(p["title"] == p["message"] for p in prompts)
    assert len(fake_slack.calls_to("assistant.threads.setSuggestedPrompts")) == 1


async def test_panel_question_answered_with_status_and_title(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A panel question is answered in its thread: status set, then cleared; the thread titled."""
    fake_model.script(Reply(text="Paris is the capital.", chunk_chars=5, delay=0.02))
    thread_ts = await open_panel(bot, fake_slack)
    await bot.send_event(panel_message("What is the capital of France?", thread_ts))
    await fake_slack.wait_for(lambda: answers(fake_slack, thread_ts) == [slack_text("Paris is the capital.")])
    await fake_slack.wait_for(lambda: len(fake_slack.assistant.status_history(PANEL, thread_ts)) == 2)
    assert fake_slack.assistant.status_history(PANEL, thread_ts) == [STATUS, ""]
    [set_status] = [c for c in fake_slack.calls_to("assistant.threads.setStatus") if c.body["status"]]
    assert set_status.body["loading_messages"], "the status rotates loading messages"
    assert fake_slack.assistant.titles[(PANEL, thread_ts)] == "What is the capital of France?"
    assert fake_model.requests[0].messages[-1]["content"].startswith("What is the capital of France?")

    # The next question keeps the memory, and the title.
    await bot.send_event(panel_message("And of Italy?", thread_ts))
    await fake_slack.wait_for(lambda: len(answers(fake_slack, thread_ts)) == 2)
    assert len(fake_slack.calls_to("assistant.threads.setTitle")) == 1
    assert any("France" in str(m["content"]) for m in fake_model.requests[1].messages[:-1])


async def test_context_changed_names_the_viewed_channel(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """After the user switches channel, a question carries that channel's name and id, not its messages."""
    fake_slack.assistant.channel_names["C0DESIGN"] = "design"
    thread_ts = await open_panel(bot, fake_slack, viewing=None)
    await bot.send_event(thread_event("assistant_thread_context_changed", thread_ts, "C0DESIGN"))
    await bot.send_event(panel_message("What is this channel for?", thread_ts))
    await fake_slack.wait_for(lambda: len(answers(fake_slack, thread_ts)) == 1)
    question = str(fake_model.requests[0].messages[-1]["content"])
    assert question.startswith("What is this channel for?")
    assert "#design" in question
    assert "C0DESIGN" in question
    # Only the name was asked for: nothing of the channel's messages was read.
    about = [c.method for c in fake_slack.calls if c.body.get("channel") == "C0DESIGN"]
    assert about == ["conversations.info"]


async def test_panel_message_delivered_twice_is_answered_once(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """The same panel message, announced twice and retried, gets one answer and one status."""
    thread_ts = await open_panel(bot, fake_slack)
    event = panel_message("once please", thread_ts)
    await bot.send_event(event, event_id="EvPanel1")
    await bot.send_event(event, event_id="EvPanel2")
    await bot.send_event(event, event_id="EvPanel1", retry_num=1)
    await fake_slack.wait_for(lambda: len(answers(fake_slack, thread_ts)) == 1)
    await bot.send_event(message("probe", channel="D0DM", channel_type="im"))
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 2)
    assert len(answers(fake_slack, thread_ts)) == 1
    assert fake_slack.assistant.status_history(PANEL, thread_ts).count(STATUS) == 1


async def test_plain_dm_thread_is_answered_without_panel_calls(
    bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A reply in an ordinary DM thread (Bolt's assistant middleware takes it) is answered as before."""
    first = message("hello", channel="D0DM", channel_type="im")
    await bot.send_event(first)
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 1)
    await bot.send_event(message("and again", channel="D0DM", channel_type="im", thread_ts=first["ts"]))
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 2)
    await fake_slack.wait_for(lambda: len(fake_slack.messages_in("D0DM", first["ts"])) == 2)
    assert fake_model.requests[1].messages[-1]["content"] == "and again"
    assert not [c for c in fake_slack.calls if c.method.startswith("assistant.")]


async def test_quota_refusal_shows_in_the_panel(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """A user with no money left gets the refusal in the panel thread, and the status is cleared."""
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url, QUOTA_DEFAULT_USD="0")
    async with running_bot() as bot:
        thread_ts = await open_panel(bot, fake_slack)
        await bot.send_event(panel_message("Tell me a story", thread_ts))
        await fake_slack.wait_for(lambda: len(answers(fake_slack, thread_ts)) == 1)
        await fake_slack.wait_for(lambda: len(fake_slack.assistant.status_history(PANEL, thread_ts)) == 2)
    assert "spend limit" in answers(fake_slack, thread_ts)[0]
    assert not fake_model.requests
    assert fake_slack.assistant.status_history(PANEL, thread_ts) == [STATUS, ""]


@pytest.mark.parametrize(
    ("raw", "prompts"),
    [
        (None, list(DEFAULT_ASSISTANT_PROMPTS)),
        ("One | Two|Three", ["One", "Two", "Three"]),
        ('["A, with comma", "B"]', ["A, with comma", "B"]),
        ("[]", []),
    ],
)
def test_assistant_prompts_setting(
    monkeypatch: pytest.MonkeyPatch, raw: str | None, prompts: list[str]
) -> None:
    """ASSISTANT_PROMPTS: a JSON list or text split at "|"."""
    if raw is not None:
        monkeypatch.setenv("ASSISTANT_PROMPTS", raw)
    assert load_settings().assistant_prompts == prompts


def test_assistant_prompts_at_most_four(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_PROMPTS", "a|b|c|d|e")
    with pytest.raises(SettingsError, match="ASSISTANT_PROMPTS: at most 4"):
        load_settings()


def test_title_is_the_first_line_cut_at_a_word() -> None:
    assert title_of("  Short   question\nmore lines") == "Short question"
    long = "Please explain how the garbage collector in CPython finds reference cycles between objects"
    title = title_of(long)
    assert title.endswith("…")
    assert len(title) <= 60
    assert long.startswith(title[:-1])


@pytest.mark.parametrize("name", ["slack-manifest.yaml", "slack-manifest.socket.yaml"])
def test_manifests_enable_the_panel(name: str) -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / name).read_text())
    view = manifest["features"]["assistant_view"]
    assert view["assistant_description"]
    assert 1 <= len(view["suggested_prompts"]) <= 4
    assert all(p["title"] and p["message"] for p in view["suggested_prompts"])
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"assistant:write", "channels:read", "groups:read"} <= scopes
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"assistant_thread_started", "assistant_thread_context_changed", "message.im"} <= events


@pytest.mark.parametrize("name", ["slack-manifest.yaml", "slack-manifest.socket.yaml"])
def test_manifests_enable_interactivity_because_the_buttons_use_it(name: str) -> None:
    """Interactivity is on only because something uses it: the Stop and feedback buttons' actions (HTTP
    mode receives them at the events URL)."""
    assert STOP_ACTION
    assert FEEDBACK_ACTIONS
    manifest = yaml.safe_load((ROOT / "deploy" / name).read_text())
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    if name == "slack-manifest.yaml":
        assert interactivity["request_url"] == manifest["settings"]["event_subscriptions"]["request_url"]
