"""ListOffsets: earliest (-2), latest (-1), max timestamp (-3), or by timestamp."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from .registry import api

LIST_OFFSETS = 2
LATEST, EARLIEST, MAX_TIMESTAMP = -1, -2, -3
EARLIEST_LOCAL, LATEST_TIERED = -4, -5
READ_COMMITTED = 1


@api(LIST_OFFSETS, "ListOffsets", 1, 8)
async def handle_list_offsets(broker, ctx, request) -> dict:
    committed = getattr(request, "isolation_level", 0) == READ_COMMITTED
    topics = []
    for topic in request.topics:
        partitions = [_lookup(broker, topic.name, item, committed) for item in topic.partitions]
        topics.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}


def _lookup(broker, topic: str, item, committed: bool) -> dict:
    result = {"partition_index": item.partition_index, "error_code": ErrorCode.none,
              "timestamp": -1, "offset": -1, "leader_epoch": -1}
    partition, error = broker.lookup(topic, item.partition_index)
    if partition is None:
        result["error_code"] = error
        return result
    log = partition.log
    result["leader_epoch"] = partition.leader_epoch
    ts = item.timestamp
    upper = partition.last_stable_offset if committed else partition.high_watermark
    if ts == LATEST:
        result["offset"] = upper
    elif ts in (EARLIEST, EARLIEST_LOCAL):
        result["offset"] = log.log_start_offset
    elif ts == LATEST_TIERED:
        result["offset"] = log.log_start_offset - 1  # no tiered storage: nothing is remote
    elif ts == MAX_TIMESTAMP:
        found = log.max_timestamp_offset()
        if found is not None and found[0] < upper:
            result["offset"], result["timestamp"] = found
    elif ts < 0:
        result["error_code"] = ErrorCode.invalid_request
    else:
        found = log.offset_for_timestamp(ts)
        if found is not None and found[0] < upper:
            result["offset"], result["timestamp"] = found
    return result
