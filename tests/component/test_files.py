"""SlackFileFetcher against FakeSlack and a foreign host, over real HTTP on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from structlog.testing import capture_logs

from bot.core.domain import Attachment
from bot.core.errors import ImageRejected
from handlers.files import (
    NOT_ALLOWED_HOST,
    REDIRECTED_AWAY,
    SIGN_IN_PAGE,
    TIMED_OUT,
    TOO_MANY_REDIRECTS,
    SlackFileFetcher,
)
from tests.fakes.constants import BOT_TOKEN, TEAM_ID
from tests.fakes.foreign_host import ForeignHost
from tests.fakes.slack_api import FakeSlack

MIB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
LOCAL = frozenset({"127.0.0.1"})

FetcherFactory = Callable[..., SlackFileFetcher]


@pytest.fixture
async def foreign() -> AsyncIterator[ForeignHost]:
    """A started server on a host that is not allowed to receive the token."""
    async with ForeignHost() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def make_fetcher(fake_slack: FakeSlack, http: httpx.AsyncClient) -> FetcherFactory:
    """Builds a fetcher on FakeSlack with loopback allowed over http; keyword arguments override."""

    def build(**overrides: Any) -> SlackFileFetcher:
        kwargs: dict[str, Any] = {
            "http": http,
            "slack": AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url),
            "bot_token": BOT_TOKEN,
            "token_hosts": LOCAL,
            "plain_http_hosts": LOCAL,
            "max_bytes": MIB,
            "timeout_seconds": 5.0,
        }
        kwargs.update(overrides)
        return SlackFileFetcher(**kwargs)

    return build


def attachment(location: str, *, size: int | None = None, needs_lookup: bool = False) -> Attachment:
    return Attachment(
        file_id="F1",
        name="image.png",
        mimetype="image/png",
        size=size,
        location=location,
        needs_lookup=needs_lookup,
    )


async def rejected(fetcher: SlackFileFetcher, att: Attachment) -> str:
    with pytest.raises(ImageRejected) as caught:
        await fetcher.fetch(att)
    return caught.value.reason


async def test_happy_path_returns_bytes_and_sends_token(
    fake_slack: FakeSlack, make_fetcher: FetcherFactory
) -> None:
    """A file on the allowed host comes back byte for byte, fetched with the bot's Bearer token."""
    obj = fake_slack.add_file("F1", PNG)
    data = await make_fetcher().fetch(attachment(obj["url_private_download"], size=len(PNG)))
    assert data == PNG
    assert fake_slack.download_auth_headers == [f"Bearer {BOT_TOKEN}"]
    assert fake_slack.calls_to("files.info") == []


async def test_needs_lookup_uses_files_info(fake_slack: FakeSlack, make_fetcher: FetcherFactory) -> None:
    """With needs_lookup (and no location) files.info supplies the URL: url_private_download first."""
    fake_slack.add_file("F1", PNG)
    data = await make_fetcher().fetch(attachment("", needs_lookup=True))
    assert data == PNG
    assert [c.body.get("file") for c in fake_slack.calls_to("files.info")] == ["F1"]
    assert len(fake_slack.download_paths) == 1
    assert fake_slack.download_paths[0].endswith("?download=1")


async def test_lookup_falls_back_to_url_private(fake_slack: FakeSlack, make_fetcher: FetcherFactory) -> None:
    """A files.info object without url_private_download is fetched from url_private."""
    fake_slack.add_file("F1", PNG, url_private_download=None)
    assert await make_fetcher().fetch(attachment("", needs_lookup=True)) == PNG
    assert fake_slack.download_paths == [f"/files-pri/{TEAM_ID}-F1/image.png"]


async def test_foreign_host_refused_without_request(
    fake_slack: FakeSlack, foreign: ForeignHost, make_fetcher: FetcherFactory
) -> None:
    """A URL on a host outside token_hosts is refused and that host receives no request at all."""
    reason = await rejected(make_fetcher(), attachment(foreign.url("F1/image.png")))
    assert reason == NOT_ALLOWED_HOST
    assert foreign.requests == []
    assert fake_slack.download_auth_headers == []


async def test_lookup_pointing_to_foreign_host_refused(
    fake_slack: FakeSlack, foreign: ForeignHost, make_fetcher: FetcherFactory
) -> None:
    """A files.info URL on a foreign host is refused like an event URL, with no request to it."""
    fake_slack.add_file("F1", PNG, url_private_download=foreign.url("steal"), url_private=foreign.url("x"))
    reason = await rejected(make_fetcher(), attachment("", needs_lookup=True))
    assert reason == NOT_ALLOWED_HOST
    assert foreign.requests == []


