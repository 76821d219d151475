"""Records of the cluster metadata log. Pure.

The active controller appends these to the Raft-replicated metadata log; every broker
applies them in order to its MetadataImage. Each record is a frozen dataclass that
serialises to compact JSON with a `type` tag; JSON keeps the log readable with
standard tools and the volume is small (metadata, not data).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RegisterBroker:
    broker_id: int
    incarnation_id: str          # changes on every process start
    host: str
    port: int
    controller_port: int
    rack: str | None = None


@dataclass(frozen=True)
class FenceBroker:
    broker_id: int


@dataclass(frozen=True)
class UnfenceBroker:
    broker_id: int


@dataclass(frozen=True)
class UnregisterBroker:
    broker_id: int


@dataclass(frozen=True)
class TopicRecord:
    name: str
    topic_id: str
    internal: bool = False


@dataclass(frozen=True)
class PartitionRecord:
    """The full state of a partition (written at creation)."""

    topic_id: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int = 0
    partition_epoch: int = 0
    adding: tuple[int, ...] = ()
    removing: tuple[int, ...] = ()


@dataclass(frozen=True)
class PartitionChange:
    """A change to some fields of a partition; None means unchanged.

    Applying it bumps partition_epoch, and leader_epoch when the leader changes (or
    when `bump_leader_epoch` asks, e.g. when replicas are removed)."""

    topic_id: str
    partition: int
    isr: tuple[int, ...] | None = None
    leader: int | None = None
    replicas: tuple[int, ...] | None = None
    adding: tuple[int, ...] | None = None
    removing: tuple[int, ...] | None = None
    bump_leader_epoch: bool = False


@dataclass(frozen=True)
class RemoveTopic:
    topic_id: str


@dataclass(frozen=True)
class ConfigRecord:
    """A topic config override, or a dynamic broker config; value None removes it."""

    resource_type: int  # 2 = topic, 4 = broker (Kafka's ConfigResource type codes)
    resource_name: str
    name: str
    value: str | None


@dataclass(frozen=True)
class ProducerIdsBlock:
    broker_id: int
    first_id: int
    size: int


@dataclass(frozen=True)
class ClusterIdRecord:
    """Written once, by the first active controller: the id every broker reports."""

    cluster_id: str


@dataclass(frozen=True)
class NoOp:
    """Appended by a new leader to commit entries of earlier terms (Raft section 8)."""

    note: str = field(default="")


RECORD_TYPES = {cls.__name__: cls for cls in (
    RegisterBroker, FenceBroker, UnfenceBroker, UnregisterBroker, TopicRecord,
    PartitionRecord, PartitionChange, RemoveTopic, ConfigRecord, ProducerIdsBlock, NoOp,
    ClusterIdRecord,
)}


def to_dict(record) -> dict:
    data = {"type": type(record).__name__}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        data[f.name] = list(value) if isinstance(value, tuple) else value
    return data


def from_dict(data: dict):
    data = dict(data)
    cls = RECORD_TYPES[data.pop("type")]
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


def encode(record) -> bytes:
    return json.dumps(to_dict(record), separators=(",", ":")).encode()


def decode(raw: bytes):
    return from_dict(json.loads(raw))


def encode_batch(records) -> bytes:
    """Several records that must take effect together: one quorum entry."""
    return json.dumps([to_dict(rec) for rec in records], separators=(",", ":")).encode()


def decode_batch(raw: bytes) -> list:
    return [from_dict(item) for item in json.loads(raw)]


def new_topic_id() -> str:
    return str(uuid.uuid4())
