"""``glmbot check`` and ``serve``'s start-up checks as a user meets them: the real command, real Redis,
the fake Slack and model over loopback. Every problem at once, one line each, a fix in each, no
traceback, no secret."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

import pytest

from tests.fakes.bot_env import fake_backed_settings
from tests.fakes.bot_process import free_port, run_glmbot, start_bot
from tests.fakes.constants import BOT_TOKEN, MODEL_API_KEY, SIGNING_SECRET
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.redis_server import RedisServer
from tests.fakes.slack_api import FakeSlack


def environment(slack: FakeSlack, model: FakeModel, redis_url: str, **extra: str) -> dict[str, str]:
    model.default_reply = Reply(text="OK", finish_reason="length", completion_tokens=1)
    return {**os.environ, **fake_backed_settings(slack, model, redis_url), "LOG_LEVEL": "WARNING", **extra}


def no_leaks(text: str) -> None:
    assert "Traceback" not in text
    for secret in (BOT_TOKEN, MODEL_API_KEY, SIGNING_SECRET, "s3cret-pass"):
        assert secret not in text


async def test_check_passes_on_a_good_deployment(
    fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    code, out, err = await run_glmbot(
        ["check", "--port", str(free_port())], environment(fake_slack, fake_model, redis_url)
    )
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == "ok    settings: valid: HTTP mode on port " + lines[0].rsplit(" port ", 1)[1]
    assert "ok    slack token: glmbot (UBOT0001) in Test (T0TEST)" in lines
    assert lines[-1] == "all checks passed (1 warning): glmbot serve should work"
    no_leaks(out + err)


async def test_check_lists_every_problem_with_a_fix(
    fake_slack: FakeSlack, fake_model: FakeModel, redis_server: RedisServer
) -> None:
    """Wrong Redis password, refused model key, missing scope: three FAIL lines, exit 1."""
    fake_slack.scopes = ["chat:write"]
    env = environment(
        fake_slack,
        fake_model,
        f"redis://nobody:s3cret-pass@127.0.0.1:{redis_server.port}/0",
        GLM_API_KEY="sk-wrong-key",
    )
    code, out, err = await run_glmbot(["check", "--port", str(free_port())], env)
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert [line.split(":")[0] for line in failed] == ["FAIL  slack scopes", "FAIL  model", "FAIL  redis"]
    assert all(" -> " in line for line in failed)
    assert out.splitlines()[-1] == "3 problems (1 warning): glmbot serve would not work until fixed"
    no_leaks(out + err)
    assert "sk-wrong-key" not in out + err


async def test_settings_problems_all_at_once() -> None:
    """Three bad settings and two missing ones: five lines in one run, the bad values shown unless
    secret, nothing else attempted."""
    env = {
        **os.environ,
        "GLM_CONTEXT_TOKENS": "lots",
        "QUOTA_PERIOD": "year",
        "SLACK_BOT_TOKEN": "xoxp-1234-user-token",
        "REDIS_URL": "http://:s3cret-pass@127.0.0.1:1",
    }
    code, out, err = await run_glmbot(["check"], env)
    assert code == 1
    assert out.splitlines() == [
        "FAIL  settings: invalid setting SLACK_BOT_TOKEN: must be a bot token (xoxb-…), got xoxp-… instead",
        "FAIL  settings: invalid setting GLM_CONTEXT_TOKENS: Input should be a valid integer, unable to "
        "parse string as an integer (got 'lots')",
        "FAIL  settings: invalid setting REDIS_URL: must start with redis://, rediss://, unix://, "
        "redis+sentinel:// or redis+cluster:// (got 'http://:***@127.0.0.1:1')",
        "FAIL  settings: invalid setting QUOTA_PERIOD: Input should be 'day', 'week' or 'month' (got 'year')",
        "FAIL  settings: missing setting GLM_API_KEY: set it in the environment or in .env",
        "FAIL  settings: missing setting SLACK_SIGNING_SECRET: set it in the environment or in .env (HTTP "
        "mode needs it; for Socket Mode, with no public URL, set SLACK_APP_TOKEN instead)",
        "the other checks need valid settings: fix these first",
    ]
    assert "1234-user-token" not in out + err
    assert "s3cret-pass" not in out + err
    code, out, err = await run_glmbot(["serve"], env)
    assert code == 2
    assert len(err.splitlines()) == 6
    assert all(line.startswith("glmbot: ") for line in err.splitlines())


@pytest.mark.parametrize("problem", ["unreachable redis", "wrong redis password", "app token", "port"])
async def test_serve_refuses_to_start_with_one_line(
    fake_slack: FakeSlack, fake_model: FakeModel, redis_server: RedisServer, problem: str
) -> None:
    """Each fatal problem stops serve before it serves anything: one line naming it with its fix; exit 2,
    or 1 for a Redis that does not answer (yet)."""
    port = free_port()
    url = redis_server.url
    extra: dict[str, str] = {}
    if problem == "unreachable redis":
        url = f"redis://127.0.0.1:{free_port()}/0"
    elif problem == "wrong redis password":
        url = f"redis://nobody:s3cret-pass@127.0.0.1:{redis_server.port}/0"
    elif problem == "app token":
        extra = {"SLACK_APP_TOKEN": "xapp-revoked"}
    args = (
        ["serve", "--port", str(port)] if problem == "app token" else ["serve", "--http", "--port", str(port)]
    )
    with socket.socket() as holder:
        if problem == "port":
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            holder.bind(("0.0.0.0", port))
            holder.listen()
        code, out, err = await run_glmbot(args, environment(fake_slack, fake_model, url, **extra))
    # An unreachable Redis may come up by itself: exit 1, which a supervisor retries; the rest need a fix.
    assert code == (1 if problem == "unreachable redis" else 2), err
    expected = {
        "unreachable redis": "glmbot: redis: cannot reach redis://127.0.0.1:",
        "wrong redis password": f"glmbot: redis: redis://nobody:***@127.0.0.1:{redis_server.port}/0 refused",
        "app token": "glmbot: app token: Slack refused SLACK_APP_TOKEN (invalid_auth) -> Basic Information",
        "port": f"glmbot: port {port}: already in use by another process -> stop that process or set PORT",
    }[problem]
    problems = [line for line in err.splitlines() if line.startswith("glmbot: ")]
    assert len(problems) == 1, err
    assert problems[0].startswith(expected), err
    assert " -> " in problems[0]
    assert fake_model.requests == []
    no_leaks(out + err)


async def test_ctrl_c_during_check_exits_130_without_a_traceback(
    fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """Ctrl-C while the check waits for the model: status 130 (how shells report Ctrl-C), no traceback."""
    env = environment(fake_slack, fake_model, redis_url)
    held = asyncio.Event()
    fake_model.default_reply = Reply(text="OK", finish_reason="length", hold=held)
    process = await start_bot(["check", "--port", str(free_port())], env)
    try:
        await fake_model.wait_for(lambda: bool(fake_model.requests), 30, "the model probe")
        process.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        held.set()
    assert process.returncode == 130
    assert "Traceback" not in err.decode()
