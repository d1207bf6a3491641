"""The Redis connection: opening it, the one translator of Redis errors, and the Lua scripts' sources.

``open_store`` gives a real Redis when REDIS_URL is set, else an embedded in-process store: fakeredis with
Lua support, so every Lua script and key layout is the same in both cases. The embedded store lives in
one process and forgets everything on restart: fine for trying the bot, not for a team.

REDIS_URL takes three topologies (``parse_topology``):

* one server: ``redis://``, ``rediss://``, ``unix://`` (redis-py's own URL grammar);
* Sentinel: ``redis+sentinel://[[user]:password@]host:26379[,host2:26379]/SERVICE[/DB]``, the master of
  SERVICE as the sentinels name it, followed across failovers by redis-py's ``Sentinel.master_for``
  (https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/); the password is the
  master's, the sentinels are asked without one;
* Cluster: ``redis+cluster://[[user]:password@]host:port[,host2:port]``, any reachable node finding the
  rest, through redis-py's ``RedisCluster``
  (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/). Every script and
  transaction of the bot touches one hash slot, so it runs there unchanged.

Redis failures become ``StoreUnavailable`` in ``store_errors`` and nowhere else; callers that may go on
without the store (the edit budget, the top-spenders report) catch that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Literal, cast
from urllib.parse import unquote, urlsplit

import redis.asyncio as redis
import structlog
from fakeredis import FakeServer
from fakeredis.aioredis import FakeRedis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from bot.core.errors import StoreUnavailable

log = structlog.get_logger(__name__)
# Bounded waits: a store that hangs must turn into a clear "temporarily unavailable", not a stuck reply.
SOCKET_TIMEOUT_SECONDS = 5.0
# Each command takes well under a millisecond, so a small pool serves hundreds of concurrent replies.
# It blocks (up to the socket timeout) when all connections are busy: redis-py's default pool instead
# fails at once past 100 connections, which turned a burst of 200 mentions into "unavailable" replies.
MAX_CONNECTIONS = 50
# redis-py's cluster client keeps a pool per node that never blocks: past its size a command fails at once
# (MaxConnectionsError). Each reply waits on one command at a time, so this covers every reply a process
# runs at once (at most 256) plus the acks; connections are opened only when needed.
CLUSTER_MAX_CONNECTIONS_PER_NODE = 512
# Connections opened at start (all of them): a burst of acks then finds them ready, not paying a HELLO each.
WARM_CONNECTIONS = MAX_CONNECTIONS
SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"
SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME, CLUSTER_SCHEME)
_DEFAULT_PORTS = {SENTINEL_SCHEME: 26379, CLUSTER_SCHEME: 6379}


@dataclass(frozen=True, slots=True)
class Topology:
    """A Sentinel or Cluster REDIS_URL, parsed: the nodes to ask first, and where to log in."""

    kind: Literal["sentinel", "cluster"]
    nodes: tuple[tuple[str, int], ...]
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_topology(url: str) -> Topology | None:
    """The Sentinel or Cluster topology of ``url``; None for a one-server URL (redis, rediss, unix).

    Raises ValueError naming what is wrong (the settings check shows it at start).
    """
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(
            "must start with redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://"
        )
    if parts.scheme not in _DEFAULT_PORTS:
        return None
    if parts.query or parts.fragment:
        raise ValueError(f"{parts.scheme}:// takes no query options")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes = tuple(_node(host, _DEFAULT_PORTS[parts.scheme]) for host in hosts.split(","))
    user, _, password = userinfo.partition(":")  # as in redis://: no colon, a user name alone
    username, secret = unquote(user) or None, unquote(password) or None
    path = [part for part in parts.path.split("/") if part]
    if parts.scheme == CLUSTER_SCHEME:
        if path:
            raise ValueError("redis+cluster:// takes no path: a cluster has database 0 only")
        return Topology("cluster", nodes, username=username, password=secret)
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError("redis+sentinel:// needs /SERVICE or /SERVICE/DB after the sentinels")
    db = int(path[1]) if len(path) == 2 else 0
    return Topology("sentinel", nodes, unquote(path[0]), db, username, secret)


def _node(text: str, default_port: int) -> tuple[str, int]:
    """``host[:port]`` (an IPv6 host in brackets) as (host, port); raises ValueError."""
    host, port = text, str(default_port)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = rest.removeprefix(":")
    elif ":" in text:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port")
    return host, int(port)


def open_store(redis_url: str | None) -> redis.Redis:
    """A Redis client for ``redis_url``, or the embedded store when it is None.

    A Cluster client is returned typed as ``redis.Redis``: it offers the same commands, and the bot uses
    only those (every script on one slot; tested against a real cluster). Raises ValueError for a URL
    ``parse_topology`` refuses.
    """
    if redis_url is None:
        log.warning(
            "embedded_store",
            detail="REDIS_URL is unset: using an in-process store; one process only, "
            "history and quotas are lost on restart",
        )
        client: redis.Redis = FakeRedis(server=FakeServer(), decode_responses=True)
        return client
    topology = parse_topology(redis_url)
    if topology is None:
        pool = redis.BlockingConnectionPool.from_url(redis_url, **_pool_options(), **_connection_options())
        return redis.Redis.from_pool(pool)
    if topology.kind == "sentinel":
        return _sentinel_master(topology)
    return _cluster(topology)


def _connection_options() -> dict[str, Any]:
    """What every connection gets, whatever the topology."""
    return {
        "decode_responses": True,
        "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS,
        # A pooled connection that Redis dropped (a restart, an idle timeout, a failover) fails on first
        # use: retry such a connection error once. The command may have run already: every script is
        # safe to run twice (README, "Scripts that are safe to run twice"). Timeouts are not retried, so a
        # store that hangs answers "unavailable" after one socket timeout, not two.
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }


def _pool_options() -> dict[str, Any]:
    """The blocking pool's size and wait (one server, or a Sentinel's master)."""
    return {"max_connections": MAX_CONNECTIONS, "timeout": SOCKET_TIMEOUT_SECONDS}


class _BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """The master's pool: it asks the sentinels where the master is (on each new connection, and again
    after a connection error or a READONLY reply from a demoted master), and blocks like the one-server
    pool when every connection is busy. Closing it closes the connections to the sentinels too."""

    async def aclose(self) -> None:
        await super().aclose()
        await self.sentinel_manager.aclose()


def _sentinel_master(topology: Topology) -> redis.Redis:
    """The client of the master that ``topology``'s sentinels name for its service."""
    # The sentinels are asked in turn until one names the master, so a sentinel that is down costs a
    # refused connection (retried once), not redis-py's default retries with backoff.
    options = _connection_options()
    asking = {name: options[name] for name in ("socket_timeout", "socket_connect_timeout", "retry")}
    sentinels = Sentinel(list(topology.nodes), sentinel_kwargs=asking)  # type: ignore[no-untyped-call]
    master = sentinels.master_for(
        topology.service,
        redis_class=redis.Redis,
        connection_pool_class=_BlockingSentinelPool,
        db=topology.db,
        username=topology.username,
        password=topology.password,
        **_pool_options(),
        **options,
    )
    return cast(redis.Redis, master)


