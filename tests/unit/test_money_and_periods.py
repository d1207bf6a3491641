"""Quota arithmetic: money parsing and display, calendar periods, reply budgets and the 80% notice."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bot.billing.money import AMOUNT_ERROR, PICO_PER_USD, format_usd, parse_usd, usd_to_pico
from bot.billing.periods import Period, PeriodKind, period_at
from bot.billing.pricing import Price
from tests.quota_spec import ReplyBudget, notice_due, plan_reply

GLM = Price(input_pico_per_token=780_000, output_pico_per_token=2_340_000)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """An aware UTC datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("usd", "expected"),
    [
        ("0", 0),
        ("1", PICO_PER_USD),
        ("0.78", 780_000_000_000),
        ("9000", 9000 * PICO_PER_USD),
        ("0.0000000000005", 1),
        ("0.0000000000004999", 0),
        ("1.0000000000015", PICO_PER_USD + 2),
    ],
)
def test_usd_to_pico(usd: str, expected: int) -> None:
    """Dollars become exact picodollars, rounding half up."""
    assert usd_to_pico(Decimal(usd)) == expected


@pytest.mark.parametrize(
    ("usd", "message"), [("-0.01", "negative"), ("9000.01", "at most"), ("NaN", "finite")]
)
def test_usd_to_pico_refuses(usd: str, message: str) -> None:
    """Negative, over-limit and non-finite amounts raise ValueError with a clear message."""
    with pytest.raises(ValueError, match=message):
        usd_to_pico(Decimal(usd))


def test_max_limit_fits_a_double() -> None:
    """The largest limit is exact in Redis Lua's doubles."""
    assert usd_to_pico(Decimal(9000)) < 2**53


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", 5 * PICO_PER_USD),
        ("5.50", 5_500_000_000_000),
        ("$5.50", 5_500_000_000_000),
        (" $ 2.5 ", 2_500_000_000_000),
        ("0", 0),
        (".25", 250_000_000_000),
        ("7.", 7 * PICO_PER_USD),
        ("$1,234.50", 1_234_500_000_000_000),
        ("9000", 9000 * PICO_PER_USD),
    ],
)
def test_parse_usd(text: str, expected: int) -> None:
    """Plain and dollar-signed amounts parse to picodollars."""
    assert parse_usd(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "-1",
        "1e400",
        "1e3",
        "",
        " ",
        "$",
        "nan",
        "inf",
        "Infinity",
        "9000.01",
        "1,2",
        "5$",
        "٥",
        "1.2.3",
    ],
)
def test_parse_usd_refuses(text: str) -> None:
    """Anything but a plain dollar amount up to $9,000 raises the one user-facing message."""
    with pytest.raises(ValueError, match=re.escape(AMOUNT_ERROR)) as info:
        parse_usd(text)
    assert str(info.value) == AMOUNT_ERROR


@pytest.mark.parametrize(
    ("pico", "expected"),
    [
        (0, "$0.00"),
        (PICO_PER_USD, "$1.00"),
        (1_234_500_000_000_000, "$1,234.50"),
        (1_234_505_000_000_000, "$1,234.51"),
        (1_234_504_999_999_999, "$1,234.50"),
        (9000 * PICO_PER_USD, "$9,000.00"),
        (500_000_000_000, "$0.50"),
        (994_999_999_999, "$0.99"),
        (999_999_999_999, "$1.00"),
        (120_000_000_000, "$0.12"),
        (50_000_000_000, "$0.050"),
        (4_200_000_000, "$0.0042"),
        (1_950_000_000, "$0.0020"),
        (99_500_000_000, "$0.10"),
        (13_000_000, "$0.000013"),
        (1_000_000, "$0.000001"),
        (500_000, "$0.000001"),
        (499_999, "<$0.000001"),
        (1, "<$0.000001"),
        (-500_000_000_000, "-$0.50"),
    ],
)
def test_format_usd(pico: int, expected: str) -> None:
    """Dollars show two decimals from $1, two significant digits below (2 to 6 decimals)."""
    assert format_usd(pico) == expected