async def test_redirect_to_foreign_host_not_followed(
    fake_slack: FakeSlack, foreign: ForeignHost, make_fetcher: FetcherFactory
) -> None:
    """A 302 from the Slack host to a foreign host is refused and the foreign host is never contacted."""
    url = fake_slack.script_file("T0TEST-F1/image.png", redirect_to=foreign.url("F1/image.png"))
    reason = await rejected(make_fetcher(), attachment(url))
    assert reason == REDIRECTED_AWAY
    assert foreign.requests == []
    assert fake_slack.download_auth_headers == [f"Bearer {BOT_TOKEN}"]


async def test_redirect_on_same_host_followed(fake_slack: FakeSlack, make_fetcher: FetcherFactory) -> None:
    """A 302 to another path on the allowed host is followed, with the token, and returns the file."""
    obj = fake_slack.add_file("F1", PNG)
    start = fake_slack.script_file("cdn/hop", redirect_to=obj["url_private"])
    assert await make_fetcher().fetch(attachment(start)) == PNG
    assert fake_slack.download_paths == ["/files-pri/cdn/hop", f"/files-pri/{TEAM_ID}-F1/image.png"]
    assert fake_slack.download_auth_headers == [f"Bearer {BOT_TOKEN}"] * 2


async def test_relative_redirects_up_to_three_followed(
    fake_slack: FakeSlack, make_fetcher: FetcherFactory
) -> None:
    """Three redirects (relative Location headers included) are still followed."""
    fake_slack.add_file("F1", PNG)
    fake_slack.script_file("hop/3", redirect_to=f"/files-pri/{TEAM_ID}-F1/image.png")
    fake_slack.script_file("hop/2", redirect_to="3", redirect_status=307)
    start = fake_slack.script_file("hop/1", redirect_to=fake_slack.file_url("hop/2"), redirect_status=301)
    assert await make_fetcher().fetch(attachment(start)) == PNG
    assert len(fake_slack.download_paths) == 4


async def test_more_than_three_redirects_refused(fake_slack: FakeSlack, make_fetcher: FetcherFactory) -> None:
    """A fourth redirect is not followed: the download is refused after four requests."""
    fake_slack.add_file("F1", PNG)
    fake_slack.script_file("hop/4", redirect_to=fake_slack.file_url(f"{TEAM_ID}-F1/image.png"))
    for n in (3, 2, 1):
        fake_slack.script_file(f"hop/{n}", redirect_to=fake_slack.file_url(f"hop/{n + 1}"))
    reason = await rejected(make_fetcher(), attachment(fake_slack.file_url("hop/1")))
    assert reason == TOO_MANY_REDIRECTS
    assert fake_slack.download_paths == [f"/files-pri/hop/{n}" for n in (1, 2, 3, 4)]


