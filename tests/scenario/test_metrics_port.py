"""``glmbot serve`` as an operator runs it (a real subprocess): METRICS_PORT serves /metrics and /healthz
apart from Slack's endpoint, and a port that is taken, or METRICS_PORT equal to the main port, stops the
process with one line and exit status 2."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.fakes.bot_env import fake_backed_settings
from tests.fakes.bot_process import free_port, run_glmbot, start_bot, stop_bot, wait_healthy
from tests.fakes.constants import SIGNING_SECRET, TEAM_ID
from tests.fakes.model_api import FakeModel, Reply
from tests.fakes.signing import event_body, signed_headers
from tests.fakes.slack_api import FakeSlack
from tests.fakes.socket_mode import APP_TOKEN
from tests.scenario.harness import message

ANSWER = "An answer nobody should find in the logs."
RUN_SECONDS = 60.0


@contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port held by a listening socket (another process's server) while in the block."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


async def run_to_exit(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``python -m bot ARGS`` to its end; its exit status and standard error."""
    code, _out, err = await run_glmbot(args, env, seconds=RUN_SECONDS)
    return code, err


def quiet_env(fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str, **extra: str) -> dict[str, str]:
    """The bot's settings against the fakes, logging only errors: what is left on stderr is the bot's own
    last word."""
    return {
        **os.environ,
        **fake_backed_settings(fake_slack, fake_model, redis_url),
        "LOG_LEVEL": "ERROR",
        **extra,
    }


async def test_metrics_port_serves_health_and_metrics_apart(
    fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """HTTP mode with METRICS_PORT: Slack's events on the main port only, /healthz and /metrics on the
    metrics port only; a reply is counted there and logged once as reply_finished, without its text."""
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        **fake_backed_settings(fake_slack, fake_model, redis_url),
        "METRICS_PORT": str(metrics_port),
    }
    fake_model.script(Reply(text=ANSWER, prompt_tokens=100, completion_tokens=20))
    process = await start_bot(["serve", "--http", "--port", str(port)], env)
    main, apart = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            await wait_healthy(http, f"{apart}/healthz", process)
            assert (await http.get(f"{main}/metrics")).status_code == 404
            assert (await http.get(f"{main}/healthz")).status_code == 404
            assert (await http.post(f"{apart}/slack/events", content=b"{}")).status_code == 404
            event = message("count me", channel="D0DM", channel_type="im")
            body = event_body(event, "EvPort1")
            headers = {"Content-Type": "application/json", **signed_headers(SIGNING_SECRET, body)}
            assert (await http.post(f"{main}/slack/events", content=body, headers=headers)).status_code == 200
            ok_line = 'glmbot_replies_total{outcome="ok"} 1.0'
            for _ in range(200):
                metrics = await http.get(f"{apart}/metrics")
                if ok_line in metrics.text:
                    break
                await asyncio.sleep(0.05)
            assert ok_line in metrics.text
            assert "process_resident_memory_bytes" in metrics.text
    finally:
        logs = await stop_bot(process)
    assert process.returncode == 0, logs
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    serving = [r for r in records if r["event"] == "serving"]
    assert [(r["mode"], r["port"], r["metrics_port"]) for r in serving] == [("http", port, metrics_port)]
    [finished] = [r for r in records if r["event"] == "reply_finished"]
    assert (finished["outcome"], finished["input_tokens"], finished["output_tokens"]) == ("ok", 100, 20)
    assert finished["cost_usd"] == "0.0001248"  # 100 x $0.78/M + 20 x $2.34/M
    assert (finished["team"], finished["channel"], finished["event_id"]) == (TEAM_ID, "D0DM", "EvPort1")
    assert ANSWER not in logs
    assert "count me" not in logs


async def test_socket_mode_with_metrics_port_opens_only_that_port(
    fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """Socket Mode needs no inbound port for Slack: with METRICS_PORT only the metrics port is opened."""
    port, metrics_port = free_port(), free_port()
    settings = fake_backed_settings(fake_slack, fake_model, redis_url)
    del settings["SLACK_SIGNING_SECRET"]
    env = {
        **os.environ,
        **settings,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "PORT": str(port),
        "METRICS_PORT": str(metrics_port),
    }
    process = await start_bot(["serve"], env)
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            await wait_healthy(http, f"http://127.0.0.1:{metrics_port}/healthz", process)
            assert (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).status_code == 200
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        logs = await stop_bot(process)
    assert process.returncode == 0, logs


async def test_metrics_port_equal_to_the_main_port_is_a_settings_error(
    fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """METRICS_PORT = PORT: exit 2 with one line naming METRICS_PORT, no traceback."""
    port = free_port()
    env = quiet_env(fake_slack, fake_model, redis_url, PORT=str(port), METRICS_PORT=str(port))
    code, err = await run_to_exit(["serve", "--http"], env)
    assert code == 2
    assert err.strip().splitlines() == [
        f"glmbot: port {port}: METRICS_PORT is the main port too (PORT / --port) -> choose another port, "
        "or unset METRICS_PORT to serve /metrics and /healthz on the main port"
    ]


def assert_one_line_naming(err: str, port: int, setting: str) -> None:
    """stderr is one line: the port, that it is in use, the setting to change. (The start-up check in
    ``bot.app.serve`` usually finds the port taken before ``handlers.server.start_web`` tries to bind it;
    each says so in its own words, so only what both say is checked here.)"""
    assert "Traceback" not in err
    [line] = err.strip().splitlines()
    assert line.startswith(f"glmbot: port {port}")
    assert "already in use" in line
    assert line.endswith(setting)


async def test_a_main_port_in_use_stops_serve_with_one_line(
    fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """Another process listens on the port: exit 2, one line on stderr saying so, no traceback."""
    with taken_port() as port:
        env = quiet_env(fake_slack, fake_model, redis_url)
        code, err = await run_to_exit(["serve", "--http", "--port", str(port)], env)
    assert code == 2
    assert_one_line_naming(err, port, "--port")


async def test_a_metrics_port_in_use_stops_serve_with_one_line(
    fake_slack: FakeSlack, fake_model: FakeModel, redis_url: str
) -> None:
    """The metrics port is taken (the main one is free): the line names METRICS_PORT."""
    with taken_port() as metrics_port:
        env = quiet_env(fake_slack, fake_model, redis_url, METRICS_PORT=str(metrics_port))
        code, err = await run_to_exit(["serve", "--http", "--port", str(free_port())], env)
    assert code == 2
    assert_one_line_naming(err, metrics_port, "METRICS_PORT")
