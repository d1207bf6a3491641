"""Spend quotas through the app: reservations, refusals, notices and the /glm-quota command."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.billing.money import usd_to_pico
from bot.billing.periods import period_at
from bot.billing.pricing import cost_pico, price_for
from handlers.reply.streamer import PLACEHOLDER, TYPING_CURSOR
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.slack_api import FakeSlack
from tests.scenario.harness import BotUnderTest, bot_environment, mention, message, running_bot

PRICE = price_for("glm-4.5v")
# Each scripted reply reports 1,000 prompt and 1,000 completion tokens: $0.00312.
USAGE_COST = cost_pico(1000, 1000, PRICE)


def finished(slack: FakeSlack) -> list[str]:
    return [
        m.text
        for m in slack.messages.values()
        if m.text != PLACEHOLDER and not m.shown.endswith(TYPING_CURSOR)
    ]


@pytest.fixture
async def small_quota_bot(monkeypatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str):
    """A bot where everyone may spend $0.01 per month and admin UADMIN1 is configured."""
    bot_environment(
        monkeypatch, fake_slack, fake_model, redis_url, QUOTA_DEFAULT_USD="0.01", ADMIN_USER_IDS="UADMIN1"
    )
    fake_model.default_reply = Reply(text="Answer.", prompt_tokens=1000, completion_tokens=1000)
    async with running_bot() as bot:
        yield bot


async def test_answers_until_the_limit_then_refuses(
    small_quota_bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """Replies shrink max_tokens as money runs out; then a clear refusal and no model call."""
    for turn in range(4):
        await small_quota_bot.send_event(message(f"question {turn}", channel="D0DM", channel_type="im"))
        await fake_slack.wait_for(lambda t=turn: len(finished(fake_slack)) == t + 1)  # type: ignore[misc]
    assert len(fake_model.requests) == 3
    max_tokens = [r.body["max_tokens"] for r in fake_model.requests]
    assert max_tokens[0] == 4096
    assert max_tokens[2] < max_tokens[1] <= 4096
    refusal = finished(fake_slack)[-1]
    assert "spend limit" in refusal
    assert "$0.01" in refusal
    assert "resets" in refusal
    assert usd_to_pico(Decimal("0.01")) >= 3 * USAGE_COST


async def test_concurrent_mentions_stay_within_limit(
    small_quota_bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """Ten simultaneous mentions by one user never spend more than the limit together."""
    events = [mention(f"race {i}", channel=f"C{i}") for i in range(10)]
    await asyncio.gather(*(small_quota_bot.send_event(event) for event in events))
    await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 10, timeout=20)
    served = len(fake_model.requests)
    assert 1 <= served < 10
    assert served * USAGE_COST <= usd_to_pico(Decimal("0.01"))
    assert sum("spend limit" in text for text in finished(fake_slack)) == 10 - served


async def test_eighty_percent_notice_once(
    monkeypatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """The reply that crosses 80 % of the limit carries a one-line notice; later ones do not."""
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url, QUOTA_DEFAULT_USD="0.04")
    # $0.009438 a reply: 70.8 % after three replies, 94.4 % after the fourth.
    fake_model.default_reply = Reply(text="Answer.", prompt_tokens=100, completion_tokens=4000)
    async with running_bot() as bot:
        for turn in range(5):
            await bot.send_event(message(f"q{turn}", channel="D0DM", channel_type="im"))
            await fake_slack.wait_for(lambda t=turn: len(finished(fake_slack)) == t + 1)  # type: ignore[misc]
    notices = ["You have used" in text for text in finished(fake_slack)]
    assert notices == [False, False, False, True, False]
    assert "limit for this month; it resets" in finished(fake_slack)[3]


async def test_quota_command_for_users_and_admins(
    small_quota_bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """Own usage for anyone; show/set/default/reset/top for admins; refusals and usage lines."""
    bot = small_quota_bot
    await bot.send_event(message("spend something", channel="D0DM", channel_type="im", user="U0HUMAN1"))
    await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 1)

    own = await bot.slash_command(fake_slack, "", "U0HUMAN1")
    assert "Your glmbot spend this month" in own
    assert "$0.0031 spent of $0.01" in own
    assert "Held by replies in progress: $0.00." in own
    assert "Replies this month: 1" in own

    assert "Only glmbot admins" in await bot.slash_command(fake_slack, "show <@U0OTHER1|bob>", "U0HUMAN1")
    assert "Only glmbot admins" in await bot.slash_command(fake_slack, "top", "U0HUMAN1")

    shown = await bot.slash_command(fake_slack, "show <@U0HUMAN1|alice>", "UADMIN1")
    assert "<@U0HUMAN1>'s glmbot spend" in shown
    assert "$5.00" in await bot.slash_command(fake_slack, "set <@U0HUMAN1> 5", "UADMIN1")
    assert "of $5.00 (a personal limit)" in await bot.slash_command(fake_slack, "", "U0HUMAN1")
    assert "$2.50" in await bot.slash_command(fake_slack, "default $2.50", "UADMIN1")
    assert "<@U0HUMAN1>: $0.0031" in await bot.slash_command(fake_slack, "top", "UADMIN1")
    assert "reset" in await bot.slash_command(fake_slack, "reset <@U0HUMAN1>", "UADMIN1")
    assert "$0.00 spent of $5.00" in await bot.slash_command(fake_slack, "show U0HUMAN1", "UADMIN1")

    fake_slack.admins.add("U0OWNER1")
    assert "Top spenders" in await bot.slash_command(fake_slack, "top", "U0OWNER1") or "Nobody" in (
        await bot.slash_command(fake_slack, "top", "U0OWNER1")
    )
    bad_commands = ("set <@U0HUMAN1> abc", "set <@U0HUMAN1> -1", "set U0HUMAN1 none", "frobnicate", "set")
    for bad in (*bad_commands, "show nobody"):
        assert "Usage: /glm-quota" in await bot.slash_command(fake_slack, bad, "UADMIN1")


async def test_zero_limit_blocks(
    small_quota_bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """A limit of 0 blocks a user without any model call."""
    await small_quota_bot.slash_command(fake_slack, "set <@U0HUMAN1> 0", "UADMIN1")
    await small_quota_bot.send_event(message("hello", channel="D0DM", channel_type="im"))
    await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 1)
    assert "spend limit" in finished(fake_slack)[0]
    assert fake_model.requests == []


async def test_set_user_default_removes_the_personal_limit(
    small_quota_bot: BotUnderTest, fake_slack: FakeSlack
) -> None:
    """`/glm-quota set @user default` removes a personal limit: the workspace default applies again."""
    bot = small_quota_bot
    assert "$5.00" in await bot.slash_command(fake_slack, "set <@U0HUMAN1|alice> 5", "UADMIN1")
    assert "of $5.00 (a personal limit)" in await bot.slash_command(fake_slack, "", "U0HUMAN1")
    removed = await bot.slash_command(fake_slack, "set <@U0HUMAN1|alice> default", "UADMIN1")
    assert (
        removed == "<@U0HUMAN1>'s personal limit of $5.00 is removed: the default ($0.010 per month) applies."
    )
    assert "spent of $0.010 (the default)" in await bot.slash_command(fake_slack, "", "U0HUMAN1")
    await bot.slash_command(fake_slack, "default 2", "UADMIN1")
    again = await bot.slash_command(fake_slack, "set U0HUMAN1 Default", "UADMIN1")
    assert again == "<@U0HUMAN1> has no personal limit: the workspace default ($2.00 per month) applies."
    assert "Only glmbot admins" in await bot.slash_command(fake_slack, "set U0HUMAN1 default", "U0HUMAN1")


async def test_money_held_by_a_reply_in_progress_is_not_called_spent(
    small_quota_bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """While a reply streams, its worst case is held, not spent: the user's view and a refusal say so;
    once it is settled, the real cost is spent and nothing is held."""
    bot = small_quota_bot
    hold = asyncio.Event()
    fake_model.script(Reply(text="Slow answer.", prompt_tokens=1000, completion_tokens=1000, hold=hold))
    await bot.send_event(message("a slow one", channel="D0DM", channel_type="im"))
    await fake_slack.wait_for(lambda: len(fake_model.requests) == 1)

    own = await bot.slash_command(fake_slack, "", "U0HUMAN1")
    assert "$0.00 spent of $0.010" in own
    # The reply's worst case: its prompt estimate and 4,096 output tokens, about $0.0097.
    held = re.search(r"Held by replies in progress: \$(0\.[0-9]+)\.", own)
    assert held is not None
    assert Decimal("0.0095") < Decimal(held.group(1)) < Decimal("0.01")
    await bot.send_event(message("another", channel="D0DM", channel_type="im"))
    await fake_slack.wait_for(lambda: any("spend limit" in text for text in finished(fake_slack)))
    [refusal] = [text for text in finished(fake_slack) if "spend limit" in text]
    assert f"$0.00 spent and ${held.group(1)} held by replies still in progress, of $0.010" in refusal
    assert "used" not in refusal

    hold.set()
    await fake_slack.wait_for(lambda: "Slow answer." in finished(fake_slack))
    own = await bot.slash_command(fake_slack, "", "U0HUMAN1")
    assert "$0.0031 spent of $0.01" in own
    assert "Held by replies in progress: $0.00." in own
    assert len(fake_model.requests) == 1


async def test_metrics_count_spend_by_period_and_refusals(
    small_quota_bot: BotUnderTest, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """/metrics shows the dollars settled in this period and the replies refused for quota."""
    bot = small_quota_bot
    label = period_at(datetime.now(UTC), "month").label
    await bot.send_event(message("paid", channel="D0DM", channel_type="im"))
    await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 1)
    await bot.slash_command(fake_slack, "set <@U0BROKE1> 0", "UADMIN1")
    await bot.send_event(message("refused", channel="D0DM2", channel_type="im", user="U0BROKE1"))
    await fake_slack.wait_for(lambda: len(finished(fake_slack)) == 2)

    response = await bot.http.get(f"{bot.url}/metrics")
    assert response.status_code == 200
    samples = dict(
        line.rsplit(" ", 1) for line in response.text.splitlines() if line and not line.startswith("#")
    )
    assert float(samples[f'glmbot_spend_usd_total{{period="{label}"}}']) == pytest.approx(USAGE_COST / 10**12)
    assert float(samples["glmbot_quota_refusals_total"]) == 1.0
    assert "# HELP glmbot_spend_usd_total" in response.text
