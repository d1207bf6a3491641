"""The first hour with glmbot on a laptop, as real ``python -m bot`` subprocesses against the fakes:
another provider's model name and price, Ctrl-C in the console, and a shell that speaks plain text."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bot.app import quota_ledger
from bot.billing.money import format_usd
from bot.billing.pricing import cost_pico, price_for
from bot.settings import load_settings
from bot.store.connection import open_store
from tests.fakes.bot_process import free_port, run_glmbot
from tests.fakes.constants import HUMAN_USER_ID, MODEL_API_KEY
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.redis_server import RedisServer

OVERRIDES = {"GLM_INPUT_USD_PER_MTOK": "0.5", "GLM_OUTPUT_USD_PER_MTOK": "1.5"}
EXIT_SECONDS = 10.0
# What a shell must never print: Slack's mention markup, *bold* mrkdwn, :emoji: codes, the Slack apology.
SLACK_MARKUP = re.compile(r"<@|<!|\*[^*\s][^*]*\*|:[a-z0-9_+-]+:")
SLACK_APOLOGY = "temporarily unavailable"


def _console_env(model: FakeModel, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "GLM_API_KEY": MODEL_API_KEY,
        "GLM_BASE_URL": model.base_url,
        "LOG_FORMAT": "json",
        **extra,
    }


# ---------------------------------------------------------------------------- providers and prices


async def test_unknown_model_with_both_price_overrides_starts_and_answers(fake_model: FakeModel) -> None:
    """GLM_MODEL outside the table plus both overrides: the console starts, sends that model name, answers."""
    fake_model.script(Reply(text="Priced by the operator."))
    env = _console_env(fake_model, GLM_MODEL="some-unknown-model", **OVERRIDES)
    code, out, err = await run_glmbot(["console"], env, stdin=b"hello\n")
    assert code == 0, err
    assert "Priced by the operator." in out
    assert [call.body["model"] for call in fake_model.requests] == ["some-unknown-model"]


@pytest.mark.parametrize(
    "given",
    [{}, {"GLM_INPUT_USD_PER_MTOK": "0.5"}, {"GLM_OUTPUT_USD_PER_MTOK": "1.5"}],
    ids=["no-override", "input-only", "output-only"],
)
async def test_unknown_model_without_both_overrides_stops_with_one_line(
    fake_model: FakeModel, given: dict[str, str]
) -> None:
    """Without both overrides: exit 2 and one stderr line naming GLM_MODEL and both override settings,
    no traceback, no model call (a free ride past every quota is refused at start)."""
    env = _console_env(fake_model, GLM_MODEL="some-unknown-model", **given)
    code, out, err = await run_glmbot(["console"], env, stdin=b"hello\n")
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    for name in ("GLM_MODEL", "GLM_INPUT_USD_PER_MTOK", "GLM_OUTPUT_USD_PER_MTOK", "some-unknown-model"):
        assert name in err
    assert "Traceback" not in err
    assert out == ""
    assert fake_model.requests == []


async def test_openrouter_model_name_needs_no_override(fake_model: FakeModel) -> None:
    """OpenRouter's name for glm-4.5v (z-ai/glm-4.5v) is in the table: it starts with no override."""
    env = _console_env(fake_model, GLM_MODEL="z-ai/glm-4.5v")
    code, _out, err = await run_glmbot(["console"], env, stdin=b"hello\n")
    assert code == 0, err
    assert [call.body["model"] for call in fake_model.requests] == ["z-ai/glm-4.5v"]


# ---------------------------------------------------------------------------- Ctrl-C in the console


class Console:
    """A console subprocess whose standard input stays open, read as its output arrives."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.out = ""

    async def read_until(self, marker: str, start: int = 0) -> None:
        """Read stdout until ``marker`` appears after offset ``start``; fail after EXIT_SECONDS."""
        assert self.process.stdout is not None
        async with asyncio.timeout(EXIT_SECONDS):
            while marker not in self.out[start:]:
                chunk = await self.process.stdout.read(1024)
                assert chunk, f"the console exited before printing {marker!r}:\n{self.out}"
                self.out += chunk.decode()

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode())
        await self.process.stdin.drain()

    async def wait_exit(self) -> tuple[int, str]:
        """The exit status within EXIT_SECONDS (the console is killed if it hangs), and stderr."""
        try:
            out, err = await asyncio.wait_for(self.process.communicate(), timeout=EXIT_SECONDS)
        except TimeoutError:
            self.process.kill()
            await self.process.communicate()
            raise AssertionError(f"the console did not exit within {EXIT_SECONDS}s:\n{self.out}") from None
        self.out += out.decode()
        return self.process.returncode or 0, err.decode()


@asynccontextmanager
async def console(env: dict[str, str]) -> AsyncIterator[Console]:
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "bot", "console"],
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield Console(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()


async def test_ctrl_c_at_the_prompt_ends_the_console_with_130(fake_model: FakeModel) -> None:
    """SIGINT while the console waits for a line (stdin still open): it exits promptly with 130, the
    shell's status for an interrupted program, and prints no traceback."""
    async with console(_console_env(fake_model)) as session:
        await session.read_until("you> ")
        session.process.send_signal(signal.SIGINT)
        code, err = await session.wait_exit()
    assert code == 130, err
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err
    assert fake_model.requests == []


