"""Three replicas, one Redis: every message answered exactly once, in thread order, within quotas.

Three real bot processes (``python -m bot serve --http``) share one real redis-server, the fake Slack
(enforcing Slack's rate limits) and a fake model that answers each question with an answer of its own.
A seeded plan of signed events (mentions starting threads in several channels, follow-ups in them, from
several users) goes to the replicas at random; a fifth of the events Slack also redelivers, as a retry,
to another replica, some at the same time as the first delivery and some while its answer streams. One
replica is killed (SIGKILL) while it is generating replies and restarted; meanwhile events go to the
live ones. One user has a small spend limit. At the end every message has exactly one final reply, the
model saw (and Redis kept) each thread's turns in message order, and the limited user's spend stayed
within the limit. Marked ``slow``: it starts four processes and waits out a work lease.

A second test covers a bug the first one ran into at times: a Slack retry arriving after its message
was answered put the message back in its thread's line (fixed: the claim script says the work is done,
and the message leaves the line again).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from bot.billing.ledger import QuotaLedger
from bot.billing.money import usd_to_pico
from bot.core.domain import ThreadKey
from bot.store.connection import open_store
from handlers.reply.streamer import PLACEHOLDER, TYPING_CURSOR
from tests.fakes.constants import BOT_USER_ID, TEAM_ID
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.replicas import (
    AnsweringModel,
    ReplicaPool,
    newest_text,
    post_event,
    replica_environment,
    replies_in_progress,
    thread_history,
    thread_line,
    work_left,
    work_marks_left,
)
from tests.fakes.signing import event_body
from tests.fakes.slack_api import FakeSlack
from tests.rendered import slack_text
from tests.scenario.harness import bot_environment, mention, running_bot

pytestmark = pytest.mark.slow

SEED = 20_251_103
REPLICAS = 3
CHANNELS = ("C0REPA", "C0REPB", "C0REPC", "C0REPD")
THREADS_PER_CHANNEL = 3
MAX_FOLLOW_UPS = 3
USERS = ("U0ALICE1", "U0BOB001", "U0CAROL1", "U0DAVE01")
LIMITED_USER = "U0LIMIT1"
LIMITED_TURNS = 6
LIMIT_USD = Decimal("0.01")
# The limited user's answers report 5,000 prompt tokens ($0.0039 each), so at most three fit in $0.01
# (the third is charged only what it reserved) and at least three of six are refused.
LIMITED_PROMPT_TOKENS = 5000
REDELIVER_SHARE = 0.2
KILL_FROM_SHARE = 0.35  # the kill happens at the first send from this share of the plan on
SETTINGS = {
    "WORK_LEASE_SECONDS": "2",  # the killed replica's replies are taken over after 2 s
    "STREAM_EDIT_INTERVAL": "0.3",
    "SHUTDOWN_DRAIN_SECONDS": "1",
    "THREAD_CATCHUP_MESSAGES": "0",  # threads here start with their mention (catch-up: test_catchup.py)
    "LOG_LEVEL": "INFO",  # ``work_resumed`` lines show the takeovers
}
ACK_TRIES = 3  # Slack's first delivery and its retries of an event that got no answer
RESTART_SECONDS = 30.0
DONE_SECONDS = 45.0
ANSWER_TAIL = "three replicas share one work stream, one line per thread and one spend ledger."


@dataclass(frozen=True, slots=True)
class Turn:
    """One message a person writes: the ``n``-th of the run, in thread ``thread_ts`` of ``channel``."""

    n: int
    user: str
    channel: str
    thread_ts: str
    ts: str

    @property
    def marker(self) -> str:
        return f"q{self.n:03d}"

    @property
    def question(self) -> str:
        """What the model reads as the message (the mention stripped)."""
        return f"{self.marker} from {self.user}: what do the replicas share?"

    @property
    def thread(self) -> ThreadKey:
        return ThreadKey(TEAM_ID, self.channel, self.thread_ts)

    def body(self) -> bytes:
        """The signed request's body: an ``app_mention`` starting the thread, else a thread ``message``."""
        event: dict[str, Any] = {
            "user": self.user,
            "ts": self.ts,
            "channel": self.channel,
            "event_ts": self.ts,
        }
        if self.ts == self.thread_ts:
            event.update(type="app_mention", text=f"<@{BOT_USER_ID}> {self.question}")
        else:
            event.update(type="message", text=self.question, thread_ts=self.thread_ts, channel_type="channel")
        return event_body(event, f"EvRep{self.n:04d}")


