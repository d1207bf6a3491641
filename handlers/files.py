"""SlackFileFetcher: downloads a Slack-hosted file with the bot token, without leaking the token.

A file's URL comes from the event payload, so it is untrusted data. The rules:

* The ``Authorization: Bearer`` header goes only to hosts in ``token_hosts`` (exact, lower-cased match),
  and only over https; plain http only where ``plain_http_hosts`` names the host (any port) or the
  host:port (``bot/file_hosts.py`` has the rule, ``Settings`` the two sets). Any other URL is refused
  before a single byte is sent.
* httpx never follows redirects itself. Up to ``MAX_REDIRECTS`` hops are followed by hand, each checked by
  the same rule; a hop that fails the check is not requested at all.
* Size is capped three times: the declared size (event or ``files.info``), ``Content-Length``, and the
  bytes actually read while streaming.
* The whole fetch (lookup included) is bounded by ``timeout_seconds``.
* Slack answers a download it will not serve (missing ``files:read``, bad token, app not reinstalled) with
  an HTML sign-in page and status 200; that page is recognised and never returned as file bytes.

Every failure is an ``ImageRejected`` whose reason completes "I couldn't use NAME: ...".
Logs carry the file id, host, status and size, never the URL's query, never the token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import structlog
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.domain import Attachment
from bot.core.errors import DeliveryFailed, ImageRejected
from bot.file_hosts import token_allowed
from handlers.errors import SlackRefused, slack_errors

log = structlog.get_logger(__name__)

MAX_REDIRECTS = 3
_MIB = 1024 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_NO_ACCESS_STATUSES = frozenset({401, 403, 404})
_SNIFF_BYTES = 512

NOT_ALLOWED_HOST = "its address is not on a Slack file host I'm allowed to send my token to"
REDIRECTED_AWAY = "Slack redirected the download to another host"
REDIRECTED_INSECURE = "Slack redirected the download to an address without https"
TOO_MANY_REDIRECTS = "Slack redirected the download too many times"
SIGN_IN_PAGE = (
    "Slack sent a sign-in page instead of the file: the app needs the files:read scope "
    "(reinstall it after adding the scope) and access to the channel"
)
MISSING_SCOPE = (
    "I'm not allowed to read files: the app needs the `files:read` scope and must be reinstalled "
    "after adding it"
)
TIMED_OUT = "the download from Slack failed (timed out)"
CONNECTION_ERROR = "the download from Slack failed (connection error)"


def too_large(size: int, max_bytes: int, *, exact: bool = True) -> str:
    """The reason for a file over the limit; ``exact=False`` when only "more than the limit" is known."""
    limit = f"{max_bytes / _MIB:g}"
    shown = f"{size / _MIB:.1f} MB" if exact else f"more than {limit} MB"
    return f"it is too large ({shown}; the limit is {limit} MB)"


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip()[:15].lower()
    return start.startswith((b"<!doctype html", b"<html"))


def _content_length(headers: httpx.Headers) -> int | None:
    raw = headers.get("content-length")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 0 else None


class SlackFileFetcher:
    """Downloads Slack-hosted files with the bot token, safely."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        slack: AsyncWebClient,
        bot_token: str,
        token_hosts: frozenset[str],
        plain_http_hosts: frozenset[str],
        max_bytes: int,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._http = http
        self._slack = slack
        self._token = bot_token
        self._token_hosts = frozenset(h.lower() for h in token_hosts)
        self._plain_http_hosts = frozenset(h.lower() for h in plain_http_hosts)
        self._max_bytes = max_bytes
        self._timeout = timeout_seconds

    async def fetch(self, attachment: Attachment) -> bytes:
        """The file's bytes (at most ``max_bytes``); raises ``ImageRejected`` with a user-facing reason."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._fetch(attachment)
        except TimeoutError:
            log.info("slack_file.timeout", file_id=attachment.file_id, timeout_seconds=self._timeout)
            raise ImageRejected(TIMED_OUT) from None
        except ImageRejected as rejected:
            log.info("slack_file.rejected", file_id=attachment.file_id, reason=rejected.reason)
            raise

    # ------------------------------------------------------------------ steps

    async def _fetch(self, attachment: Attachment) -> bytes:
        self._check_size(attachment.size)
        location, size = attachment.location, attachment.size
        if attachment.needs_lookup or not location:
            location, looked_up_size = await self._lookup(attachment.file_id)
            size = looked_up_size if looked_up_size is not None else size
            self._check_size(size)
        try:
            url = httpx.URL(location)
        except (httpx.InvalidURL, TypeError):
            raise ImageRejected(NOT_ALLOWED_HOST) from None
        if not self._allowed(url):
            log.warning(
                "slack_file.host_refused",
                file_id=attachment.file_id,
                host=url.host,
                port=url.port,
                scheme=url.scheme,
            )
            raise ImageRejected(NOT_ALLOWED_HOST)
        return await self._download(attachment.file_id, url)

    async def _lookup(self, file_id: str) -> tuple[str, int | None]:
        """``files.info``: the download URL and declared size of ``file_id``."""
        try:
            with slack_errors("files.info"):
                response = await self._slack.files_info(file=file_id)
        except SlackRefused as refused:
            log.info("slack_file.files_info_failed", file_id=file_id, error=refused.error)
            if refused.error == "missing_scope":
                raise ImageRejected(MISSING_SCOPE) from None
            raise ImageRejected(f"I can't see that file (Slack said: {refused.error})") from None
        except DeliveryFailed:
            log.info("slack_file.files_info_unreachable", file_id=file_id)
            raise ImageRejected("I couldn't ask Slack about it (connection error)") from None
        file_obj = response.get("file")
        if not isinstance(file_obj, Mapping):
            raise ImageRejected("Slack did not describe the file")
        if file_obj.get("mode") == "tombstone":
            raise ImageRejected("it has been deleted")
        url = _str_or_none(file_obj, "url_private_download") or _str_or_none(file_obj, "url_private")
        if url is None:
            raise ImageRejected("Slack gave me no download address for it")
        size = file_obj.get("size")
        log.debug(
            "slack_file.looked_up",
            file_id=file_id,
            mimetype=file_obj.get("mimetype"),
            size=size,
        )
        return url, size if isinstance(size, int) and not isinstance(size, bool) else None

    async def _download(self, file_id: str, url: httpx.URL) -> bytes:
        headers = {"Authorization": f"Bearer {self._token}"}
        for hop in range(MAX_REDIRECTS + 1):
            try:
                async with self._http.stream("GET", url, headers=headers, follow_redirects=False) as resp:
                    status = resp.status_code
                    if status in _REDIRECT_STATUSES:
                        url = self._next_hop(file_id, url, resp, hop)
                        continue
                    log_fields = {"file_id": file_id, "host": url.host, "status": status}
                    if status in _NO_ACCESS_STATUSES:
                        log.info("slack_file.no_access", **log_fields)
                        raise ImageRejected(f"I don't have access to it (Slack answered HTTP {status})")
                    if not 200 <= status < 300:
                        log.info("slack_file.bad_status", **log_fields)
                        raise ImageRejected(f"the download from Slack failed (HTTP {status})")
                    content_type = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                    if content_type == "text/html":
                        log.warning("slack_file.sign_in_page", **log_fields)
                        raise ImageRejected(SIGN_IN_PAGE)
                    declared = _content_length(resp.headers)
                    self._check_size(declared)
                    data = await self._read_capped(resp)
            except httpx.TimeoutException:
                raise ImageRejected(TIMED_OUT) from None
            except httpx.HTTPError:
                log.info("slack_file.transport_error", file_id=file_id, host=url.host)
                raise ImageRejected(CONNECTION_ERROR) from None
            if _looks_like_html(data[:_SNIFF_BYTES]):
                log.warning("slack_file.sign_in_page", file_id=file_id, host=url.host, status=status)
                raise ImageRejected(SIGN_IN_PAGE)
            log.info("slack_file.downloaded", file_id=file_id, host=url.host, status=status, size=len(data))
            return data
        log.info("slack_file.too_many_redirects", file_id=file_id, host=url.host)
        raise ImageRejected(TOO_MANY_REDIRECTS)

    def _next_hop(self, file_id: str, url: httpx.URL, resp: httpx.Response, hop: int) -> httpx.URL:
        """Where a redirect points, if it may be followed (checked before any request goes there)."""
        location = resp.headers.get("location")
        if not location:
            raise ImageRejected(f"the download from Slack failed (HTTP {resp.status_code} without a target)")
        try:
            target = url.join(location)
        except (httpx.InvalidURL, TypeError):
            raise ImageRejected(REDIRECTED_AWAY) from None
        log.info(
            "slack_file.redirect",
            file_id=file_id,
            host=url.host,
            status=resp.status_code,
            target_host=target.host,
            hop=hop + 1,
        )
        if hop >= MAX_REDIRECTS:
            raise ImageRejected(TOO_MANY_REDIRECTS)
        if target.host.lower() not in self._token_hosts or target.userinfo:
            raise ImageRejected(REDIRECTED_AWAY)
        if not self._allowed(target):
            raise ImageRejected(REDIRECTED_INSECURE)
        return target

    async def _read_capped(self, resp: httpx.Response) -> bytes:
        body = bytearray()
        async for chunk in resp.aiter_bytes():
            body += chunk
            if len(body) > self._max_bytes:
                raise ImageRejected(too_large(len(body), self._max_bytes, exact=False))
        return bytes(body)

    # ------------------------------------------------------------------ checks

    def _allowed(self, url: httpx.URL) -> bool:
        """May the bot token be sent to ``url``? (host on the list; https, or http where the plain list
        names its host or host:port). Checked on the httpx URL the request is made with."""
        if url.userinfo:
            return False
        return token_allowed(url.scheme, url.host, url.port, self._token_hosts, self._plain_http_hosts)

    def _check_size(self, size: int | None) -> None:
        if size is not None and size > self._max_bytes:
            raise ImageRejected(too_large(size, self._max_bytes))


def _str_or_none(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and value else None
