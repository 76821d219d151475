"""gRPC transport for quorum messages (grpc.aio), plus the standard health service.

The service `brook.raft.v1.Quorum` has one unary method per request type; the
response travels back on the same call. Methods are registered through grpc's
generic handlers with codec.py as the explicit serializer, not generated from a
.proto: both ends are Brook, the messages are already frozen dataclasses with a
property-tested binary codec, and this avoids generated code to keep fresh and the
protobuf gencode/runtime version coupling. `grpc.health.v1.Health` comes from grpc's
own grpcio-health-checking, so standard probes (grpc_health_probe, Kubernetes gRPC
probes) work unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .codec import CodecError, decode_message, encode_message
from .messages import AppendRequest, Request, Response, SnapshotRequest, VoteRequest

log = logging.getLogger("brook.raft.transport")

SERVICE = "brook.raft.v1.Quorum"
METHODS: dict[type, str] = {VoteRequest: "Vote", AppendRequest: "Append",
                            SnapshotRequest: "InstallSnapshot"}
MAX_MESSAGE_BYTES = 16 << 20
CHANNEL_OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]

# Outbound channels to peers. A restarted peer (a pod) comes back within seconds, often
# at a new address behind the same name: gRPC's defaults (reconnect back-off growing to
# 120 s, DNS looked up again at most every 30 s) kept a returning broker fenced for
# ~30 s. Kafka's own reconnect back-off tops out at 1 s.
PEER_CHANNEL_OPTIONS = [*CHANNEL_OPTIONS,
                        ("grpc.initial_reconnect_backoff_ms", 100),
                        ("grpc.min_reconnect_backoff_ms", 100),
                        ("grpc.max_reconnect_backoff_ms", 1000),
                        ("grpc.dns_min_time_between_resolutions_ms", 500)]

Handler = Callable[[Request], Awaitable[Response]]


class WrongRecipient(Exception):
    """The request names another node id: the sender has a stale address for it."""


def _decode_request(data: bytes) -> Request | CodecError:
    try:
        return decode_message(data)
    except CodecError as error:
        return error  # reported to the caller as INVALID_ARGUMENT by the handler


def quorum_service(handle: Handler) -> grpc.GenericRpcHandler:
    """The Quorum service, answering each request with `await handle(request)`."""

    def method(expected: type):
        async def call(request, context: grpc.aio.ServicerContext):
            if isinstance(request, CodecError):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(request))
            if not isinstance(request, expected):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"expected {expected.__name__}, got {type(request).__name__}")
            try:
                return await handle(request)
            except WrongRecipient as error:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))

        return grpc.unary_unary_rpc_method_handler(
            call, request_deserializer=_decode_request, response_serializer=encode_message)

    return grpc.method_handlers_generic_handler(
        SERVICE, {name: method(kind) for kind, name in METHODS.items()})


def add_health_service(server: grpc.aio.Server) -> health.aio.HealthServicer:
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class PeerClients:
    """Outbound calls to peers by address; a failed call is reported as None (a lost message)."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def call(self, address: str, request: Request) -> Response | None:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.aio.insecure_channel(
                address, options=PEER_CHANNEL_OPTIONS)
        stub = channel.unary_unary(f"/{SERVICE}/{METHODS[type(request)]}",
                                   request_serializer=encode_message,
                                   response_deserializer=decode_message)
        try:
            return await stub(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            # Peers that are down, slow, or stopping (FAILED_PRECONDITION) are routine.
            routine = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.CANCELLED)
            log.log(logging.DEBUG if error.code() in routine else logging.WARNING,
                    "%s to %s failed: %s %s", type(request).__name__, address,
                    error.code().name, error.details())
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                # Another node, or one stopping, answers at this address (a restarted pod
                # took a new one): a fresh channel resolves the name again.
                stale = self._channels.pop(address, None)
                if stale is not None:
                    await stale.close()
            return None
        except CodecError as error:
            log.warning("undecodable response from %s: %s", address, error)
            return None

    def forget(self, keep: set[str]) -> list[Awaitable[None]]:
        """Drop channels to addresses no longer in the configuration; returns their closes."""
        closes = []
        for address in list(self._channels):
            if address not in keep:
                closes.append(self._channels.pop(address).close())
        return closes

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