@pytest.mark.parametrize(
    ("now", "kind", "expected"),
    [
        (
            utc(2026, 1, 31, 23, 59, 59),
            "month",
            Period("month", "2026-01", utc(2026, 1, 1), utc(2026, 2, 1)),
        ),
        (utc(2026, 12, 15), "month", Period("month", "2026-12", utc(2026, 12, 1), utc(2027, 1, 1))),
        (utc(2028, 2, 29, 12), "month", Period("month", "2028-02", utc(2028, 2, 1), utc(2028, 3, 1))),
        (utc(2028, 2, 29, 12), "day", Period("day", "2028-02-29", utc(2028, 2, 29), utc(2028, 3, 1))),
        (utc(2026, 11, 25, 0, 0), "day", Period("day", "2026-11-25", utc(2026, 11, 25), utc(2026, 11, 26))),
        (
            utc(2026, 11, 29, 23),
            "week",
            Period("week", "2026-W48", utc(2026, 11, 23), utc(2026, 11, 30)),
        ),
        (utc(2026, 11, 23), "week", Period("week", "2026-W48", utc(2026, 11, 23), utc(2026, 11, 30))),
        (utc(2026, 12, 31, 8), "week", Period("week", "2026-W53", utc(2026, 12, 28), utc(2027, 1, 4))),
        (utc(2027, 1, 1, 8), "week", Period("week", "2026-W53", utc(2026, 12, 28), utc(2027, 1, 4))),
        (utc(2027, 1, 4), "week", Period("week", "2027-W01", utc(2027, 1, 4), utc(2027, 1, 11))),
    ],
)
def test_period_at(now: datetime, kind: PeriodKind, expected: Period) -> None:
    """Days, ISO weeks from Monday and months, in UTC, with exclusive ends."""
    assert period_at(now, kind) == expected


@pytest.mark.parametrize(
    "day", [date(2026, 12, 27), date(2026, 12, 28), date(2026, 12, 31), date(2027, 1, 3)]
)
def test_week_label_matches_isocalendar(day: date) -> None:
    """Week labels agree with date.isocalendar() across the year boundary."""
    iso = day.isocalendar()
    now = utc(day.year, day.month, day.day)
    assert period_at(now, "week").label == f"{iso.year}-W{iso.week:02d}"


def test_non_utc_time_converted() -> None:
    """An aware non-UTC time is placed by its UTC instant (Tokyo 08:00 on the 1st is the 31st UTC)."""
    tokyo = datetime(2026, 2, 1, 8, 0, tzinfo=timezone(timedelta(hours=9)))
    assert period_at(tokyo, "month").label == "2026-01"
    assert period_at(tokyo, "day") == Period("day", "2026-01-31", utc(2026, 1, 31), utc(2026, 2, 1))


def test_naive_time_refused() -> None:
    """A naive datetime raises ValueError."""
    with pytest.raises(ValueError, match="timezone-aware"):
        period_at(datetime(2026, 1, 1), "day")


def test_period_bounds_are_utc() -> None:
    """Starts and ends are aware UTC datetimes."""
    period = period_at(utc(2026, 5, 5, 5), "week")
    assert period.start.tzinfo is UTC
    assert period.end.tzinfo is UTC


INPUT_COST = 1000 * GLM.input_pico_per_token  # 780_000_000
OUT = GLM.output_pico_per_token


@pytest.mark.parametrize(
    ("available", "max_tokens", "min_tokens", "expected"),
    [
        (PICO_PER_USD, 500, 10, ReplyBudget(500, INPUT_COST + 500 * OUT)),
        (INPUT_COST + 500 * OUT, 500, 10, ReplyBudget(500, INPUT_COST + 500 * OUT)),
        (INPUT_COST + 200 * OUT + OUT - 1, 500, 10, ReplyBudget(200, INPUT_COST + 200 * OUT)),
        (INPUT_COST + 10 * OUT, 500, 10, ReplyBudget(10, INPUT_COST + 10 * OUT)),
        (INPUT_COST + 10 * OUT - 1, 500, 10, None),
        (INPUT_COST - 1, 500, 0, None),
        (INPUT_COST, 500, 0, ReplyBudget(0, INPUT_COST)),
        (0, 500, 10, None),
        (-5, 500, 0, None),
    ],
)
def test_plan_reply(available: int, max_tokens: int, min_tokens: int, expected: ReplyBudget | None) -> None:
    """The reply gets the most tokens the money covers after the prompt, or None below the minimum."""
    assert plan_reply(available, 1000, max_tokens, min_tokens, GLM) == expected


def test_plan_reply_free_output() -> None:
    """With free output tokens the requested maximum always fits once the prompt is paid."""
    assert plan_reply(INPUT_COST, 1000, 500, 10, Price(780_000, 0)) == ReplyBudget(500, INPUT_COST)


@pytest.mark.parametrize(
    ("spent", "limit", "expected"),
    [
        (79, 100, False),
        (80, 100, True),
        (100, 100, True),
        (150, 100, True),
        (0, 0, False),
        (5, 0, False),
        (799_999_999_999, PICO_PER_USD, False),
        (800_000_000_000, PICO_PER_USD, True),
        (4, 5, True),
        (3, 5, False),
    ],
)
def test_notice_due(spent: int, limit: int, expected: bool) -> None:
    """The notice is due from exactly 80% of a positive limit."""
    assert notice_due(spent, limit) is expected
