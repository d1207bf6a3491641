"""SlackReplyStreamer against the fake Slack Web API over real HTTP."""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import DeliveryFailed
from bot.metrics import Metrics
from handlers.reply.mrkdwn import to_mrkdwn
from handlers.reply.pacing import EditPacer
from handlers.reply.streamer import MESSAGE_LIMIT, PLACEHOLDER, TYPING_CURSOR, SlackReplyStreamer
from tests.fakes.constants import BOT_TOKEN
from tests.fakes.slack_api import FakeSlack


class FixedGate:
    """An edit gate that always answers the same hold, and records pauses."""

    def __init__(self, hold: float = 0.0) -> None:
        self.hold = hold
        self.pauses: list[float] = []

    async def take(self, first_edit: bool) -> float:
        return self.hold

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


async def _show_parts(streamer: SlackReplyStreamer, slack: FakeSlack, count: int) -> None:
    """Show ``count`` growing texts, each after the previous edit attempt reached Slack."""
    for i in range(1, count + 1):
        streamer.show("part " * i)
        await slack.wait_for(lambda: len(slack.calls_to("chat.update")) >= i)  # noqa: B023


def _streamer(slack: FakeSlack, interval: float = 0.05, gate: FixedGate | None = None) -> SlackReplyStreamer:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    return SlackReplyStreamer(
        client, "C1", "1.0", EditPacer(interval), gate or FixedGate(), Metrics(), failure_backoff=0.01
    )


async def test_edits_coalesce_to_latest_text(fake_slack: FakeSlack) -> None:
    """Many show() calls between two edit slots produce one edit carrying the newest text."""
    streamer = _streamer(fake_slack, interval=0.3)
    await streamer.start()
    for i in range(1, 200):
        streamer.show("word " * i)
        await asyncio.sleep(0.002)
    await streamer.finish("word " * 200)
    updates = fake_slack.calls_to("chat.update")
    assert len(updates) <= 4
    assert updates[-1].body["text"] == to_mrkdwn("word " * 200)
    assert all(TYPING_CURSOR in u.body["text"] for u in updates[:-1])


async def test_code_block_split_keeps_fences_balanced(fake_slack: FakeSlack) -> None:
    """A long code block is split across messages with each part a closed code block."""
    code = "```python\n" + "\n".join(f"print({i})  # line {i}" for i in range(400)) + "\n```"
    answer = "Here is the code:\n\n" + code + "\n\nDone."
    streamer = _streamer(fake_slack)
    await streamer.start()
    await streamer.finish(answer)
    parts = [m.text for m in fake_slack.messages_in("C1", "1.0")]
    assert len(parts) >= 3
    for part in parts:
        assert len(part) <= MESSAGE_LIMIT
        assert part.count("```") % 2 == 0, part[:80]
    joined = "\n".join(parts)
    assert all(f"print({i})  # line {i}" in joined for i in range(400))
    assert parts[-1].rstrip().endswith("Done.")


async def test_fail_keeps_partial_text_and_adds_warning(fake_slack: FakeSlack) -> None:
    """fail() after some text keeps that text and replaces the cursor with the warning."""
    streamer = _streamer(fake_slack)
    await streamer.start()
    streamer.show("Half an answer")
    await streamer.fail("The model stopped.")
    [message] = fake_slack.messages_in("C1", "1.0")
    assert message.text == "Half an answer\n\n:warning: The model stopped."


async def test_placeholder_rate_limited_then_posted(fake_slack: FakeSlack) -> None:
    """A 429 on the placeholder post is waited out and retried."""
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=0)
    streamer = _streamer(fake_slack)
    await streamer.start()
    await streamer.finish("ok")
    assert [m.text for m in fake_slack.messages_in("C1", "1.0")] == ["ok"]
    assert fake_slack.calls_to("chat.postMessage")[-1].body["text"] == PLACEHOLDER


async def test_placeholder_failure_raises_slack_unavailable(fake_slack: FakeSlack) -> None:
    """A Slack error on the placeholder post is DeliveryFailed (nothing else can be shown)."""
    fake_slack.error_next("chat.postMessage", error="channel_not_found")
    with pytest.raises(DeliveryFailed):
        await _streamer(fake_slack).start()


async def test_failed_interim_edit_does_not_lose_final(fake_slack: FakeSlack) -> None:
    """An interim edit error is skipped; the final edit still lands."""
    fake_slack.error_next("chat.update", error="internal_error")
    streamer = _streamer(fake_slack)
    await streamer.start()
    streamer.show("partial")
    await asyncio.sleep(0.1)
    await streamer.finish("complete answer")
    assert [m.text for m in fake_slack.messages_in("C1", "1.0")] == ["complete answer"]


async def test_early_edit_failures_do_not_use_up_final_attempts(fake_slack: FakeSlack) -> None:
    """Interim edit errors earlier in the stream leave the final edit its full set of attempts."""
    streamer = _streamer(fake_slack, interval=0.01)
    await streamer.start()
    fake_slack.error_next("chat.update", error="internal_error", times=4)
    await _show_parts(streamer, fake_slack, 5)
    fake_slack.error_next("chat.update", error="internal_error", times=1)
    await streamer.finish("the whole answer")
    assert [m.text for m in fake_slack.messages_in("C1", "1.0")] == ["the whole answer"]


async def test_answer_ending_at_a_cut_posts_no_empty_message(fake_slack: FakeSlack) -> None:
    """An answer that ends exactly at a split boundary does not post an empty continuation."""
    streamer = _streamer(fake_slack)
    await streamer.start()
    await streamer.finish("a" * (MESSAGE_LIMIT - 1) + "\n\n")
    texts = [m.text for m in fake_slack.messages_in("C1", "1.0")]
    assert texts == ["a" * (MESSAGE_LIMIT - 1)]


async def test_spent_workspace_budget_holds_interim_edits_not_the_final(fake_slack: FakeSlack) -> None:
    """With the workspace's edit budget spent, no interim edit goes out, and the final one goes at once."""
    streamer = _streamer(fake_slack, gate=FixedGate(hold=60.0))
    await streamer.start()
    streamer.show("partial text")
    await asyncio.sleep(0.2)
    assert fake_slack.calls_to("chat.update") == []
    await asyncio.wait_for(streamer.finish("final text"), timeout=5)
    assert [c.body["text"] for c in fake_slack.calls_to("chat.update")] == ["final text"]


async def test_final_edit_gets_its_own_attempts(fake_slack: FakeSlack) -> None:
    """Even right after a run of failed interim edits, the final edit still gets several tries."""
    streamer = _streamer(fake_slack, interval=0.01)
    await streamer.start()
    fake_slack.error_next("chat.update", error="internal_error", times=5)
    await _show_parts(streamer, fake_slack, 4)
    await streamer.finish("the whole answer")
    assert [m.text for m in fake_slack.messages_in("C1", "1.0")] == ["the whole answer"]


async def test_rate_limited_edit_is_shared_with_the_workspace(fake_slack: FakeSlack) -> None:
    """A 429 on chat.update is reported to the edit gate, so other replies hold off too."""
    gate = FixedGate()
    streamer = _streamer(fake_slack, gate=gate)
    await streamer.start()
    fake_slack.fail_next("chat.update", status=429, retry_after=1)
    streamer.show("partial")
    await fake_slack.wait_for(lambda: bool(fake_slack.calls_to("chat.update")))
    await streamer.finish("done")
    assert gate.pauses == [1.0]
    assert [m.text for m in fake_slack.messages_in("C1", "1.0")] == ["done"]
