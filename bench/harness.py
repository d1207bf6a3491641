"""What one run needs, started and stopped together: fresh fakes, a flushed Redis, the bot replicas."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.options import CHARS_PER_TOKEN, Options, RunSpec
from bench.process import Replica, bot_environment, replica
from handlers.reply.parts import render_one
from tests.fakes.constants import BOT_TOKEN, MODEL_API_KEY
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.redis_server import RedisServer
from tests.fakes.slack_api import FakeSlack

_VOCABULARY = (
    "the model reads your question and answers with care about images charts code tables "
    "tokens latency threads channels messages context memory quota streaming edits"
)


@dataclass(slots=True)
class RunEnv:
    """One run's world: the fake Slack (enforcing Slack's limits), the fake model, Redis, the replicas."""

    options: Options
    spec: RunSpec
    run_no: int
    slack: FakeSlack
    model: FakeModel
    redis: RedisServer
    replicas: list[Replica]
    expected_text: str  # each reply's final Slack fallback text: render_one(answer).text
    answer: str = ""  # each reply's Markdown: what a native stream holds once it is stopped


def make_answer(chars: int) -> str:
    """A deterministic Markdown answer of exactly ``chars`` characters (paragraphs, bold, a list)."""
    words = _VOCABULARY.split()
    parts: list[str] = []
    length = 0
    for index in itertools.count():
        word = words[(index * 7) % len(words)]
        if index % 23 == 5:
            word = f"**{word}**"
        sep = " "
        if index % 61 == 60:
            sep = "\n\n"
        elif index % 61 in (40, 47):
            sep = "\n- "
        parts.append(word + sep)
        length += len(word) + len(sep)
        if length >= chars:
            break
    text = "".join(parts)[:chars]
    return text[:-1] + "." if text[-1].isspace() else text


@asynccontextmanager
async def started_run(
    options: Options, spec: RunSpec, run_no: int, redis: RedisServer
) -> AsyncIterator[RunEnv]:
    """Redis flushed (FLUSHALL, stats reset), fresh fakes, ``spec.replicas`` healthy bots; all stopped
    on exit.

    Raises RuntimeError when a replica does not start.
    """
    redis.flush()
    async with AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="glmbot-bench-")))
        slack = await stack.enter_async_context(FakeSlack(bot_token=BOT_TOKEN, enforce_limits=True))
        model = await stack.enter_async_context(FakeModel(api_key=MODEL_API_KEY))
        answer = make_answer(options.answer_chars)
        model.default_reply = Reply(
            text=answer, chunk_chars=CHARS_PER_TOKEN, delay=1.0 / options.tokens_per_second
        )
        env = {**bot_environment(slack, model, redis, options), "SLACK_STREAMING": spec.streaming}
        replicas = [await stack.enter_async_context(replica(i, env, workdir)) for i in range(spec.replicas)]
        yield RunEnv(options, spec, run_no, slack, model, redis, replicas, _final_text(answer), answer)


def _final_text(answer: str) -> str:
    """The fallback ``text`` of the one message ``answer`` is delivered in."""
    message = render_one(answer)
    if message is None:
        raise ValueError("the benchmark's answer must fit one Slack message")
    return message.text
