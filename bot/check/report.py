"""The checklist's lines: what was checked, how it went, and how to fix it. Pure data and text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """How one check went. Only FAIL stops ``serve`` from working (and makes ``check`` exit 1)."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class CheckLine:
    """One line of the checklist.

    ``name`` is the thing checked (``redis``, ``slack scopes``), ``detail`` what was found, ``fix`` what to
    do about a problem (empty when there is none). ``outage`` marks a failure of a service that is down
    or unreachable rather than misconfigured. ``blocks_start`` is False for a failure ``serve`` starts
    with anyway, logging it (Slack unreachable: it waits for Slack; a missing scope: one feature is off).
    """

    name: str
    status: Status
    detail: str
    fix: str = ""
    outage: bool = False
    blocks_start: bool = True

    def render(self) -> str:
        """``FAIL  redis: Redis refused the password -> put the right password in REDIS_URL``."""
        fix = f" -> {self.fix}" if self.fix else ""
        return f"{self.status.value:<4}  {self.name}: {self.detail}{fix}"

    def problem(self) -> str:
        """The line as one ``serve`` start-up problem: ``redis: … -> fix``."""
        fix = f" -> {self.fix}" if self.fix else ""
        return f"{self.name}: {self.detail}{fix}"


def ok(name: str, detail: str) -> CheckLine:
    """A check that passed."""
    return CheckLine(name, Status.OK, detail)


def warn(name: str, detail: str, fix: str) -> CheckLine:
    """Works, but something is worth changing."""
    return CheckLine(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str, *, outage: bool = False, blocks_start: bool = True) -> CheckLine:
    """``serve`` would not work (or not fully) until this is fixed."""
    return CheckLine(name, Status.FAIL, detail, fix, outage, blocks_start)


def skip(name: str, detail: str) -> CheckLine:
    """Not checked (it depends on something that failed, or does not apply)."""
    return CheckLine(name, Status.SKIP, detail)


def passed(lines: Iterable[CheckLine]) -> bool:
    """True when no line failed."""
    return all(line.status is not Status.FAIL for line in lines)


def summary(lines: Iterable[CheckLine]) -> str:
    """The closing line: ``all checks passed …`` or ``2 problems: glmbot serve would not work until
    fixed`` (warnings counted apart; "would start, but not everything works" when no failure blocks it)."""
    listed = list(lines)
    failures = sum(line.status is Status.FAIL for line in listed)
    warnings = sum(line.status is Status.WARN for line in listed)
    also = f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""
    if failures == 0:
        return f"all checks passed{also}: glmbot serve should work"
    plural = "s" if failures != 1 else ""
    blocking = any(line.status is Status.FAIL and line.blocks_start for line in listed)
    verdict = "would not work" if blocking else "would start, but not everything works,"
    return f"{failures} problem{plural}{also}: glmbot serve {verdict} until fixed"
