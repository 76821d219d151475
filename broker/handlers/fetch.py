"""Fetch: long-poll for data (min_bytes / max_wait), response and partition byte limits.

Record batches go out exactly as stored; nothing is decoded or copied: the response
is encoded by hand around file slices that the connection sends with sendfile. Brook
opens no fetch sessions (it answers session_id 0), so every fetch is a full fetch,
which all clients support.
"""

from __future__ import annotations

import asyncio
import time

from kio.schema.errors import ErrorCode

from ..protocol.entities import ms
from ..protocol.fetch_response import PartitionData, encode_fetch_response
from ..storage.log import OffsetOutOfRangeError
from .registry import api

FETCH = 1
READ_COMMITTED = 1


@api(FETCH, "Fetch", 4, 12, counts_own_errors=True)
async def handle_fetch(broker, ctx, request) -> dict:
    session_id = getattr(request, "session_id", 0)
    if session_id != 0:
        broker.metrics.count_error("Fetch", ErrorCode.fetch_session_id_not_found)
        return encode_fetch_response(ctx.api_version, ctx.correlation_id, [],
                                     error_code=ErrorCode.fetch_session_id_not_found)
    max_wait_ms = max(0, ms(request.max_wait))
    min_bytes = max(0, request.min_bytes)
    max_bytes = getattr(request, "max_bytes", 2_147_483_647)
    committed = getattr(request, "isolation_level", 0) == READ_COMMITTED
    replica_id = getattr(request, "replica_id", -1)
    deadline = time.monotonic() + max_wait_ms / 1000
    if replica_id >= 0:
        _record_follower_progress(broker, request, replica_id)
    while True:
        plan, total, has_error = _plan_fetch(broker, request, max_bytes, committed, replica_id)
        remaining = deadline - time.monotonic()
        if total >= min_bytes or has_error or remaining <= 0:
            break
        waiters = [p.new_waiter() for p in _requested_partitions(broker, request)]
        if not waiters:
            await asyncio.sleep(remaining)
            continue
        await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
    for topic, partitions in plan:
        for p in partitions:
            if p.error_code:
                broker.metrics.count_error("Fetch", p.error_code)
        if replica_id < 0:
            size = sum(p.records_size for p in partitions)
            if size:
                broker.metrics.bytes_out.labels(topic).inc(size)
    return encode_fetch_response(ctx.api_version, ctx.correlation_id, plan)


def _requested_partitions(broker, request):
    for topic in request.topics:
        for item in topic.partitions:
            partition = broker.partitions.get((topic.topic, item.partition))
            if partition is not None:
                yield partition


def _record_follower_progress(broker, request, replica_id: int) -> None:
    """A follower's fetch offset is its log end offset: the leader's replication signal."""
    for topic in request.topics:
        for item in topic.partitions:
            partition, _ = broker.lookup(topic.topic, item.partition)
            if partition is not None and item.current_leader_epoch in (-1,
                                                                       partition.leader_epoch):
                broker.replicas.on_follower_fetch(partition, replica_id, item.fetch_offset)


def _epoch_error(partition, requested: int) -> ErrorCode:
    if requested < 0 or requested == partition.leader_epoch:
        return ErrorCode.none
    if requested < partition.leader_epoch:
        return ErrorCode.fenced_leader_epoch
    return ErrorCode.unknown_leader_epoch


def _plan_fetch(broker, request, max_bytes: int, committed: bool, replica_id: int):
    """Decide what each partition returns: [(topic, [PartitionData])], bytes, any error."""
    plan = []
    total = 0
    has_error = False
    for topic in request.topics:
        entries = []
        for item in topic.partitions:
            entry = PartitionData(item.partition,
                                  aborted_transactions=() if committed else None)
            entries.append(entry)
            partition, error = broker.lookup(topic.topic, item.partition)
            if error == ErrorCode.none:
                error = _epoch_error(partition, getattr(item, "current_leader_epoch", -1))
            if error != ErrorCode.none:
                entry.error_code = error
                has_error = True
                continue
            hw = partition.high_watermark
            if replica_id >= 0:
                upper = partition.log.log_end_offset  # followers copy everything
            else:
                upper = partition.last_stable_offset if committed else hw
            entry.high_watermark = hw
            entry.last_stable_offset = partition.last_stable_offset
            entry.log_start_offset = partition.log.log_start_offset
            budget = min(item.partition_max_bytes, max_bytes - total)
            if replica_id >= 0 and broker.replicas.leader_throttled(topic.topic, item.partition,
                                                                    replica_id):
                budget = -1  # a throttled reassignment copy, over its quota: nothing now
            if budget > 0 or (total == 0 and budget == 0):
                try:
                    # KIP-74: the first batch of the response goes out whatever its size.
                    entry.slices = partition.log.read(item.fetch_offset, max(budget, 0), upper,
                                                      min_one_batch=total == 0)
                except OffsetOutOfRangeError:
                    entry.error_code = ErrorCode.offset_out_of_range
                    has_error = True
            total += entry.records_size
            if replica_id >= 0 and entry.slices and broker.replicas.counts_against_leader_quota(
                    topic.topic, item.partition, replica_id):
                broker.replicas.leader_quota.record(entry.records_size)
        plan.append((topic.topic, entries))
    return plan, total, has_error
