"""Group membership APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
DescribeGroups, ListGroups and DeleteGroups, with Kafka's per-version rules.

The rules themselves live in brook.broker.groups; these handlers translate between
kio's request classes and the coordinator, version by version.
"""

from __future__ import annotations

from collections.abc import Callable

from kio.schema.errors import ErrorCode

from ..groups.group import JoinRequest
from ..groups.placement import OFFSETS_TOPIC
from ..protocol.entities import ms
from .metadata import broker_entry
from .registry import api

FIND_COORDINATOR, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 10, 11, 12, 13, 14
DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS = 15, 16, 42

KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION, KEY_TYPE_SHARE = 0, 1, 2
# DescribeGroups: authorized operations when the client asks. Brook has no ACLs, so
# everything a group supports is allowed: READ, DELETE, DESCRIBE, and (as in Kafka 4,
# where groups have configs) DESCRIBE_CONFIGS and ALTER_CONFIGS.
GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11)
OPERATIONS_NOT_REQUESTED = -(2**31)
CLASSIC_GROUP_TYPE = "classic"


def _group_coordinator_ready(broker, key: str) -> tuple[ErrorCode, str | None]:
    if broker.group_coordinator.ensure_offsets_topic():
        return ErrorCode.none, None
    return ErrorCode.coordinator_not_available, "The coordinator is not available."


def _coordinator_node(broker, key_type: int, key: str) -> dict | None:
    """The broker leading the group's __consumer_offsets partition (None: no leader yet)."""
    if key_type != KEY_TYPE_GROUP:
        return broker_entry(broker)
    image = broker.metadata.image
    state = image.partition(OFFSETS_TOPIC, broker.group_coordinator.partition_of(key))
    info = image.brokers.get(state.leader) if state is not None else None
    if info is None or info.fenced:
        return None
    return {"node_id": info.broker_id, "host": info.host, "port": info.port}


def _this_node(broker, key: str) -> tuple[ErrorCode, str | None]:
    # No transaction coordinator yet: point at this node, whose InitProducerId then
    # refuses transactional ids plainly instead of leaving the client retrying.
    return ErrorCode.none, None


# Coordinator key type -> check that this node can coordinate the key. A module that
# implements another coordinator (transactions) replaces its entry.
COORDINATOR_TYPES: dict[int, Callable[[object, str], tuple[ErrorCode, str | None]]] = {
    KEY_TYPE_GROUP: _group_coordinator_ready,
    KEY_TYPE_TRANSACTION: _this_node,
}


def _client_host(peer: str) -> str:
    """Kafka reports a member's address as InetAddress#toString: "/127.0.0.1"."""
    host = peer.rsplit(":", 1)[0] if ":" in peer else peer
    return "/" + host.strip("[]")


@api(FIND_COORDINATOR, "FindCoordinator", 0, 6)
async def handle_find_coordinator(broker, ctx, request) -> dict:
    key_type = getattr(request, "key_type", KEY_TYPE_GROUP)
    keys = list(request.coordinator_keys) if ctx.api_version >= 4 else [request.key]
    results = [_find(broker, key_type, key) for key in keys]
    if ctx.api_version >= 4:
        return {"throttle_time": 0, "coordinators": results}
    only = results[0]
    return {"throttle_time": 0, **{k: v for k, v in only.items() if k != "key"}}


def _find(broker, key_type: int, key: str) -> dict:
    resolver = COORDINATOR_TYPES.get(key_type)
    if resolver is None:
        error, message = ErrorCode.invalid_request, f"Unsupported key type {key_type}"
    else:
        error, message = resolver(broker, key)
    if error != ErrorCode.none:
        return {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": error,
                "error_message": message or error.name}
    node = _coordinator_node(broker, key_type, key)
    if node is None:
        return {"key": key, "node_id": -1, "host": "", "port": -1,
                "error_code": ErrorCode.coordinator_not_available,
                "error_message": "The coordinator is not available."}
    return {"key": key, "node_id": node["node_id"], "host": node["host"], "port": node["port"],
            "error_code": ErrorCode.none, "error_message": None}


