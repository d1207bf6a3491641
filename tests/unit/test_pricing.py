"""Model prices: per-token conversion, the packaged table, overrides and exact costs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.billing.pricing import Price, PricingError, cost_pico, per_token_pico, price_for

GLM = Price(input_pico_per_token=780_000, output_pico_per_token=2_340_000)


@pytest.mark.parametrize(
    ("usd_per_mtok", "expected"),
    [
        ("0.78", 780_000),
        ("2.34", 2_340_000),
        ("0.0375", 37_500),
        ("0", 0),
        ("15", 15_000_000),
        ("0.000001", 1),
        ("0.0000001", 1),
        ("0.0000011", 2),
    ],
)
def test_per_token_pico(usd_per_mtok: str, expected: int) -> None:
    """USD per 1M tokens becomes exact pico per token, rounding fractions up."""
    assert per_token_pico(Decimal(usd_per_mtok)) == expected


@pytest.mark.parametrize("bad", ["-0.01", "NaN", "Infinity"])
def test_per_token_pico_refuses_bad_prices(bad: str) -> None:
    """Negative and non-finite prices raise ValueError."""
    with pytest.raises(ValueError, match="price must"):
        per_token_pico(Decimal(bad))


def test_table_loads_glm() -> None:
    """The packaged table prices glm-4.5v with no cached-input price."""
    assert price_for("glm-4.5v") == GLM


@pytest.mark.parametrize("model", ["glm-4.5v", "z-ai/glm-4.5v"])
def test_every_providers_name_for_glm_is_priced(model: str) -> None:
    """UnoRouter and Z.ai call it glm-4.5v, OpenRouter z-ai/glm-4.5v: both start without overrides, at
    the contract's $0.78 / $2.34 per 1M tokens, and overrides still apply to either."""
    assert price_for(model) == GLM
    assert price_for(model, Decimal("0.5"), Decimal("1.8")) == Price(500_000, 1_800_000)


@pytest.mark.parametrize(
    ("input_usd", "output_usd", "expected"),
    [
        (None, None, GLM),
        (Decimal("1"), None, Price(1_000_000, 2_340_000)),
        (None, Decimal("3"), Price(780_000, 3_000_000)),
        (Decimal("0.5"), Decimal("1.5"), Price(500_000, 1_500_000)),
    ],
)
def test_price_for_applies_overrides(
    input_usd: Decimal | None, output_usd: Decimal | None, expected: Price
) -> None:
    """Overrides replace the table's input and output prices one at a time."""
    assert price_for("glm-4.5v", input_usd, output_usd) == expected


def test_unknown_model_with_both_overrides() -> None:
    """A model missing from the table is priced from the two overrides."""
    assert price_for("other", Decimal("0.1"), Decimal("0.2")) == Price(100_000, 200_000)


@pytest.mark.parametrize(
    ("input_usd", "output_usd"), [(None, None), (Decimal("0.1"), None), (None, Decimal("0.2"))]
)
def test_unknown_model_needs_both_overrides(input_usd: Decimal | None, output_usd: Decimal | None) -> None:
    """Without both overrides an unknown model raises PricingError saying how to fix it."""
    with pytest.raises(PricingError) as info:
        price_for("glm-9", input_usd, output_usd)
    assert str(info.value) == (
        "GLM_MODEL 'glm-9' has no price (the table prices glm-4.5v, z-ai/glm-4.5v): set "
        "GLM_INPUT_USD_PER_MTOK and GLM_OUTPUT_USD_PER_MTOK to its price in USD per 1M tokens"
    )


def test_negative_override_names_setting() -> None:
    """A negative override raises PricingError naming the setting."""
    with pytest.raises(PricingError, match="GLM_OUTPUT_USD_PER_MTOK"):
        price_for("glm-4.5v", None, Decimal("-1"))


@pytest.mark.parametrize(
    ("prompt", "completion", "expected"),
    [
        (1000, 500, 1_950_000_000),
        (0, 0, 0),
        (1, 0, 780_000),
        (0, 1, 2_340_000),
        (1_000_000, 1_000_000, 3_120_000_000_000),
    ],
)
def test_cost_pico_exact(prompt: int, completion: int, expected: int) -> None:
    """Costs are exact integer products ($0.00195 for 1000 prompt + 500 completion tokens)."""
    assert cost_pico(prompt, completion, GLM) == expected


def test_cost_pico_refuses_negative_tokens() -> None:
    """Negative token counts raise ValueError."""
    with pytest.raises(ValueError, match="negative"):
        cost_pico(-1, 0, GLM)
