"""What every round needs, started and stopped together: Redis, the fake Slack and model, the bot."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.options import CHARS_PER_TOKEN, Options
from bench.process import bot_environment, bot_process, bot_redis_url, wait_healthy
from handlers.reply.mrkdwn import to_mrkdwn
from tests.fakes.bot_process import free_port
from tests.fakes.constants import BOT_TOKEN, MODEL_API_KEY
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.redis_server import RedisServer
from tests.fakes.slack_api import FakeSlack

_VOCABULARY = (
    "the model reads your question and answers with care about images charts code tables "
    "tokens latency threads channels messages context memory quota streaming edits"
)


@dataclass(slots=True)
class Harness:
    """What every round needs: the fakes, Redis, the bot process and the answer it should show."""

    options: Options
    slack: FakeSlack
    model: FakeModel
    redis: RedisServer
    bot: asyncio.subprocess.Process
    bot_url: str
    bot_log: Path
    expected_text: str  # the reply's final Slack text: to_mrkdwn(answer)


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
async def started_harness(options: Options) -> AsyncIterator[Harness]:
    """Redis, the fakes and the bot, all started; everything stopped on exit (also on errors)."""
    async with AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="glmbot-bench-")))
        redis_server = stack.enter_context(RedisServer())
        slack = await stack.enter_async_context(FakeSlack(bot_token=BOT_TOKEN))
        model = await stack.enter_async_context(FakeModel(api_key=MODEL_API_KEY))
        answer = make_answer(options.answer_chars)
        model.default_reply = Reply(
            text=answer, chunk_chars=CHARS_PER_TOKEN, delay=1.0 / options.tokens_per_second
        )
        port, log_path = free_port(), workdir / "bot.log"
        env = bot_environment(
            slack,
            model,
            bot_redis_url(redis_server, options),
            options.edit_interval,
            options.edits_per_minute,
        )
        bot = await stack.enter_async_context(bot_process(env, port, log_path, workdir))
        bot_url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, f"{bot_url}/healthz", bot, log_path)
        yield Harness(options, slack, model, redis_server, bot, bot_url, log_path, to_mrkdwn(answer))