@api(JOIN_GROUP, "JoinGroup", 0, 9)
async def handle_join_group(broker, ctx, request) -> dict:
    version = ctx.api_version
    session_ms = ms(request.session_timeout)
    rebalance_ms = ms(request.rebalance_timeout) if version >= 1 else session_ms
    join = JoinRequest(
        member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        client_id=ctx.client_id or "",
        client_host=_client_host(ctx.peer),
        session_timeout_ms=session_ms,
        rebalance_timeout_ms=rebalance_ms,
        protocol_type=request.protocol_type,
        protocols=tuple((p.name, bytes(p.metadata)) for p in request.protocols),
        require_known_member_id=version >= 4,
        supports_skip_assignment=version >= 9,
    )
    response = dict(await broker.group_coordinator.join(request.group_id, join))
    if version < 7 and response.get("protocol_name") is None:
        response["protocol_name"] = ""  # nullable only from v7
    if response.get("leader") is None:
        response["leader"] = ""
    return {"throttle_time": 0, **response}


@api(SYNC_GROUP, "SyncGroup", 0, 5)
async def handle_sync_group(broker, ctx, request) -> dict:
    assignments = {a.member_id: bytes(a.assignment) for a in request.assignments}
    response = await broker.group_coordinator.sync(
        request.group_id, request.member_id, getattr(request, "group_instance_id", None),
        request.generation_id, getattr(request, "protocol_type", None),
        getattr(request, "protocol_name", None), assignments)
    return {"throttle_time": 0, **response}


@api(HEARTBEAT, "Heartbeat", 0, 4)
async def handle_heartbeat(broker, ctx, request) -> dict:
    error = broker.group_coordinator.heartbeat(
        request.group_id, request.member_id, getattr(request, "group_instance_id", None),
        request.generation_id)
    return {"throttle_time": 0, "error_code": error}


@api(LEAVE_GROUP, "LeaveGroup", 0, 5)
async def handle_leave_group(broker, ctx, request) -> dict:
    if ctx.api_version < 3:
        leaving = [(request.member_id, None)]
    else:
        leaving = [(m.member_id, m.group_instance_id) for m in request.members]
    error, errors = broker.group_coordinator.leave(request.group_id, leaving)
    if ctx.api_version < 3:
        # One member: its error becomes the response's error, as Kafka encodes v0-2.
        if error == ErrorCode.none and errors:
            error = errors[0]
        return {"throttle_time": 0, "error_code": error}
    members = [] if error != ErrorCode.none else [
        {"member_id": member_id, "group_instance_id": instance_id, "error_code": member_error}
        for (member_id, instance_id), member_error in zip(leaving, errors, strict=True)]
    return {"throttle_time": 0, "error_code": error, "members": members}


@api(DESCRIBE_GROUPS, "DescribeGroups", 0, 6)
async def handle_describe_groups(broker, ctx, request) -> dict:
    operations = (GROUP_OPERATIONS if getattr(request, "include_authorized_operations", False)
                  else OPERATIONS_NOT_REQUESTED)
    groups = []
    for group_id in request.groups:
        described = broker.group_coordinator.describe(group_id)
        if described is None:
            described = {"error_code": ErrorCode.none, "error_message": None,
                         "group_id": group_id, "group_state": "Dead", "protocol_type": "",
                         "protocol_data": "", "members": []}
            if ctx.api_version >= 6:  # KIP-1043: unknown groups are an error from v6
                described.update(error_code=ErrorCode.group_id_not_found,
                                 error_message=f"Group {group_id} not found.")
        groups.append({**described, "authorized_operations": operations})
    return {"throttle_time": 0, "groups": groups}


@api(LIST_GROUPS, "ListGroups", 0, 5)
async def handle_list_groups(broker, ctx, request) -> dict:
    states = {s.lower() for s in (getattr(request, "states_filter", None) or ())}
    types = {t.lower() for t in (getattr(request, "types_filter", None) or ())}
    listed = []
    if not types or CLASSIC_GROUP_TYPE in types:
        for group in broker.group_coordinator.list_groups():
            if states and group.state.value.lower() not in states:
                continue
            listed.append({"group_id": group.group_id,
                           "protocol_type": group.protocol_type or "",
                           "group_state": group.state.value,
                           "group_type": CLASSIC_GROUP_TYPE})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "groups": listed}


@api(DELETE_GROUPS, "DeleteGroups", 0, 2)
async def handle_delete_groups(broker, ctx, request) -> dict:
    results = [{"group_id": group_id, "error_code": broker.group_coordinator.delete_group(group_id)}
               for group_id in request.groups_names]
    return {"throttle_time": 0, "results": results}
