"""A real ``redis-server`` subprocess on a free loopback port, private to the test run."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import redis

__all__ = ["RedisServer"]

_INSTALL_HINT = "redis-server is not on PATH; install it with `apt-get install -y redis-server`"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """Start/stop a throwaway ``redis-server``; never touches the Redis on 6379.

    ``with RedisServer() as server: server.url``. ``flush()`` empties it and zeroes its command stats,
    ``command_count()`` is the number of commands served since (not counting the harness's own calls).
    ``extra_args`` go to ``redis-server`` after the harness's own, e.g. ``("--maxmemory-policy",
    "allkeys-lru")``; the harness talks to the server as the default user, which must keep CONFIG and INFO.
    """

    def __init__(
        self, start_timeout: float = 10.0, attempts: int = 5, extra_args: Sequence[str] = ()
    ) -> None:
        self.start_timeout = start_timeout
        self.attempts = attempts
        self.extra_args = tuple(extra_args)
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._client: redis.Redis | None = None
        # Commands the harness itself sent since the last stats reset (INFO, CONFIG RESETSTAT, ...).
        self._own_commands = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> RedisServer:
        if self._proc is not None:
            return self
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(_INSTALL_HINT)
        self._dir = Path(tempfile.mkdtemp(prefix="glmbot-redis-"))
        errors: list[str] = []
        for _ in range(self.attempts):
            port = _free_port()
            log_path = self._dir / f"redis-{port}.log"
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    [
                        binary,
                        "--bind",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--daemonize",
                        "no",
                        "--dir",
                        str(self._dir),
                        *self.extra_args,
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2.0, decode_responses=True)
            if self._wait_ready(proc, client):
                self._proc, self.port, self._client = proc, port, client
                self.reset_stats()
                return self
            client.close()
            self._terminate(proc)
            errors.append(f"port {port}: {log_path.read_text(errors='replace').strip()[-500:]}")
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None
        raise RuntimeError("redis-server did not start:\n" + "\n".join(errors))

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
            except redis.exceptions.BusyLoadingError:
                pass
            time.sleep(0.02)
        return False

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._proc is not None:
            self._terminate(self._proc)
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers

    @property
    def client(self) -> redis.Redis:
        """The harness's own sync client (decode_responses=True). Its commands are not excluded from
        ``command_count()``, so prefer a separate client for anything you want to measure."""
        if self._client is None:
            raise RuntimeError("RedisServer is not started")
        return self._client

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("RedisServer is not started")
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        """FLUSHALL on this server only, then zero the command statistics."""
        self.client.flushall()
        self.reset_stats()

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT; afterwards ``command_count()`` counts from zero."""
        self.client.config_resetstat()
        self._own_commands = 1  # the RESETSTAT itself is counted after the reset

    def command_count(self) -> int:
        """Total commands served (sum of ``calls=`` in INFO commandstats) minus the harness's own."""
        stats = self.client.info("commandstats")
        self._own_commands += 1  # this INFO shows up in the next reading
        total = 0
        for value in stats.values():
            if isinstance(value, dict):
                total += int(value.get("calls", 0))
        return total - (self._own_commands - 1)
