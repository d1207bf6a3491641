"""Redis key names of the spend quotas, and how long each key lives.

Key layout (money is an integer number of picodollars; every amount stays below 2**53 because limits are
capped at ``MAX_LIMIT_USD``, so Lua's doubles hold them exactly):

* ``glmbot:{quota:<user>}:limit`` -- string, the user's own limit. Permanent (an admin setting).
* ``glmbot:{quota:<user>}:spend:<period label>`` -- hash ``spent``, ``replies``, ``notified``. Expires 90
  days after the period ends, so past periods stay readable for reporting.
* ``glmbot:{quota:<user>}:reservations:<period label>`` -- hash reservation id ->
  ``"<amount>:<expires_at_ms>:<max_tokens>:<limit>"``. A reservation is held in the period it was made in
  and settled into it, so it never blocks the next period. The TTL is renewed to twice the reservation TTL
  on each reserve; expired entries are dropped by the next reserve of that period.
* ``glmbot:{quota:<user>}:settled:<reservation id>`` -- marker that the reservation was settled, holding
  the first settle's answer: the same call resent gets it again, any other settle charges nothing. Twice
  the reservation TTL.
* ``glmbot:{quota:<user>}:op:<operation id>`` -- the answer of one admin write on the user (set, remove,
  reset), so a resent command returns it again. Twice the reservation TTL.
* ``glmbot:quota:default`` -- string, the workspace default limit. Permanent (an admin setting).
* ``glmbot:quota:op:{glmbot:quota:default}:<operation id>`` -- the answer of one write of the default; its
  hash tag is the default key's whole name, so both are in one slot. Twice the reservation TTL.
* ``glmbot:quota:top:<period label>`` -- sorted set user -> spent. Same TTL as the spend hashes.

The braces are a Redis Cluster hash tag: every key of one user is in one slot, and each Lua script touches
that slot only. The top sets live elsewhere and are written with plain, idempotent commands outside the
scripts. The limit is the user's own, else the workspace default, else the configured setting; the
workspace default is read with one GET and cached in-process for ``limits.DEFAULT_CACHE_SECONDS``.
Periods roll over by themselves: the label is part of the key and comes from the injected clock. Times
in the scripts come from that clock too (not Redis TIME), so tests can move time.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_KEY",
    "default_op_key",
    "limit_key",
    "reservations_key",
    "settled_key",
    "spend_key",
    "top_key",
    "user_op_key",
]

DEFAULT_KEY = "glmbot:quota:default"


def limit_key(user: str) -> str:
    """The user's own limit (permanent)."""
    return f"glmbot:{{quota:{_checked(user)}}}:limit"


def spend_key(user: str, period_label: str) -> str:
    """The user's spend hash for one period."""
    return f"glmbot:{{quota:{_checked(user)}}}:spend:{period_label}"


def reservations_key(user: str, period_label: str) -> str:
    """The user's live reservations made in one period."""
    return f"glmbot:{{quota:{_checked(user)}}}:reservations:{period_label}"


def settled_key(user: str, reservation_id: str) -> str:
    """The marker that one reservation of ``user`` was settled."""
    return f"glmbot:{{quota:{_checked(user)}}}:settled:{reservation_id}"


def user_op_key(user: str, operation_id: str) -> str:
    """The answer of one admin write on ``user``'s keys."""
    return f"glmbot:{{quota:{_checked(user)}}}:op:{operation_id}"


def default_op_key(operation_id: str) -> str:
    """The answer of one write of the workspace default, in the default key's slot."""
    return f"glmbot:quota:op:{{{DEFAULT_KEY}}}:{operation_id}"


def top_key(period_label: str) -> str:
    """The period's top-spenders sorted set."""
    return f"glmbot:quota:top:{period_label}"


def _checked(user: str) -> str:
    """``user`` if it cannot break the hash tag."""
    if not user or "{" in user or "}" in user:
        raise ValueError(f"not a usable user id: {user!r}")
    return user
