"""Produce: validate and append record batches; acks 0, 1 and all (-1).

acks=all is refused before the append when the ISR is smaller than the topic's
min.insync.replicas (NOT_ENOUGH_REPLICAS), and otherwise answered only once every ISR
member has the batch (the high watermark passed it); if the ISR shrank below the
minimum meanwhile, the client hears NOT_ENOUGH_REPLICAS_AFTER_APPEND, as from Kafka.
"""

from __future__ import annotations

import asyncio

from kio.schema.errors import ErrorCode

from ..protocol.entities import ms
from .registry import api

PRODUCE = 0


def _partition_error(index: int, error: ErrorCode, message: str | None = None) -> dict:
    return {"index": index, "error_code": error, "base_offset": -1, "log_start_offset": -1,
            "error_message": message}


@api(PRODUCE, "Produce", 3, 12, advertised_min_version=0,  # as Kafka 4 does
     counts_own_errors=True)
async def handle_produce(broker, ctx, request) -> dict | None:
    acks = int(request.acks)
    now_ms = broker.now_ms()
    timeout_s = max(0, ms(request.timeout)) / 1000
    responses = []
    for topic_data in request.topic_data:
        name = topic_data.name
        results = [_produce_partition(broker, name, data, acks, now_ms, timeout_s)
                   for data in topic_data.partition_data]
        responses.append((name, results))
    if acks == 0:
        for _name, results in responses:  # nobody waits for acks=0: finish in the background
            for result in results:
                if asyncio.iscoroutine(result):
                    result.close()
                elif result["error_code"]:
                    broker.metrics.count_error("Produce", result["error_code"])
        return None
    done = []
    for name, results in responses:
        partition_responses = []
        for result in results:
            result = await result if asyncio.iscoroutine(result) else result
            if result["error_code"]:
                broker.metrics.count_error("Produce", result["error_code"])
            partition_responses.append(result)
        done.append({"name": name, "partition_responses": partition_responses})
    return {"responses": done, "throttle_time": 0}


def _produce_partition(broker, topic: str, data, acks: int, now_ms: int, timeout_s: float):
    index = data.index
    if acks not in (-1, 0, 1):
        return _partition_error(index, ErrorCode.invalid_required_acks)
    partition, error = broker.lookup(topic, index)
    if partition is None:
        return _partition_error(index, error,
                                f"This server is not the leader for {topic}-{index}")
    if data.records is None or len(data.records) == 0:
        return _partition_error(index, ErrorCode.invalid_record, "Produce request has no records")
    min_isr = partition.min_insync_replicas
    if acks == -1 and len(partition.isr) < min_isr:
        return _partition_error(
            index, ErrorCode.not_enough_replicas,
            f"The size of the current ISR ({len(partition.isr)}) is insufficient to satisfy "
            f"the min.isr requirement of {min_isr} for partition {topic}-{index}")
    outcome = partition.append(bytes(data.records), now_ms)
    if outcome.error != ErrorCode.none:
        result = _partition_error(index, outcome.error, outcome.message)
        result["record_errors"] = [{"batch_index": i, "batch_index_error_message": m}
                                   for i, m in outcome.record_errors]
        return result
    if outcome.records_appended:
        broker.metrics.bytes_in.labels(topic).inc(outcome.bytes_appended)
        broker.metrics.messages_in.labels(topic).inc(outcome.records_appended)
    result = {
        "index": index,
        "error_code": ErrorCode.none,
        "base_offset": outcome.base_offset,
        "log_append_time": outcome.log_append_time_ms if outcome.log_append_time_ms >= 0 else None,
        "log_start_offset": outcome.log_start_offset,
    }
    if acks != -1 or partition.high_watermark > outcome.last_offset:
        return result
    return _await_replication(partition, topic, result, outcome.last_offset, timeout_s)


async def _await_replication(partition, topic: str, result: dict, last_offset: int,
                             timeout_s: float) -> dict:
    index = result["index"]
    if not await partition.wait_for_high_watermark(last_offset, timeout_s):
        if not partition.is_leader:
            return _partition_error(index, ErrorCode.not_leader_or_follower,
                                    f"Leadership of {topic}-{index} moved before the write "
                                    "was replicated")
        return _partition_error(index, ErrorCode.request_timed_out,
                                f"The ISR of {topic}-{index} did not replicate the write in time")
    if len(partition.isr) < partition.min_insync_replicas:
        return _partition_error(index, ErrorCode.not_enough_replicas_after_append,
                                f"The ISR of {topic}-{index} shrank below min.insync.replicas="
                                f"{partition.min_insync_replicas} while the write was replicated")
    return result
