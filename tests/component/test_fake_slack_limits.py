"""The fake Slack's opt-in rate limits, over real HTTP with slack_sdk's AsyncWebClient.

The limits run on an injected clock (seconds), so no test sleeps: ``clock.now`` is moved by hand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.constants import BOT_TOKEN
from tests.fakes.slack_api import WORKSPACE_CALLS_PER_WINDOW, FakeSlack

THREAD = "1699999999.000001"


class ManualClock:
    """A clock that stands still until a test moves it (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def limited(clock: ManualClock) -> AsyncIterator[FakeSlack]:
    """A FakeSlack that enforces Slack's limits on ``clock``."""
    async with FakeSlack(bot_token=BOT_TOKEN, enforce_limits=True, clock=clock) as fake:
        yield fake


@pytest.fixture
def client(limited: FakeSlack) -> AsyncWebClient:
    """A real client of ``limited`` (a fresh HTTP session per call, as slack_sdk does by default)."""
    return AsyncWebClient(token=BOT_TOKEN, base_url=limited.api_url, timeout=5)


async def post(client: AsyncWebClient, channel: str, text: str = "hi") -> str:
    response = await client.chat_postMessage(channel=channel, thread_ts=THREAD, text=text)
    return str(response["ts"])


async def answered(client: AsyncWebClient, method: str, **params: Any) -> None:
    """Call ``method`` expecting HTTP 200, whether Slack says ok or names an error (no such message)."""
    status = 200
    try:
        await client.api_call(method, json=params)
    except SlackApiError as exc:
        status = exc.response.status_code
    assert status == 200


async def refused(client: AsyncWebClient, method: str, **params: Any) -> tuple[int, str, dict[str, Any]]:
    """Call ``method`` expecting a refusal: (HTTP status, Retry-After header, JSON body)."""
    with pytest.raises(SlackApiError) as caught:
        await client.api_call(method, json=params)
    response = caught.value.response
    return response.status_code, str(response.headers.get("Retry-After")), dict(response.data)


async def test_post_message_allows_a_burst_of_three_per_channel(
    limited: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    """Three posts at once pass; the fourth gets 429 ratelimited, Retry-After 1, and posts nothing."""
    for _ in range(3):
        await post(client, "C1")
    status, retry_after, body = await refused(client, "chat.postMessage", channel="C1", text="fourth")
    assert (status, retry_after, body) == (429, "1", {"ok": False, "error": "ratelimited"})
    assert [m.text for m in limited.messages_in("C1")] == ["hi", "hi", "hi"]
    assert limited.rate_limited == {"chat.postMessage": 1}
    assert [c.body["text"] for c in limited.rate_limited_calls] == ["fourth"]
    await post(client, "C2")  # another channel has a bucket of its own


async def test_post_message_refills_one_per_second(
    limited: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    """After the burst, one post per second; a refused post does not use up the refill."""
    for _ in range(3):
        await post(client, "C1")
    clock.now += 0.5
    assert (await refused(client, "chat.postMessage", channel="C1", text="x"))[:2] == (429, "1")
    clock.now += 0.5
    await post(client, "C1")
    assert (await refused(client, "chat.postMessage", channel="C1", text="x"))[:2] == (429, "1")
    clock.now += 10
    for _ in range(3):  # the bucket holds at most three
        await post(client, "C1")
    assert (await refused(client, "chat.postMessage", channel="C1", text="x"))[0] == 429
    assert limited.rate_limited["chat.postMessage"] == 3


async def test_update_allows_fifty_in_any_sliding_minute(
    limited: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    """50 edits per workspace in any 60 s; Retry-After counts whole seconds until the oldest ages out."""
    ts = await post(client, "C1", "v0")
    for index in range(10):
        await client.chat_update(channel="C1", ts=ts, text=f"a{index}")
    clock.now += 30
    for index in range(40):
        await client.chat_update(channel="C1", ts=ts, text=f"b{index}")
    status, retry_after, _ = await refused(client, "chat.update", channel="C1", ts=ts, text="late")
    assert (status, retry_after) == (429, "30")
    clock.now += 29.5
    assert (await refused(client, "chat.update", channel="C1", ts=ts, text="late"))[:2] == (429, "1")
    assert limited.messages[ts].text == "b39"  # refused edits changed nothing
    clock.now += 0.5  # the first ten are now exactly 60 s old: out of the window
    for index in range(10):
        await client.chat_update(channel="C1", ts=ts, text=f"c{index}")
    assert (await refused(client, "chat.update", channel="C1", ts=ts, text="late"))[:2] == (429, "30")
    assert limited.messages[ts].text == "c9"
    assert limited.rate_limited == {"chat.update": 3}


@pytest.mark.parametrize(
    "method", ["chat.delete", "chat.startStream", "chat.stopStream", "chat.appendStream"]
)
async def test_workspace_limits_of_other_methods(
    limited: FakeSlack, client: AsyncWebClient, clock: ManualClock, method: str
) -> None:
    """Each method has its own per-minute budget; other methods are not held back by it."""
    limit = WORKSPACE_CALLS_PER_WINDOW[method]
    for _ in range(limit):
        await answered(client, method, channel="C1", ts="1.1")
    status, retry_after, body = await refused(client, method, channel="C1", ts="1.1")
    assert (status, retry_after, body["error"]) == (429, "60", "ratelimited")
    assert limited.rate_limited == {method: 1}
    await post(client, "C1")
    clock.now += 60
    await answered(client, method, channel="C1", ts="1.1")
    assert limited.rate_limited == {method: 1}


async def test_delete_refused_leaves_the_message(
    limited: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    """A refused chat.delete does not delete."""
    ts = await post(client, "C1")
    for _ in range(WORKSPACE_CALLS_PER_WINDOW["chat.delete"]):
        await answered(client, "chat.delete", channel="C9", ts="1.1")
    await refused(client, "chat.delete", channel="C1", ts=ts)
    assert not limited.messages[ts].deleted


async def test_limits_are_off_by_default(fake_slack: FakeSlack) -> None:
    """Without enforce_limits nothing is refused, however fast the calls come."""
    web = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url, timeout=5)
    ts = await post(web, "C1")
    for _ in range(10):
        await post(web, "C1")
    for index in range(60):
        await web.chat_update(channel="C1", ts=ts, text=str(index))
    assert fake_slack.limits is None
    assert not fake_slack.rate_limited
    assert len(fake_slack.messages_in("C1")) == 11


async def test_enforce_slack_limits_switches_them_on(fake_slack: FakeSlack, clock: ManualClock) -> None:
    """``enforce_slack_limits`` on a running fake: fresh budgets on the given clock."""
    web = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url, timeout=5)
    for _ in range(5):
        await post(web, "C1")
    fake_slack.enforce_slack_limits(clock)
    for _ in range(3):
        await post(web, "C1")
    assert (await refused(web, "chat.postMessage", channel="C1", text="x"))[:2] == (429, "1")
    assert fake_slack.rate_limited == {"chat.postMessage": 1}


async def test_unlimited_methods_and_auth_come_first(limited: FakeSlack, client: AsyncWebClient) -> None:
    """Methods without a limit are never refused; a call with a bad token is not counted."""
    for _ in range(100):
        await client.auth_test()
    bad = AsyncWebClient(token="xoxb-wrong", base_url=limited.api_url, timeout=5)
    for _ in range(5):
        with pytest.raises(SlackApiError) as caught:
            await bad.chat_postMessage(channel="C1", text="x")
        assert caught.value.response["error"] == "invalid_auth"
    for _ in range(3):
        await post(client, "C1")
    assert not limited.rate_limited