def _cluster(topology: Topology) -> redis.Redis:
    """A Cluster client seeded with ``topology``'s nodes (it learns the rest with CLUSTER SLOTS).

    redis-py's cluster client retries its own fixed set of errors (connection errors, timeouts too, a
    cluster that is down or a slot not covered), refreshing its map of slots first; here once, like the
    others. A retried script may have run already: each is safe to run twice. MOVED and ASK redirections
    (a slot moving between nodes) are followed apart from that count.
    """
    options = _connection_options()
    retry = options.pop("retry")
    cluster = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in topology.nodes],
        username=topology.username,
        password=topology.password,
        max_connections=CLUSTER_MAX_CONNECTIONS_PER_NODE,
        retry=retry,
        # A MOVED reply only updates that slot's owner. redis-py's default (5) drops the whole client every
        # fifth MOVED, closing connections other commands are using; a busy client (or a fresh one, which
        # sends keyed commands to any node until it knows the slots) then cascades into connection errors.
        reinitialize_steps=0,
        **options,
    )
    return cast(redis.Redis, cluster)


def is_cluster(client: object) -> bool:
    """True for a Redis Cluster client (whose server commands go to chosen nodes)."""
    return isinstance(client, RedisCluster)


@contextmanager
def store_errors(action: str) -> Iterator[None]:
    """Turn Redis failures inside the block into StoreUnavailable, keeping the cause readable in logs."""
    try:
        yield
    except (RedisError, RedisClusterException, OSError) as exc:
        raise StoreUnavailable(f"{action}: {type(exc).__name__}: {exc}") from exc


async def preload_scripts(client: redis.Redis, sources: Iterable[str]) -> None:
    """Load Lua scripts at start, so a burst of first replies does not all hit NOSCRIPT and reload them.

    A store that is down at start is not fatal: replies fail closed until it answers, and the scripts
    load on first use.
    """
    try:
        with store_errors("script load"):
            for source in sources:
                await client.script_load(source)
    except StoreUnavailable as exc:
        log.warning("scripts_not_preloaded", detail=str(exc))


async def warm_pool(client: redis.Redis, connections: int = WARM_CONNECTIONS) -> None:
    """Open ``connections`` pooled connections at start (concurrent PINGs), so the first burst of events
    does not pay for connection set-up while Slack waits for its acks. A store that is down is not fatal."""
    try:
        with store_errors("pool warm-up"):
            await asyncio.gather(*(_ping(client) for _ in range(connections)))
    except StoreUnavailable as exc:
        log.warning("store_not_warmed", detail=str(exc))


async def store_answers(client: redis.Redis) -> bool:
    """True when the store answers a PING: one server, a Sentinel's current master, or every primary of a
    cluster (a cluster with a primary down cannot serve the users whose keys live there)."""
    try:
        with store_errors("ping"):
            return await _ping(client)
    except StoreUnavailable:
        return False


async def _ping(client: redis.Redis) -> bool:
    """PING the store; on a cluster every primary (redis-py sends PING to one node unless told).

    Raises RedisError, RedisClusterException or OSError.
    """
    if is_cluster(client):
        return bool(await client.ping(target_nodes=RedisCluster.PRIMARIES))
    return bool(await client.ping())


def lua_source(package: str | None, *names: str) -> str:
    """The Lua files ``names`` shipped in ``package`` (package data), joined into one script's source.

    A script that shares helpers with others lists the helper file first, so each helper is written once
    and every script still runs as one atomic EVALSHA (https://redis.io/docs/latest/commands/eval/).
    """
    if package is None:
        raise ValueError("lua_source needs the package that ships the script")
    folder = files(package)
    return "\n".join(folder.joinpath(name).read_text(encoding="utf-8") for name in names)
