"""Committed offsets: OffsetCommit, OffsetFetch (incl. multi-group v8+) and OffsetDelete.

Versions 10 of OffsetCommit and OffsetFetch name topics by id (KIP-848); the ids
are the topic registry's, the same ones Metadata returns.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from ..groups.coordinator import CommitEntry
from ..protocol.entities import ms
from .registry import api

OFFSET_COMMIT, OFFSET_FETCH, OFFSET_DELETE = 8, 9, 47
TOPIC_IDS_FROM = 10


def _topic_name(broker, ctx, topic) -> str | None:
    if ctx.api_version >= TOPIC_IDS_FROM:
        return broker.registry.name_for_id(topic.topic_id)
    return topic.name


def _topic_key(broker, ctx, name: str, topic_id=None) -> dict:
    if ctx.api_version >= TOPIC_IDS_FROM:
        if topic_id is None:
            info = broker.registry.get(name)
            topic_id = info.topic_id if info else None
        return {"topic_id": topic_id}
    return {"name": name}


@api(OFFSET_COMMIT, "OffsetCommit", 2, 10)
async def handle_offset_commit(broker, ctx, request) -> dict:
    version = ctx.api_version
    retention_ms = ms(request.retention_time) if 2 <= version <= 4 else -1
    entries: list[CommitEntry] = []
    slots: list[tuple[int, int]] = []  # (topic index, partition index) of each entry
    topics_out = []
    for t_index, topic in enumerate(request.topics):
        name = _topic_name(broker, ctx, topic)
        partitions_out = []
        for p in topic.partitions:
            partitions_out.append({"partition_index": p.partition_index,
                                   "error_code": ErrorCode.unknown_topic_id})
            if name is None:
                continue
            slots.append((t_index, len(partitions_out) - 1))
            entries.append(CommitEntry(name, p.partition_index, p.committed_offset,
                                       getattr(p, "committed_leader_epoch", -1),
                                       p.committed_metadata))
        key = {"topic_id": topic.topic_id} if version >= TOPIC_IDS_FROM else {"name": topic.name}
        topics_out.append({**key, "partitions": partitions_out})
    if entries:
        errors = broker.group_coordinator.commit_offsets(
            request.group_id, request.member_id, getattr(request, "group_instance_id", None),
            request.generation_id_or_member_epoch, retention_ms, entries, version)
        for (t_index, p_index), error in zip(slots, errors, strict=True):
            topics_out[t_index]["partitions"][p_index]["error_code"] = error
    return {"throttle_time": 0, "topics": topics_out}


def _partition_entry(partition: int, committed) -> dict:
    return {"partition_index": partition,
            "committed_offset": committed.offset if committed else -1,
            "committed_leader_epoch": committed.leader_epoch if committed else -1,
            "metadata": committed.metadata if committed else "",
            "error_code": ErrorCode.none}


def _fetch_group(broker, ctx, group_id: str, topics) -> dict:
    coordinator = broker.group_coordinator
    owner = coordinator.owner_error(group_id)
    if owner != ErrorCode.none:  # only the coordinator knows the committed offsets
        return {"group_id": group_id, "topics": [], "error_code": owner}
    if topics is None:
        wanted = None
    else:
        wanted = []
        unknown = []
        for topic in topics:
            name = _topic_name(broker, ctx, topic)
            if name is None:
                unknown.append(topic)
                continue
            wanted.append((name, list(topic.partition_indexes)))
    result = []
    for name, partitions in coordinator.fetch_offsets(group_id, wanted):
        key = _topic_key(broker, ctx, name)
        if ctx.api_version >= TOPIC_IDS_FROM and key["topic_id"] is None:
            continue  # the topic is gone: no id to name it by
        result.append({**key, "partitions": [_partition_entry(p, c) for p, c in partitions]})
    if topics is not None:
        for topic in unknown:
            result.append({"topic_id": topic.topic_id, "partitions": [
                {**_partition_entry(p, None), "error_code": ErrorCode.unknown_topic_id}
                for p in topic.partition_indexes]})
    return {"group_id": group_id, "topics": result, "error_code": ErrorCode.none}


@api(OFFSET_FETCH, "OffsetFetch", 1, 10)
async def handle_offset_fetch(broker, ctx, request) -> dict:
    if ctx.api_version < 8:
        topics = request.topics
        if ctx.api_version < 2 and topics is None:
            topics = ()
        group = _fetch_group(broker, ctx, request.group_id, topics)
        return {"throttle_time": 0, "topics": group["topics"], "error_code": group["error_code"]}
    groups = [_fetch_group(broker, ctx, g.group_id, g.topics) for g in request.groups]
    return {"throttle_time": 0, "groups": groups}


@api(OFFSET_DELETE, "OffsetDelete", 0, 0)
async def handle_offset_delete(broker, ctx, request) -> dict:
    topics = [(t.name, [p.partition_index for p in t.partitions]) for t in request.topics]
    error, results = broker.group_coordinator.delete_offsets(request.group_id, topics)
    return {"error_code": error, "throttle_time": 0, "topics": [
        {"name": name, "partitions": [{"partition_index": p, "error_code": e} for p, e in parts]}
        for name, parts in results]}
