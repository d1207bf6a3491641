"""What an operator's Prometheus scrapes after real replies through signed Slack events: exact counts of
replies, tokens, spend and reply times, the model's retries and errors, the process's own metrics; and the
reply's one ``reply_finished`` log line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from bot.billing.money import PICO_PER_USD, usd_text
from tests.fakes.constants import TEAM_ID
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.slack_api import FakeSlack
from tests.scenario.harness import BotUnderTest, bot_environment, message, running_bot

# The contract's price of glm-4.5v, in picodollars per token.
INPUT_PICO, OUTPUT_PICO = 780_000, 2_340_000
ANSWER = "Seven times six is forty-two, said the model."

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def named(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of ``name``, by their labels."""
    return {labels: found for (sample, labels), found in samples.items() if sample == name}


async def scrape_until(bot: BotUnderTest, ready: Callable[[Samples], bool]) -> Samples:
    """Scrape /metrics until ``ready`` holds (a reply is counted a moment after its final edit)."""
    for _ in range(200):
        response = await bot.http.get(f"{bot.url}/metrics")
        assert response.status_code == 200
        samples = parse(response.text)
        if ready(samples):
            return samples
        await asyncio.sleep(0.05)
    raise AssertionError(f"/metrics never got there:\n{response.text}")


def replies_counted(samples: Samples) -> bool:
    return bool(named(samples, "glmbot_replies_total"))


async def test_a_reply_is_scraped_exactly(
    bot: BotUnderTest, fake_model: FakeModel, fake_slack: FakeSlack
) -> None:
    """One answered DM: one ok reply, its reported tokens, its cost in dollars, one reply time and one
    first-token time, no model error or retry; the process's memory, CPU, fds and GC are there too. The
    reply logs one ``reply_finished`` line with its ids and charge, never its text."""
    fake_model.script(Reply(text=ANSWER, prompt_tokens=1200, completion_tokens=300))
    event = message("what is six times seven, secretly?", channel="D0DM", channel_type="im")
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await bot.send_event(event, event_id="EvScrape1")
        samples = await scrape_until(bot, replies_counted)
    charged = 1200 * INPUT_PICO + 300 * OUTPUT_PICO
    assert named(samples, "glmbot_replies_total") == {(("outcome", "ok"),): 1.0}
    assert value(samples, "glmbot_model_tokens_total", kind="prompt") == 1200.0
    assert value(samples, "glmbot_model_tokens_total", kind="completion") == 300.0
    assert list(named(samples, "glmbot_spend_usd_total").values()) == [charged / PICO_PER_USD]
    assert value(samples, "glmbot_reply_seconds_count") == 1.0
    assert value(samples, "glmbot_first_token_seconds_count") == 1.0
    assert named(samples, "glmbot_model_errors_total") == {}
    assert named(samples, "glmbot_model_retries_total") == {}
    assert (value(samples, "process_resident_memory_bytes") or 0) > 0
    assert value(samples, "process_cpu_seconds_total") is not None
    assert (value(samples, "process_open_fds") or 0) > 0
    assert value(samples, "python_gc_collections_total", generation="0") is not None
    assert [m.text for m in fake_slack.messages_in("D0DM")] == [ANSWER]

    [line] = [entry for entry in logs if entry["event"] == "reply_finished"]
    assert line["outcome"] == "ok"
    assert (line["input_tokens"], line["output_tokens"]) == (1200, 300)
    assert line["cost_usd"] == usd_text(charged) == "0.001638"
    assert (line["team"], line["channel"], line["thread_ts"], line["user"], line["event_id"]) == (
        TEAM_ID,
        "D0DM",
        event["ts"],
        event["user"],
        "EvScrape1",
    )
    assert line["seconds"] >= 0
    assert "forty-two" not in repr(logs)
    assert "secretly" not in repr(logs)


async def test_a_model_503_then_an_answer_counts_one_retry(bot: BotUnderTest, fake_model: FakeModel) -> None:
    """The model answers 503 once, then answers: one retry (status_503), no error, the reply is ok."""
    fake_model.script(Reply(status=503), Reply(text=ANSWER))
    await bot.send_event(message("retry me", channel="D0DM", channel_type="im"))
    samples = await scrape_until(bot, replies_counted)
    assert named(samples, "glmbot_model_retries_total") == {(("reason", "status_503"),): 1.0}
    assert named(samples, "glmbot_model_errors_total") == {}
    assert named(samples, "glmbot_replies_total") == {(("outcome", "ok"),): 1.0}
    assert len(fake_model.requests) == 2


async def test_a_model_that_always_refuses_the_key_counts_one_error(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """A wrong GLM_API_KEY (401 every time): one rejected error, no retry, the reply counted by its error,
    and its line charges nothing."""
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url, GLM_API_KEY="sk-not-the-right-key")
    with capture_logs() as logs:
        async with running_bot() as bot:
            await bot.send_event(message("anyone there?", channel="D0DM", channel_type="im"))
            samples = await scrape_until(bot, replies_counted)
    assert named(samples, "glmbot_model_errors_total") == {(("kind", "rejected"),): 1.0}
    assert named(samples, "glmbot_model_retries_total") == {}
    assert named(samples, "glmbot_replies_total") == {(("outcome", "ModelRejected"),): 1.0}
    assert named(samples, "glmbot_spend_usd_total") == {}
    assert len(fake_model.requests) == 1
    [line] = [entry for entry in logs if entry["event"] == "reply_finished"]
    assert (line["outcome"], line["input_tokens"], line["output_tokens"], line["cost_usd"]) == (
        "ModelRejected",
        0,
        0,
        "0",
    )


async def test_a_content_filter_stop_counts_its_tokens_and_a_declined_error(
    bot: BotUnderTest, fake_model: FakeModel
) -> None:
    """The model's content filter stopped the answer: its reported tokens are counted (and charged), the
    error kind is ``declined``, the reply's outcome ``ModelDeclined``."""
    fake_model.script(
        Reply(text="Part of it", finish_reason="sensitive", prompt_tokens=100, completion_tokens=3)
    )
    await bot.send_event(message("something touchy", channel="D0DM", channel_type="im"))
    samples = await scrape_until(bot, replies_counted)
    assert named(samples, "glmbot_replies_total") == {(("outcome", "ModelDeclined"),): 1.0}
    assert named(samples, "glmbot_model_errors_total") == {(("kind", "declined"),): 1.0}
    assert value(samples, "glmbot_model_tokens_total", kind="prompt") == 100.0
    assert value(samples, "glmbot_model_tokens_total", kind="completion") == 3.0
    charged = 100 * INPUT_PICO + 3 * OUTPUT_PICO
    assert list(named(samples, "glmbot_spend_usd_total").values()) == [charged / PICO_PER_USD]


async def test_a_message_not_taken_on_still_ends_as_one_reply(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """Redis is down when the message arrives: the user is told, and that is counted and logged once
    (outcome StoreUnavailable) with the message's ids."""
    bot_environment(monkeypatch, fake_slack, fake_model, "redis://127.0.0.1:9/0")
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        async with running_bot() as bot:
            await bot.send_event(message("hello?", channel="D0DM", channel_type="im"), event_id="EvDown1")
            samples = await scrape_until(bot, replies_counted)
    assert named(samples, "glmbot_replies_total") == {(("outcome", "StoreUnavailable"),): 1.0}
    [line] = [entry for entry in logs if entry["event"] == "reply_finished"]
    assert (line["outcome"], line["channel"], line["event_id"], line["cost_usd"]) == (
        "StoreUnavailable",
        "D0DM",
        "EvDown1",
        "0",
    )