async def test_ctrl_c_during_an_answer_stops_it_and_the_prompt_returns(fake_model: FakeModel) -> None:
    """SIGINT while an answer streams: the model request is dropped, what streamed stays with a plain
    "(Stopped.)" note, the prompt comes back and the next question is answered with the stopped one in
    its history; end of input then exits 0."""
    fake_model.script(
        Reply(text="One two three four five six seven eight nine ten.", chunk_chars=4, delay=0.3),
        Reply(text="Second answer."),
    )
    async with console(_console_env(fake_model)) as session:
        await session.send("count slowly\n")
        await session.read_until("glm> One")
        session.process.send_signal(signal.SIGINT)
        await session.read_until("(Stopped.)")
        await session.read_until("you> ", start=session.out.index("(Stopped.)"))
        await session.send("and now?\n")
        await session.read_until("Second answer.")
        assert session.process.stdin is not None
        session.process.stdin.close()
        code, err = await session.wait_exit()
    assert code == 0, err
    assert "Traceback" not in err
    assert "ten." not in session.out  # the rest of the first answer never came
    assert "_(Stopped.)_" not in session.out  # plain text, not Markdown
    history = fake_model.requests[1].messages
    assert history[1]["content"] == "count slowly"
    assert history[2]["role"] == "assistant"
    assert history[2]["content"].startswith("One")


async def test_ctrl_c_before_the_first_word_stops_the_wait_then_ctrl_c_leaves(fake_model: FakeModel) -> None:
    """The model sits on the request (no word yet): Ctrl-C stops the wait at once with the note and no
    "was restarted" apology; the next Ctrl-C, at the prompt, ends the session with 130."""
    hold = asyncio.Event()
    fake_model.script(Reply(text="never sent", hold=hold))
    try:
        async with console(_console_env(fake_model)) as session:
            await session.send("a question the model sits on\n")
            await session.read_until("glm> ")
            await fake_model.wait_for(lambda: len(fake_model.requests) == 1)
            session.process.send_signal(signal.SIGINT)
            await session.read_until("(Stopped.)")
            await session.read_until("you> ", start=session.out.index("(Stopped.)"))
            session.process.send_signal(signal.SIGINT)
            code, err = await session.wait_exit()
    finally:
        hold.set()
    assert code == 130, err
    assert "Traceback" not in err
    assert "restarted" not in session.out


# ---------------------------------------------------------------------------- the shell speaks plain text


async def test_quota_with_redis_down_names_the_cause_and_the_fix() -> None:
    """Redis not listening: exit 1 and one stderr line naming REDIS_URL (its password hidden) and the
    cause, never the Slack user's apology, never a traceback."""
    url = f"redis://admin:s3cret-pw@127.0.0.1:{free_port()}/0"
    code, out, err = await run_glmbot(["quota", "show", "U0123ABCD"], {**os.environ, "REDIS_URL": url})
    assert code == 1
    assert out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("glmbot: redis: cannot reach redis://admin:***@127.0.0.1:")
    assert "(Connection refused) -> start Redis, or fix the host and port in REDIS_URL" in line
    assert "REDIS_URL" in line
    assert "s3cret-pw" not in err
    assert SLACK_APOLOGY not in err
    assert "Traceback" not in err


