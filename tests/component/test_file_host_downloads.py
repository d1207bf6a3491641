"""The file-host rule through the real downloader, built from Settings, against fake Slacks on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.domain import Attachment
from bot.core.errors import ImageRejected
from bot.settings import Settings, load_settings
from handlers.files import NOT_ALLOWED_HOST, SlackFileFetcher
from tests.fakes.constants import BOT_TOKEN, TEAM_ID
from tests.fakes.slack_api import FakeSlack

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@pytest.fixture
async def other_slack() -> AsyncIterator[FakeSlack]:
    """A second fake Slack: the same host (127.0.0.1), another port."""
    async with FakeSlack(bot_token=BOT_TOKEN) as fake:
        yield fake


async def download(settings: Settings, slack: FakeSlack, url: str) -> bytes:
    """Fetch ``url`` with the downloader ``serve`` builds from ``settings``."""
    async with httpx.AsyncClient() as http:
        fetcher = SlackFileFetcher(
            http=http,
            slack=AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url),
            bot_token=BOT_TOKEN,
            token_hosts=settings.file_hosts,
            plain_http_hosts=settings.plain_http_file_hosts,
            max_bytes=1024 * 1024,
            timeout_seconds=5.0,
        )
        attachment = Attachment(
            file_id="F1", name="a.png", mimetype="image/png", size=len(PNG), location=url, needs_lookup=False
        )
        return await fetcher.fetch(attachment)


async def test_http_api_url_host_and_port_get_files_over_http(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, other_slack: FakeSlack
) -> None:
    """SLACK_API_URL on http://127.0.0.1:PORT (an emulator): its files download with the token, those
    of another port on the same host are refused before any request."""
    monkeypatch.setenv("SLACK_API_URL", fake_slack.api_url)
    settings = load_settings()
    ours = fake_slack.add_file("F1", PNG, name="a.png")["url_private_download"]
    theirs = other_slack.add_file("F1", PNG)["url_private_download"]

    assert await download(settings, fake_slack, ours) == PNG
    assert fake_slack.download_auth_headers == [f"Bearer {BOT_TOKEN}"]
    with pytest.raises(ImageRejected) as caught:
        await download(settings, fake_slack, theirs)
    assert caught.value.reason == NOT_ALLOWED_HOST
    assert other_slack.download_paths == []


async def test_listed_host_needs_the_explicit_plain_http_setting(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack
) -> None:
    """With an https SLACK_API_URL, a host listed in SLACK_FILE_HOSTS is https only; naming its
    host:port in SLACK_FILE_HOSTS_PLAIN_HTTP lets the download go over http."""
    url = fake_slack.add_file("F1", PNG, name="a.png")["url_private_download"]
    monkeypatch.setenv("SLACK_FILE_HOSTS", "files.slack.com,127.0.0.1")
    with pytest.raises(ImageRejected) as caught:
        await download(load_settings(), fake_slack, url)
    assert caught.value.reason == NOT_ALLOWED_HOST
    assert fake_slack.download_paths == []

    monkeypatch.setenv("SLACK_FILE_HOSTS_PLAIN_HTTP", f"127.0.0.1:{fake_slack.port}")
    assert await download(load_settings(), fake_slack, url) == PNG
    assert fake_slack.download_paths == [f"/files-pri/{TEAM_ID}-F1/a.png?download=1"]
