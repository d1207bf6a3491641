"""Quota commands as values, and the grammar of their argument string. Pure: no I/O.

The Slack slash command (``handlers.commands``) and the shell (``bot.cli``) both build these.

(nothing)          show my own spend
show @user         an admin looks at someone's spend
set @user USD      an admin sets someone's limit
set @user default  an admin removes someone's own limit (the workspace default applies again)
default USD        an admin sets the workspace default limit
reset @user        an admin zeroes someone's spend for this period
top                an admin lists this period's top spenders
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.billing.money import parse_usd

# A Slack user id as typed (U0123ABCD, W0123ABCD for Enterprise Grid), or as Slack escapes a mention.
_USER = re.compile(r"^(?:<@)?([UW][A-Z0-9]{2,})(?:\|[^>]*)?>?$")
# ``set @user default`` removes the user's own limit.
REMOVE_WORD = "default"


class UsageError(ValueError):
    """The arguments do not form a command; ``reason`` says why (empty: the wrong number of words).

    Each front end follows it with its own usage line.
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ShowOwn:
    pass


@dataclass(frozen=True, slots=True)
class Show:
    user: str


@dataclass(frozen=True, slots=True)
class SetLimit:
    """Give ``user`` their own limit; ``limit_pico`` None removes it."""

    user: str
    limit_pico: int | None


@dataclass(frozen=True, slots=True)
class SetDefault:
    limit_pico: int


@dataclass(frozen=True, slots=True)
class Reset:
    user: str


@dataclass(frozen=True, slots=True)
class Top:
    pass


QuotaCommand = ShowOwn | Show | SetLimit | SetDefault | Reset | Top


def parse_user(token: str) -> str:
    """``U0123ABCD``, ``<@U0123ABCD>`` or ``<@U0123ABCD|name>`` -> ``U0123ABCD``."""
    match = _USER.match(token.strip())
    if match is None:
        raise UsageError(f"{token!r} is not a user id (like U0123ABCD).")
    return match.group(1)


def parse_amount(token: str) -> int:
    """A dollar amount -> picodollars, or a UsageError naming the problem."""
    try:
        return parse_usd(token)
    except ValueError as exc:
        raise UsageError(f"{exc}.") from None


def parse_limit(token: str) -> int | None:
    """A user's limit as typed after ``set @user``: dollars -> picodollars, ``default`` -> None (remove it).

    Raises UsageError for anything else.
    """
    if token.strip().lower() == REMOVE_WORD:
        return None
    try:
        return parse_usd(token)
    except ValueError as exc:
        raise UsageError(f"{exc}, or {REMOVE_WORD} to remove the user's own limit.") from None


def parse_quota_command(text: str) -> QuotaCommand:
    """The command in ``text``, an argument string such as ``set U0123ABCD 5`` (words as listed above)."""
    words = text.split()
    if not words:
        return ShowOwn()
    name, args = words[0].lower(), words[1:]
    expected = {"show": 1, "set": 2, "default": 1, "reset": 1, "top": 0}
    if name not in expected:
        raise UsageError(f"Unknown subcommand {words[0]!r}.")
    if len(args) != expected[name]:
        raise UsageError()
    if name == "show":
        return Show(parse_user(args[0]))
    if name == "set":
        return SetLimit(parse_user(args[0]), parse_limit(args[1]))
    if name == "default":
        return SetDefault(parse_amount(args[0]))
    if name == "reset":
        return Reset(parse_user(args[0]))
    return Top()
