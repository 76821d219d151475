"""CreateTopics, DeleteTopics and CreatePartitions, with Kafka's error codes and messages."""

from __future__ import annotations

from collections import Counter

from kio.schema.errors import ErrorCode

from ..topic_config import InvalidConfigError, validate_overrides
from ..topic_names import collision_key, topic_name_problem
from .configs import topic_config_entries
from .registry import api

CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 19, 20, 37


class TopicRequestError(Exception):
    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error


def live_broker_ids(broker) -> list[int]:
    return [broker.node_id]


def _check_replicas(broker, replicas, partition_label: str) -> None:
    live = set(live_broker_ids(broker))
    if not replicas:
        raise TopicRequestError(ErrorCode.invalid_replica_assignment,
                                f"Empty replica assignment for {partition_label}")
    if len(set(replicas)) != len(replicas):
        raise TopicRequestError(ErrorCode.invalid_replica_assignment,
                                f"Duplicate brokers in the assignment of {partition_label}")
    unknown = sorted(set(replicas) - live)
    if unknown:
        raise TopicRequestError(ErrorCode.invalid_replica_assignment,
                                f"Unknown broker(s) {unknown} in the assignment of "
                                f"{partition_label}; live brokers are {sorted(live)}")


def plan_new_topic(broker, item) -> tuple[int, int, dict[str, str]]:
    """Validate one CreateTopics entry; returns (partitions, replication factor, overrides)."""
    name = item.name
    problem = topic_name_problem(name)
    if problem:
        raise TopicRequestError(ErrorCode.invalid_topic_exception, problem)
    if broker.registry.get(name) is not None:
        raise TopicRequestError(ErrorCode.topic_already_exists, f"Topic '{name}' already exists.")
    clash = next((t for t in broker.registry.topics if collision_key(t) == collision_key(name)),
                 None)
    if clash:
        raise TopicRequestError(ErrorCode.invalid_topic_exception,
                                f"Topic '{name}' collides with existing topic: {clash}")
    assignments = list(getattr(item, "assignments", ()) or ())
    partitions, rf = item.num_partitions, item.replication_factor
    if assignments:
        if partitions != -1 or rf != -1:
            raise TopicRequestError(ErrorCode.invalid_request, "Both numPartitions or "
                                    "replicationFactor and replicasAssignments were set. "
                                    "Both cannot be used at the same time.")
        indexes = sorted(a.partition_index for a in assignments)
        if indexes != list(range(len(indexes))):
            raise TopicRequestError(ErrorCode.invalid_replica_assignment,
                                    "Partitions in the assignment must be 0..n-1 without gaps")
        for a in assignments:
            _check_replicas(broker, list(a.broker_ids), f"partition {a.partition_index}")
        sizes = {len(a.broker_ids) for a in assignments}
        if len(sizes) != 1:
            raise TopicRequestError(ErrorCode.invalid_replica_assignment,
                                    "All partitions must have the same number of replicas")
        partitions, rf = len(assignments), sizes.pop()
    if partitions == -1:
        partitions = broker.config.num_partitions
    if partitions <= 0:
        raise TopicRequestError(ErrorCode.invalid_partitions,
                                "Number of partitions was set to an invalid non-positive value.")
    if rf == -1:
        rf = broker.config.default_replication_factor
    if rf <= 0:
        raise TopicRequestError(ErrorCode.invalid_replication_factor,
                                "Replication factor must be larger than 0, or -1 to use the "
                                "default value.")
    live = len(live_broker_ids(broker))
    if rf > live:
        raise TopicRequestError(
            ErrorCode.invalid_replication_factor,
            f"Unable to replicate the partition {rf} time(s): The target replication factor "
            f"of {rf} cannot be reached because only {live} broker(s) are registered.")
    raw = {c.name: c.value for c in (getattr(item, "configs", ()) or ())}
    try:
        overrides = validate_overrides(raw)
    except InvalidConfigError as exc:
        raise TopicRequestError(ErrorCode.invalid_config, str(exc)) from None
    return partitions, rf, overrides


