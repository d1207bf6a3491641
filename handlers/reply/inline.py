"""Render the inline Markdown of one line (spans, links, emphasis) as Slack mrkdwn.

Pure text functions (stdlib only, no I/O), used by ``mrkdwn`` for every rendered line and table cell;
the rules are listed in ``mrkdwn``'s docstring. ``\\x00`` and ``\\x01`` mark placeholders here, so
callers remove them from the text first (``mrkdwn`` does).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

__all__ = ["Mode", "escape", "inline"]

Mode = Literal["slack", "heading", "cell"]

_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt);)")
_URL_LIKE = re.compile(r"\s*(?:[a-z][a-z0-9+.-]*://|www\.)", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\x00(\d+)\x01")

# Things that must not be touched by escaping or emphasis, leftmost first.
_ATOM = re.compile(
    r"""
      (?P<esc>\\[\\`*_{}\[\]()\#+\-.!|~<>])
    | (?P<ticks>`+)(?P<code>.+?)(?<!`)(?P=ticks)(?!`)
    | (?P<token><[@#!][A-Za-z0-9^|@._-]+>)
    | <(?P<slack_url>(?:https?|mailto|ftp):[^\s<>|]+)\|(?P<slack_label>[^<>]*)>
    | <(?P<auto>(?:https?|mailto|ftp):[^\s<>]+)>
    | !?\[(?P<label>(?:[^\[\]]|\[[^\[\]]*\])*)\]\((?P<url>(?:[^()\s]|\([^()\s]*\))+)(?:[ \t]+"[^"]*")?\)
    | (?P<bare>https?://[^\s<>]+)
    """,
    re.VERBOSE,
)

_EMPHASIS = re.compile(
    r"(?<![A-Za-z0-9*])(?P<star>\*{1,3})(?![\s*])(?P<star_body>.+?)(?<![\s*])(?P=star)(?![A-Za-z0-9*])"
    r"|(?<![A-Za-z0-9_])(?P<under>_{1,3})(?![\s_])(?P<under_body>.+?)(?<![\s_])(?P=under)(?![A-Za-z0-9_])"
    r"|(?<!~)~~(?![\s~])(?P<tilde_body>.+?)(?<![\s~])~~(?!~)"
)


def escape(text: str) -> str:
    """Escape Slack's control characters, leaving existing entities alone."""
    return _AMPERSAND.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")


def inline(text: str, mode: Mode = "slack") -> str:
    """Render inline Markdown: ``slack`` converts, ``heading`` drops emphasis, ``cell`` makes plain text."""
    stash: list[str] = []

    def keep(piece: str) -> str:
        stash.append(piece)
        return f"\x00{len(stash) - 1}\x01"

    protected = _ATOM.sub(lambda match: _atom(match, mode, keep), text)
    rendered = _emphasis(escape(protected), strip=mode != "slack")
    return _PLACEHOLDER.sub(lambda match: stash[int(match[1])], rendered)


def _atom(match: re.Match[str], mode: Mode, keep: Callable[[str], str]) -> str:
    """Render one protected construct and hide it behind a placeholder."""
    if match["esc"]:
        return keep(escape(match["esc"][1]))
    if match["ticks"]:
        code = match["code"]
        if code.startswith(" ") and code.endswith(" ") and code.strip():
            code = code[1:-1]
        return keep(escape(code) if mode == "cell" else f"`{escape(code)}`")
    if match["token"]:
        # Channel links notify nobody and stay links. User mentions, @here/@channel/@everyone and
        # user-group mentions are shown as text: model output (or a prompt injection, or a file name
        # it echoes) must never ping a person or a crowd.
        token = match["token"]
        return keep(token if token.startswith("<#") else escape(token))
    if match["slack_url"]:
        # A link the model wrote in Slack's own form: keep it a link (its label rendered as text).
        return keep(_link(match["slack_url"], inline(match["slack_label"], "cell"), mode))
    if match["auto"]:
        return keep(_link(match["auto"], "", mode))
    if match["bare"]:
        url, tail = _split_url(match["bare"])
        return keep(_link(url, "", mode)) + tail
    return keep(_link(match["url"], inline(match["label"], "cell"), mode))


def _link(url: str, label: str, mode: Mode) -> str:
    """A Slack link, or ``label (url)`` as plain text for table cells."""
    target = escape(url)
    if mode == "cell":
        return f"{label} ({target})" if label and label != target else target
    target = target.replace("|", "%7C")
    if _URL_LIKE.match(label) and label.rstrip("/") != target.rstrip("/"):
        return f"<{target}>"  # a label that is another address would hide where the link goes
    return f"<{target}|{label}>" if label and label != target else f"<{target}>"


def _split_url(url: str) -> tuple[str, str]:
    """Split trailing punctuation (and an unbalanced ``)``) off a bare URL."""
    end = len(url)
    while end > 0 and (
        url[end - 1] in ".,;:!?'\"*~"
        or (url[end - 1] == ")" and url.count("(", 0, end) < url.count(")", 0, end))
    ):
        end -= 1
    return url[:end], url[end:]


def _emphasis(text: str, *, strip: bool) -> str:
    """Convert (or, with ``strip``, remove) emphasis markers; nested emphasis is handled recursively."""

    def convert(match: re.Match[str]) -> str:
        body = _emphasis(match["star_body"] or match["under_body"] or match["tilde_body"], strip=strip)
        marker = match["star"] or match["under"]
        if strip:
            return body
        if marker is None:
            return f"~{body}~"
        return {1: f"_{body}_", 2: f"*{body}*"}.get(len(marker), f"*_{body}_*")

    return _EMPHASIS.sub(convert, text)
