"""Settings validation and secret redaction in logs."""

from __future__ import annotations

import io
import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest
import structlog

from bot.core.errors import (
    GlmbotError,
    ModelRejected,
    ModelStreamFailed,
    ModelUnavailable,
    PromptTooLong,
    StoreUnavailable,
)
from bot.core.messages import user_message
from bot.logs import REDACTED, SecretRedactor, configure_logging
from bot.settings import Settings, SettingsError, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults follow the contract."""
    settings = load_settings()
    assert settings.glm_base_url == "https://api.unorouter.com/v1"
    assert settings.glm_model == "glm-4.5v"
    assert settings.glm_context_tokens == 65536
    assert settings.glm_max_output_tokens == 4096
    assert settings.glm_thinking == "off"
    assert settings.quota_default_usd == Decimal("1.00")
    assert settings.quota_period == "month"
    assert settings.stream_edit_interval == 1.5
    assert settings.slack_edits_per_minute == 50
    assert settings.redis_url is None
    assert settings.file_hosts == frozenset({"files.slack.com", "slack.com"})


def test_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comma-separated variables become lists."""
    monkeypatch.setenv("ADMIN_USER_IDS", "U1, U2,,U3")
    monkeypatch.setenv("SLACK_FILE_HOSTS", "files.slack.com,127.0.0.1")
    settings = load_settings()
    assert settings.admin_user_ids == ["U1", "U2", "U3"]
    assert settings.file_hosts == frozenset({"files.slack.com", "127.0.0.1"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GLM_CONTEXT_TOKENS", "lots"),
        ("GLM_MAX_OUTPUT_TOKENS", "40000"),
        ("GLM_THINKING", "maybe"),
        ("QUOTA_PERIOD", "year"),
        ("QUOTA_DEFAULT_USD", "-1"),
        ("REDIS_URL", "http://localhost"),
        ("STREAM_EDIT_INTERVAL", "0"),
        ("GLM_BASE_URL", "not a url"),
    ],
)
def test_invalid_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    """An invalid value stops start-up with one line naming the variable."""
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert name in str(caught.value)
    assert "\n" not in str(caught.value)


def test_slack_api_url_gets_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    """SLACK_API_URL without a trailing slash still joins method names correctly."""
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:8080/api")
    assert load_settings().slack_api_url == "http://127.0.0.1:8080/api/"


def test_minimal_reply_must_fit_max_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """QUOTA_MIN_REPLY_TOKENS above GLM_MAX_OUTPUT_TOKENS would refuse everyone: refused at start."""
    monkeypatch.setenv("GLM_MAX_OUTPUT_TOKENS", "128")
    with pytest.raises(SettingsError, match="QUOTA_MIN_REPLY_TOKENS"):
        load_settings()


def test_required_setting_missing() -> None:
    """A command's required setting, when unset, is named."""
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN"):
        load_settings().require("SLACK_BOT_TOKEN")


def test_dotenv_is_read(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A .env file in the working directory is read (the autouse fixture chdirs to a temp dir)."""
    with open(".env", "w") as env_file:
        env_file.write("SYSTEM_PROMPT=from dotenv\n")
    assert load_settings().system_prompt == "from dotenv"


def test_unpriced_model_refused_unless_priced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model missing from the price table stops start-up, unless both prices are set."""
    monkeypatch.setenv("GLM_MODEL", "glm-unknown")
    with pytest.raises(SettingsError, match="GLM_INPUT_USD_PER_MTOK"):
        load_settings()
    monkeypatch.setenv("GLM_INPUT_USD_PER_MTOK", "1")
    monkeypatch.setenv("GLM_OUTPUT_USD_PER_MTOK", "2")
    assert load_settings().price().output_pico_per_token == 2_000_000


def test_redactor_replaces_known_secrets_and_token_shapes() -> None:
    """Known secrets, Slack tokens and bearer headers never survive the redactor."""
    redactor = SecretRedactor(["model-key-123"])
    event = {
        "event": "calling with model-key-123",
        "headers": {"Authorization": "Bearer abcdefghijkl"},
        "tokens": ["xoxb-1111-2222-abcdef", "xapp-1-A111-222-abc"],
    }
    out = redactor(None, "info", event)
    text = json.dumps(out)
    for secret in ("model-key-123", "abcdefghijkl", "xoxb-1111", "xapp-1-A111"):
        assert secret not in text
    assert REDACTED in out["event"]


def test_logs_never_show_secrets(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Structlog and standard-library log lines both come out redacted, as JSON."""
    monkeypatch.setenv("GLM_API_KEY", "sk-glm-super-secret")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-secret-value")
    settings = load_settings()
    configure_logging("INFO", "json", settings.secrets())
    structlog.get_logger("t").info("request", key="sk-glm-super-secret", note="signing-secret-value")
    logging.getLogger("slack_bolt").warning("token was %s", "xoxb-12345-67890-abc")
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert len(lines) == 2
    for secret in ("sk-glm-super-secret", "signing-secret-value", "xoxb-12345"):
        assert secret not in err
    assert lines[0]["key"] == REDACTED
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = [logging.StreamHandler(io.StringIO())]


@pytest.mark.parametrize(
    "error",
    [
        PromptTooLong(100_000, 60_000),
        ModelRejected(401, "bad key sk-secret"),
        ModelRejected(400, "bad request"),
        ModelUnavailable("timeout"),
        ModelStreamFailed("broken"),
        StoreUnavailable("down"),
        GlmbotError("other"),
    ],
)
def test_user_messages_are_short_and_clean(error: GlmbotError) -> None:
    """Every error maps to a short sentence without the exception's own text."""
    text = user_message(error)
    assert 10 < len(text) < 200
    assert str(error) not in text


def test_every_setting_is_in_the_readme_and_every_contract_setting_exists() -> None:
    """The README's Settings table names every variable the bot reads, and the bot reads every variable
    the contract's table names (so neither can drift from the code)."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    table = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    names = {field.upper() for field in Settings.model_fields}
    assert sorted(name for name in names if f"`{name}`" not in table) == []
    contract = root.parent / "shared" / "contract.md"
    if contract.is_file():  # outside the repository: present on the development machine
        rows = [line for line in contract.read_text().splitlines() if line.startswith("| `")]
        assert sorted(row.split("`")[1] for row in rows if row.split("`")[1] not in names) == []
