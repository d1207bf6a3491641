"""Where the bot token may go with a file download, and over which scheme: the one rule, in one place.

Pure (``urllib`` only): ``bot.settings`` builds the two sets from the settings, the Slack file
downloader (``handlers/files.py``) checks each URL against them with ``token_allowed``.

* **Hosts.** The token goes only to a file host: ``SLACK_FILE_HOSTS``, else ``files.slack.com`` and the
  host of ``SLACK_API_URL`` (the contract's default), plus every host named in
  ``SLACK_FILE_HOSTS_PLAIN_HTTP``.
* **Schemes.** Only over https, but for two cases of plain http, each named by its host or host:port:

  - the host and port of ``SLACK_API_URL`` when that URL is itself ``http``: a Slack-compatible gateway
    or a local emulator serves files where it serves the API, and the token already travels to it in
    the clear with every API call;
  - the entries of ``SLACK_FILE_HOSTS_PLAIN_HTTP`` (``host``: any port; ``host:port``: that port).

  Not even a loopback host gets it over http otherwise: the rule is the same for every host, so what is
  tested on a laptop is what runs in production.

  Slack serves files from ``https://files.slack.com`` only
  (https://docs.slack.dev/reference/objects/file-object), so naming it in ``SLACK_FILE_HOSTS`` never
  lets the token go to ``http://files.slack.com``.

Plain-http entries are kept as text: ``host``, or ``host:port`` with an IPv6 host in brackets
(``[::1]:8080``), lower case.
"""

from __future__ import annotations

from collections.abc import Collection
from ipaddress import ip_address
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_FILE_HOST",
    "api_plain_http_entry",
    "entry_host",
    "host_entry",
    "is_loopback",
    "token_allowed",
]

DEFAULT_FILE_HOST = "files.slack.com"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_entry(text: str) -> str:
    """``text`` (``Files.Example.com``, ``gateway:8080``, ``[::1]:8080``) as an entry: ``host`` or
    ``host:port``, lower case. Raises ValueError when it is not a host with an optional port (a URL, a
    path, a user name or a bad port)."""
    cleaned = text.strip().lower()
    try:
        parts = urlsplit(f"//{cleaned}")
        port = parts.port
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a host or host:port") from None
    extra = parts.path or parts.query or parts.fragment or parts.username is not None
    if not parts.hostname or extra or "/" in cleaned:
        raise ValueError(f"{text.strip()!r} is not a host or host:port (no scheme, no path)")
    return _entry(parts.hostname, port)


def entry_host(entry: str) -> str:
    """The host of an entry: ``gateway:8080`` -> ``gateway``, ``[::1]:8080`` -> ``::1``."""
    return urlsplit(f"//{entry}").hostname or entry


def api_plain_http_entry(api_url: str) -> str | None:
    """``host:port`` of ``SLACK_API_URL`` when it is an ``http`` URL (port 80 when none is written);
    None for https."""
    parts = urlsplit(api_url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    return _entry(parts.hostname, parts.port or _DEFAULT_PORTS["http"])


def token_allowed(
    scheme: str, host: str, port: int | None, token_hosts: Collection[str], plain_http: Collection[str]
) -> bool:
    """May the bot token be sent to ``scheme://host:port``? ``port`` None means the scheme's default.

    The parts must come from the very URL object the request will be made with (no second parser).
    ``token_hosts``: lower-case host names; ``plain_http``: entries as made by ``host_entry``.
    """
    host = host.lower()
    if host not in token_hosts:
        return False
    if scheme == "https":
        return True
    if scheme != "http":
        return False
    bare = _entry(host, None)
    return bare in plain_http or _entry(host, port or _DEFAULT_PORTS["http"]) in plain_http


def is_loopback(host: str) -> bool:
    """``localhost``, an address in 127.0.0.0/8, or ``::1`` (``glmbot check`` does not warn about plain
    http to these: the token does not leave the machine)."""
    if host.lower() == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _entry(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"
