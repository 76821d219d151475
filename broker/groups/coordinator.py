"""The group coordinator: groups and committed offsets, kept in `__consumer_offsets`.

Side effects live here (the pure rules are in `group` and `offsets`): creating the
internal topic, appending Kafka-format records to it, replaying it on start,
parking JoinGroup/SyncGroup requests on asyncio futures, and two background tasks
(group timers; offset expiry every `offsets.retention.check.interval.ms`).

A group lives on the `__consumer_offsets` partition its id hashes to (as in Kafka);
a broker serves the groups of the partitions it leads, loading a partition's groups
when it gains the partition and dropping them when it loses it (`load`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from .. import records as batches
from .group import ClassicGroup, GroupSettings, GroupState, JoinRequest, join_error, sync_error
from .log_ends import RemoteLogEnds
from .log_format import (
    GroupKey,
    OffsetKey,
    OffsetValue,
    encode_group_key,
    encode_group_value,
    encode_offset_key,
    encode_offset_value,
)
from .offsets import OffsetStore, expired_offsets
from .placement import OFFSETS_TOPIC, partition_for
from .replay import groups_on_partition, replay

log = logging.getLogger("brook.groups")

_READ_CHUNK = 1 << 20


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class CommitEntry:
    topic: str
    partition: int
    offset: int
    leader_epoch: int
    metadata: str | None


def iter_log_records(partition_log) -> Iterator[tuple[batches.BatchHeader, batches.Record]]:
    """Every record of a partition log from its start, with its batch header."""
    offset = partition_log.log_start_offset
    end = partition_log.log_end_offset
    while offset < end:
        slices = partition_log.read(offset, _READ_CHUNK)
        if not slices:
            return
        data = partition_log.read_bytes(slices)
        position = 0
        advanced = False
        while position + batches.BATCH_HEADER_SIZE <= len(data):
            header = batches.read_header(data, position)
            if header.size < batches.BATCH_HEADER_SIZE or position + header.size > len(data):
                break
            if not header.is_control:
                for record in batches.decode_records(data[position:position + header.size]):
                    yield header, record
            offset = max(offset, header.next_offset)
            position += header.size
            advanced = True
        if not advanced:
            return


class GroupCoordinator:
    def __init__(self, broker) -> None:
        self.broker = broker
        config = broker.config
        self.settings = GroupSettings(
            initial_rebalance_delay_ms=config.get_int("group.initial.rebalance.delay.ms"),
            max_size=config.get_int("group.max.size"))
        self.min_session_timeout_ms = config.get_int("group.min.session.timeout.ms")
        self.max_session_timeout_ms = config.get_int("group.max.session.timeout.ms")
        self.retention_ms = config.get_int("offsets.retention.minutes") * 60_000
        self.retention_check_ms = config.get_int("offsets.retention.check.interval.ms")
        self.metadata_max_bytes = config.get_int("offset.metadata.max.bytes")
        self.groups: dict[str, ClassicGroup] = {}
        self.offsets = OffsetStore()
        self._futures: dict[int, asyncio.Future] = {}
        self._tokens = itertools.count(1)
        self._heap: list[tuple[int, int, str]] = []
        self._scheduled: dict[str, int] = {}
        self._sequence = itertools.count()
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._creating: asyncio.Future | None = None
        self.loaded: set[int] = set()  # the __consumer_offsets partitions served here
        self.log_ends = RemoteLogEnds(broker, self)
        self.load()

    # ------------------------------------------------------------------ the internal topic

    def offsets_topic_partitions(self) -> int:
        info = self.broker.registry.get(OFFSETS_TOPIC)
        if info is not None:
            return info.partitions
        return self.broker.config.get_int("offsets.topic.num.partitions")

    def ensure_offsets_topic(self) -> bool:
        """True once `__consumer_offsets` exists; otherwise start creating it (as Kafka
        does on first use) and answer False, so the client retries shortly."""
        if self.broker.registry.get(OFFSETS_TOPIC) is not None:
            return True
        if self._creating is None or self._creating.done():
            self._creating = asyncio.ensure_future(self.create_offsets_topic())
        return False

    async def create_offsets_topic(self) -> None:
        live = max(1, len(self.broker.metadata.image.live_brokers()))
        # Kafka insists on offsets.topic.replication.factor; Brook takes what the live
        # brokers allow so a small cluster's groups work at once.
        rf = min(self.broker.config.get_int("offsets.topic.replication.factor"), live)
        try:
            await self.broker.create_topic(
                OFFSETS_TOPIC, self.offsets_topic_partitions(),
                {"cleanup.policy": "compact", "compression.type": "producer",
                 "segment.bytes": str(self.broker.config.get_int("offsets.topic.segment.bytes"))},
                internal=True, replication_factor=rf)
        except Exception as exc:
            if getattr(exc, "error_code", None) != ErrorCode.topic_already_exists:
                log.warning("cannot create %s yet: %s", OFFSETS_TOPIC, exc)

    def owner_error(self, group_id: str) -> ErrorCode:
        """NOT_COORDINATOR unless this broker leads the group's offsets partition."""
        if not self.ensure_offsets_topic():
            return ErrorCode.coordinator_not_available
        partition, error = self.broker.lookup(OFFSETS_TOPIC, self.partition_of(group_id))
        if partition is not None:
            return ErrorCode.none
        if error == ErrorCode.not_leader_or_follower:
            return ErrorCode.not_coordinator
        return ErrorCode.coordinator_not_available

    def partition_of(self, group_id: str) -> int:
        return partition_for(group_id, self.offsets_topic_partitions())

    def _append(self, group_id: str, entries: list[tuple[bytes, bytes | None]]) -> ErrorCode:
        """Write records to the group's partition; Kafka's error mapping for failures."""
        if not entries:
            return ErrorCode.none
        if not self.ensure_offsets_topic():
            return ErrorCode.coordinator_not_available
        partition = self.broker.partition(OFFSETS_TOPIC, self.partition_of(group_id))
        if partition is None:
            return ErrorCode.coordinator_not_available
        stamp = now_ms()
        data = batches.encode_batch([batches.Record(i, stamp, key, value, [])
                                     for i, (key, value) in enumerate(entries)])
        try:
            outcome = partition.append(data, stamp)
        except Exception:
            log.exception("appending to %s failed", OFFSETS_TOPIC)
            return ErrorCode.coordinator_not_available
        if outcome.error == ErrorCode.none:
            return ErrorCode.none
        log.error("appending group records of %s failed: %s %s", group_id, outcome.error.name,
                  outcome.message or "")
        if outcome.error in (ErrorCode.message_too_large, ErrorCode.record_list_too_large):
            return ErrorCode.invalid_commit_offset_size
        return ErrorCode.coordinator_not_available

    # ------------------------------------------------------------------ loading

    def load(self) -> None:
        """Serve exactly the `__consumer_offsets` partitions this broker leads now: load
        the groups of each partition gained, drop those of each partition lost. Groups
        of partitions that did not change are left alone (their parked requests too)."""
        info = self.broker.registry.get(OFFSETS_TOPIC)
        if info is None:
            return
        led = {index for index in range(info.partitions)
               if self.broker.partition(OFFSETS_TOPIC, index) is not None}
        for index in sorted(self.loaded - led):
            self.unload_partition(index)
        for index in sorted(led - self.loaded):
            self.load_partition(index)

    def load_partition(self, index: int) -> None:
        """Replay one led partition: the latest record per key wins, tombstones delete."""
        partition = self.broker.partition(OFFSETS_TOPIC, index)
        if partition is None or index in self.loaded:
            return
        started = time.monotonic()
        replayed = replay((record.offset, record.key, record.value)
                          for header, record in iter_log_records(partition.log)
                          if record.key is not None
                          and not (header.is_transactional and header.producer_id >= 0))
        for offset, why in replayed.unreadable:
            log.warning("skipping unreadable record at %s-%d offset %d: %s",
                        OFFSETS_TOPIC, index, offset, why)
        now = now_ms()
        for (group_id, topic, p), value in replayed.offsets.items():
            self.offsets.put(group_id, topic, p, value)
        for group_id in replayed.group_ids():
            if group_id in self.groups:
                continue
            value = replayed.groups.get(group_id)
            group = (ClassicGroup.from_value(group_id, value, now, self.settings)
                     if value is not None else ClassicGroup(group_id, now, self.settings))
            self.groups[group_id] = group
            self._schedule(group)
        self.loaded.add(index)
        if replayed.records:
            log.info("%s-%d: loaded %d groups and %d committed offsets from %d records "
                     "in %.2fs", OFFSETS_TOPIC, index, len(replayed.group_ids()),
                     len(replayed.offsets), replayed.records, time.monotonic() - started)

    def unload_partition(self, index: int) -> None:
        """Another broker coordinates this partition's groups now: forget them, and
        answer their parked JoinGroup/SyncGroup calls NOT_COORDINATOR so the clients
        look the coordinator up again (Kafka's onResignation)."""
        now = now_ms()
        gone = groups_on_partition(set(self.groups) | set(self.offsets.groups()), index,
                                   self.offsets_topic_partitions())
        for group_id in gone:
            group = self.groups.pop(group_id, None)
            if group is not None:
                group.mark_dead(now, ErrorCode.not_coordinator)
                self._deliver(group)
            self._scheduled.pop(group_id, None)
            for topic, p in list(self.offsets.of_group(group_id)):
                self.offsets.delete(group_id, topic, p)
        self.loaded.discard(index)
        if gone:
            log.info("%s-%d: no longer led here; unloaded %d groups", OFFSETS_TOPIC, index,
                     len(gone))

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._wake = asyncio.Event()
        for group in self.groups.values():
            self._schedule(group)
        self._tasks = [asyncio.create_task(self._run_timers(), name="group-timers"),
                       asyncio.create_task(self._run_expiry(), name="offset-expiry")]
        if self.broker.config.metrics_listener is not None:  # only the lag metrics read them
            self._tasks.append(asyncio.create_task(self.log_ends.run(), name="lag-log-ends"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.log_ends.close()

    def _new_group(self, group_id: str) -> ClassicGroup:
        group = ClassicGroup(group_id, now_ms(), self.settings)
        self.groups[group_id] = group
        return group

    # ------------------------------------------------------------------ timers

    def _schedule(self, group: ClassicGroup) -> None:
        deadline = group.next_deadline()
        if deadline is None:
            return
        current = self._scheduled.get(group.group_id)
        if current is not None and current <= deadline:
            return
        self._scheduled[group.group_id] = deadline
        heapq.heappush(self._heap, (deadline, next(self._sequence), group.group_id))
        if self._wake is not None:
            self._wake.set()

    async def _run_timers(self) -> None:
        assert self._wake is not None
        while True:
            now = now_ms()
            while self._heap and self._heap[0][0] <= now:
                deadline, _, group_id = heapq.heappop(self._heap)
                if self._scheduled.get(group_id) == deadline:
                    del self._scheduled[group_id]
                group = self.groups.get(group_id)
                if group is None:
                    continue
                due = group.next_deadline()
                if due is not None and due <= now:
                    try:
                        group.tick(now)
                    except Exception:
                        log.exception("group %s: timer failed", group_id)
                    self._settle(group, now)
                else:
                    self._schedule(group)
            self._wake.clear()
            timeout = (self._heap[0][0] - now_ms()) / 1000 if self._heap else None
            try:
                await asyncio.wait_for(self._wake.wait(), max(timeout, 0.001)
                                       if timeout is not None else None)
            except TimeoutError:
                pass

    def _settle(self, group: ClassicGroup, now: int) -> None:
        """Persist what the group asked for, then deliver parked responses, then re-arm."""
        if group.store_requested:
            group.store_requested = False
            error = self._store_group(group)
            if error != ErrorCode.none:
                if any("assignment" in response for _, response in group.completions):
                    group.assignment_not_stored(now, error)
                group.store_requested = False
        self._deliver(group)
        self._schedule(group)

    def _deliver(self, group: ClassicGroup) -> None:
        """Answer the parked requests the group has responses for."""
        completions, group.completions = group.completions, []
        for token, response in completions:
            future = self._futures.pop(token, None)  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(response)

    def _store_group(self, group: ClassicGroup) -> ErrorCode:
        return self._append(group.group_id, [(encode_group_key(GroupKey(group.group_id)),
                                              encode_group_value(group.to_value()))])

    async def _park(self, group: ClassicGroup, operation) -> dict:
        token = next(self._tokens)
        future = asyncio.get_running_loop().create_future()
        self._futures[token] = future
        now = now_ms()
        try:
            response = operation(now, token)
        except BaseException:
            self._futures.pop(token, None)
            raise
        self._settle(group, now)
        if response is not None:
            self._futures.pop(token, None)
            return response
        try:
            return await future
        finally:
            self._futures.pop(token, None)

    # ------------------------------------------------------------------ membership

    def session_timeout_valid(self, session_timeout_ms: int) -> bool:
        return self.min_session_timeout_ms <= session_timeout_ms <= self.max_session_timeout_ms

    async def join(self, group_id: str, request: JoinRequest) -> dict:
        if not group_id:
            return join_error(request.member_id, ErrorCode.invalid_group_id)
        if not self.session_timeout_valid(request.session_timeout_ms):
            return join_error(request.member_id, ErrorCode.invalid_session_timeout)
        owner = self.owner_error(group_id)
        if owner != ErrorCode.none:
            return join_error(request.member_id, owner)
        group = self.groups.get(group_id)
        if group is None:
            if request.member_id:
                return join_error(request.member_id, ErrorCode.unknown_member_id)
            group = self._new_group(group_id)
        log.debug("group %s: JoinGroup from %r (%s)", group_id, request.member_id,
                  group.state.value)
        response = await self._park(group, lambda now, token: group.join(now, token, request))
        log.debug("group %s: JoinGroup of %r -> %s generation %s", group_id, request.member_id,
                  response["error_code"], response.get("generation_id"))
        return response

    async def sync(self, group_id: str, member_id: str, group_instance_id: str | None,
                   generation_id: int, protocol_type: str | None, protocol_name: str | None,
                   assignments: dict[str, bytes]) -> dict:
        if not group_id:
            return sync_error(ErrorCode.invalid_group_id)
        owner = self.owner_error(group_id)
        if owner != ErrorCode.none:
            return sync_error(owner)
        group = self.groups.get(group_id)
        if group is None:
            return sync_error(ErrorCode.unknown_member_id)
        log.debug("group %s: SyncGroup from %r generation %d (%s)", group_id, member_id,
                  generation_id, group.state.value)
        response = await self._park(group, lambda now, token: group.sync(
            now, token, member_id, group_instance_id, generation_id, protocol_type,
            protocol_name, assignments))
        log.debug("group %s: SyncGroup of %r -> %s", group_id, member_id,
                  response["error_code"])
        return response

    def heartbeat(self, group_id: str, member_id: str, group_instance_id: str | None,
                  generation_id: int) -> ErrorCode:
        if not group_id:
            return ErrorCode.invalid_group_id
        owner = self.owner_error(group_id)
        if owner != ErrorCode.none:
            return owner
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.unknown_member_id
        now = now_ms()
        error = group.heartbeat(now, member_id, group_instance_id, generation_id)
        self._settle(group, now)
        log.debug("group %s: Heartbeat of %r generation %d -> %s", group_id, member_id,
                  generation_id, error)
        return error

    def leave(self, group_id: str, members: list[tuple[str, str | None]]
              ) -> tuple[ErrorCode, list[ErrorCode]]:
        if not group_id:
            return ErrorCode.invalid_group_id, []
        owner = self.owner_error(group_id)
        if owner != ErrorCode.none:
            return owner, []
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.unknown_member_id, []
        if group.state == GroupState.DEAD:
            return ErrorCode.coordinator_not_available, []
        now = now_ms()
        errors = group.leave(now, members)
        self._settle(group, now)
        return ErrorCode.none, errors

    # ------------------------------------------------------------------ offsets

    def commit_offsets(self, group_id: str, member_id: str, group_instance_id: str | None,
                       generation_id: int, retention_ms: int, entries: list[CommitEntry],
                       api_version: int) -> list[ErrorCode]:
        """One error per entry, in order."""
        now = now_ms()
        group = self.groups.get(group_id)
        if group is None:
            if generation_id < 0:
                error = ErrorCode.none
            elif api_version >= 9:
                error = ErrorCode.group_id_not_found
            else:
                error = ErrorCode.illegal_generation
        else:
            error = group.validate_offset_commit(now, member_id, group_instance_id,
                                                 generation_id)
        owner = self.owner_error(group_id)
        if owner != ErrorCode.none:
            return [owner] * len(entries)
        if error != ErrorCode.none:
            if group is not None:
                self._settle(group, now)
            return [error] * len(entries)
        results: list[ErrorCode] = []
        writes: list[tuple[CommitEntry, OffsetValue]] = []
        for entry in entries:
            if self.broker.metadata.image.partition(entry.topic, entry.partition) is None:
                results.append(ErrorCode.unknown_topic_or_partition)
            elif entry.metadata is not None and len(entry.metadata) > self.metadata_max_bytes:
                results.append(ErrorCode.offset_metadata_too_large)
            else:
                results.append(ErrorCode.none)
                expire = now + retention_ms if retention_ms >= 0 else -1
                writes.append((entry, OffsetValue(entry.offset, entry.metadata or "", now,
                                                  entry.leader_epoch, expire)))
        if writes:
            write_error = self._append(group_id, [
                (encode_offset_key(OffsetKey(group_id, e.topic, e.partition)),
                 encode_offset_value(v)) for e, v in writes])
            if write_error != ErrorCode.none:
                results = [write_error if r == ErrorCode.none else r for r in results]
            else:
                if group is None:
                    group = self._new_group(group_id)  # a "simple" group: commits only
                for entry, value in writes:
                    self.offsets.put(group_id, entry.topic, entry.partition, value)
        if group is not None:
            self._settle(group, now)
        return results

    def fetch_offsets(self, group_id: str, wanted: list[tuple[str, list[int]]] | None
                      ) -> list[tuple[str, list[tuple[int, OffsetValue | None]]]]:
        """(topic, [(partition, committed or None)]); `wanted` None means all committed."""
        committed = self.offsets.of_group(group_id) if group_id in self.groups else {}
        if wanted is None:
            by_topic: dict[str, list[tuple[int, OffsetValue | None]]] = {}
            for (topic, partition), value in sorted(committed.items()):
                by_topic.setdefault(topic, []).append((partition, value))
            return list(by_topic.items())
        return [(topic, [(p, committed.get((topic, p))) for p in partitions])
                for topic, partitions in wanted]

    def delete_offsets(self, group_id: str, topics: list[tuple[str, list[int]]]
                       ) -> tuple[ErrorCode, list[tuple[str, list[tuple[int, ErrorCode]]]]]:
        group = self.groups.get(group_id)
        if group is None or group.state == GroupState.DEAD:
            return ErrorCode.group_id_not_found, []
        if (group.state != GroupState.EMPTY and group.protocol_type != "consumer"):
            return ErrorCode.non_empty_group, []
        results = []
        tombstones = []
        for topic, partitions in topics:
            if group.is_subscribed_to(topic):
                results.append((topic, [(p, ErrorCode.group_subscribed_to_topic)
                                        for p in partitions]))
                continue
            errors = []
            for p in partitions:
                if self.broker.metadata.image.partition(topic, p) is None:
                    errors.append((p, ErrorCode.unknown_topic_or_partition))
                    continue
                errors.append((p, ErrorCode.none))
                if self.offsets.get(group_id, topic, p) is not None:
                    tombstones.append((topic, p))
            results.append((topic, errors))
        if tombstones:
            error = self._append(group_id, [
                (encode_offset_key(OffsetKey(group_id, t, p)), None) for t, p in tombstones])
            if error != ErrorCode.none:
                return error, []
            for topic, p in tombstones:
                self.offsets.delete(group_id, topic, p)
        return ErrorCode.none, results

    # ------------------------------------------------------------------ admin

    def describe(self, group_id: str) -> dict | None:
        group = self.groups.get(group_id)
        return None if group is None or group.state == GroupState.DEAD else group.describe()

    def list_groups(self) -> list[ClassicGroup]:
        return [g for g in self.groups.values() if g.state != GroupState.DEAD]

    def delete_group(self, group_id: str) -> ErrorCode:
        group = self.groups.get(group_id)
        if group is None or group.state == GroupState.DEAD:
            return ErrorCode.group_id_not_found
        if group.state != GroupState.EMPTY:
            return ErrorCode.non_empty_group
        error = self._remove_group(group)
        return error

    def _remove_group(self, group: ClassicGroup) -> ErrorCode:
        group_id = group.group_id
        entries = [(encode_offset_key(OffsetKey(group_id, t, p)), None)
                   for (t, p) in self.offsets.of_group(group_id)]
        entries.append((encode_group_key(GroupKey(group_id)), None))
        error = self._append(group_id, entries)
        if error != ErrorCode.none:
            return error
        for topic, partition in list(self.offsets.of_group(group_id)):
            self.offsets.delete(group_id, topic, partition)
        now = now_ms()
        group.mark_dead(now)
        self._settle(group, now)
        self.groups.pop(group_id, None)
        self._scheduled.pop(group_id, None)
        return ErrorCode.none

    def on_topic_deleted(self, topic: str) -> None:
        """Offsets of a deleted topic go too (Kafka: onPartitionsDeleted)."""
        by_group: dict[str, list[int]] = {}
        for group_id, partition in list(self.offsets.partitions_of_topic(topic)):
            by_group.setdefault(group_id, []).append(partition)
        for group_id, partitions in by_group.items():
            error = self._append(group_id, [(encode_offset_key(OffsetKey(group_id, topic, p)),
                                             None) for p in partitions])
            if error == ErrorCode.none:
                for p in partitions:
                    self.offsets.delete(group_id, topic, p)

    # ------------------------------------------------------------------ expiry

    def expire_offsets(self, now: int | None = None) -> int:
        """One cleanup pass; returns how many offsets expired."""
        now = now_ms() if now is None else now
        expired_total = 0
        for group_id, group in list(self.groups.items()):
            if group.state == GroupState.DEAD:
                continue
            committed = self.offsets.of_group(group_id)
            expired, everything = expired_offsets(group, committed, now, self.retention_ms)
            if expired:
                error = self._append(group_id, [
                    (encode_offset_key(OffsetKey(group_id, t, p)), None) for t, p in expired])
                if error != ErrorCode.none:
                    continue
                for topic, partition in expired:
                    self.offsets.delete(group_id, topic, partition)
                expired_total += len(expired)
                log.info("group %s: %d committed offsets expired", group_id, len(expired))
            if everything and group.state == GroupState.EMPTY and not group.pending_members:
                if self._remove_group(group) == ErrorCode.none:
                    log.info("group %s: empty with no offsets left, removed", group_id)
        return expired_total

    async def _run_expiry(self) -> None:
        while True:
            await asyncio.sleep(self.retention_check_ms / 1000)
            try:
                self.expire_offsets()
            except Exception:
                log.exception("offset expiry failed")
