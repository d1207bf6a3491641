"""Secrets out of text: the one place that knows what a secret looks like.

Pure (``re`` only), so the log processor (``bot.logs.SecretRedactor``) and the model's error decoding
(``bot.model.sse``) share it. Two rules:

* **Known secrets** (the tokens and keys in the settings) are replaced wherever they appear, and so is any
  piece of one that starts like it: ``MIN_SECRET_PREFIX`` or more of its first characters. Text cut to a
  length (an error body shown in 200 characters) may end halfway through a key, and that half still
  says a lot about the key.
* **Key shapes**, for secrets nobody told us about (a user token pasted somewhere, a rotated key, the key
  of another provider echoed in an error), at any length, so a cut key is caught too:

  - Slack tokens ``xoxb-``, ``xoxp-``, ``xoxa-``, ``xoxe.xoxp-``, ... and app tokens ``xapp-``
    (https://docs.slack.dev/authentication/tokens);
  - OpenAI-style keys ``sk-...``, OpenRouter's ``sk-or-v1-...`` among them
    (https://openrouter.ai/docs/api-reference/authentication);
  - Z.ai keys ``<32 hex>.<16 letters and digits>`` (an id and a secret joined by a dot);
  - bearer credentials ``Bearer <value>`` (the scheme is kept, the value goes).

Redact before cutting: ``Redactor.cut`` does both in that order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MIN_SECRET_PREFIX", "REDACTED", "Redactor"]

REDACTED = "[REDACTED]"
# A piece of a known secret this long is redacted too. Shorter pieces say little about a random key, and
# six characters of a random key turn up by chance in other text almost never.
MIN_SECRET_PREFIX = 6
# Secrets shorter than this are not looked for: replacing every "abc" in every log line would say more
# about the secret than it hides.
MIN_SECRET_LENGTH = 4

_VALUE = r"[A-Za-z0-9._~+/=-]"
_SHAPES = re.compile(
    # Slack: xoxb-, xoxp-, xoxa-, xoxo-, xoxr-, xoxs-, xoxe-, xoxe.xoxp-, xapp-; anything after the dash.
    r"\b(?:xox[a-z](?:\.xox[a-z])?|xapp)-[A-Za-z0-9-]*"
    # sk-... (OpenAI, OpenRouter's sk-or-v1-..., many routers): one character after the dash is enough.
    r"|\bsk-[A-Za-z0-9_-]+"
    # Z.ai: 32 hex digits, a dot, then the secret part (or what is left of it).
    r"|\b[0-9a-fA-F]{32}\.[A-Za-z0-9]*"
)
# "Bearer <value>": a value of 8 characters or more, or a shorter one with a digit in it, so that
# "invalid bearer token" in an error message stays readable while "Bearer 3fa9" (a cut key) goes.
_BEARER = re.compile(rf"\b((?i:bearer)\s+)(?:{_VALUE}{{8,}}|(?={_VALUE}*[0-9]){_VALUE}+)")


class Redactor:
    """Replaces known secrets (whole or a leading piece) and key-shaped strings with ``[REDACTED]``.

    ``secrets``: the values to look for; those shorter than 4 characters are ignored.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        unique = {secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted(unique, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """``text`` with every known secret, every piece of one, and every key shape replaced."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for secret in self._secrets:
            text = _redact_pieces(text, secret)
        text = _SHAPES.sub(REDACTED, text)
        return _BEARER.sub(rf"\g<1>{REDACTED}", text)

    def cut(self, text: str, limit: int) -> str:
        """``text`` redacted, then cut to at most ``limit`` characters (in that order: a secret cut in
        half first would no longer be recognised whole)."""
        return self(text)[:limit]


def _redact_pieces(text: str, secret: str) -> str:
    """``text`` with each run that matches the start of ``secret`` for ``MIN_SECRET_PREFIX`` characters
    or more replaced (the whole secret has been replaced already, so these are pieces of it)."""
    head = secret[:MIN_SECRET_PREFIX]
    if len(head) < MIN_SECRET_PREFIX:
        return text
    parts: list[str] = []
    position = 0
    start = text.find(head)
    while start != -1:
        end = start + len(head)
        while end < len(text) and end - start < len(secret) and text[end] == secret[end - start]:
            end += 1
        parts += [text[position:start], REDACTED]
        position = end
        start = text.find(head, end)
    parts.append(text[position:])
    return "".join(parts)


# A URL's user:password@ (matched up to the last "@" of the word, so a password holding "/", "#" or "?"
# unescaped is still caught) and a password passed as a query parameter (redis-py reads
# ``unix:///run/redis.sock?password=…``; https://redis.readthedocs.io/en/stable/connections.html).
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s:@/]*):(?P<password>\S*)@")
_URL_PASSWORD_PARAM = re.compile(r"(?P<key>[?&](?:password|pass|pwd)=)[^&#\s]*", re.IGNORECASE)


def redact_url(text: str) -> str:
    """``text`` with every URL password replaced by ``***``: ``redis://user:***@host``,
    ``unix:///redis.sock?password=***``; the rest (scheme, user, host, path) stays readable."""
    text = _URL_USERINFO.sub(lambda match: f"{match['scheme']}{match['user']}:***@", text)
    return _URL_PASSWORD_PARAM.sub(lambda match: f"{match['key']}***", text)


def url_passwords(url: str | None) -> list[str]:
    """The passwords written in ``url`` (user:password@ and password= forms), for the log redactor."""
    if not url:
        return []
    found = [match["password"] for match in _URL_USERINFO.finditer(url)]
    found += [match[0].split("=", 1)[1] for match in _URL_PASSWORD_PARAM.finditer(url)]
    return [password for password in found if password]
