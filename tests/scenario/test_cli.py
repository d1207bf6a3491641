"""The ``glmbot`` command as an operator runs it: a real subprocess against the fakes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from importlib import metadata

import httpx
import pytest
from PIL import Image

from tests.fakes.bot_env import fake_backed_settings
from tests.fakes.bot_process import free_port, run_glmbot, wait_healthy
from tests.fakes.constants import BOT_TOKEN, MODEL_API_KEY, SIGNING_SECRET
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.signing import event_body, signed_headers
from tests.fakes.slack_api import FakeSlack
from tests.scenario.harness import message


async def test_version_is_printed_without_any_setting() -> None:
    """``glmbot --version`` prints the package's version and exits 0, whatever the environment lacks."""
    code, out, err = await run_glmbot(["--version"], {**os.environ})
    assert code == 0
    assert out.strip() == f"glmbot {metadata.version('glmbot')}"
    assert err == ""


async def test_missing_setting_is_one_clear_line() -> None:
    """serve without GLM_API_KEY stops with exit 2 and one line naming it, no traceback."""
    env = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    code, _out, err = await run_glmbot(["serve", "--http"], env)
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "GLM_API_KEY" in err
    assert "Traceback" not in err


async def test_invalid_setting_is_one_clear_line() -> None:
    """A malformed value is named at start."""
    env = {**os.environ, "GLM_API_KEY": "k", "GLM_CONTEXT_TOKENS": "sixty"}
    code, _out, err = await run_glmbot(["console"], env)
    assert code == 2
    assert "GLM_CONTEXT_TOKENS" in err
    assert "Traceback" not in err


async def test_console_streams_answers_from_a_pipe(fake_model: FakeModel) -> None:
    """console reads a pipe, answers through the conversation service, forgets on /reset, exits 0 at EOF."""
    fake_model.script(Reply(text="First answer."), Reply(text="Second answer."))
    env = {
        **os.environ,
        "GLM_API_KEY": MODEL_API_KEY,
        "GLM_BASE_URL": fake_model.base_url,
        "LOG_FORMAT": "json",
    }
    code, out, err = await run_glmbot(["console"], env, stdin=b"hello\nmore\n/reset\nafter reset\n")
    assert code == 0, err
    assert "First answer." in out
    assert "Second answer." in out
    assert "embedded_store" in err  # REDIS_URL unset: the one-process warning
    assert [m["content"] for m in fake_model.requests[1].messages[1:]] == ["hello", "First answer.", "more"]
    assert [m["role"] for m in fake_model.requests[2].messages] == ["system", "user"]


async def test_serve_http_answers_and_drains_on_sigterm(
    fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """serve --http answers signed DMs and, on SIGTERM, finishes the reply in flight, then exits 0."""
    port = free_port()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "GLM_API_KEY": MODEL_API_KEY,
        "GLM_BASE_URL": fake_model.base_url,
        "REDIS_URL": redis_url,
        "LOG_FORMAT": "json",
    }
    hold = asyncio.Event()
    fake_model.script(Reply(text="First."), Reply(text="Finished after SIGTERM.", hold=hold))
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "bot", "serve", "--http", "--port", str(port)],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            await wait_healthy(http, f"http://127.0.0.1:{port}/healthz", process)
            await _send_dm(http, port, "hi from cli", "EvCli1")
            await fake_slack.wait_for(lambda: _texts(fake_slack) == ["First."])
            await _send_dm(http, port, "a slow one", "EvCli2")
            await fake_slack.wait_for(lambda: len(fake_model.requests) == 2)
    finally:
        process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    async with httpx.AsyncClient(timeout=5) as http:
        # Draining: the load balancer is told to stop sending, while the reply in flight finishes.
        health = await http.get(f"http://127.0.0.1:{port}/healthz")
    assert (health.status_code, health.json()["status"]) == (503, "draining")
    hold.set()
    _out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    assert _texts(fake_slack) == ["First.", "Finished after SIGTERM."]
    logs = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    usage = next(line for line in logs if line["event"] == "model_usage")
    assert usage["event_id"] == "EvCli1"
    assert usage["channel"] == "D0DM"
    assert usage["user"] == "U0HUMAN1"
    assert "thread_ts" in usage
    assert BOT_TOKEN not in err.decode()
    assert MODEL_API_KEY not in err.decode()


def _texts(slack: FakeSlack) -> list[str]:
    return [m.text for m in slack.messages.values()]


async def _send_dm(http: httpx.AsyncClient, port: int, text: str, event_id: str) -> None:
    body = event_body(message(text, channel="D0DM", channel_type="im"), event_id)
    headers = {"Content-Type": "application/json", **signed_headers(SIGNING_SECRET, body)}
    response = await http.post(f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers)
    assert response.status_code == 200