async def test_quota_show_and_top_print_plain_text(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With spend on record, `quota show`, `quota top`, `set` and `reset` name users by bare id and use
    no Slack markup (no <@…>, no *bold*, no :emoji:)."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    settings = load_settings()
    store = open_store(redis_url)
    try:
        ledger = quota_ledger(settings, store)
        spent = cost_pico(1000, 500, price_for("glm-4.5v"))
        reservation = await ledger.reserve(HUMAN_USER_ID, 1000, 1000, 16, price_for("glm-4.5v"))
        await ledger.settle(reservation, spent)
    finally:
        await store.aclose()
    env = {**os.environ, "REDIS_URL": redis_url}
    outputs = []
    for args in (
        ["show", f"<@{HUMAN_USER_ID}>"],
        ["top"],
        ["set", HUMAN_USER_ID, "5"],
        ["reset", HUMAN_USER_ID],
    ):
        code, out, err = await run_glmbot(["quota", *args], env)
        assert code == 0, err
        outputs.append(out)
    show, top = outputs[0], outputs[1]
    assert show.startswith(f"{HUMAN_USER_ID}'s glmbot spend")
    assert top.splitlines()[1] == f"1. {HUMAN_USER_ID}: {format_usd(spent)}"
    for out in outputs:
        assert not SLACK_MARKUP.search(out), out


async def test_console_names_the_setting_when_the_key_is_refused(fake_model: FakeModel) -> None:
    """A key the endpoint refuses (a Z.ai key at UnoRouter, say): the console's user runs the bot, so it
    names the cause and the settings to fix, never the Slack user's "tell an admin"."""
    env = _console_env(fake_model, GLM_API_KEY="sk-other-provider-key")
    code, out, err = await run_glmbot(["console"], env, stdin=b"hello\n")
    assert code == 0, err
    assert (
        "The model endpoint refused the key (model endpoint answered 401: Incorrect API key provided)" in out
    )
    assert "Check GLM_API_KEY and GLM_BASE_URL: `glmbot check` tests each setting." in out
    assert "tell an admin" not in out
    assert "sk-other-provider-key" not in out + err


async def test_console_refuses_a_redis_it_cannot_reach(fake_model: FakeModel) -> None:
    """REDIS_URL set but nothing answers: the console says so at start (exit 1, worth retrying), rather
    than failing every question."""
    env = _console_env(fake_model, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    code, _out, err = await run_glmbot(["console"], env, stdin=b"hello\n")
    assert code == 1
    (line,) = err.splitlines()
    assert line.startswith("glmbot: redis: cannot reach redis://127.0.0.1:")
    assert line.endswith(
        "-> start Redis, or fix the host and port in REDIS_URL (and any firewall in between)"
    )
    assert fake_model.requests == []


async def test_console_names_redis_when_it_goes_away(fake_model: FakeModel) -> None:
    """Redis gone after start: the console says Redis and REDIS_URL, not the Slack apology."""
    with RedisServer() as server:
        env = _console_env(fake_model, REDIS_URL=server.url)
        process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "bot", "console"],
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(b"hello\n")
        await process.stdin.drain()
        await fake_model.wait_for(lambda: len(fake_model.requests) == 1, 30, "the first answer")
        first = await asyncio.wait_for(process.stdout.readuntil(b"Hello from the fake model."), 30)
        assert b"Hello from the fake model." in first
    process.stdin.write(b"again\n")
    process.stdin.close()
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    assert "Redis is not answering (" in out.decode()
    assert "Check REDIS_URL and that Redis runs" in out.decode()
    assert SLACK_APOLOGY not in out.decode()


async def test_console_needs_only_a_key_and_keeps_log_lines_out_of_the_chat(fake_model: FakeModel) -> None:
    """The console ignores Slack settings it does not use (a stale user token in .env), and without an
    explicit LOG_LEVEL shows only warnings: the contract's embedded-store warning, no per-reply lines."""
    env = {**_console_env(fake_model, SLACK_BOT_TOKEN="xoxp-stale-user-token"), "LOG_FORMAT": "console"}
    code, out, err = await run_glmbot(["console"], env, stdin=b"hello\n")
    assert code == 0, err
    assert "Hello from the fake model." in out
    assert "embedded_store" in err
    assert "reply_finished" not in err + out
    assert "model_usage" not in err + out


async def test_quota_with_a_wrong_password_says_so(redis_server: RedisServer) -> None:
    """Redis answers but refuses the credentials: the line says which part of REDIS_URL to fix."""
    url = f"redis://nobody:s3cret-pw@127.0.0.1:{redis_server.port}/0"
    code, _out, err = await run_glmbot(["quota", "show", "U0123ABCD"], {**os.environ, "REDIS_URL": url})
    assert code == 1
    [line] = err.strip().splitlines()
    assert line.startswith(f"glmbot: redis: redis://nobody:***@127.0.0.1:{redis_server.port}/0 refused the")
    assert line.endswith(
        "-> put the right user and password in REDIS_URL: redis://USER:PASSWORD@HOST:PORT/DB"
    )
    assert "s3cret-pw" not in err
