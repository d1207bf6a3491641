"""When the next ``chat.update`` of one streaming reply may go out.

A pure object over a clock value the caller passes in: the first edit may go at once, later ones no
closer than ``interval`` seconds apart. (A 429's ``Retry-After`` pauses the workspace's shared limits
``limits.SlackLimits`` instead, for every reply.)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class EditPacer:
    """Spacing of edits for one message stream."""

    interval: float
    _next_allowed: float = field(default=float("-inf"))

    def wait_time(self, now: float) -> float:
        """Seconds to wait before the next edit may be sent (0 when it may go now)."""
        return max(0.0, self._next_allowed - now)

    def edited(self, now: float) -> None:
        """An edit was sent at ``now``."""
        self._next_allowed = now + self.interval