async def test_console_image_goes_through_the_image_pipeline(fake_model: FakeModel) -> None:
    """`/image PATH question` sends a downscaled image part; a missing file is named, no model call."""
    Image.new("RGB", (2000, 1000), (200, 30, 30)).save("red.png")
    env = {**os.environ, "GLM_API_KEY": MODEL_API_KEY, "GLM_BASE_URL": fake_model.base_url}
    code, out, err = await run_glmbot(
        ["console"], env, stdin=b"/image red.png what colour?\n/image nope.png\n"
    )
    assert code == 0, err
    assert "I couldn't use nope.png: there is no such file." in out
    [request] = fake_model.requests
    parts = request.messages[-1]["content"]
    assert [part["type"] for part in parts] == ["image_url", "text"]
    assert parts[1]["text"] == "what colour?"
    assert parts[0]["image_url"]["url"].startswith("data:image/")


async def test_quota_from_the_shell(redis_url: str) -> None:
    """`glmbot quota show|set|default|reset|top` work against REDIS_URL."""
    env = {**os.environ, "REDIS_URL": redis_url}
    code, out, err = await run_glmbot(["quota", "set", "<@U0HUMAN1>", "5"], env)
    assert code == 0, err
    # A shell names users by their id, not with Slack's <@...> markup.
    assert "U0HUMAN1's limit is now $5.00 per month." in out
    assert "<@" not in out
    code, out, _ = await run_glmbot(["quota", "show", "U0HUMAN1"], env)
    assert code == 0
    assert "$0.00 spent of $5.00 (a personal limit)" in out
    assert "Held by replies in progress: $0.00." in out
    assert out.startswith("U0HUMAN1's glmbot spend")
    assert (await run_glmbot(["quota", "default", "2.5"], env))[1].strip().endswith("$2.50 per period.")
    assert "Nobody has spent" in (await run_glmbot(["quota", "top"], env))[1]
    assert "reset to $0.00" in (await run_glmbot(["quota", "reset", "U0HUMAN1"], env))[1]


async def test_quota_set_default_from_the_shell_removes_the_limit_and_logs_it(redis_url: str) -> None:
    """`glmbot quota set USER_ID default` removes a personal limit; each change is one JSON log line
    naming the actor, the action, the old and the new value."""
    env = {**os.environ, "REDIS_URL": redis_url, "LOG_FORMAT": "json"}
    assert (await run_glmbot(["quota", "set", "U0123ABCD", "5"], env))[0] == 0
    code, out, err = await run_glmbot(["quota", "set", "U0123ABCD", "default"], env)
    assert code == 0, err
    assert (
        out.strip()
        == "U0123ABCD's personal limit of $5.00 is removed: the default ($1.00 per month) applies."
    )
    changes = [json.loads(line) for line in err.splitlines() if '"quota_admin_change"' in line]
    assert [
        {k: entry.get(k) for k in ("actor", "action", "user", "old_usd", "new_usd")} for entry in changes
    ] == [{"actor": "shell", "action": "remove_limit", "user": "U0123ABCD", "old_usd": "5", "new_usd": None}]
    code, out, _ = await run_glmbot(["quota", "set", "<@U0123ABCD>", "default"], env)
    assert (code, out.strip()) == (
        0,
        "U0123ABCD has no personal limit: the default ($1.00 per month) applies.",
    )
    code, out, _ = await run_glmbot(["quota", "show", "U0123ABCD"], env)
    assert "$0.00 spent of $1.00 (the default)" in out


@pytest.mark.parametrize(
    "args",
    [
        ["quota", "set", "U0HUMAN1", "abc"],
        ["quota", "set", "U0HUMAN1", "none"],
        ["quota", "set", "U0HUMAN1", "-3"],
        ["quota", "show", "bob"],
        ["quota", "frob"],
        ["quota"],
    ],
)
async def test_quota_bad_arguments_print_usage(redis_url: str, args: list[str]) -> None:
    """Bad quota arguments: a usage line, a non-zero exit, no traceback."""
    code, _out, err = await run_glmbot(args, {**os.environ, "REDIS_URL": redis_url})
    assert code == 2
    assert "usage: glmbot quota" in err
    assert "Traceback" not in err


async def test_quota_needs_redis_url() -> None:
    """Without REDIS_URL the shell cannot see the bot's store, and says so."""
    code, _out, err = await run_glmbot(["quota", "top"], dict(os.environ))
    assert code == 2
    assert "REDIS_URL" in err


async def test_refused_bot_token_stops_serve_with_one_line(
    fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """A bot token Slack refuses (auth.test: invalid_auth) stops serve at start, naming SLACK_BOT_TOKEN."""
    env = {
        **os.environ,
        **fake_backed_settings(fake_slack, fake_model, redis_url),
        "SLACK_BOT_TOKEN": "xoxb-revoked",
    }
    code, _out, err = await run_glmbot(["serve", "--http", "--port", str(free_port())], env)
    assert code == 2
    assert "SLACK_BOT_TOKEN" in err
    assert "invalid_auth" in err
    assert "Traceback" not in err
    assert "xoxb-revoked" not in err
