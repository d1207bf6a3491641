"""The main store's eviction policy, checked at start: money must never be evicted.

With ``maxmemory`` set, Redis frees memory by its ``maxmemory-policy``
(https://redis.io/docs/latest/develop/reference/eviction/): ``allkeys-*`` policies may delete any key (a
user's limit: someone blocked at $0 falls back to the default), ``volatile-*`` ones any key with a TTL
(spend, reservations, settled markers: spend erased). Only ``noeviction`` keeps every key and refuses
writes instead, which the bot turns into "temporarily unavailable" (fail closed). So ``glmbot serve`` and
``glmbot console`` refuse to start on a main store whose policy is anything else. The image cache may
live in another Redis (REDIS_CACHE_URL), where any policy is fine; that one is not checked.

The policy is read with ``CONFIG GET maxmemory-policy`` (https://redis.io/docs/latest/commands/config-get/);
managed services often rename or forbid CONFIG, so ``INFO memory``'s ``maxmemory_policy`` field
(https://redis.io/docs/latest/commands/info/) is the fallback.
"""

from __future__ import annotations

import redis.asyncio as redis
import structlog
from redis.exceptions import ResponseError

from bot.core.errors import StoreMayEvict, StoreUnavailable
from bot.store.connection import store_errors

log = structlog.get_logger(__name__)

SAFE_POLICY = "noeviction"


async def read_eviction_policy(client: redis.Redis) -> str | None:
    """The store's ``maxmemory-policy`` (e.g. ``noeviction``, ``allkeys-lru``), or None when neither
    CONFIG GET nor INFO memory reveals it (both renamed, disabled or denied by an ACL).

    A refused command (``unknown command``, ``NOPERM``: a Redis error reply) is an answer, not a failure.
    Raises StoreUnavailable when the store does not answer at all.
    """
    with store_errors("eviction policy read"):
        try:
            config = await client.config_get("maxmemory-policy")
        except ResponseError:
            config = {}
        if config.get("maxmemory-policy"):
            return str(config["maxmemory-policy"])
        try:
            info = await client.info("memory")
        except ResponseError:
            return None
    policy = info.get("maxmemory_policy")
    return str(policy) if policy else None


def check_policy(policy: str | None) -> None:
    """Raise StoreMayEvict unless ``policy`` is ``noeviction``; None (unknown) passes: see below."""
    if policy is not None and policy != SAFE_POLICY:
        raise StoreMayEvict(policy)


async def require_noeviction(client: redis.Redis) -> None:
    """At start, for a real Redis at REDIS_URL: raise StoreMayEvict when its policy may evict keys.

    Two cases start anyway, each with one warning line: a policy nothing reveals (a managed Redis that
    hides CONFIG and INFO; its operator must set ``noeviction``), and a store that does not answer (the
    bot fails closed until it does, as it always has; the policy is not checked then).
    """
    try:
        policy = await read_eviction_policy(client)
    except StoreUnavailable as exc:
        log.warning("store_policy_unchecked", detail=f"the store did not answer: {exc}")
        return
    if policy is None:
        log.warning(
            "store_policy_unknown",
            detail="neither CONFIG GET nor INFO reveals maxmemory-policy of the Redis at REDIS_URL; "
            "make sure it is noeviction, or quota limits and spend may be evicted under memory pressure",
        )
        return
    check_policy(policy)
    log.info("store_policy", maxmemory_policy=policy)