@api(CREATE_TOPICS, "CreateTopics", 2, 7)
async def handle_create_topics(broker, ctx, request) -> dict:
    counts = Counter(item.name for item in request.topics)
    results = []
    for item in request.topics:
        result = {"name": item.name, "topic_id": None, "error_code": ErrorCode.none,
                  "error_message": None, "num_partitions": -1, "replication_factor": -1,
                  "configs": ()}
        try:
            if counts[item.name] > 1:
                raise TopicRequestError(ErrorCode.invalid_request,
                                        f"Create topics request from client `{ctx.client_id}` "
                                        f"contains multiple entries for the topic {item.name}")
            partitions, rf, overrides = plan_new_topic(broker, item)
            topic_id = None
            if not request.validate_only:
                topic_id = broker.create_topic(item.name, partitions, overrides).topic_id
            result.update(topic_id=topic_id, num_partitions=partitions, replication_factor=rf,
                          configs=[_creatable_config(e)
                                   for e in topic_config_entries(broker, overrides, False)])
        except TopicRequestError as exc:
            result.update(error_code=exc.error, error_message=str(exc))
        results.append(result)
    return {"throttle_time": 0, "topics": results}


def _creatable_config(entry: dict) -> dict:
    return {k: entry[k] for k in ("name", "value", "read_only", "config_source", "is_sensitive")}


@api(DELETE_TOPICS, "DeleteTopics", 1, 6)
async def handle_delete_topics(broker, ctx, request) -> dict:
    if ctx.api_version >= 6:
        wanted = [(t.name, t.topic_id) for t in request.topics]
    else:
        wanted = [(name, None) for name in request.topic_names]
    responses = []
    for name, topic_id in wanted:
        result = {"name": name, "topic_id": topic_id, "error_code": ErrorCode.none,
                  "error_message": None}
        if name is None and topic_id is not None:
            name = broker.registry.name_for_id(topic_id)
            if name is None:
                result["error_code"] = ErrorCode.unknown_topic_id
                responses.append(result)
                continue
            result["name"] = name
        info = broker.registry.get(name) if name else None
        if info is None:
            result.update(error_code=ErrorCode.unknown_topic_or_partition,
                          error_message="This server does not host this topic-partition.")
        elif not broker.config.get("delete.topic.enable"):
            result.update(error_code=ErrorCode.topic_deletion_disabled,
                          error_message="Topic deletion is disabled (delete.topic.enable=false)")
        else:
            result["topic_id"] = info.topic_id
            broker.delete_topic(name)
        responses.append(result)
    return {"throttle_time": 0, "responses": responses}


@api(CREATE_PARTITIONS, "CreatePartitions", 0, 3)
async def handle_create_partitions(broker, ctx, request) -> dict:
    counts = Counter(t.name for t in request.topics)
    results = []
    for item in request.topics:
        result = {"name": item.name, "error_code": ErrorCode.none, "error_message": None}
        try:
            if counts[item.name] > 1:
                raise TopicRequestError(ErrorCode.invalid_request,
                                        f"Duplicate topic {item.name} in the request")
            total = _plan_partitions(broker, item)
            if not request.validate_only:
                broker.add_partitions(item.name, total)
        except TopicRequestError as exc:
            result.update(error_code=exc.error, error_message=str(exc))
        results.append(result)
    return {"throttle_time": 0, "results": results}


def _plan_partitions(broker, item) -> int:
    info = broker.registry.get(item.name)
    if info is None:
        raise TopicRequestError(ErrorCode.unknown_topic_or_partition,
                                f"The topic '{item.name}' does not exist.")
    current, wanted = info.partitions, item.count
    if wanted == current:
        raise TopicRequestError(ErrorCode.invalid_partitions,
                                f"Topic already has {current} partitions.")
    if wanted < current:
        raise TopicRequestError(ErrorCode.invalid_partitions,
                                f"Topic currently has {current} partitions, which is higher than "
                                f"the requested {wanted}.")
    assignments = list(item.assignments or ())
    if assignments:
        if len(assignments) != wanted - current:
            raise TopicRequestError(ErrorCode.invalid_replica_assignment,
                                    f"Increasing the number of partitions by {wanted - current} "
                                    f"but {len(assignments)} assignments provided.")
        for offset, a in enumerate(assignments):
            _check_replicas(broker, list(a.broker_ids), f"partition {current + offset}")
    return wanted
