"""Quota operations with answers in words, shared by ``/glm-quota`` and ``glmbot quota``.

Who may run what is decided by the caller (the Slack handler checks admin rights; the shell is trusted).
How a user is named is the front end's choice too: Slack passes a mention (``<@U0123ABCD>``), the shell
prints the bare id.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.billing.commands import QuotaCommand, Reset, SetDefault, SetLimit, Show, ShowOwn
from bot.billing.ledger import QuotaLedger
from bot.billing.money import format_usd
from bot.billing.periods import format_moment
from bot.billing.records import QuotaStatus

TOP_COUNT = 10
_SOURCE = {"user": "a personal limit", "workspace": "the workspace default", "setting": "the default"}


UserLabel = Callable[[str], str]
"""How a front end names a user id in its answers."""


def describe(status: QuotaStatus, own: bool, label: UserLabel = str) -> str:
    """One user's spend, limit, remaining budget, replies and reset time."""
    whose = "Your" if own else f"{label(status.user)}'s"
    remaining = max(0, status.limit_pico - status.spent_pico - status.reserved_pico)
    lines = [
        f"{whose} glmbot spend this {status.period.kind} ({status.period.label}): "
        f"{format_usd(status.spent_pico)} of {format_usd(status.limit_pico)} "
        f"({_SOURCE[status.limit_source]}), {format_usd(remaining)} left.",
        f"Replies this {status.period.kind}: {status.replies}. Resets {format_moment(status.period.end)}.",
    ]
    if status.reserved_pico:
        lines.append(f"{format_usd(status.reserved_pico)} is held for replies in progress.")
    return "\n".join(lines)


class QuotaAdmin:
    """Runs quota commands against the ledger and says what happened."""

    def __init__(self, ledger: QuotaLedger, user_label: UserLabel = str) -> None:
        self._ledger = ledger
        self._label = user_label

    async def run(self, command: QuotaCommand, caller: str) -> str:
        """Carry out ``command`` for ``caller``; the answer to show them."""
        if isinstance(command, ShowOwn):
            return describe(await self._ledger.status(caller), own=True, label=self._label)
        if isinstance(command, Show):
            return describe(await self._ledger.status(command.user), command.user == caller, self._label)
        if isinstance(command, SetLimit):
            await self._ledger.set_user_limit(command.user, command.limit_pico)
            period = (await self._ledger.status(command.user)).period.kind
            return (
                f"{self._label(command.user)}'s limit is now {format_usd(command.limit_pico)} per {period}."
            )
        if isinstance(command, SetDefault):
            await self._ledger.set_workspace_default(command.limit_pico)
            return f"The workspace default limit is now {format_usd(command.limit_pico)} per period."
        if isinstance(command, Reset):
            await self._ledger.reset_user(command.user)
            return f"{self._label(command.user)}'s spend for this period is reset to {format_usd(0)}."
        return await self._top()

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
