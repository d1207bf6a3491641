"""The three provider presets of README "Providers": each one's model name is priced and ``auto`` picks
the thinking switch that provider documents (reference: shared/reference/glm-and-quotas.md §3)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.billing.pricing import Price, price_for
from bot.model.client import thinking_fields, thinking_style_for
from bot.settings import Settings

CONTRACT_PRICE = Price(input_pico_per_token=780_000, output_pico_per_token=2_340_000)


@pytest.mark.parametrize(
    ("base_url", "model", "style", "off_field"),
    [
        (
            "https://api.unorouter.com/v1",
            "glm-4.5v",
            "openrouter",
            {"reasoning": {"enabled": False}},
        ),
        (
            "https://api.z.ai/api/paas/v4",
            "glm-4.5v",
            "zai",
            {"thinking": {"type": "disabled"}},
        ),
        (
            "https://openrouter.ai/api/v1",
            "z-ai/glm-4.5v",
            "openrouter",
            {"reasoning": {"enabled": False}},
        ),
    ],
    ids=["unorouter", "zai", "openrouter"],
)
def test_provider_preset_is_priced_and_switches_thinking_its_way(
    base_url: str, model: str, style: str, off_field: dict[str, object]
) -> None:
    """GLM_BASE_URL and GLM_MODEL of each preset start without overrides and send the right "off" field."""
    assert price_for(model) == CONTRACT_PRICE
    picked = thinking_style_for(base_url)
    assert picked == style
    assert thinking_fields(picked, enabled=False) == off_field


@pytest.mark.parametrize(
    "base_url",
    ["https://api.z.ai/api/paas/v4/", "https://API.Z.AI/api/paas/v4", "https://open.bigmodel.cn/api/paas/v4"],
)
def test_zai_hosts_in_any_spelling_pick_zai(base_url: str) -> None:
    """Z.ai's host is recognised with a trailing slash, in capitals, and as its mainland twin."""
    assert thinking_style_for(base_url) == "zai"


def test_a_host_that_only_mentions_zai_is_not_zai() -> None:
    """Only the host counts: a router whose path or subdomain spelling merely contains z.ai keeps the
    OpenRouter dialect (a look-alike host must not switch the request's fields)."""
    assert thinking_style_for("https://openrouter.ai/api/v1?via=z.ai") == "openrouter"
    assert thinking_style_for("https://notz.ai.example.com/v1") == "openrouter"


ENV_EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / ".env.example"
PRESET = re.compile(r"^# Preset: (?P<name>[\w.]+) .*?Thinking switch: \"(?P<field>\w+)\"", re.S)


def _presets() -> dict[str, dict[str, str]]:
    """deploy/.env.example's commented preset blocks: name -> the switch it names and its settings."""
    presets: dict[str, dict[str, str]] = {}
    for block in ENV_EXAMPLE.read_text().split("#\n"):
        match = PRESET.match(block)
        if match is None:
            continue
        settings = dict(re.findall(r"^# (GLM_\w+)=(\S+)$", block, re.M))
        presets[match["name"]] = {"field": match["field"], **settings}
    return presets


def test_env_example_presets_start_and_say_which_switch_auto_picks() -> None:
    """Each preset in deploy/.env.example, uncommented as it stands, is priced and gets the thinking
    field its comment names."""
    presets = _presets()
    assert sorted(presets) == ["OpenRouter", "UnoRouter", "Z.ai"]
    for preset in presets.values():
        assert price_for(preset["GLM_MODEL"]) == CONTRACT_PRICE
        fields = thinking_fields(thinking_style_for(preset["GLM_BASE_URL"]), enabled=False)
        assert list(fields) == [preset["field"]]


def test_compose_passes_every_model_setting_through_from_env_file() -> None:
    """docker compose reads .env into glmbot (env_file) and pins only the Redis URLs, so GLM_BASE_URL,
    GLM_MODEL and the price overrides set there reach the container."""
    compose = yaml.safe_load((ENV_EXAMPLE.parent / "docker-compose.yml").read_text())
    glmbot = compose["services"]["glmbot"]
    assert glmbot["env_file"] == ["../.env"]
    assert sorted(glmbot["environment"]) == ["REDIS_CACHE_URL", "REDIS_URL"]


def test_env_example_names_every_setting() -> None:
    """deploy/.env.example, which the Quick start copies, lists every setting the bot reads."""
    example = (Path(__file__).resolve().parents[2] / "deploy" / ".env.example").read_text()
    named = {line.lstrip("# ").split("=", 1)[0] for line in example.splitlines() if "=" in line}
    assert sorted(field.upper() for field in Settings.model_fields if field.upper() not in named) == []
