"""The grammar of the quota commands shared by ``/glm-quota`` and ``glmbot quota``."""

from __future__ import annotations

import pytest

from bot.billing.commands import SetDefault, SetLimit, UsageError, parse_limit, parse_quota_command


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("set <@U0123ABCD|alice> 5", SetLimit("U0123ABCD", 5 * 10**12)),
        ("set U0123ABCD default", SetLimit("U0123ABCD", None)),
        ("SET <@U0123ABCD> Default", SetLimit("U0123ABCD", None)),
        ("default $2.50", SetDefault(2_500_000_000_000)),
    ],
)
def test_set_default_removes_a_personal_limit(text: str, command: object) -> None:
    """`set @user default` is a SetLimit without a limit; amounts stay picodollars."""
    assert parse_quota_command(text) == command


def test_a_bad_limit_names_both_forms() -> None:
    """A limit that is neither dollars nor `default` says what would do."""
    with pytest.raises(UsageError, match="or default to remove"):
        parse_quota_command("set U0123ABCD none")
    with pytest.raises(UsageError, match="amount must be"):
        parse_limit("-1")
    with pytest.raises(UsageError, match="amount must be"):
        parse_quota_command("default default")  # the workspace default is always an amount
