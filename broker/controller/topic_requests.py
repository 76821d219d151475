"""Validation of topic requests against the metadata image. Pure.

The controller turns admin requests (already reduced to plain dicts by the Kafka
handlers) into metadata records, or into the error code and message a Kafka
controller returns.
"""

from __future__ import annotations

from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from ..metadata import records as r
from ..metadata.image import MetadataImage
from ..metadata.placement import BrokerSlot, PlacementError, assign_replicas
from ..topic_config import InvalidConfigError, validate_overrides
from ..topic_names import collision_key, topic_name_problem

TOPIC_RESOURCE = 2


@dataclass
class RequestError(Exception):
    error: ErrorCode
    message: str

    def __str__(self) -> str:
        return self.message


def live_slots(image: MetadataImage) -> list[BrokerSlot]:
    return [BrokerSlot(b.broker_id, b.rack) for b in image.live_brokers()]


def _check_replicas(image: MetadataImage, replicas: list[int], label: str) -> None:
    live = {b.broker_id for b in image.live_brokers()}
    if not replicas:
        raise RequestError(ErrorCode.invalid_replica_assignment, f"Empty replica list for {label}")
    if len(set(replicas)) != len(replicas):
        raise RequestError(ErrorCode.invalid_replica_assignment,
                           f"Duplicate brokers in the assignment of {label}")
    unknown = sorted(set(replicas) - live)
    if unknown:
        raise RequestError(ErrorCode.invalid_replica_assignment,
                           f"Unknown or unavailable broker(s) {unknown} in the assignment of "
                           f"{label}; live brokers are {sorted(live)}")


def plan_create_topic(image: MetadataImage, item: dict, default_partitions: int,
                      default_rf: int, reserved: set[str] = frozenset()
                      ) -> tuple[list, int, int, dict[str, str]]:
    """Records creating one topic, and (partitions, replication factor, overrides)."""
    name = item["name"]
    problem = topic_name_problem(name)
    if problem:
        raise RequestError(ErrorCode.invalid_topic_exception, problem)
    if name in image.topics or name in reserved:
        raise RequestError(ErrorCode.topic_already_exists, f"Topic '{name}' already exists.")
    clash = next((t for t in list(image.topics) + list(reserved)
                  if collision_key(t) == collision_key(name)), None)
    if clash:
        raise RequestError(ErrorCode.invalid_topic_exception,
                           f"Topic '{name}' collides with existing topic: {clash}")
    partitions, rf = item.get("num_partitions", -1), item.get("replication_factor", -1)
    assignments = item.get("assignments") or []
    if assignments:
        if partitions != -1 or rf != -1:
            raise RequestError(ErrorCode.invalid_request, "Both numPartitions or "
                               "replicationFactor and replicasAssignments were set. Both cannot "
                               "be used at the same time.")
        indexes = sorted(a["partition_index"] for a in assignments)
        if indexes != list(range(len(indexes))):
            raise RequestError(ErrorCode.invalid_replica_assignment,
                               "Partitions in the assignment must be 0..n-1 without gaps")
        for a in assignments:
            _check_replicas(image, list(a["broker_ids"]), f"partition {a['partition_index']}")
        if len({len(a["broker_ids"]) for a in assignments}) != 1:
            raise RequestError(ErrorCode.invalid_replica_assignment,
                               "All partitions must have the same number of replicas")
        plan = [list(a["broker_ids"]) for a in sorted(assignments,
                                                      key=lambda a: a["partition_index"])]
        partitions, rf = len(plan), len(plan[0])
    else:
        partitions = default_partitions if partitions == -1 else partitions
        if partitions <= 0:
            raise RequestError(ErrorCode.invalid_partitions,
                               "Number of partitions was set to an invalid non-positive value.")
        rf = default_rf if rf == -1 else rf
        if rf <= 0:
            raise RequestError(ErrorCode.invalid_replication_factor,
                               "Replication factor must be larger than 0, or -1 to use the "
                               "default value.")
        try:
            plan = assign_replicas(live_slots(image), partitions, rf,
                                   start_index=_start_index(name, len(image.live_brokers())))
        except PlacementError as exc:
            raise RequestError(ErrorCode.invalid_replication_factor, str(exc)) from None
    try:
        overrides = validate_overrides(dict(item.get("configs") or {}))
    except InvalidConfigError as exc:
        raise RequestError(ErrorCode.invalid_config, str(exc)) from None
    topic_id = r.new_topic_id()
    records: list = [r.TopicRecord(name, topic_id, bool(item.get("internal")))]
    records += [r.ConfigRecord(TOPIC_RESOURCE, name, k, v) for k, v in overrides.items()]
    records += [r.PartitionRecord(topic_id, i, tuple(replicas), tuple(replicas), replicas[0])
                for i, replicas in enumerate(plan)]
    return records, partitions, rf, overrides


def _start_index(name: str, brokers: int) -> int:
    """Spread the first partition's leader by topic, deterministically (for tests)."""
    return sum(name.encode()) % max(brokers, 1)


def plan_create_partitions(image: MetadataImage, item: dict) -> list:
    name = item["name"]
    topic = image.topics.get(name)
    if topic is None:
        raise RequestError(ErrorCode.unknown_topic_or_partition,
                           f"The topic '{name}' does not exist.")
    current, wanted = len(topic.partitions), item["count"]
    if wanted == current:
        raise RequestError(ErrorCode.invalid_partitions, f"Topic already has {current} partitions.")
    if wanted < current:
        raise RequestError(ErrorCode.invalid_partitions,
                           f"Topic currently has {current} partitions, which is higher than the "
                           f"requested {wanted}.")
    assignments = item.get("assignments") or []
    rf = len(topic.partitions[0].replicas) if topic.partitions else 1
    if assignments:
        if len(assignments) != wanted - current:
            raise RequestError(ErrorCode.invalid_replica_assignment,
                               f"Increasing the number of partitions by {wanted - current} but "
                               f"{len(assignments)} assignments provided.")
        plan = []
        for offset, a in enumerate(assignments):
            _check_replicas(image, list(a), f"partition {current + offset}")
            plan.append(list(a))
    else:
        try:
            plan = assign_replicas(live_slots(image), wanted - current, rf, first_partition=current,
                                   start_index=_start_index(name, len(image.live_brokers())))
        except PlacementError as exc:
            raise RequestError(ErrorCode.invalid_replication_factor, str(exc)) from None
    return [r.PartitionRecord(topic.topic_id, current + i, tuple(reps), tuple(reps), reps[0])
            for i, reps in enumerate(plan)]


def plan_config_change(image: MetadataImage, name: str, overrides: dict[str, str]) -> list:
    """Records that turn the topic's overrides into exactly `overrides` (validated)."""
    if name not in image.topics:
        raise RequestError(ErrorCode.unknown_topic_or_partition, f"Topic {name} does not exist")
    try:
        wanted = validate_overrides(overrides)
    except InvalidConfigError as exc:
        raise RequestError(ErrorCode.invalid_config, str(exc)) from None
    current = image.topic_configs(name)
    records = [r.ConfigRecord(TOPIC_RESOURCE, name, k, None) for k in current if k not in wanted]
    records += [r.ConfigRecord(TOPIC_RESOURCE, name, k, v) for k, v in wanted.items()
                if current.get(k) != v]
    return records
