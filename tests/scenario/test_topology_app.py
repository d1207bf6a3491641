"""The real app on a real Redis Cluster (REDIS_URL=redis+cluster://...): signed events in, answers out.

The cluster is the session's three masters (``tests/conftest.py``). Marked ``slow``: it starts the cluster
if no earlier test did.
"""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from bot.core.domain import ThreadKey
from bot.store.connection import open_store
from bot.store.history import history_key
from bot.work.queue import stream_key
from tests.fakes.constants import TEAM_ID
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.redis_cluster import RedisClusterServers
from tests.fakes.slack_api import FakeSlack
from tests.scenario.harness import bot_environment, mention, message, running_bot

pytestmark = pytest.mark.slow


def _answered(slack: FakeSlack, thread_ts: str, needle: str) -> bool:
    return any(needle in m.text and not m.shown.endswith("▍") for m in slack.messages_in("C0TEST", thread_ts))


async def test_mention_and_follow_up_on_a_cluster(
    monkeypatch: pytest.MonkeyPatch,
    fake_slack: FakeSlack,
    fake_model: FakeModel,
    redis_cluster: RedisClusterServers,
) -> None:
    """A mention is answered, then a follow-up in its thread with the first turn in the prompt; health is
    ok; the work stream is the workspace's own and empty once both are delivered."""
    redis_cluster.flush()
    bot_environment(monkeypatch, fake_slack, fake_model, redis_cluster.url)
    fake_model.script(Reply(text="The capital is Paris."), Reply(text="About 2 million."))
    first = mention("capital of France?")
    async with running_bot() as bot:
        assert (await bot.http.get(f"{bot.url}/healthz")).json() == {"status": "ok"}
        await bot.send_event(first)
        await fake_slack.wait_for(lambda: _answered(fake_slack, first["ts"], "Paris"))
        await bot.send_event(message("population?", thread_ts=first["ts"]))
        await fake_slack.wait_for(lambda: _answered(fake_slack, first["ts"], "2 million"))
    second_turn = [m["content"] for m in fake_model.requests[1].messages if m["role"] != "system"]
    assert second_turn == ["capital of France?", "The capital is Paris.", "population?"]
    store = open_store(redis_cluster.url)
    try:
        assert await store.xlen(stream_key(TEAM_ID)) == 0
        assert await store.llen(history_key(ThreadKey(TEAM_ID, "C0TEST", first["ts"]))) == 4
    finally:
        await store.aclose()
    # The work stream and the thread live in slots of their own, spread over the cluster.
    assert key_slot(stream_key(TEAM_ID).encode()) != key_slot(stream_key("T0OTHER").encode())
