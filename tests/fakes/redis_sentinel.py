"""A real Sentinel deployment on free loopback ports: a master, one replica and three sentinels.

The sentinels watch the master as ``mymaster`` with a quorum of 2, and notice a dead master after one
second (``down-after-milliseconds``), so a failover (https://redis.io/docs/latest/operate/oss_and_stack/
management/sentinel/) takes a few seconds. ``kill_master()`` crashes the master (SIGKILL);
``wait_for_new_master()`` returns once the sentinels name another one.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.fakes.redis_cluster import RedisNode

__all__ = ["PASSWORD", "SERVICE", "RedisSentinelServers"]

SERVICE = "mymaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000

_SENTINEL_CONF = """\
bind 127.0.0.1
port {{port}}
daemonize no
dir {folder}
sentinel monitor {service} 127.0.0.1 {master_port} 2
sentinel down-after-milliseconds {service} {down_after}
sentinel failover-timeout {service} {failover_timeout}
sentinel parallel-syncs {service} 1
"""
PASSWORD = "glmbot-sentinel-test"


def _server_args(password: str | None, *extra: str) -> list[str]:
    login = ["--requirepass", password, "--masterauth", password] if password else []
    return ["--bind", "127.0.0.1", "--port", "{port}", "--save", "", "--appendonly", "no", *login, *extra]


class RedisSentinelServers:
    """Start/stop a throwaway master + replica + three sentinels; ``url`` is its REDIS_URL.

    ``with RedisSentinelServers() as deployment: deployment.url``. ``master`` is the node the sentinels
    name now (it changes after a failover); ``flush()`` empties it. The master and replica require
    ``password`` (the sentinels do not), which ``url`` carries.
    """

    def __init__(
        self, sentinels: int = 3, start_timeout: float = 30.0, password: str | None = PASSWORD
    ) -> None:
        self.password = password
        self.sentinel_count = sentinels
        self.start_timeout = start_timeout
        self.servers: list[RedisNode] = []
        self.sentinels: list[RedisNode] = []
        self._dir: Path | None = None

    def start(self) -> RedisSentinelServers:
        if self.servers:
            return self
        self._dir = Path(tempfile.mkdtemp(prefix="glmbot-sentinel-"))
        try:
            master = RedisNode(self._dir, "master", password=self.password).start(_server_args(self.password))
            self.servers.append(master)
            follow = _server_args(self.password, "--replicaof", "127.0.0.1", str(master.port))
            self.servers.append(RedisNode(self._dir, "replica", password=self.password).start(follow))
            for index in range(self.sentinel_count):
                config = _SENTINEL_CONF.format(
                    folder=self._dir,
                    service=SERVICE,
                    master_port=master.port,
                    down_after=DOWN_AFTER_MS,
                    failover_timeout=FAILOVER_TIMEOUT_MS,
                )
                if self.password:
                    config += f"sentinel auth-pass {SERVICE} {self.password}\n"
                self.sentinels.append(RedisNode(self._dir, f"sentinel{index}").start(["--sentinel"], config))
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        """Wait until the replica is in sync and every sentinel knows the replica and the other sentinels
        (they find each other through the master's hello channel, about every two seconds)."""
        deadline = time.monotonic() + self.start_timeout
        others = self.sentinel_count - 1
        while time.monotonic() < deadline:
            synced = self.servers[1].client.info("replication").get("master_link_status") == "up"
            known = [_as_dict(node.client.sentinel_master(SERVICE)) for node in self.sentinels]
            if synced and all(
                int(state.get("num-other-sentinels", 0)) >= others and int(state.get("num-slaves", 0)) >= 1
                for state in known
            ):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the sentinels did not see the whole deployment in {self.start_timeout} s")

    def stop(self) -> None:
        for node in [*self.sentinels, *self.servers]:
            node.stop()
        self.sentinels, self.servers = [], []
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisSentinelServers:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``redis+sentinel://`` with every sentinel, the service name and database 0."""
        if not self.sentinels:
            raise RuntimeError("RedisSentinelServers is not started")
        login = f":{self.password}@" if self.password else ""
        return (
            f"redis+sentinel://{login}" + ",".join(node.address for node in self.sentinels) + f"/{SERVICE}/0"
        )

    def master_port(self) -> int:
        """The port of the master the sentinels name now (asked of the first sentinel that answers)."""
        for sentinel in self.sentinels:
            if sentinel.running:
                address = sentinel.client.sentinel_get_master_addr_by_name(SERVICE)
                if isinstance(address, tuple | list):
                    return int(address[1])
        raise RuntimeError("no sentinel is running")

    @property
    def master(self) -> RedisNode:
        """The node the sentinels name as master now."""
        port = self.master_port()
        return next(node for node in self.servers if node.port == port)

    def flush(self) -> None:
        """FLUSHALL on the master (the replica follows), and its policy back to noeviction."""
        self.master.client.flushall()
        self.master.client.config_set("maxmemory-policy", "noeviction")

    def set_policy(self, policy: str) -> str:
        """Give the master ``policy`` as its maxmemory-policy; returns its address."""
        master = self.master
        master.client.config_set("maxmemory-policy", policy)
        return master.address

    def kill_master(self) -> int:
        """SIGKILL the current master; returns its port."""
        master = self.master
        master.kill()
        return master.port

    def wait_for_new_master(self, old_port: int, timeout: float = 30.0) -> RedisNode:
        """Wait until the sentinels name a master other than ``old_port`` and it accepts writes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            port = self.master_port()
            if port != old_port:
                node = next(node for node in self.servers if node.port == port)
                if node.client.info("replication").get("role") == "master":
                    return node
            time.sleep(0.1)
        raise RuntimeError(f"no failover within {timeout} s")


def _as_dict(reply: object) -> dict[str, str]:
    """A SENTINEL MASTER reply (a flat list of names and values, or already a dict) as a dict."""
    if isinstance(reply, dict):
        return {str(name): str(value) for name, value in reply.items()}
    if isinstance(reply, list):
        return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply) - 1, 2)}
    return {}
