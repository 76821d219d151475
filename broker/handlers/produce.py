"""Produce: validate and append record batches; acks 0, 1 and all (-1)."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from .registry import api

PRODUCE = 0


def _partition_error(index: int, error: ErrorCode, message: str | None = None) -> dict:
    return {"index": index, "error_code": error, "base_offset": -1, "log_start_offset": -1,
            "error_message": message}


@api(PRODUCE, "Produce", 3, 12, advertised_min_version=0)  # as Kafka 4 does
async def handle_produce(broker, ctx, request) -> dict | None:
    acks = int(request.acks)
    now_ms = broker.now_ms()
    responses = []
    for topic_data in request.topic_data:
        name = topic_data.name
        results = []
        for data in topic_data.partition_data:
            results.append(_produce_partition(broker, name, data, acks, now_ms))
        responses.append({"name": name, "partition_responses": results})
    if acks == 0:
        return None  # Kafka sends no response at all for acks=0
    return {"responses": responses, "throttle_time": 0}


def _produce_partition(broker, topic: str, data, acks: int, now_ms: int) -> dict:
    index = data.index
    if acks not in (-1, 0, 1):
        return _partition_error(index, ErrorCode.invalid_required_acks)
    partition = broker.partition(topic, index)
    if partition is None:
        return _partition_error(index, ErrorCode.unknown_topic_or_partition,
                                f"This server does not host this topic-partition: {topic}-{index}")
    if data.records is None or len(data.records) == 0:
        return _partition_error(index, ErrorCode.invalid_record, "Produce request has no records")
    if acks == -1 and partition.min_insync_replicas > 1:
        # One broker is the whole ISR; a topic that asks for more in-sync copies than
        # exist must refuse acks=all writes rather than silently weaken them.
        return _partition_error(
            index, ErrorCode.not_enough_replicas,
            f"The size of the current ISR (1) is insufficient to satisfy the min.isr "
            f"requirement of {partition.min_insync_replicas} for partition {topic}-{index}")
    outcome = partition.append(bytes(data.records), now_ms)
    if outcome.error != ErrorCode.none:
        broker.metrics.request_errors.labels("Produce", outcome.error.name).inc()
        result = _partition_error(index, outcome.error, outcome.message)
        result["record_errors"] = [{"batch_index": i, "batch_index_error_message": m}
                                   for i, m in outcome.record_errors]
        return result
    if outcome.records_appended:
        broker.metrics.bytes_in.labels(topic).inc(outcome.bytes_appended)
        broker.metrics.messages_in.labels(topic).inc(outcome.records_appended)
    return {
        "index": index,
        "error_code": ErrorCode.none,
        "base_offset": outcome.base_offset,
        "log_append_time": outcome.log_append_time_ms if outcome.log_append_time_ms >= 0 else None,
        "log_start_offset": outcome.log_start_offset,
    }
