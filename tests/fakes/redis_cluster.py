"""A real Redis Cluster of three masters (``redis-server --cluster-enabled yes``) on free loopback ports.

``RedisNode`` is one ``redis-server`` process on a free loopback port (never 6379, never a fixed one), with
the port-picking and clean-up of ``tests.fakes.redis_server``; ``RedisClusterServers`` starts three of
them in cluster mode, joins them with ``redis-cli --cluster create`` and waits until ``CLUSTER INFO`` says
``cluster_state:ok`` (https://redis.io/docs/latest/operate/oss_and_stack/management/scaling/).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import redis

from tests.fakes.redis_server import _free_port

__all__ = ["RedisClusterServers", "RedisNode", "redis_binary"]

_INSTALL_HINT = "{name} is not on PATH; install it with `apt-get install -y redis-server redis-tools`"


def redis_binary(name: str = "redis-server") -> str:
    """The path of ``name`` (redis-server, redis-cli); RuntimeError with an install hint when missing."""
    binary = shutil.which(name)
    if binary is None:
        raise RuntimeError(_INSTALL_HINT.format(name=name))
    return binary


class RedisNode:
    """One ``redis-server`` (or sentinel) process on a free loopback port, logging into ``folder``; its
    client logs in with ``password`` when given.

    ``args(port)`` gives the server's arguments after the binary for a chosen port; a port taken in the
    meantime is retried with another (up to ``attempts``).
    """

    def __init__(
        self,
        folder: Path,
        name: str,
        start_timeout: float = 10.0,
        attempts: int = 5,
        password: str | None = None,
    ) -> None:
        self.folder = folder
        self.name = name
        self.password = password
        self.start_timeout = start_timeout
        self.attempts = attempts
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: redis.Redis | None = None

    def start(self, args: Sequence[str] | None = None, config: str | None = None) -> RedisNode:
        """Start on a free port: ``config`` (a redis.conf text with ``{port}``) or command-line ``args``
        (``{port}`` and ``{extra_port}``, another free port, are replaced in them). Raises RuntimeError when
        it does not answer PING in time."""
        errors: list[str] = []
        for _ in range(self.attempts):
            port = _free_port()
            extra = _free_port()  # for a second listener of the process (a cluster's bus)
            argv = [
                arg.replace("{port}", str(port)).replace("{extra_port}", str(extra)) for arg in args or ()
            ]
            if config is not None:
                path = self.folder / f"{self.name}.conf"
                path.write_text(config.replace("{port}", str(port)), encoding="utf-8")
                argv = [str(path), *argv]
            log_path = self.folder / f"{self.name}-{port}.log"
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    [redis_binary(), *argv],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.folder,
                )
            client = redis.Redis(
                host="127.0.0.1", port=port, password=self.password, socket_timeout=2.0, decode_responses=True
            )
            if self._wait_ready(proc, client):
                self._proc, self.port, self._client = proc, port, client
                return self
            client.close()
            _terminate(proc)
            errors.append(f"port {port}: {log_path.read_text(errors='replace').strip()[-500:]}")
        raise RuntimeError(f"{self.name} did not start:\n" + "\n".join(errors))

    def _wait_ready(self, proc: subprocess.Popen[bytes], client: redis.Redis) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False  # exited, e.g. the port was taken in the meantime
            try:
                if client.ping():
                    return True
            except redis.exceptions.ConnectionError:
                pass
            time.sleep(0.02)
        return False

    @property
    def client(self) -> redis.Redis:
        """A sync client of this node alone (decode_responses=True)."""
        if self._client is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._client

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    def cluster_info(self) -> dict[str, str]:
        """This node's ``CLUSTER INFO`` as a dict (``cluster_state``, ``cluster_known_nodes``, ...)."""
        reply = self.client.cluster("INFO")
        if isinstance(reply, dict):  # redis-py parses the reply into a dict
            return {str(name): str(value) for name, value in reply.items()}
        pairs = (line.split(":", 1) for line in str(reply).splitlines() if ":" in line)
        return {name.strip(): value.strip() for name, value in pairs}

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process (a crash: nothing is saved or handed over)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._proc is not None:
            _terminate(self._proc)
            self._proc = None


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class RedisClusterServers:
    """Start/stop a throwaway three-master Redis Cluster on loopback; ``url`` is its REDIS_URL.

    ``with RedisClusterServers() as cluster: cluster.url``. ``flush()`` empties every master; ``nodes`` are
    the masters, each with a sync client of its own (for CONFIG SET, CLUSTER INFO).
    """

    def __init__(self, masters: int = 3, start_timeout: float = 30.0) -> None:
        self.masters = masters
        self.start_timeout = start_timeout
        self.nodes: list[RedisNode] = []
        self._dir: Path | None = None

    def start(self) -> RedisClusterServers:
        if self.nodes:
            return self
        self._dir = Path(tempfile.mkdtemp(prefix="glmbot-cluster-"))
        try:
            for index in range(self.masters):
                node = RedisNode(self._dir, f"node{index}")
                # The cluster bus gets a free port of its own (the default, port + 10000, may be taken or
                # beyond 65535).
                node.start(_cluster_args(self._dir / f"nodes-{index}.conf"))
                self.nodes.append(node)
            self._create()
            self._wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def _create(self) -> None:
        command = [
            redis_binary("redis-cli"),
            "--cluster",
            "create",
            *(node.address for node in self.nodes),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]
        timeout = self.start_timeout
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout}\n{done.stderr}")

    def _wait_ok(self) -> None:
        """Wait until every node says ``cluster_state:ok`` and knows every other node."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            infos = [node.cluster_info() for node in self.nodes]
            if all(
                info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == self.masters
                for info in infos
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"the cluster did not reach cluster_state:ok in {self.start_timeout} s")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisClusterServers:
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
        """``redis+cluster://`` with two of the masters as seeds (the client finds the third)."""
        if not self.nodes:
            raise RuntimeError("RedisClusterServers is not started")
        return "redis+cluster://" + ",".join(node.address for node in self.nodes[:2])

    def flush(self) -> None:
        """FLUSHALL on every master, and every policy back to noeviction."""
        for node in self.nodes:
            node.client.flushall()
            node.client.config_set("maxmemory-policy", "noeviction")

    def set_policy(self, policy: str) -> str:
        """Give the last master ``policy`` as its maxmemory-policy; returns that node's address."""
        self.nodes[-1].client.config_set("maxmemory-policy", policy)
        return self.nodes[-1].address


def _cluster_args(config_file: Path) -> list[str]:
    return [
        *("--bind", "127.0.0.1", "--port", "{port}"),
        *("--cluster-enabled", "yes", "--cluster-config-file", str(config_file)),
        *("--cluster-port", "{extra_port}", "--cluster-node-timeout", "2000"),
        *("--save", "", "--appendonly", "no", "--daemonize", "no"),
    ]
