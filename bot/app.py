"""The composition root: settings -> clients -> services -> a front end (Slack, the console or the shell).

``open_core`` builds the platform-free services once, the same for ``glmbot serve`` and ``glmbot
console``, so both run the very same conversation path; every client is opened inside one
``AsyncExitStack`` and closed when the program stops. ``serve``, ``console`` and ``quota`` then run one
front end on it. This is the one module of ``bot`` that reaches into ``handlers``.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx
import redis.asyncio as redis
import structlog

from bot.billing.admin import QuotaAdmin
from bot.billing.commands import QuotaCommand
from bot.billing.ledger import QuotaLedger
from bot.billing.money import usd_to_pico
from bot.billing.settlement import QuotaBilling
from bot.check.report import passed, summary
from bot.check.runner import blocking, full_check, log_warnings, refuse_start, start_checks, store_problems
from bot.check.store_failures import store_failure
from bot.console.app import run_console
from bot.core.conversation import ConversationConfig, ConversationService
from bot.core.errors import StoreUnavailable
from bot.core.prompt import DEFAULT_SYSTEM_PROMPT
from bot.images.cache import ImageCache
from bot.images.local import LocalFileFetcher
from bot.images.pipeline import ImagePipeline
from bot.metrics import Metrics
from bot.model.client import ModelClient, ModelConfig, thinking_style_for
from bot.settings import Settings
from bot.store.connection import open_store, preload_scripts, warm_pool
from bot.store.history import HistoryStore
from bot.store.policy import require_noeviction

log = structlog.get_logger(__name__)
DAY_SECONDS = 24 * 3600
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Core:
    """The platform-free services, ready to use."""

    store: redis.Redis
    http: httpx.AsyncClient
    conversation: ConversationService
    ledger: QuotaLedger
    metrics: Metrics
    history: HistoryStore
    images: ImagePipeline


def model_config(settings: Settings) -> ModelConfig:
    """The model client's configuration from Settings."""
    api_key = settings.glm_api_key.get_secret_value() if settings.glm_api_key else ""
    style = settings.glm_thinking_style
    return ModelConfig(
        base_url=settings.glm_base_url,
        api_key=api_key,
        model=settings.glm_model,
        thinking=settings.glm_thinking == "on",
        thinking_style=thinking_style_for(settings.glm_base_url) if style == "auto" else style,
        first_token_seconds=settings.glm_first_token_seconds,
        reply_seconds=settings.glm_reply_seconds,
    )


def quota_ledger(settings: Settings, store: redis.Redis, metrics: Metrics | None = None) -> QuotaLedger:
    """The spend ledger with the configured limit and period; ``metrics`` counts spend and refusals."""
    return QuotaLedger(
        store,
        usd_to_pico(settings.quota_default_usd),
        settings.quota_period,
        reservation_ttl_seconds=reservation_ttl_seconds(settings),
        metrics=metrics,
    )


def reservation_ttl_seconds(settings: Settings) -> int:
    """How long a reply's reservation is held: longer than any reply can take (GLM_REPLY_SECONDS is the
    model's whole deadline), with a minute to spare for settling. A reply whose process died is settled
    by the replica that takes it over well before that."""
    return int(settings.glm_reply_seconds + 60)


def image_cache(settings: Settings, store: redis.Redis) -> ImageCache:
    """The image cache in ``store`` (the cache Redis, else the main store), capped at IMAGE_CACHE_MAX_MB."""
    return ImageCache(
        store,
        ttl_seconds=settings.image_cache_ttl_hours * 3600,
        max_bytes=settings.image_cache_max_mb * MB,
    )


def image_pipeline(settings: Settings, cache: ImageCache) -> ImagePipeline:
    """The image pipeline, caching prepared images in ``cache``."""
    return ImagePipeline(
        cache, max_side=settings.image_max_side, max_per_message=settings.image_max_per_message
    )


async def open_stores(settings: Settings, stack: AsyncExitStack) -> tuple[redis.Redis, redis.Redis]:
    """The main store and the image cache's store (the same client when REDIS_CACHE_URL is unset), each
    closed when ``stack`` closes.

    A real main store (REDIS_URL) must not evict keys: raises StoreMayEvict otherwise (see
    ``bot.store.policy``). The cache's Redis may use any eviction policy and is not checked.
    """
    store = open_store(settings.redis_url)
    stack.push_async_callback(store.aclose)
    if settings.redis_url is not None:
        await require_noeviction(store)
    if settings.redis_cache_url is None:
        return store, store
    cache_store = open_store(settings.redis_cache_url)
    stack.push_async_callback(cache_store.aclose)
    return store, cache_store


def conversation_config(settings: Settings, quota_command: str, operator: bool = False) -> ConversationConfig:
    """The parts of Settings the conversation needs, the front end's quota tool, and whether its user
    runs the bot (the console: failures then name their cause and the setting to fix)."""
    return ConversationConfig(
        system_prompt=settings.system_prompt or DEFAULT_SYSTEM_PROMPT,
        context_tokens=settings.glm_context_tokens,
        max_output_tokens=settings.glm_max_output_tokens,
        quota_command=quota_command,
        operator=operator,
    )