@dataclass(frozen=True, slots=True)
class Send:
    """How Slack delivers one turn: to which replica, after what pause, and whether it retries it."""

    turn: Turn
    replica: int  # the load balancer's pick (the next live replica when that one is down)
    gap: float  # seconds after the previous turn was acknowledged
    redelivery: str  # "", "concurrent" (with the first delivery) or "later" (while the answer streams)
    later: float  # seconds after the first delivery's ack, for "later"


def answer_for(marker: str) -> str:
    """The model's answer to the question marked ``marker``."""
    return f"Answer to {marker}: {ANSWER_TAIL}"


def model_reply(question: str) -> Reply:
    """What the fake model streams for ``question``: its own answer, about 1.5 s long."""
    found = re.search(r"\bq\d{3}\b", question)
    text = answer_for(found.group(0)) if found else "An unexpected question."
    prompt = LIMITED_PROMPT_TOKENS if LIMITED_USER in question else None
    return Reply(text=text, chunk_chars=8, delay=0.1, prompt_tokens=prompt)


def make_turns(rng: random.Random) -> list[Turn]:
    """Threads in every channel, each a mention and up to three follow-ups, interleaved at random."""
    threads = [channel for channel in CHANNELS for _ in range(THREADS_PER_CHANNEL)]
    order = [i for i in range(len(threads)) for _ in range(1 + rng.randint(0, MAX_FOLLOW_UPS))]
    rng.shuffle(order)
    limited = set(rng.sample(range(len(order)), LIMITED_TURNS))
    parents: dict[int, str] = {}
    turns: list[Turn] = []
    for n, thread in enumerate(order):
        ts = f"1800300000.{n + 1:06d}"
        user = LIMITED_USER if n in limited else rng.choice(USERS)
        turns.append(Turn(n, user, threads[thread], parents.setdefault(thread, ts), ts))
    return turns


def make_plan(rng: random.Random) -> list[Send]:
    """The run's deliveries, in writing order; a fifth of the turns are redelivered."""
    turns = make_turns(rng)
    again = set(rng.sample(range(len(turns)), round(REDELIVER_SHARE * len(turns))))
    return [
        Send(
            turn,
            rng.randrange(REPLICAS),
            rng.uniform(0.05, 0.25),
            rng.choice(("concurrent", "later")) if turn.n in again else "",
            rng.uniform(0.2, 2.0),
        )
        for turn in turns
    ]


@dataclass
class Run:
    """The replicas, a client for the events and one for Redis, and what happened."""

    pool: ReplicaPool
    http: httpx.AsyncClient
    store: redis.Redis
    acks: list[tuple[int, int | None, int]] = field(default_factory=list)  # (turn, retry_num, status)
    background: list[asyncio.Task[None]] = field(default_factory=list)
    caught: int = 0  # replies in progress on the killed replica when it died

    def live_slot(self, preferred: int, avoid: int | None = None) -> int:
        slot = self.pool.pick(preferred, avoid)
        assert slot is not None, "no live replica to send to"
        return slot


async def deliver(run: Run, turn: Turn, body: bytes, slot: int, retry_num: int | None) -> None:
    """POST ``body`` to ``slot``; with no answer (its replica was killed) or a 5xx, Slack retries it on
    another live replica (``X-Slack-Retry-Num`` one higher)."""
    for _ in range(ACK_TRIES):
        status = await post_event(run.http, run.pool.slots[slot].url, body, retry_num)
        run.acks.append((turn.n, retry_num, status))
        if status == 200:
            return
        await asyncio.sleep(0.5)
        slot, retry_num = run.live_slot(slot + 1), (retry_num or 0) + 1
    raise AssertionError(f"{turn.marker} was never acknowledged: {run.acks[-ACK_TRIES:]}")


