"""Reaching the active controller from any broker, over gRPC on the controller port.

One unary method carries `{"op": ..., "request": {...}}` as JSON and answers with
the operation's result, or with `{"not_controller": leader_id}` so the caller can go
to the leader. JSON because both ends are Brook, requests are small, and the payload
is readable in a packet capture; registered through grpc's generic handlers like the
quorum service, so no generated code needs keeping fresh.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

import grpc

from ..raft.transport import PEER_CHANNEL_OPTIONS
from .service import Controller, NotController

log = logging.getLogger("brook.controller.rpc")

SERVICE = "brook.controller.v1.Controller"
METHOD = f"/{SERVICE}/Call"


class ControllerUnavailable(RuntimeError):
    """No active controller answered in time; the message says what was tried."""


def _dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def controller_service(controller: Controller,
                       channel: ControllerChannel | None = None) -> grpc.GenericRpcHandler:
    async def call(request: dict, context: grpc.aio.ServicerContext) -> dict:
        # Every answer names who gives it: a caller whose address for a node now leads
        # to another (a pod restarted with a new address, and an old one reused) learns
        # it instead of taking that node's word for the other's.
        node = {"node": controller.node_id}
        try:
            return {"result": await controller.call(request["op"], request["request"]), **node}
        except NotController as exc:
            if request.get("forward") and channel is not None:
                # A tool that knows one broker (brook quorum ...): relay to the controller.
                try:
                    return {"result": await channel.call(request["op"], request["request"]),
                            **node}
                except ControllerUnavailable as unavailable:
                    return {"error": str(unavailable), **node}
            return {"not_controller": exc.leader_id, **node}

    handler = grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=json.loads, response_serializer=_dumps)
    return grpc.method_handlers_generic_handler(SERVICE, {"Call": handler})


async def call_via(address: str, op: str, request: dict, timeout: float = 60.0) -> dict:
    """One controller operation through any broker's controller listener (for tools)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = channel.unary_unary(METHOD, request_serializer=_dumps,
                                   response_deserializer=json.loads)
        answer = await stub({"op": op, "request": request, "forward": True}, timeout=timeout)
    if "result" not in answer:
        raise ControllerUnavailable(answer.get("error") or f"no controller answered: {answer}")
    return answer["result"]


# Operations whose repeat is harmless: only these give up on a silent controller after
# one short attempt and ask again. Others (creating a topic, adding a voter) wait the
# whole timeout, so a slow but working controller is not asked twice.
RETRY_SAFE_OPS = frozenset({"heartbeat", "register_broker", "alter_partition",
                            "allocate_producer_ids", "describe_quorum"})


class ControllerChannel:
    """Calls the active controller: in-process when this node leads, else over gRPC."""

    def __init__(self, controller: Controller, is_leader: Callable[[], bool],
                 leader_id: Callable[[], int | None],
                 address_of: Callable[[int], str | None],
                 voters: Callable[[], list[int]] = list,
                 attempt_timeout: float = 2.0) -> None:
        self.controller = controller
        self._attempt_timeout = attempt_timeout  # per remote attempt, then re-resolve
        self._voters = voters  # asked in turn while no leader is known (a joining observer)
        self._is_leader = is_leader
        self._leader_id = leader_id
        self._address_of = address_of
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def call(self, op: str, request: dict, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        hint: int | None = None
        last = "no leader known"
        delay = 0.05
        attempt = 0
        while True:
            target = hint if hint is not None else self._leader_id()
            if target is None and self._voters():
                voters = self._voters()
                target = voters[attempt % len(voters)]
            attempt += 1
            try:
                if self._is_leader():
                    return await self.controller.call(op, request)
                if target is not None:
                    address = self._address_of(target)
                    if address:
                        remaining = max(0.1, deadline - time.monotonic())
                        if op in RETRY_SAFE_OPS:
                            remaining = min(remaining, self._attempt_timeout)
                        answer = await self._remote(address, op, request, remaining)
                        responder = answer.get("node", target)
                        if responder != target:
                            last = (f"{address}, the address of node {target}, answered as "
                                    f"node {responder}")
                            log.warning("%s: reconnecting", last)
                            await self._forget(address)  # resolve the name afresh
                            hint = None
                        elif "result" in answer:
                            return answer["result"]
                        else:
                            hint = answer.get("not_controller")
                            last = f"node {target} is not the controller (it names {hint})"
                            if hint == target:
                                hint = None  # fall back to this node's own view
                    else:
                        last = f"no address for node {target}"
                        hint = None
            except NotController as exc:
                hint, last = exc.leader_id, str(exc)
            except grpc.aio.AioRpcError as exc:
                hint, last = None, f"{target}: {exc.code().name} {exc.details()}"
            if time.monotonic() + delay > deadline:
                raise ControllerUnavailable(f"controller operation {op} failed: {last}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _remote(self, address: str, op: str, request: dict, timeout: float) -> dict:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.aio.insecure_channel(
                address, options=PEER_CHANNEL_OPTIONS)
        stub = channel.unary_unary(METHOD, request_serializer=_dumps,
                                   response_deserializer=json.loads)
        return await stub({"op": op, "request": request}, timeout=timeout)

    async def _forget(self, address: str) -> None:
        channel = self._channels.pop(address, None)
        if channel is not None:
            await channel.close()

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
