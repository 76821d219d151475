"""tools/ports.py: test listener ports stay out of the kernel's ephemeral range (where
outgoing client sockets could take them) and are never handed out twice."""

import socket

import pytest

from tools import ports


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    picked = ports.free_ports(50)
    assert len(set(picked)) == 50
    assert all(ports._LOWEST <= p < ports._ephemeral_start() for p in picked)
    for port in picked[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_ports_in_use_are_never_picked(monkeypatch):
    """Both candidate ports are in use (by this test or by someone else): no pick."""
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        low = first.getsockname()[1]
        try:
            second.bind(("127.0.0.1", low + 1))
        except OSError:
            pass  # already in use elsewhere: just as good
        monkeypatch.setattr(ports, "_LOWEST", low)
        monkeypatch.setattr(ports, "_ephemeral_start", lambda: low + 2)
        with pytest.raises(RuntimeError, match=f"no free port on 127.0.0.1 between {low} and {low + 1}"):
            ports.free_port()
