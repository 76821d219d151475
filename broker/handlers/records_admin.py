"""DeleteRecords: move a partition's log start offset forward."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from .registry import api

DELETE_RECORDS = 21
HIGH_WATERMARK = -1


@api(DELETE_RECORDS, "DeleteRecords", 0, 2)
async def handle_delete_records(broker, ctx, request) -> dict:
    topics = []
    for topic in request.topics:
        partitions = []
        for item in topic.partitions:
            result = {"partition_index": item.partition_index, "low_watermark": -1,
                      "error_code": ErrorCode.none}
            partition, error = broker.lookup(topic.name, item.partition_index)
            if partition is None:
                result["error_code"] = error
            else:
                hw = partition.high_watermark
                offset = hw if item.offset == HIGH_WATERMARK else item.offset
                if offset < 0 or offset > hw:
                    result["error_code"] = ErrorCode.offset_out_of_range
                else:
                    if offset > partition.log.log_start_offset:
                        partition.log.delete_records_before(offset)
                    result["low_watermark"] = partition.log.log_start_offset
            partitions.append(result)
        topics.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}
