"""Topic spec: parse and validate a Topic body into a frozen dataclass. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from brook.operator.cluster_spec import SpecError, frozen_map

_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_TOPIC_NAME = 249
MIN_ISR_KEY = "min.insync.replicas"


@dataclass(frozen=True)
class TopicSpec:
    namespace: str
    resource_name: str
    cluster: str
    topic_name: str
    partitions: int = 1
    replication_factor: int | None = None  # None: the cluster's default.replication.factor
    min_insync_replicas: int | None = None  # None: the cluster's default
    config: Mapping[str, str] = field(default_factory=frozen_map)

    def desired_config(self) -> dict[str, str]:
        """Topic-level configs the topic must carry (min ISR folded in)."""
        out = dict(self.config)
        if self.min_insync_replicas is not None:
            out[MIN_ISR_KEY] = str(self.min_insync_replicas)
        return out


@dataclass(frozen=True)
class ParsedTopic:
    spec: TopicSpec
    warnings: tuple[str, ...] = ()


def validate_topic_name(name: str) -> str | None:
    """Kafka's rule for topic names; a readable problem, or None when valid."""
    if not name:
        return "the topic name is empty"
    if name in (".", ".."):
        return f"topic name {name!r} is not allowed"
    if len(name) > MAX_TOPIC_NAME:
        return f"topic name is {len(name)} characters long; Kafka allows {MAX_TOPIC_NAME}"
    if not _TOPIC_NAME.match(name):
        return f"topic name {name!r} may contain only ASCII letters, digits, '.', '_' and '-'"
    return None


def _positive(raw: Mapping[str, Any], key: str, problems: list[str]) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"spec.{key} must be an integer, not {value!r}")
        return None
    if value < 1:
        problems.append(f"spec.{key}={value}: must be at least 1")
        return None
    return value


def parse_topic(body: Mapping[str, Any]) -> ParsedTopic:
    meta = body.get("metadata") or {}
    raw = body.get("spec") or {}
    problems: list[str] = []
    cluster = raw.get("cluster")
    if not isinstance(cluster, str) or not cluster:
        problems.append("spec.cluster must name a KafkaCluster in the same namespace")
        cluster = ""
    topic_name = raw.get("topicName") or str(meta.get("name") or "")
    problem = validate_topic_name(topic_name)
    if problem:
        problems.append(problem)
    partitions = _positive(raw, "partitions", problems) or 1
    rf = _positive(raw, "replicationFactor", problems)
    min_isr = _positive(raw, "minInSyncReplicas", problems)
    config_raw = raw.get("config") or {}
    config: dict[str, str] = {}
    if not isinstance(config_raw, Mapping):
        problems.append("spec.config must be a map of strings")
    else:
        for key, value in config_raw.items():
            if not isinstance(value, str):
                problems.append(f"spec.config.{key} must be a string, not {value!r} (quote it in YAML)")
            else:
                config[str(key)] = value
    if min_isr is not None and rf is not None and min_isr > rf:
        problems.append(
            f"spec.minInSyncReplicas={min_isr} exceeds spec.replicationFactor={rf}: "
            "every acks=all produce would fail with NOT_ENOUGH_REPLICAS"
        )
    if min_isr is not None and MIN_ISR_KEY in config:
        problems.append(f"set {MIN_ISR_KEY} through spec.minInSyncReplicas, not spec.config")
    warnings = []
    if min_isr is not None and rf is not None and min_isr == rf and rf > 1:
        warnings.append(
            f"spec.minInSyncReplicas equals spec.replicationFactor ({rf}): acks=all producers "
            "stop whenever one replica is down"
        )
    if rf == 1:
        warnings.append("spec.replicationFactor=1: the topic's data has a single copy")
    if problems:
        raise SpecError(problems)
    spec = TopicSpec(
        namespace=str(meta.get("namespace") or ""),
        resource_name=str(meta.get("name") or ""),
        cluster=cluster,
        topic_name=topic_name,
        partitions=partitions,
        replication_factor=rf,
        min_insync_replicas=min_isr,
        config=frozen_map(config),
    )
    return ParsedTopic(spec, tuple(warnings))



def managing_topic(me: Mapping[str, Any], others: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The older Topic resource that already manages the same Kafka topic, if any.

    Two Topic resources naming one Kafka topic of one cluster would fight; the
    oldest (creationTimestamp, then name) keeps it, the others report a conflict.
    """

    def key(body: Mapping[str, Any]) -> tuple[str, str]:
        spec = body.get("spec") or {}
        meta = body.get("metadata") or {}
        return (str(spec.get("cluster")), str(spec.get("topicName") or meta.get("name")))

    def age(body: Mapping[str, Any]) -> tuple[str, str]:
        meta = body.get("metadata") or {}
        return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))

    my_uid = (me.get("metadata") or {}).get("uid")
    rivals = [
        o for o in others
        if (o.get("metadata") or {}).get("uid") != my_uid
        and key(o) == key(me)
        and not (o.get("metadata") or {}).get("deletionTimestamp")
    ]
    older = [o for o in rivals if age(o) < age(me)]
    return min(older, key=age) if older else None
