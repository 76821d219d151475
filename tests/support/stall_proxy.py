"""A TCP proxy in front of one broker's Kafka listener that can hold back the requests
of chosen clients (by the client_id in their request headers), for tests.

Advertise the proxy as the broker's listener and every client, other brokers' replica
fetchers included, reaches the broker through it. Holding back "brook-replica-2" stalls
broker 2's fetching from this broker while everything else, broker 2's heartbeats to
the controller included (another listener), carries on.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def request_client_id(frame: bytes) -> str | None:
    """client_id of a request (header v1/v2: api_key, api_version, correlation_id, then
    a nullable int16-length string)."""
    if len(frame) < 10:
        return None
    (length,) = struct.unpack_from(">h", frame, 8)
    return None if length < 0 else frame[10:10 + length].decode(errors="replace")


class StallProxy:
    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self._listener = socket.create_server((host, 0))
        self.port = self._listener.getsockname()[1]
        self.stalled_clients: set[str] = set()
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                continue
            self._sockets += [client, server]
            threading.Thread(target=self._requests, args=(client, server), daemon=True).start()
            threading.Thread(target=self._responses, args=(server, client), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket) -> None:
        client_id = None
        with contextlib.suppress(OSError):
            while True:
                size = _recv_exact(client, 4)
                frame = size and _recv_exact(client, struct.unpack(">i", size)[0])
                if not frame:
                    break
                client_id = client_id or request_client_id(frame)
                while client_id in self.stalled_clients and not self._closing.is_set():
                    time.sleep(0.05)
                server.sendall(size + frame)
        self._shut(client, server)

    def _responses(self, server: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := server.recv(1 << 16):
                client.sendall(chunk)
        self._shut(client, server)

    @staticmethod
    def _shut(*sockets: socket.socket) -> None:
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closing.set()
        self.stalled_clients.clear()
        with contextlib.suppress(OSError):
            self._listener.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()
