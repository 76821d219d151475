"""A small asyncio Kafka client for broker-to-broker traffic (follower fetches,
OffsetForLeaderEpoch). Requests are kio entities; several may be in flight on one
connection and responses are matched by correlation id."""

from __future__ import annotations

import asyncio
import struct

from kio.schema.request_header.v1 import RequestHeader as HeaderV1
from kio.schema.request_header.v2 import RequestHeader as HeaderV2

from .codec import encode_entity, response_class
from .frames import read_frame_any

_INT32 = struct.Struct(">i")


class BrokerConnectionError(ConnectionError):
    """The peer broker is unreachable or closed the connection."""


class KafkaConnection:
    def __init__(self, host: str, port: int, client_id: str,
                 max_response_bytes: int = 512 * 1024 * 1024) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.max_response_bytes = max_response_bytes
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, tuple[asyncio.Future, type]] = {}
        self._correlation = 0
        self._receiver: asyncio.Task | None = None

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self, timeout: float = 5.0) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), timeout)
        except (OSError, TimeoutError) as exc:
            raise BrokerConnectionError(f"cannot reach {self.host}:{self.port}: {exc}") from exc
        self._receiver = asyncio.create_task(self._receive(), name=f"recv-{self.host}:{self.port}")

    async def request(self, entity, timeout: float = 30.0):
        if not self.connected:
            await self.connect()
        self._correlation += 1
        correlation = self._correlation
        header_cls = HeaderV2 if entity.__flexible__ else HeaderV1
        header = header_cls(request_api_key=entity.__api_key__,
                            request_api_version=entity.__version__,
                            correlation_id=correlation, client_id=self.client_id)
        payload = encode_entity(header) + encode_entity(entity)
        future = asyncio.get_running_loop().create_future()
        self._pending[correlation] = (future, response_class(entity.__api_key__,
                                                             entity.__version__))
        assert self._writer is not None
        self._writer.write(_INT32.pack(len(payload)) + payload)
        try:
            await self._writer.drain()
            return await asyncio.wait_for(future, timeout)
        except (OSError, ConnectionError) as exc:
            self.close()
            raise BrokerConnectionError(f"{self.host}:{self.port}: {exc}") from exc
        finally:
            self._pending.pop(correlation, None)

    async def _receive(self) -> None:
        from kio.serial import entity_reader

        try:
            while True:
                frame = await read_frame_any(self._reader, self.max_response_bytes)
                if frame is None:
                    break
                (correlation,) = _INT32.unpack_from(frame, 0)
                entry = self._pending.get(correlation)
                if entry is None:
                    continue
                future, cls = entry
                offset = 4 + (1 if cls.__flexible__ and cls.__api_key__ != 18 else 0)
                try:
                    response, _ = entity_reader(cls)(frame, offset)
                except Exception as exc:  # a malformed response fails only its request
                    if not future.done():
                        future.set_exception(BrokerConnectionError(f"bad response: {exc}"))
                    continue
                if not future.done():
                    future.set_result(response)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._fail_pending()
            self.close()

    def _fail_pending(self) -> None:
        for future, _ in list(self._pending.values()):
            if not future.done():
                future.set_exception(BrokerConnectionError(
                    f"connection to {self.host}:{self.port} closed"))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = None
        if self._receiver is not None and self._receiver is not asyncio.current_task():
            self._receiver.cancel()
        self._receiver = None
