"""The Kafka Admin API of one cluster, as the operator uses it (side effects).

The same path `kafka-topics.sh` and every AdminClient take (confluent-kafka /
librdkafka): Metadata, CreateTopics, CreatePartitions, DescribeConfigs,
IncrementalAlterConfigs, DeleteTopics. Results come back as the pure types of
topic_plan; failures as AdminError carrying the broker's own message.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from brook.operator.cluster_rolling import PartitionState
from brook.operator.cluster_spec import frozen_map
from brook.operator.reassign_throttle import ALL_REPLICAS, RATE_KEYS, REPLICAS_KEYS
from brook.operator.topic_plan import ConfigValue, ObservedTopic, TopicPlan

log = logging.getLogger("brook.operator.kafka")

# librdkafka's local error codes that mean "could not talk to the cluster".
_UNREACHABLE = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError._TIMED_OUT_QUEUE,
    KafkaError._RESOLVE,
    KafkaError._MSG_TIMED_OUT,
}


def reason_from_error_name(name: str) -> str:
    """INVALID_REPLICATION_FACTOR -> InvalidReplicationFactor (a condition reason)."""
    words = [w for w in name.strip("_").split("_") if w]
    return "".join(w[:1].upper() + w[1:].lower() for w in words) or "KafkaError"


@dataclass
class AdminError(Exception):
    reason: str  # CamelCase, from Kafka's error name
    message: str  # the broker's message (or librdkafka's)
    unreachable: bool = False

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


def _to_admin_error(exc: BaseException, what: str) -> AdminError:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        err: KafkaError = exc.args[0]
        unreachable = err.code() in _UNREACHABLE
        message = err.str() or err.name()
        return AdminError(
            "ClusterUnreachable" if unreachable else reason_from_error_name(err.name()),
            f"{what}: {message}",
            unreachable,
        )
    if isinstance(exc, concurrent.futures.TimeoutError | TimeoutError):
        return AdminError("ClusterUnreachable", f"{what}: no answer from the brokers in time", True)
    return AdminError("KafkaError", f"{what}: {exc}")


def _source_name(source: object) -> str:
    """ConfigSource name (DYNAMIC_TOPIC_CONFIG, ...) whether librdkafka gives an enum or an int."""
    try:
        return ConfigSource(int(source.value if hasattr(source, "value") else source)).name
    except (ValueError, TypeError):
        return str(source)


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str | None
    controller: int | None
    brokers: tuple[int, ...]  # node ids of the live, registered brokers


class KafkaAdmin:
    """One AdminClient per reconcile; cheap enough, and never stale."""

    def __init__(self, bootstrap_servers: str, timeout: float = 15.0):
        self.bootstrap_servers = bootstrap_servers
        self.timeout = timeout
        self._client = AdminClient(
            {
                "bootstrap.servers": bootstrap_servers,
                "client.id": "brook-operator",
                # Never create a topic by asking for its metadata (producer-type clients do).
                "allow.auto.create.topics": False,
                "socket.timeout.ms": int(timeout * 1000),
                "socket.connection.setup.timeout.ms": int(min(timeout, 10) * 1000),
                "reconnect.backoff.max.ms": 2000,
                "logger": log,
            }
        )

    def _result(self, future, what: str):
        try:
            return future.result(timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an AdminError
            raise _to_admin_error(exc, what) from exc

    def cluster_info(self) -> ClusterInfo:
        try:
            md = self._client.list_topics(timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001
            raise _to_admin_error(exc, f"metadata from {self.bootstrap_servers}") from exc
        controller = md.controller_id if md.controller_id is not None and md.controller_id >= 0 else None
        return ClusterInfo(md.cluster_id, controller, tuple(sorted(md.brokers)))

    def partition_replicas(self) -> dict[str, list[int]]:
        """Replica node ids of every partition of every topic ("topic-partition" keys)."""
        try:
            md = self._client.list_topics(timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001
            raise _to_admin_error(exc, f"metadata from {self.bootstrap_servers}") from exc
        return _partition_replicas(md)

    def assignments(self) -> dict[str, dict[int, list[int]]]:
        """Replica node ids of every partition, by topic (internal topics included)."""
        try:
            md = self._client.list_topics(timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001
            raise _to_admin_error(exc, f"metadata from {self.bootstrap_servers}") from exc
        return {name: {pid: list(p.replicas) for pid, p in topic.partitions.items()}
                for name, topic in md.topics.items() if topic.error is None}

    def leaders(self) -> dict[str, dict[int, int]]:
        """The current leader of every partition, by topic (-1: none)."""
        try:
            md = self._client.list_topics(timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001
            raise _to_admin_error(exc, f"metadata from {self.bootstrap_servers}") from exc
        return {name: {pid: p.leader for pid, p in topic.partitions.items()}
                for name, topic in md.topics.items() if topic.error is None}

    def elect_preferred_leaders(self, partitions: list[tuple[str, int]]) -> None:
        """ElectLeaders (preferred), as kafka-leader-election.sh --election-type PREFERRED."""
        from confluent_kafka import ElectionType, TopicPartition

        what = f"elect preferred leaders of {len(partitions)} partition(s)"
        try:  # (confluent-kafka 2.16 fails on elect_leaders' keyword arguments)
            future = self._client.elect_leaders(ElectionType.PREFERRED,
                                                [TopicPartition(t, p) for t, p in partitions])
        except Exception as exc:  # noqa: BLE001
            raise _to_admin_error(exc, what) from exc
        self._result(future, what)

    def throttle_reassignments(self, rate: int | None, topics: list[str], brokers: list[int]) -> None:
        """Kafka's reassignment throttle, as kafka-reassign-partitions --throttle sets it:
        leader/follower.replication.throttled.rate (bytes/s) on every broker and every
        replica of `topics` listed as throttled; rate None lifts both. (librdkafka takes
        one BROKER resource per request and no cluster-default one.)"""
        op = AlterConfigOpType.SET if rate is not None else AlterConfigOpType.DELETE
        value = str(rate) if rate is not None else None
        batches = [[ConfigResource(ResourceType.BROKER, str(b), incremental_configs=[
            ConfigEntry(k, value, incremental_operation=op) for k in RATE_KEYS])]
            for b in brokers]
        if topics:
            listed = [ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
                ConfigEntry(k, ALL_REPLICAS if rate is not None else None, incremental_operation=op)
                for k in REPLICAS_KEYS]) for t in topics]
            # Lifting: the topics' lists first, the brokers' rates last, so a lift cut
            # short leaves the rates, which the next reconcile sees and lifts again.
            batches = batches + [listed] if rate is not None else [listed] + batches
        for resources in batches:
            what = f"reassignment throttle on {', '.join(r.name for r in resources)}"
            try:
                futures = self._client.incremental_alter_configs(resources, request_timeout=self.timeout)
            except Exception as exc:  # noqa: BLE001
                raise _to_admin_error(exc, what) from exc
            for future in futures.values():
                self._result(future, what)

    def throttle_rates(self, brokers: list[int]) -> dict[int, str | None]:
        """Each broker's dynamic leader.replication.throttled.rate (None: not set)."""
        out: dict[int, str | None] = {}
        for b in brokers:  # librdkafka: one BROKER resource per request
            resource = ConfigResource(ResourceType.BROKER, str(b))
            what = f"throttle rate of broker {b}"
            try:
                futures = self._client.describe_configs([resource], request_timeout=self.timeout)
            except Exception as exc:  # noqa: BLE001
                raise _to_admin_error(exc, what) from exc
            entry = self._result(futures[resource], what).get(RATE_KEYS[0])
            dynamic = entry is not None and _source_name(entry.source).startswith("DYNAMIC")
            out[b] = entry.value if dynamic else None
        return out

    def throttled_replica_lists(self) -> dict[str, dict[str, str | None]]:
        """The leader/follower.replication.throttled.replicas of every topic."""
        try:
            md = self._client.list_topics(timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001
            raise _to_admin_error(exc, f"metadata from {self.bootstrap_servers}") from exc
        resources = [ConfigResource(ResourceType.TOPIC, name) for name, t in md.topics.items() if t.error is None]
        if not resources:
            return {}
        try:
            futures = self._client.describe_configs(resources, request_timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001
            raise _to_admin_error(exc, "configs of the topics") from exc
        out = {}
        for resource, future in futures.items():
            try:
                entries = self._result(future, f"configs of {resource.name!r}")
            except AdminError as exc:
                if exc.unreachable:
                    raise
                continue  # a topic being deleted: nothing to lift there
            out[resource.name] = {k: entries[k].value if k in entries else None for k in REPLICAS_KEYS}
        return out

    def partition_states(self) -> list[PartitionState]:
        """Replicas, ISR and min.insync.replicas of every partition of every topic."""
        try:
            md = self._client.list_topics(timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001
            raise _to_admin_error(exc, f"metadata from {self.bootstrap_servers}") from exc
        topics = [name for name, t in md.topics.items() if t.error is None]
        min_isr: dict[str, int] = {}
        if topics:
            resources = [ConfigResource(ResourceType.TOPIC, name) for name in topics]
            futures = self._client.describe_configs(resources, request_timeout=self.timeout)
            for resource, future in futures.items():
                min_isr[resource.name] = _min_isr(self._result(future, f"configs of {resource.name!r}"))
        return [
            PartitionState(f"{name}-{pid}", tuple(p.replicas), tuple(p.isrs), min_isr.get(name, 1))
            for name in topics
            for pid, p in md.topics[name].partitions.items()
        ]

    def describe_topic(self, name: str) -> ObservedTopic | None:
        """The topic's partitions, replication factor and configs; None when absent."""
        try:
            md = self._client.list_topics(topic=name, timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001
            raise _to_admin_error(exc, f"metadata of topic {name!r}") from exc
        topic = md.topics.get(name)
        if topic is None:
            return None
        if topic.error is not None:
            if topic.error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
                return None
            raise _to_admin_error(KafkaException(topic.error), f"metadata of topic {name!r}")
        if not topic.partitions:
            return None
        rf = min(len(p.replicas) for p in topic.partitions.values())
        return ObservedTopic(
            name, len(topic.partitions), rf, frozen_map(self.describe_configs(name)),
            assignments=frozen_map({pid: tuple(p.replicas) for pid, p in topic.partitions.items()}),
            brokers=tuple(sorted(md.brokers)),
        )

    def describe_configs(self, name: str) -> dict[str, ConfigValue]:
        resource = ConfigResource(ResourceType.TOPIC, name)
        futures = self._client.describe_configs([resource], request_timeout=self.timeout)
        entries: Mapping[str, ConfigEntry] = self._result(futures[resource], f"configs of topic {name!r}")
        return {
            key: ConfigValue(
                entry.value,
                _source_name(entry.source),
                bool(entry.is_read_only),
                bool(entry.is_sensitive),
            )
            for key, entry in entries.items()
        }

    def apply_plan(self, name: str, plan: TopicPlan) -> None:
        """Carry out a plan; the first refusal raises AdminError (the broker's message)."""
        if plan.create:
            new = NewTopic(
                name,
                num_partitions=plan.partitions or 1,
                replication_factor=plan.replication_factor if plan.replication_factor else -1,
                config=dict(plan.set_configs),
            )
            futures = self._client.create_topics([new], request_timeout=self.timeout)
            self._result(futures[name], f"create topic {name!r}")
            return
        if plan.add_partitions:
            futures = self._client.create_partitions(
                [NewPartitions(name, plan.add_partitions)], request_timeout=self.timeout
            )
            self._result(futures[name], f"grow topic {name!r} to {plan.add_partitions} partitions")
        if plan.set_configs or plan.delete_configs:
            ops = [
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                for k, v in sorted(plan.set_configs.items())
            ] + [
                ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE)
                for k in plan.delete_configs
            ]
            resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=ops)
            futures = self._client.incremental_alter_configs([resource], request_timeout=self.timeout)
            self._result(futures[resource], f"alter configs of topic {name!r}")

    def delete_topic(self, name: str) -> bool:
        """Delete; False when the topic did not exist."""
        futures = self._client.delete_topics([name], request_timeout=self.timeout)
        try:
            self._result(futures[name], f"delete topic {name!r}")
        except AdminError as err:
            if err.reason in ("UnknownTopicOrPart", "UnknownTopic"):
                return False
            raise
        return True


def _partition_replicas(md) -> dict[str, list[int]]:
    return {
        f"{name}-{pid}": list(p.replicas)
        for name, topic in md.topics.items()
        if topic.error is None
        for pid, p in topic.partitions.items()
    }


def _min_isr(entries: Mapping[str, ConfigEntry]) -> int:
    entry = entries.get("min.insync.replicas")
    try:
        return int(entry.value) if entry is not None and entry.value is not None else 1
    except ValueError:
        return 1
