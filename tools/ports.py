"""Free loopback ports for brokers, controllers and control planes started by tests,
benchmarks and tools.

A port the kernel hands out for `bind(0)` comes from the ephemeral range, the same
range every outgoing client connection draws its local port from. Between picking
such a port and the server binding it, a client socket of another test can take it
("Address already in use" in CI). So ports are drawn from below the ephemeral range,
where the kernel never assigns one on its own, and never twice in one process.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

_FALLBACK_EPHEMERAL_START = 32768
_LOWEST = 10000
_handed_out: set[int] = set()
_lock = threading.Lock()


def _ephemeral_start() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return _FALLBACK_EPHEMERAL_START


def _bindable(host: str, port: int) -> bool:
    # No SO_REUSEADDR: a port with a connection still in TIME_WAIT counts as taken,
    # as it does for a server that binds without it.
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that is free now, outside the ephemeral range, and not yet
    handed out by this process."""
    highest = _ephemeral_start() - 1
    if highest <= _LOWEST:  # an unusual range: fall back to the kernel's choice
        with socket.socket() as sock:
            sock.bind((host, 0))
            return sock.getsockname()[1]
    rng = random.Random()
    with _lock:
        for _ in range(1000):
            port = rng.randint(_LOWEST, highest)
            if port not in _handed_out and _bindable(host, port):
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no free port on {host} between {_LOWEST} and {highest}")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    return [free_port(host) for _ in range(count)]
