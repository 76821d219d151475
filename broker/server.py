"""The Kafka protocol server: one asyncio task per connection.

Requests on a connection are handled one at a time, so responses leave in request
order (as Kafka does by muting a channel while a request is in flight). Input that
is not Kafka closes that connection only; it never reaches other connections.
"""

from __future__ import annotations

import asyncio
import logging
import time

from kio.schema.errors import ErrorCode

from .connection import Connection
from .handlers.api_versions import API_VERSIONS, api_versions_body
from .handlers.registry import RequestContext, load_all
from .protocol.codec import (
    InvalidRequestError,
    decode_request,
    encode_response,
    parse_request_header,
    peek_api,
    request_class,
    response_class,
)
from .protocol.entities import build
from .protocol.frames import FrameError
from .response_writer import SegmentShrankError, prepare, write_response

log = logging.getLogger("brook.server")


class KafkaServer:
    def __init__(self, broker) -> None:
        self.broker = broker
        self.apis = load_all()
        self.max_request_bytes = broker.config.socket_request_max_bytes
        self.idle_timeout_s = broker.config.get_int("connections.max.idle.ms") / 1000
        self._servers: list[asyncio.base_events.Server] = []
        self._connections: set[asyncio.Task] = set()
        self._open: set[Connection] = set()

    async def start(self) -> None:
        controller_names = set(str(self.broker.config.get("controller.listener.names") or "")
                               .split(","))
        for listener in self.broker.config.listeners:
            if listener.name in controller_names:
                continue
            loop = asyncio.get_running_loop()
            server = await loop.create_server(
                lambda: Connection(self.max_request_bytes, self._opened, self._open.discard), listener.host,
                listener.port, reuse_address=True, backlog=1024)
            self._servers.append(server)
            log.info("listening for Kafka clients on %s://%s:%d", listener.name, listener.host,
                     listener.port)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        try:  # closed transports first send what they hold ...
            await asyncio.wait_for(self._wait_closed(), 1.0)
        except TimeoutError:  # ... unless a client stopped reading: cut those off
            for connection in list(self._open):
                connection.transport.abort()
            await self._wait_closed()

    async def _wait_closed(self) -> None:
        for server in self._servers:
            await server.wait_closed()

    def _opened(self, connection: Connection) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(connection))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        self._open.add(connection)

    async def _serve(self, connection: Connection) -> None:
        peer = "{}:{}".format(*(connection.transport.get_extra_info("peername") or ("?", "?"))[:2])
        metrics = self.broker.metrics
        metrics.connections.inc()
        try:
            prepare(connection)
            while True:
                frame = await connection.next_frame(self.idle_timeout_s)
                if frame is None:
                    return
                response = await self.dispatch(frame, peer)
                if response is not None:
                    await write_response(connection, response)
        except (FrameError, InvalidRequestError, SegmentShrankError) as exc:
            metrics.connections_closed_for_errors.inc()
            log.warning("closing connection from %s: %s", peer, exc)
        except TimeoutError:
            log.debug("closing idle connection from %s", peer)
        except ConnectionError:
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            metrics.connections_closed_for_errors.inc()
            log.exception("internal error serving %s; closing that connection", peer)
        finally:
            metrics.connections.dec()
            connection.close()

    async def dispatch(self, frame: bytes, peer: str) -> bytes | list | None:
        api_key, version, correlation_id = peek_api(frame)
        spec = self.apis.get(api_key)
        if spec is None:
            raise InvalidRequestError(f"unknown API key {api_key}")
        if not spec.min_version <= version <= spec.max_version:
            if api_key == API_VERSIONS:
                # Kafka answers a too-new ApiVersions with v0 and its own range, so the
                # client can retry with a version both sides know.
                body = build(response_class(API_VERSIONS, 0),
                             api_versions_body(ErrorCode.unsupported_version))
                return encode_response(API_VERSIONS, 0, correlation_id, body)
            raise InvalidRequestError(
                f"{spec.name} v{version} is not supported (Brook: v{spec.min_version}-"
                f"v{spec.max_version})")
        header = parse_request_header(frame, request_class(api_key, version).__flexible__)
        request = decode_request(api_key, version, frame, header.body_offset)
        ctx = RequestContext(api_key, version, correlation_id, header.client_id, peer)
        started = time.perf_counter()
        body = await spec.handler(self.broker, ctx, request)
        metrics = self.broker.metrics
        metrics.requests.labels(spec.name).inc()
        metrics.latency.labels(spec.name).observe(time.perf_counter() - started)
        if body is None:
            return None
        if isinstance(body, list):  # already encoded, as parts (Fetch)
            return body
        if not spec.counts_own_errors:
            metrics.count_errors(spec.name, body)
        return encode_response(api_key, version, correlation_id,
                               build(response_class(api_key, version), body))
