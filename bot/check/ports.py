"""The ports ``serve`` will listen on: free now, or the start would fail."""

from __future__ import annotations

import errno
import socket

from bot.check.report import CheckLine, fail, ok


def check_port(port: int, setting: str, host: str = "0.0.0.0") -> CheckLine:
    """Bind ``host:port`` and let go: a port in use or not allowed fails, naming ``setting`` to change.

    SO_REUSEADDR as the server sets it, so connections of a process that just stopped (TIME_WAIT) do not
    count as "in use".
    """
    name = f"port {port}"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return fail(name, "already in use by another process", f"stop that process or set {setting}")
            return fail(name, f"cannot listen on it ({exc.strerror})", f"choose another with {setting}")
    return ok(name, f"free ({setting})")