async def redeliver_later(run: Run, send: Send, body: bytes, first: int) -> None:
    """Slack's retry of an event it saw acknowledged too late, to another replica, after a while."""
    await asyncio.sleep(send.later)
    await deliver(run, send.turn, body, run.live_slot(first + 1, avoid=first), 1)


async def send_turn(run: Run, send: Send) -> None:
    """Deliver one turn (and its concurrent retry); a later retry goes on in the background."""
    body = send.turn.body()
    first = run.live_slot(send.replica)
    if send.redelivery == "concurrent":
        other = run.live_slot(first + 1, avoid=first)
        await asyncio.gather(
            deliver(run, send.turn, body, first, None), deliver(run, send.turn, body, other, 1)
        )
    else:
        await deliver(run, send.turn, body, first, None)
    if send.redelivery == "later":
        run.background.append(asyncio.create_task(redeliver_later(run, send, body, first)))


async def kill_if_busy(run: Run) -> None:
    """SIGKILL the live replica generating the most replies, if one is; ``caught`` counts the replies
    it still held when it died (read after the death, so nothing changes them any more)."""
    busy = await replies_in_progress(run.store)
    held = {slot: busy[run.pool.slots[slot].process.pid] for slot in run.pool.live}
    slot = max(held, key=lambda s: held[s])
    if held[slot] == 0:
        return
    pid = run.pool.slots[slot].process.pid
    await run.pool.kill(slot)
    run.caught = (await replies_in_progress(run.store))[pid]


async def drive(run: Run, plan: list[Send]) -> None:
    """Send the plan in writing order (each turn after the previous one's ack, as people write), with
    a kill (and restart) from ``KILL_FROM_SHARE`` on, retried until it catches replies in progress."""
    kill_from = int(len(plan) * KILL_FROM_SHARE)
    for index, send in enumerate(plan):
        if index >= kill_from and not run.caught and all(t.done() for t in run.pool.restarts):
            await kill_if_busy(run)
        await asyncio.sleep(send.gap)
        await send_turn(run, send)
    await asyncio.gather(*run.background)
    await run.pool.restarted(RESTART_SECONDS)


def by_thread(turns: list[Turn]) -> dict[ThreadKey, list[Turn]]:
    """Each thread's turns, in message order."""
    threads: dict[ThreadKey, list[Turn]] = defaultdict(list)
    for turn in turns:
        threads[turn.thread].append(turn)
    return threads


def thread_texts(slack: FakeSlack, thread: ThreadKey) -> list[str]:
    """The fallback text of every message the bot shows in ``thread`` (deleted ones left out)."""
    return [m.text for m in slack.messages_in(thread.channel, thread.thread_ts)]


def is_final(text: str) -> bool:
    return text != PLACEHOLDER and not text.endswith(TYPING_CURSOR)


async def not_done(run: Run, slack: FakeSlack, plan: list[Send]) -> str:
    """What is not done yet ("" once done): work left in the stream, a thread showing fewer final replies
    than it has turns, or an answered message still in its thread's line."""
    if left := await work_left(run.store):
        return f"{left} work entries left"
    for thread, its_turns in by_thread([send.turn for send in plan]).items():
        texts = thread_texts(slack, thread)
        if len(texts) < len(its_turns) or not all(is_final(text) for text in texts):
            return f"{thread} shows {texts} for {len(its_turns)} turns"
        if stray := set(await thread_line(run.store, thread)):
            return f"{thread} still lines up {sorted(stray)}"
    return ""


