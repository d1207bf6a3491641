"""Where the bot token may go with a file download: the hosts, and which of them may get it over http."""

from __future__ import annotations

import pytest

from bot.file_hosts import token_allowed
from bot.settings import Settings, SettingsError, load_settings


def allowed(settings: Settings, scheme: str, host: str, port: int | None = None) -> bool:
    return token_allowed(scheme, host, port, settings.file_hosts, settings.plain_http_file_hosts)


def test_https_api_url_means_https_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default (https://slack.com/api/): files.slack.com and slack.com, over https only."""
    settings = load_settings()
    assert settings.file_hosts == frozenset({"files.slack.com", "slack.com"})
    assert settings.plain_http_file_hosts == frozenset()
    assert allowed(settings, "https", "files.slack.com")
    assert allowed(settings, "https", "FILES.slack.com", 8443)
    assert not allowed(settings, "http", "files.slack.com")
    assert not allowed(settings, "http", "slack.com")
    assert not allowed(settings, "https", "evil.example")
    assert not allowed(settings, "ftp", "files.slack.com")


def test_http_api_url_allows_http_to_its_own_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gateway or emulator at http://host:port gets the token over http there, and nowhere else."""
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:8080/api/")
    settings = load_settings()
    assert settings.file_hosts == frozenset({"files.slack.com", "127.0.0.1"})
    assert settings.plain_http_file_hosts == frozenset({"127.0.0.1:8080"})
    assert allowed(settings, "http", "127.0.0.1", 8080)
    assert not allowed(settings, "http", "127.0.0.1", 8081)
    assert not allowed(settings, "http", "127.0.0.1")  # port 80
    assert allowed(settings, "https", "127.0.0.1", 8081)
    assert not allowed(settings, "http", "files.slack.com")


def test_http_api_url_without_a_port_means_port_80(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_API_URL", "http://Slack-Gateway.internal/api/")
    settings = load_settings()
    assert settings.plain_http_file_hosts == frozenset({"slack-gateway.internal:80"})
    assert allowed(settings, "http", "slack-gateway.internal")
    assert allowed(settings, "http", "slack-gateway.internal", 80)
    assert not allowed(settings, "http", "slack-gateway.internal", 8080)


def test_listing_files_slack_com_never_allows_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """Naming hosts in SLACK_FILE_HOSTS says where the token may go, never that http is fine."""
    monkeypatch.setenv("SLACK_FILE_HOSTS", "files.slack.com,127.0.0.1")
    settings = load_settings()
    assert settings.file_hosts == frozenset({"files.slack.com", "127.0.0.1"})
    assert settings.plain_http_file_hosts == frozenset()
    assert not allowed(settings, "http", "files.slack.com")
    assert not allowed(settings, "http", "127.0.0.1", 8080)
    assert allowed(settings, "https", "files.slack.com")


def test_explicit_plain_http_setting_allows_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """SLACK_FILE_HOSTS_PLAIN_HTTP names hosts (any port) or host:port; they become file hosts too."""
    monkeypatch.setenv("SLACK_FILE_HOSTS", "files.slack.com")
    monkeypatch.setenv("SLACK_FILE_HOSTS_PLAIN_HTTP", " Files.Example.com , 127.0.0.2:8080,[::1]:9000 ")
    settings = load_settings()
    assert settings.slack_file_hosts_plain_http == ["files.example.com", "127.0.0.2:8080", "[::1]:9000"]
    assert settings.file_hosts == frozenset({"files.slack.com", "files.example.com", "127.0.0.2", "::1"})
    assert settings.plain_http_file_hosts == frozenset({"files.example.com", "127.0.0.2:8080", "[::1]:9000"})
    assert allowed(settings, "http", "files.example.com")
    assert allowed(settings, "http", "files.example.com", 8000)
    assert allowed(settings, "http", "127.0.0.2", 8080)
    assert not allowed(settings, "http", "127.0.0.2", 8081)
    assert allowed(settings, "http", "::1", 9000)
    assert not allowed(settings, "http", "files.slack.com")


def test_plain_http_setting_adds_to_the_default_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_FILE_HOSTS_PLAIN_HTTP", "127.0.0.1")
    settings = load_settings()
    assert settings.file_hosts == frozenset({"files.slack.com", "slack.com", "127.0.0.1"})
    assert settings.plain_http_file_hosts == frozenset({"127.0.0.1"})


@pytest.mark.parametrize("value", ["http://files.example.com", "host/path", "host:port", "user@host", ":80"])
def test_plain_http_entries_must_be_host_or_host_port(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """A URL, a path, a user or a bad port stops start-up with a line naming the variable."""
    monkeypatch.setenv("SLACK_FILE_HOSTS_PLAIN_HTTP", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "SLACK_FILE_HOSTS_PLAIN_HTTP" in str(caught.value)
    assert "is not a host or host:port" in str(caught.value)
