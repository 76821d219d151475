"""The cluster metadata every broker holds: brokers, topics, partitions, configs.

Pure. Built by applying metadata records in log order; `apply` reports what changed
(a Delta) so the broker can act on exactly those partitions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from . import records as r

TOPIC_RESOURCE = 2
BROKER_RESOURCE = 4  # resource_name: a broker id, or "" for the cluster-wide default


def vars_of(value) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(value).items()}


@dataclass(frozen=True)
class BrokerInfo:
    broker_id: int
    incarnation_id: str
    host: str
    port: int
    controller_port: int
    rack: str | None
    epoch: int          # metadata offset of its latest registration
    fenced: bool = True


@dataclass(frozen=True)
class PartitionState:
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int
    adding: tuple[int, ...] = ()
    removing: tuple[int, ...] = ()

    @property
    def target_replicas(self) -> tuple[int, ...]:
        """Where a reassignment is heading (the replicas themselves when none is)."""
        return tuple(b for b in self.replicas if b not in self.removing)

    @property
    def reassigning(self) -> bool:
        return bool(self.adding or self.removing)


@dataclass
class TopicImage:
    name: str
    topic_id: str
    internal: bool
    partitions: dict[int, PartitionState] = field(default_factory=dict)


@dataclass
class Delta:
    """What one record changed."""

    created_topics: set[str] = field(default_factory=set)
    removed_topics: dict[str, TopicImage] = field(default_factory=dict)
    changed_partitions: set[tuple[str, int]] = field(default_factory=set)
    changed_configs: set[str] = field(default_factory=set)
    changed_brokers: set[int] = field(default_factory=set)

    def merge(self, other: Delta) -> None:
        self.created_topics |= other.created_topics
        self.removed_topics.update(other.removed_topics)
        self.changed_partitions |= other.changed_partitions
        self.changed_configs |= other.changed_configs
        self.changed_brokers |= other.changed_brokers


class MetadataImage:
    def __init__(self) -> None:
        self.brokers: dict[int, BrokerInfo] = {}
        self.topics: dict[str, TopicImage] = {}
        self.topic_names: dict[str, str] = {}  # topic id -> name
        self.configs: dict[str, dict[str, str]] = {}  # topic name -> overrides
        self.broker_configs: dict[str, dict[str, str]] = {}  # broker id or "" -> dynamic
        self.next_producer_id = 0
        self.cluster_id: str | None = None
        self.offset = -1  # last applied metadata offset

    # -- queries ---------------------------------------------------------------------------
    def topic_by_id(self, topic_id: str) -> TopicImage | None:
        name = self.topic_names.get(topic_id)
        return self.topics.get(name) if name else None

    def partition(self, topic: str, index: int) -> PartitionState | None:
        image = self.topics.get(topic)
        return image.partitions.get(index) if image else None

    def live_brokers(self) -> list[BrokerInfo]:
        return sorted((b for b in self.brokers.values() if not b.fenced),
                      key=lambda b: b.broker_id)

    def is_live(self, broker_id: int) -> bool:
        info = self.brokers.get(broker_id)
        return info is not None and not info.fenced

    def topic_configs(self, name: str) -> dict[str, str]:
        return dict(self.configs.get(name, {}))

    def dynamic_broker_config(self, broker_id: int, name: str) -> str | None:
        """A dynamic broker config: this broker's own value, else the cluster default."""
        own = self.broker_configs.get(str(broker_id), {})
        return own[name] if name in own else self.broker_configs.get("", {}).get(name)

    # -- snapshots: the whole image as JSON-friendly data ----------------------------------
    def to_snapshot(self) -> dict:
        return {
            "offset": self.offset,
            "cluster_id": self.cluster_id,
            "next_producer_id": self.next_producer_id,
            "brokers": [vars_of(b) for b in self.brokers.values()],
            "topics": [{"name": t.name, "topic_id": t.topic_id, "internal": t.internal,
                        "partitions": {str(i): vars_of(p) for i, p in t.partitions.items()}}
                       for t in self.topics.values()],
            "configs": self.configs,
            "broker_configs": self.broker_configs,
        }

    @classmethod
    def from_snapshot(cls, data: dict) -> MetadataImage:
        image = cls()
        image.offset = data["offset"]
        image.next_producer_id = data["next_producer_id"]
        image.cluster_id = data.get("cluster_id")
        for b in data["brokers"]:
            image.brokers[b["broker_id"]] = BrokerInfo(**b)
        for t in data["topics"]:
            topic = TopicImage(t["name"], t["topic_id"], t["internal"])
            for index, p in t["partitions"].items():
                topic.partitions[int(index)] = PartitionState(
                    **{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()})
            image.topics[topic.name] = topic
            image.topic_names[topic.topic_id] = topic.name
        image.configs = {name: dict(c) for name, c in data["configs"].items()}
        image.broker_configs = {name: dict(c)
                                for name, c in data.get("broker_configs", {}).items()}
        return image

    def everything(self) -> Delta:
        """A delta naming every topic, partition and broker (after a snapshot restore)."""
        return Delta(
            created_topics=set(self.topics),
            changed_partitions={(t.name, i) for t in self.topics.values() for i in t.partitions},
            changed_configs=set(self.configs),
            changed_brokers=set(self.brokers),
        )

    # -- applying records -----------------------------------------------------------------
    def apply(self, record, offset: int) -> Delta:
        delta = Delta()
        handler = getattr(self, "_apply_" + type(record).__name__)
        handler(record, offset, delta)
        self.offset = offset
        return delta

    def _apply_NoOp(self, record: r.NoOp, offset: int, delta: Delta) -> None:
        pass

    def _apply_ClusterIdRecord(self, record: r.ClusterIdRecord, offset: int,
                               delta: Delta) -> None:
        self.cluster_id = self.cluster_id or record.cluster_id

    def _apply_RegisterBroker(self, record: r.RegisterBroker, offset: int, delta: Delta) -> None:
        # A (re-)registered broker starts fenced until its first heartbeat catches up.
        self.brokers[record.broker_id] = BrokerInfo(
            record.broker_id, record.incarnation_id, record.host, record.port,
            record.controller_port, record.rack, offset, fenced=True)
        delta.changed_brokers.add(record.broker_id)

    def _apply_FenceBroker(self, record: r.FenceBroker, offset: int, delta: Delta) -> None:
        if record.broker_id in self.brokers:
            self.brokers[record.broker_id] = replace(self.brokers[record.broker_id], fenced=True)
            delta.changed_brokers.add(record.broker_id)

    def _apply_UnfenceBroker(self, record: r.UnfenceBroker, offset: int, delta: Delta) -> None:
        if record.broker_id in self.brokers:
            self.brokers[record.broker_id] = replace(self.brokers[record.broker_id],
                                                     fenced=False)
            delta.changed_brokers.add(record.broker_id)

    def _apply_UnregisterBroker(self, record: r.UnregisterBroker, offset: int,
                                delta: Delta) -> None:
        self.brokers.pop(record.broker_id, None)
        delta.changed_brokers.add(record.broker_id)

    def _apply_TopicRecord(self, record: r.TopicRecord, offset: int, delta: Delta) -> None:
        self.topics[record.name] = TopicImage(record.name, record.topic_id, record.internal)
        self.topic_names[record.topic_id] = record.name
        delta.created_topics.add(record.name)

    def _apply_PartitionRecord(self, record: r.PartitionRecord, offset: int,
                               delta: Delta) -> None:
        topic = self.topic_by_id(record.topic_id)
        if topic is None:
            return
        topic.partitions[record.partition] = PartitionState(
            tuple(record.replicas), tuple(record.isr), record.leader, record.leader_epoch,
            record.partition_epoch, tuple(record.adding), tuple(record.removing))
        delta.changed_partitions.add((topic.name, record.partition))

    def _apply_PartitionChange(self, record: r.PartitionChange, offset: int,
                               delta: Delta) -> None:
        topic = self.topic_by_id(record.topic_id)
        if topic is None or record.partition not in topic.partitions:
            return
        old = topic.partitions[record.partition]
        new = replace(
            old,
            isr=old.isr if record.isr is None else tuple(record.isr),
            leader=old.leader if record.leader is None else record.leader,
            replicas=old.replicas if record.replicas is None else tuple(record.replicas),
            adding=old.adding if record.adding is None else tuple(record.adding),
            removing=old.removing if record.removing is None else tuple(record.removing),
            partition_epoch=old.partition_epoch + 1,
        )
        if new.leader != old.leader or record.bump_leader_epoch:
            new = replace(new, leader_epoch=old.leader_epoch + 1)
        topic.partitions[record.partition] = new
        delta.changed_partitions.add((topic.name, record.partition))

    def _apply_RemoveTopic(self, record: r.RemoveTopic, offset: int, delta: Delta) -> None:
        name = self.topic_names.pop(record.topic_id, None)
        if name is None:
            return
        delta.removed_topics[name] = self.topics.pop(name)
        self.configs.pop(name, None)

    def _apply_ConfigRecord(self, record: r.ConfigRecord, offset: int, delta: Delta) -> None:
        if record.resource_type == BROKER_RESOURCE:
            configs = self.broker_configs.setdefault(record.resource_name, {})
            if record.value is None:
                configs.pop(record.name, None)
            else:
                configs[record.name] = record.value
            return
        if record.resource_type != TOPIC_RESOURCE:
            return
        configs = self.configs.setdefault(record.resource_name, {})
        if record.value is None:
            configs.pop(record.name, None)
        else:
            configs[record.name] = record.value
        delta.changed_configs.add(record.resource_name)

    def _apply_ProducerIdsBlock(self, record: r.ProducerIdsBlock, offset: int,
                                delta: Delta) -> None:
        self.next_producer_id = max(self.next_producer_id, record.first_id + record.size)
