"""What ``--help`` tells an operator, and the metrics' time buckets."""

from __future__ import annotations

import pytest

from bot.cli import main
from bot.metrics import Metrics


def test_serve_help_names_the_required_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for name in ("SLACK_BOT_TOKEN", "GLM_API_KEY", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "REDIS_URL"):
        assert name in out


def test_console_help_lists_the_session_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["console", "--help"])
    out = capsys.readouterr().out
    for command in ("/image PATH", "/reset", "/quit", "GLM_API_KEY"):
        assert command in out


def test_reply_time_buckets_reach_ten_minutes() -> None:
    metrics = Metrics()
    metrics.reply_seconds.observe(450.0)
    text = metrics.render().decode()
    assert 'glmbot_reply_seconds_bucket{le="600.0"} 1.0' in text
    assert 'glmbot_reply_seconds_bucket{le="300.0"} 0.0' in text


def test_check_help_names_the_lines_the_exit_status_and_the_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for word in ("FAIL", "warn", "exit status: 0", "SLACK_BOT_TOKEN", "METRICS_PORT", "--http", "--port"):
        assert word in out


def test_top_level_help_lists_check(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "check" in capsys.readouterr().out