async def test_declared_size_over_limit_refused_without_download(
    fake_slack: FakeSlack, make_fetcher: FetcherFactory
) -> None:
    """A declared size over max_bytes is refused before any download (event size or files.info size)."""
    big = b"\x89PNG" + bytes(MIB + MIB // 2)
    obj = fake_slack.add_file("F1", big)
    reason = await rejected(make_fetcher(), attachment(obj["url_private"], size=len(big)))
    assert reason == "it is too large (1.5 MB; the limit is 1 MB)"
    reason = await rejected(make_fetcher(), attachment("", needs_lookup=True))
    assert reason == "it is too large (1.5 MB; the limit is 1 MB)"
    assert fake_slack.download_paths == []


async def test_content_length_over_limit_refused(fake_slack: FakeSlack, make_fetcher: FetcherFactory) -> None:
    """With no declared size, a Content-Length over the limit is refused before the body is read."""
    big = bytes(2 * MIB)
    obj = fake_slack.add_file("F1", big)
    reason = await rejected(make_fetcher(), attachment(obj["url_private"]))
    assert reason == "it is too large (2.0 MB; the limit is 1 MB)"


async def test_body_larger_than_declared_stops_at_limit(
    fake_slack: FakeSlack, make_fetcher: FetcherFactory
) -> None:
    """A server that declares a small size but streams more is cut off once max_bytes is passed."""
    big = bytes(8 * MIB)
    fake_slack.add_file("F1", big, size=1000)
    url = fake_slack.script_file(f"{TEAM_ID}-F1/image.png", chunked=True)
    reason = await rejected(make_fetcher(), attachment(url, size=1000))
    assert reason == "it is too large (more than 1 MB; the limit is 1 MB)"


async def test_wrong_token_gets_sign_in_page(fake_slack: FakeSlack, make_fetcher: FetcherFactory) -> None:
    """Slack's 200 HTML sign-in page (bad token, no files:read) is not returned as the image."""
    obj = fake_slack.add_file("F1", PNG)
    reason = await rejected(make_fetcher(bot_token="xoxb-wrong"), attachment(obj["url_private"]))
    assert reason == SIGN_IN_PAGE
    assert "files:read" in reason


async def test_html_body_without_html_content_type_refused(
    fake_slack: FakeSlack, make_fetcher: FetcherFactory
) -> None:
    """A body that starts with <!DOCTYPE html> (after whitespace) is the sign-in page whatever its type."""
    obj = fake_slack.add_file("F1", b"\n  <!DOCTYPE html><html><body>Sign in</body></html>")
    reason = await rejected(make_fetcher(), attachment(obj["url_private"]))
    assert reason == SIGN_IN_PAGE


async def test_https_required_outside_plain_http_hosts(
    fake_slack: FakeSlack, make_fetcher: FetcherFactory
) -> None:
    """An http URL to a token host not in plain_http_hosts is refused without any request."""
    obj = fake_slack.add_file("F1", PNG)
    fetcher = make_fetcher(
        token_hosts=frozenset({"127.0.0.1", "files.slack.com"}), plain_http_hosts=frozenset()
    )
    reason = await rejected(fetcher, attachment(obj["url_private"]))
    assert reason == NOT_ALLOWED_HOST
    assert fake_slack.download_paths == []


async def test_missing_file_is_no_access(fake_slack: FakeSlack, make_fetcher: FetcherFactory) -> None:
    """A 404 from the file host is reported as no access, with the status."""
    reason = await rejected(make_fetcher(), attachment(fake_slack.file_url(f"{TEAM_ID}-FGONE/x.png")))
    assert reason == "I don't have access to it (Slack answered HTTP 404)"


async def test_files_info_file_not_found(fake_slack: FakeSlack, make_fetcher: FetcherFactory) -> None:
    """files.info answering file_not_found gives a clear reason and no download is tried."""
    reason = await rejected(make_fetcher(), attachment("", needs_lookup=True))
    assert reason == "I can't see that file (Slack said: file_not_found)"
    assert fake_slack.download_paths == []


async def test_files_info_missing_scope(fake_slack: FakeSlack, make_fetcher: FetcherFactory) -> None:
    """files.info answering missing_scope says the app needs files:read and a reinstall."""
    fake_slack.add_file("F1", PNG)
    fake_slack.error_next("files.info", "missing_scope")
    reason = await rejected(make_fetcher(), attachment("", needs_lookup=True))
    assert "`files:read`" in reason
    assert "reinstalled" in reason


async def test_slow_server_times_out_quickly(fake_slack: FakeSlack, make_fetcher: FetcherFactory) -> None:
    """A download that takes longer than timeout_seconds is refused soon after the deadline."""
    fake_slack.add_file("F1", PNG)
    url = fake_slack.script_file(f"{TEAM_ID}-F1/image.png", delay=3.0)
    started = time.monotonic()
    reason = await rejected(make_fetcher(timeout_seconds=0.3), attachment(url))
    assert reason == TIMED_OUT
    assert time.monotonic() - started < 1.5


async def test_token_never_logged(
    fake_slack: FakeSlack, foreign: ForeignHost, make_fetcher: FetcherFactory
) -> None:
    """Log events of successful and refused downloads never contain the token."""
    obj = fake_slack.add_file("F1", PNG)
    fake_slack.script_file("away", redirect_to=foreign.url("x"))
    fetcher = make_fetcher()
    with capture_logs() as logs:
        await fetcher.fetch(attachment(obj["url_private"]))
        with pytest.raises(ImageRejected):
            await fetcher.fetch(attachment(fake_slack.file_url("away")))
        with pytest.raises(ImageRejected):
            await fetcher.fetch(attachment(foreign.url("x")))
    assert logs
    assert all(BOT_TOKEN not in repr(entry) for entry in logs)
    assert any(entry.get("size") == len(PNG) and entry.get("host") == "127.0.0.1" for entry in logs)