@asynccontextmanager
async def open_core(
    settings: Settings, quota_command: str = "", operator: bool = False
) -> AsyncIterator[Core]:
    """Open the stores and the model's HTTP client, build the services, close everything on exit.

    Raises StoreMayEvict when the main Redis may evict keys (before anything else is opened).

    ``quota_command`` is how the front end's admins manage limits, named in the over-quota message;
    ``operator`` when the front end's user runs the bot (the console).
    """
    async with AsyncExitStack() as stack:
        store, cache_store = await open_stores(settings, stack)
        timeout = httpx.Timeout(settings.glm_timeout_seconds, connect=10.0)
        limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=timeout, limits=limits))
        metrics = Metrics()
        ledger = quota_ledger(settings, store, metrics)
        history = HistoryStore(store, ttl_seconds=settings.history_ttl_days * DAY_SECONDS)
        images = image_cache(settings, cache_store)
        await preload_scripts(store, (*history.scripts, *ledger.scripts))
        await preload_scripts(cache_store, images.scripts)
        await warm_pool(store)
        pipeline = image_pipeline(settings, images)
        conversation = ConversationService(
            history=history,
            images=pipeline,
            billing=QuotaBilling(
                ledger, settings.price(), settings.quota_min_reply_tokens, settings.glm_context_tokens
            ),
            model=ModelClient(http, model_config(settings), metrics=metrics),
            config=conversation_config(settings, quota_command, operator),
            metrics=metrics,
        )
        yield Core(
            store=store,
            http=http,
            conversation=conversation,
            ledger=ledger,
            metrics=metrics,
            history=history,
            images=pipeline,
        )


async def serve(settings: Settings, http_mode: bool, port: int) -> None:
    """``glmbot serve``: the Slack front end, until SIGINT or SIGTERM.

    Raises SettingsError with one line per problem that would stop it from working (``glmbot check``'s
    fatal kinds: a refused token, an unsafe Redis, a port in use) before it starts, or NotReady when the
    only problem is a Redis that does not answer (yet).
    """
    from handlers.checkup import check_slack  # the Slack side is only loaded when serving
    from handlers.commands import QUOTA_COMMAND
    from handlers.server import serve as serve_slack

    lines = await start_checks(
        settings,
        http_mode=http_mode,
        port=port,
        slack=lambda: check_slack(settings, socket_mode=not http_mode),
    )
    refuse_start(blocking(lines))
    log_warnings(lines)
    log.info("config", mode="http" if http_mode else "socket", port=port, **settings.public_view())
    async with open_core(settings, QUOTA_COMMAND) as core:
        # Everything loaded at start lives as long as the process: freeze it out of the garbage
        # collector's full passes (https://docs.python.org/3/library/gc.html#gc.freeze). Without this the
        # first burst of events triggered a full collection over every imported module's objects, and
        # all 50 acks of the burst waited ~150 ms behind it (the benchmark, N = 50).
        gc.collect()
        gc.freeze()
        await serve_slack(settings, core, http_mode=http_mode, port=port)


async def check(settings: Settings, http_mode: bool, port: int) -> int:
    """``glmbot check``: print the checklist; 0 when ``serve`` would work, else 1."""
    from handlers.checkup import check_slack

    lines = await full_check(
        settings,
        http_mode=http_mode,
        port=port,
        model=model_config(settings),
        slack=lambda: check_slack(settings, socket_mode=not http_mode),
    )
    for line in lines:
        print(line.render())
    print(summary(lines))
    return 0 if passed(lines) else 1


async def console(settings: Settings) -> None:
    """``glmbot console``: the terminal front end, until ``/quit`` or end of input.

    Raises SettingsError or NotReady (``bot.check.runner``) when REDIS_URL is set and that Redis cannot
    be used (unreachable, refused password, old, may evict), before anything else is opened."""
    refuse_start(await store_problems(settings))  # a REDIS_URL it cannot use: say so now, not per question
    # No quota tool to name (a console user is alone), and that user is the operator.
    async with open_core(settings, operator=True) as core:
        files = LocalFileFetcher(max_bytes=settings.image_max_download_bytes)
        await run_console(core.conversation, files, sys.stdin, sys.stdout)


async def quota(settings: Settings, command: QuotaCommand, caller: str) -> int:
    """``glmbot quota ...``: one admin operation from a shell; returns the exit status."""
    store = open_store(settings.redis_url)
    try:
        print(await QuotaAdmin(quota_ledger(settings, store)).run(command, caller))
    except StoreUnavailable as exc:
        # The operator gets the cause and the fix, not the apology a Slack user would see.
        print(f"glmbot: {store_failure(exc, settings.redis_url or '').problem()}", file=sys.stderr)
        return 1
    finally:
        await store.aclose()
    return 0
