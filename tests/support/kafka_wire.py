"""A minimal Kafka wire client built on kio, for tests that need exact requests
(bad input, specific versions) that real client libraries never send."""

from __future__ import annotations

import io
import socket
import struct

from kio.index import load_response_schema
from kio.schema.request_header.v1 import RequestHeader as HeaderV1
from kio.schema.request_header.v2 import RequestHeader as HeaderV2
from kio.serial import entity_reader, entity_writer


def _encode(entity) -> bytes:
    buffer = io.BytesIO()
    entity_writer(type(entity))(buffer, entity)
    return buffer.getvalue()


class WireClient:
    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.correlation = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, payload: bytes) -> None:
        self.send_raw(struct.pack(">i", len(payload)) + payload)

    def read_frame(self) -> bytes | None:
        """The next response payload, or None if the broker closed the connection."""
        prefix = self._recv_exact(4)
        if prefix is None:
            return None
        (size,) = struct.unpack(">i", prefix)
        return self._recv_exact(size)

    def _recv_exact(self, n: int) -> bytes | None:
        chunks = bytearray()
        while len(chunks) < n:
            try:
                chunk = self.sock.recv(n - len(chunks))
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            chunks += chunk
        return bytes(chunks)

    def request(self, entity, version_header: int | None = None):
        """Send a kio request entity and decode the matching response."""
        self.correlation += 1
        key, version = entity.__api_key__, entity.__version__
        header_cls = HeaderV2 if entity.__flexible__ else HeaderV1
        header = header_cls(request_api_key=key, request_api_version=version,
                            correlation_id=self.correlation, client_id="wire-test")
        self.send_frame(_encode(header) + _encode(entity))
        if key == 0 and entity.acks == 0:
            return None
        payload = self.read_frame()
        if payload is None:
            raise ConnectionError("broker closed the connection")
        (correlation,) = struct.unpack_from(">i", payload, 0)
        assert correlation == self.correlation, (correlation, self.correlation)
        response_cls = load_response_schema(key, version)
        offset = 4 + (1 if response_cls.__flexible__ and key != 18 else 0)
        response, _ = entity_reader(response_cls)(payload, offset)
        return response

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