async def wait_done(run: Run, slack: FakeSlack, plan: list[Send]) -> None:
    """Poll ``not_done`` until it is empty; AssertionError (with the replicas' logs) after
    ``DONE_SECONDS``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DONE_SECONDS
    while missing := await not_done(run, slack, plan):
        if loop.time() > deadline:
            raise AssertionError(f"not done after {DONE_SECONDS}s: {missing}\n{run.pool.describe()}")
        await asyncio.sleep(0.1)


def check_thread(texts: list[str], its_turns: list[Turn]) -> set[int]:
    """One thread shows, for each of its turns, exactly one final reply: the turn's own answer, or (only
    for the limited user) a refusal; nothing else. Returns the turns answered by the model."""
    assert all(is_final(text) for text in texts), texts
    answered: set[int] = set()
    for turn in its_turns:
        mine = [text for text in texts if f"Answer to {turn.marker}:" in text]
        assert len(mine) <= 1, (turn, texts)
        if mine:
            answered.add(turn.n)
            expected = slack_text(answer_for(turn.marker))
            # The reply that passes 80 % of the limited user's limit ends with a notice.
            assert mine[0] == expected or (turn.user == LIMITED_USER and mine[0].startswith(expected))
        else:
            assert turn.user == LIMITED_USER, f"{turn} has no answer: {texts}"
    refusals = sum(text.startswith(":warning:") and "spend limit" in text for text in texts)
    assert refusals == len(its_turns) - len(answered), texts
    assert len(texts) == len(its_turns), texts
    return answered


def check_answers(slack: FakeSlack, turns: list[Turn]) -> set[int]:
    """Every turn answered exactly once (``check_thread``), no message left outside the threads, and one
    message posted per turn: a resumed reply goes on in the placeholder its dead attempt posted."""
    answered: set[int] = set()
    for thread, its_turns in by_thread(turns).items():
        answered |= check_thread(thread_texts(slack, thread), its_turns)
    assert len([m for m in slack.messages.values() if not m.deleted]) == len(turns)
    refused_calls = {id(call) for call in slack.rate_limited_calls}
    posts = [call for call in slack.calls_to("chat.postMessage") if id(call) not in refused_calls]
    assert len(posts) == len(turns)
    return answered


def earlier_turns(turn: Turn, turns: list[Turn], answered: set[int]) -> list[Turn]:
    """The turns before ``turn`` in its thread that have an answer (so they are in its history)."""
    return [t for t in turns if t.thread == turn.thread and t.ts < turn.ts and t.n in answered]


def check_prompts(model: AnsweringModel, turns: list[Turn], answered: set[int]) -> None:
    """Each request to the model holds its thread's earlier answered turns, in message order, then the
    question; every answered turn was asked (a killed attempt's resumption asks again, the same)."""
    by_marker = {turn.marker: turn for turn in turns}
    asked: set[int] = set()
    for call in model.requests:
        found = re.search(r"\bq\d{3}\b", newest_text(call))
        assert found is not None, call.messages
        turn = by_marker[found.group(0)]
        expected: list[str] = []
        for earlier in earlier_turns(turn, turns, answered):
            expected += [earlier.question, answer_for(earlier.marker)]
        contents = [m["content"] for m in call.messages if m["role"] != "system"]
        assert contents == [*expected, turn.question], turn
        asked.add(turn.n)
    assert answered <= asked


async def check_histories(store: redis.Redis, turns: list[Turn], answered: set[int]) -> None:
    """Each thread's memory in Redis: its answered turns, question then answer, in message order."""
    for thread, its_turns in by_thread(turns).items():
        expected: list[tuple[str, str, str]] = []
        for turn in its_turns:
            if turn.n in answered:
                expected += [
                    ("user", turn.question, turn.ts),
                    ("assistant", answer_for(turn.marker), turn.ts),
                ]
        stored = [(e["role"], e["text"], e["turn"]) for e in await thread_history(store, thread)]
        assert stored == expected, thread


async def check_work_gone(store: redis.Redis, plan: list[Send]) -> None:
    """Nothing of the work is left: no entry's state or pending mark, and no message in a thread's line."""
    assert await work_marks_left(store) == []
    for thread in by_thread([send.turn for send in plan]):
        assert await thread_line(store, thread) == [], thread


async def check_quota(store: redis.Redis, turns: list[Turn], answered: set[int]) -> None:
    """The limited user got some answers and some refusals, never spent more than the limit, and
    nothing is held any more (every reservation, the killed replica's too, was settled or released)."""
    ledger = QuotaLedger(store, usd_to_pico(Decimal("1")), "month")
    status = await ledger.status(LIMITED_USER)
    theirs = {turn.n for turn in turns if turn.user == LIMITED_USER}
    assert status.limit_pico == usd_to_pico(LIMIT_USD)
    assert 0 < status.spent_pico <= status.limit_pico
    assert status.reserved_pico == 0
    assert theirs & answered, "the limited user got no answer"
    assert theirs - answered, "the limited user was never refused"


@asynccontextmanager
async def started(
    slack: FakeSlack, model: AnsweringModel, redis_url: str, workdir: Path
) -> AsyncIterator[Run]:
    """The limit set, three healthy replicas, the clients; every process stopped on exit."""
    async with AsyncExitStack() as stack:
        store = open_store(redis_url)
        stack.push_async_callback(store.aclose)
        ledger = QuotaLedger(store, usd_to_pico(Decimal("1")), "month")
        await ledger.set_user_limit(LIMITED_USER, usd_to_pico(LIMIT_USD))
        http = await stack.enter_async_context(httpx.AsyncClient())
        pool = ReplicaPool(replica_environment(slack, model, redis_url, **SETTINGS), workdir, stack)
        await pool.start(REPLICAS)
        yield Run(pool, http, store)


async def test_three_replicas_answer_every_message_once_in_order_within_quota(
    fake_slack: FakeSlack, redis_url: str, tmp_path: Path
) -> None:
    """Random delivery, retries to other replicas, a replica killed and restarted mid-run: each message
    is answered exactly once, histories keep message order, the small quota holds."""
    plan = make_plan(random.Random(SEED))
    turns = [send.turn for send in plan]
    fake_slack.enforce_slack_limits()
    async with AnsweringModel(model_reply) as model, started(fake_slack, model, redis_url, tmp_path) as run:
        await drive(run, plan)
        assert all(status == 200 for *_, status in run.acks if status != 0), run.acks
        await wait_done(run, fake_slack, plan)
        answered = check_answers(fake_slack, turns)
        check_prompts(model, turns, answered)
        await check_histories(run.store, turns, answered)
        await check_work_gone(run.store, plan)
        await check_quota(run.store, turns, answered)
        assert run.caught >= 1, "the kill caught no reply in progress"
        assert run.pool.log_events()["work_resumed"] >= run.caught, run.pool.describe()


async def until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    """Poll ``check`` every 20 ms until true; AssertionError naming ``what`` after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"{what} still false after {seconds}s")
        await asyncio.sleep(0.02)


async def test_late_retry_leaves_no_answered_message_in_the_thread_line(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """Slack retries an event to another replica after its message was answered: nothing is answered
    again, and the message does not go back into its thread's line (two in-process replicas)."""
    bot_environment(monkeypatch, fake_slack, fake_model, redis_url)
    event = mention("answer me once")
    thread = ThreadKey(TEAM_ID, str(event["channel"]), str(event["ts"]))
    store = open_store(redis_url)

    async def answered() -> bool:
        final = [m for m in fake_slack.messages.values() if is_final(m.text)]
        return bool(final) and not await work_left(store) and not await thread_line(store, thread)

    try:
        async with running_bot() as first, running_bot() as second:
            await first.send_event(event, event_id="EvLateRetry")
            await until(answered, 10, "answered, its work done and its line empty")
            await second.send_event(event, event_id="EvLateRetry", retry_num=1)
            left, line = await work_left(store), await thread_line(store, thread)
    finally:
        await store.aclose()
    assert (len(fake_slack.calls_to("chat.postMessage")), len(fake_model.requests), left) == (1, 1, 0)
    assert line == []
