"""The model endpoint, asked exactly as a reply asks it: one streamed request for a few tokens.

It proves the endpoint is reachable, the key is accepted, the model name is known, the answer streams
(server-sent events) and reports usage (what quotas are charged from). It costs at most 8 tokens of
output and a few of input. The price line says where the price comes from: the shipped table or an override.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from decimal import Decimal

import httpx

from bot.billing.pricing import Price
from bot.check.report import CheckLine, fail, ok, warn
from bot.core.domain import ChatMessage, ModelRequest, StreamEnd
from bot.core.errors import ModelError, ModelRejected, ModelUnavailable
from bot.model.client import ModelClient, ModelConfig

PROBE_SECONDS = 30.0
NAME = "model"
# A few tokens, not one: the client stops a model that writes more than 8 characters per allowed token
# (bot.model.client), and a stop before the last chunk would lose the usage report this checks.
PROBE_TOKENS = 8
PROBE = ModelRequest(
    messages=(ChatMessage("user", "Reply with the single word OK."),), max_tokens=PROBE_TOKENS
)
_KEY_FIX = "put the provider's key in GLM_API_KEY, and the provider's endpoint in GLM_BASE_URL"
_MODEL_FIX = "set GLM_MODEL to this provider's name for glm-4.5v (README, Providers)"


async def check_model(http: httpx.AsyncClient, config: ModelConfig) -> list[CheckLine]:
    """Lines for the endpoint: one probe request, no retries, at most ``PROBE_SECONDS``."""
    probe = replace(config, max_attempts=1, first_token_seconds=PROBE_SECONDS, reply_seconds=PROBE_SECONDS)
    where = f"{config.model} at {config.base_url}"
    started = time.monotonic()
    try:
        async with asyncio.timeout(PROBE_SECONDS + 5):
            end = await _one_reply(ModelClient(http, probe))
    except ModelRejected as exc:
        return [_rejected(exc, where)]
    except ModelUnavailable as exc:
        return [fail(NAME, f"{where}: {exc}", "check GLM_BASE_URL and the network", outage=True)]
    except ModelError as exc:
        return [fail(NAME, f"{where}: {exc}", "GLM_BASE_URL must be an OpenAI-compatible endpoint")]
    except TimeoutError:
        return [
            fail(NAME, f"{where} did not finish a {PROBE_TOKENS}-token answer in time", "check GLM_BASE_URL")
        ]
    seconds = time.monotonic() - started
    lines = [ok(NAME, f"{where} streamed a short answer in {seconds:.1f} s")]
    if end.usage is None:
        lines.append(
            warn(
                "model usage",
                "the endpoint reports no token usage: replies are charged from estimates",
                "use an endpoint that sends usage in its last stream chunk (stream_options.include_usage)",
            )
        )
    else:
        lines.append(
            ok("model usage", f"reported ({end.usage.prompt_tokens} in, {end.usage.completion_tokens} out)")
        )
    return lines


async def _one_reply(client: ModelClient) -> StreamEnd:
    async for event in client.stream(PROBE):
        if isinstance(event, StreamEnd):
            return event
    raise ModelUnavailable("the stream ended without a finish")  # ModelClient always ends with one


def _rejected(exc: ModelRejected, where: str) -> CheckLine:
    detail = str(exc).partition(": ")[2].lower()  # after "model endpoint answered 404: "
    if exc.status in (401, 403):
        return fail(NAME, f"{where}: the key was refused ({exc})", _KEY_FIX)
    if "model" in detail:
        return fail(NAME, f"{where}: the model name is not known there ({exc})", _MODEL_FIX)
    if exc.status == 404:
        return fail(
            NAME, f"{where}: no chat/completions there ({exc})", "check GLM_BASE_URL (README, Providers)"
        )
    if exc.status == 402 or "credit" in detail or "balance" in detail:
        return fail(NAME, f"{where}: no credit ({exc})", "top up the account behind GLM_API_KEY")
    return fail(NAME, f"{where}: {exc}", "check GLM_BASE_URL, GLM_MODEL and GLM_API_KEY")


def price_line(price: Price, model: str, overridden: bool) -> CheckLine:
    """Where the price comes from, in dollars per 1M tokens."""
    per_m = [
        Decimal(pico) / Decimal(10**6) for pico in (price.input_pico_per_token, price.output_pico_per_token)
    ]
    source = "GLM_INPUT/OUTPUT_USD_PER_MTOK" if overridden else "the price table"
    return ok("price", f"{model}: ${per_m[0]:f} in, ${per_m[1]:f} out per 1M tokens ({source})")
