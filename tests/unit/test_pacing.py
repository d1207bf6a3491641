"""Edit pacing for one streaming message."""

from __future__ import annotations

from handlers.reply.pacing import EditPacer


def test_first_edit_immediately() -> None:
    """The first edit may go as soon as the first words arrive."""
    assert EditPacer(1.5).wait_time(now=100.0) == 0.0


def test_later_edits_spaced_by_interval() -> None:
    """After an edit, the next waits out the interval, then may go."""
    pacer = EditPacer(1.5)
    pacer.edited(now=100.0)
    assert pacer.wait_time(now=100.5) == 1.0
    assert pacer.wait_time(now=101.5) == 0.0
    assert pacer.wait_time(now=105.0) == 0.0
