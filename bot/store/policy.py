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

Each server has its own policy. Behind Sentinel the client talks to the master, so the master is checked
(its replicas, which become master on a failover, must be set the same way: the check runs at start
only; https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/). On a Cluster every node
is checked, primaries and replicas, each with its own CONFIG GET (redis-py sends server commands to one
node unless told), and an unsafe node is named
(https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/).
"""

from __future__ import annotations

from typing import Any, cast

import redis.asyncio as redis
import structlog
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from bot.core.errors import StoreMayEvict, StoreUnavailable
from bot.store.connection import is_cluster, store_errors

log = structlog.get_logger(__name__)

SAFE_POLICY = "noeviction"


async def read_eviction_policy(client: redis.Redis) -> str | None:
    """The store's ``maxmemory-policy`` (e.g. ``noeviction``, ``allkeys-lru``), or None when neither
    CONFIG GET nor INFO memory reveals it (both renamed, disabled or denied by an ACL).

    On a cluster: the first node's policy that is not ``noeviction``, followed by ``on cluster node
    HOST:PORT``; else None when some node's is unknown; else ``noeviction``.

    A refused command (``unknown command``, ``NOPERM``: a Redis error reply) is an answer, not a failure.
    Raises StoreUnavailable when the store does not answer at all.
    """
    if not is_cluster(client):
        return await _node_policy(client)
    cluster = cast(RedisCluster, client)
    with store_errors("eviction policy read"):
        await cluster.initialize()
    policies = {node.name: await _node_policy(client, target_nodes=node) for node in cluster.get_nodes()}
    unsafe = [(name, policy) for name, policy in policies.items() if policy not in (None, SAFE_POLICY)]
    if unsafe:
        name, policy = unsafe[0]
        return f"{policy} on cluster node {name}"
    return None if None in policies.values() else SAFE_POLICY


async def _node_policy(client: redis.Redis, **target: Any) -> str | None:
    """One server's policy (``target``: the cluster node to ask), or None when nothing reveals it."""
    with store_errors("eviction policy read"):
        try:
            config = await client.config_get("maxmemory-policy", **target)
        except ResponseError:
            config = {}
        if config.get("maxmemory-policy"):
            return str(config["maxmemory-policy"])
        try:
            info = await client.info("memory", **target)
        except ResponseError:
            return None
    policy = info.get("maxmemory_policy")
    return str(policy) if policy else None


def check_policy(policy: str | None) -> None:
    """Raise StoreMayEvict unless ``policy`` is ``noeviction``; None (unknown) passes: see below.

    ``policy`` may name a cluster node after the policy (``allkeys-lru on cluster node 10.0.0.7:6379``).
    """
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
