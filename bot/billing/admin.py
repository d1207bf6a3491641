"""Quota operations with answers in words, shared by ``/glm-quota`` and ``glmbot quota``.

Who may run what is decided by the caller (the Slack handler checks admin rights; the shell is trusted).
How a user is named is the front end's choice too: Slack passes a mention (``<@U0123ABCD>``), the shell
prints the bare id.

Every change is logged as one ``quota_admin_change`` line: ``actor`` (who ran it: a Slack user id, or
``shell``), ``action`` (``set_limit``, ``remove_limit``, ``set_default``, ``reset``), ``user`` (whose
quota; absent for the workspace default), ``old_usd`` and ``new_usd`` as exact dollars (null: no limit of
that kind). The old value is the one the store replaced, read in the same atomic script as the write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from bot.billing.commands import QuotaCommand, Reset, SetDefault, SetLimit, Show, ShowOwn
from bot.billing.ledger import QuotaLedger
from bot.billing.money import format_usd, usd_text
from bot.billing.periods import format_moment
from bot.billing.records import QuotaStatus

log = structlog.get_logger(__name__)

TOP_COUNT = 10
_SOURCE = {"user": "a personal limit", "workspace": "the workspace default", "setting": "the default"}


UserLabel = Callable[[str], str]
"""How a front end names a user id in its answers."""


def describe(status: QuotaStatus, own: bool, label: UserLabel = str) -> str:
    """One user's spend, what replies in progress hold, the limit, what is left, replies and reset time.

    Spent money (settled replies) and held money (the worst case of replies still in progress, which
    comes back when they cost less) are named apart, so nobody reads a hold as spending.
    """
    whose = "Your" if own else f"{label(status.user)}'s"
    remaining = max(0, status.limit_pico - status.spent_pico - status.reserved_pico)
    kind = status.period.kind
    return "\n".join(
        [
            f"{whose} glmbot spend this {kind} ({status.period.label}): {format_usd(status.spent_pico)} "
            f"spent of {format_usd(status.limit_pico)} ({_SOURCE[status.limit_source]}).",
            f"Held by replies in progress: {format_usd(status.reserved_pico)}. "
            f"Left to spend: {format_usd(remaining)}.",
            f"Replies this {kind}: {status.replies}. Resets {format_moment(status.period.end)}.",
        ]
    )


def _log_change(actor: str, action: str, **fields: Any) -> None:
    """The audit line of one admin change (amounts as exact dollars; no secrets)."""
    log.info("quota_admin_change", actor=actor, action=action, **fields)


def _usd(pico: int | None) -> str | None:
    return None if pico is None else usd_text(pico)


class QuotaAdmin:
    """Runs quota commands against the ledger, logs each change, and says what happened."""

    def __init__(self, ledger: QuotaLedger, user_label: UserLabel = str) -> None:
        self._ledger = ledger
        self._label = user_label

    async def run(self, command: QuotaCommand, caller: str) -> str:
        """Carry out ``command`` for ``caller``; the answer to show them. Raises StoreUnavailable."""
        if isinstance(command, ShowOwn):
            return describe(await self._ledger.status(caller), own=True, label=self._label)
        if isinstance(command, Show):
            return describe(await self._ledger.status(command.user), command.user == caller, self._label)
        if isinstance(command, SetLimit):
            return await self._set_limit(command, caller)
        if isinstance(command, SetDefault):
            old = await self._ledger.set_workspace_default(command.limit_pico)
            _log_change(caller, "set_default", old_usd=_usd(old), new_usd=_usd(command.limit_pico))
            return f"The workspace default limit is now {format_usd(command.limit_pico)} per period."
        if isinstance(command, Reset):
            return await self._reset(command, caller)
        return await self._top()

    async def _set_limit(self, command: SetLimit, caller: str) -> str:
        """Set or remove one user's own limit."""
        user, new = command.user, command.limit_pico
        old = await self._ledger.set_user_limit(user, new)
        action = "remove_limit" if new is None else "set_limit"
        _log_change(caller, action, user=user, old_usd=_usd(old), new_usd=_usd(new))
        status = await self._ledger.status(user)
        name, kind = self._label(user), status.period.kind
        if new is not None:
            return f"{name}'s limit is now {format_usd(new)} per {kind}."
        applies = f"{_SOURCE[status.limit_source]} ({format_usd(status.limit_pico)} per {kind}) applies"
        if old is None:
            return f"{name} has no personal limit: {applies}."
        return f"{name}'s personal limit of {format_usd(old)} is removed: {applies}."

    async def _reset(self, command: Reset, caller: str) -> str:
        """Zero one user's spend for this period."""
        cleared = await self._ledger.reset_user(command.user)
        _log_change(
            caller,
            "reset",
            user=command.user,
            period=cleared.period.label,
            old_usd=usd_text(cleared.spent_pico),
            new_usd=usd_text(0),
            held_usd=usd_text(cleared.held_pico),
            replies=cleared.replies,
        )
        return (
            f"{self._label(command.user)}'s spend for this period is reset to {format_usd(0)} "
            f"(it was {format_usd(cleared.spent_pico)} spent over {cleared.replies} replies, "
            f"and {format_usd(cleared.held_pico)} held by replies in progress)."
        )

    async def _top(self) -> str:
        ranking = await self._ledger.top(TOP_COUNT)
        if not ranking:
            return "Nobody has spent anything this period."
        rows = [
            f"{rank}. {self._label(user)}: {format_usd(spent)}"
            for rank, (user, spent) in enumerate(ranking, 1)
        ]
        return "Top spenders this period:\n" + "\n".join(rows)


def is_admin_command(command: QuotaCommand, caller: str) -> bool:
    """True for commands only admins may run (anyone may look at their own spend)."""
    if isinstance(command, ShowOwn):
        return False
    return not (isinstance(command, Show) and command.user == caller)
