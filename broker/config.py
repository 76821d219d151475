"""Broker configuration with Apache Kafka's property names.

Pure: parses `server.properties` text and `key=value` overrides into a frozen
`BrokerConfig`. Unknown keys are kept (and reported) rather than rejected, as Kafka
does, so an existing server.properties works unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_LISTENER = "PLAINTEXT://127.0.0.1:9092"
DEFAULT_LOG_DIR = "./brook-data"


class ConfigError(ValueError):
    """A broker property has a value Brook cannot use; the message names the key."""


@dataclass(frozen=True)
class Listener:
    name: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listener:
        parts = urlsplit(text.strip())
        if not parts.scheme or parts.port is None:
            raise ConfigError(
                f"listener {text!r} is not NAME://host:port (e.g. PLAINTEXT://127.0.0.1:9092)"
            )
        return cls(parts.scheme.upper(), parts.hostname or "0.0.0.0", parts.port)


# Broker property -> (type, default). Types: int, bool, str, float, "list".
# Defaults are Kafka's, except where a single-node developer broker needs otherwise
# (noted inline).
BROKER_PROPERTIES: dict[str, tuple[str, object]] = {
    "node.id": ("int", 0),
    "broker.id": ("int", None),  # legacy alias of node.id
    "process.roles": ("str", "broker,controller"),
    "listeners": ("str", DEFAULT_LISTENER),
    "advertised.listeners": ("str", None),
    "inter.broker.listener.name": ("str", None),
    "controller.listener.names": ("str", None),
    "controller.quorum.voters": ("str", ""),
    # How long one call to a controller may take before the caller asks again (maybe
    # another node): a frozen controller must not hold a broker's heartbeats hostage.
    "controller.quorum.request.timeout.ms": ("int", 2000),
    "broker.rack": ("str", None),
    "cluster.id": ("str", None),
    "log.dirs": ("str", None),
    "log.dir": ("str", DEFAULT_LOG_DIR),
    "num.partitions": ("int", 1),
    "default.replication.factor": ("int", 1),
    "auto.create.topics.enable": ("bool", True),
    "delete.topic.enable": ("bool", True),
    "log.retention.ms": ("long", None),
    "log.retention.minutes": ("int", None),
    "log.retention.hours": ("int", 168),
    "log.retention.bytes": ("long", -1),
    "log.retention.check.interval.ms": ("long", 300_000),
    "log.segment.bytes": ("int", 1_073_741_824),
    "log.roll.ms": ("long", None),
    "log.roll.hours": ("int", 168),
    "log.index.interval.bytes": ("int", 4096),
    "log.index.size.max.bytes": ("int", 10_485_760),
    "log.flush.interval.messages": ("long", None),
    "log.flush.interval.ms": ("long", None),
    "log.flush.scheduler.interval.ms": ("long", 1000),  # Kafka: Long.MAX; 1 s bounds the tick
    "log.cleanup.policy": ("str", "delete"),
    "log.cleaner.delete.retention.ms": ("long", 86_400_000),
    "log.cleaner.min.cleanable.ratio": ("double", 0.5),
    "log.cleaner.min.compaction.lag.ms": ("long", 0),
    "log.cleaner.max.compaction.lag.ms": ("long", 9_223_372_036_854_775_807),
    "log.cleaner.backoff.ms": ("long", 15_000),
    "log.cleaner.enable": ("bool", True),
    "log.cleaner.dedupe.buffer.size": ("long", 134_217_728),
    "log.cleaner.io.buffer.load.factor": ("double", 0.9),
    "log.message.timestamp.type": ("str", "CreateTime"),
    "log.message.timestamp.before.max.ms": ("long", 9_223_372_036_854_775_807),
    "log.message.timestamp.after.max.ms": ("long", 3_600_000),
    "log.segment.delete.delay.ms": ("long", 60_000),
    "message.max.bytes": ("int", 1_048_588),
    "min.insync.replicas": ("int", 1),
    "compression.type": ("str", "producer"),
    "compression.gzip.level": ("int", -1),
    "compression.lz4.level": ("int", 9),
    "compression.zstd.level": ("int", 3),
    "unclean.leader.election.enable": ("bool", False),
    "socket.request.max.bytes": ("int", 104_857_600),
    "replica.lag.time.max.ms": ("long", 30_000),
    # Replication throttles (bytes/s); usually set at runtime (AlterConfigs) for the span
    # of a reassignment, see replication/throttle.py.
    "leader.replication.throttled.rate": ("long", 2**63 - 1),
    "follower.replication.throttled.rate": ("long", 2**63 - 1),
    "broker.session.timeout.ms": ("int", 9000),
    "broker.heartbeat.interval.ms": ("int", 2000),
    "auto.leader.rebalance.enable": ("bool", True),
    "leader.imbalance.check.interval.seconds": ("long", 300),
    "offsets.topic.num.partitions": ("int", 50),
    "offsets.topic.replication.factor": ("short", 3),
    "offsets.retention.minutes": ("int", 10_080),
    "offsets.retention.check.interval.ms": ("long", 600_000),
    "offsets.topic.segment.bytes": ("int", 104_857_600),
    "offset.metadata.max.bytes": ("int", 4096),
    "group.max.size": ("int", 2_147_483_647),
    "group.initial.rebalance.delay.ms": ("int", 3000),
    "group.min.session.timeout.ms": ("int", 6000),
    "group.max.session.timeout.ms": ("int", 1_800_000),
    "transactional.id.expiration.ms": ("int", 604_800_000),
    "producer.id.expiration.ms": ("int", 86_400_000),
    "connections.max.idle.ms": ("long", 600_000),
    # Brook's own: Prometheus endpoint (host:port; empty disables).
    "brook.metrics.listener": ("str", "127.0.0.1:9404"),
    # Brook's own: a metadata snapshot after this many applied metadata log entries, one
    # per controller commit (0 = never). Kafka's
    # metadata.log.max.record.bytes.between.snapshots counts bytes instead, hence not
    # that name.
    "brook.metadata.snapshot.records": ("int", 20_000),
}


def _convert(key: str, kind: str, raw: str) -> object:
    text = raw.strip()
    try:
        if kind in ("int", "long", "short"):
            return int(text)
        if kind == "double":
            return float(text)
        if kind == "bool":
            low = text.lower()
            if low not in ("true", "false"):
                raise ValueError(text)
            return low == "true"
    except ValueError:
        raise ConfigError(f"{key}={raw!r}: expected a {kind}") from None
    return text


def parse_properties(text: str) -> dict[str, str]:
    """Java .properties subset: `key=value` or `key: value`, # and ! comments."""
    props: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#!":
            continue
        sep = min((i for i in (stripped.find("="), stripped.find(":")) if i >= 0), default=-1)
        if sep <= 0:
            raise ConfigError(f"line {number}: {line!r} is not key=value")
        props[stripped[:sep].strip()] = stripped[sep + 1 :].strip()
    return props


def parse_override(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--override {text!r}: expected key=value")
    return key.strip(), value.strip()


@dataclass(frozen=True)
class BrokerConfig:
    """Typed view of the broker properties; `values` keeps every effective value."""

    values: dict[str, object] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()
    explicit: frozenset[str] = frozenset()

    @classmethod
    def from_sources(
        cls, file_text: str | None = None, overrides: list[str] | None = None
    ) -> BrokerConfig:
        raw: dict[str, str] = parse_properties(file_text) if file_text else {}
        for item in overrides or []:
            key, value = parse_override(item)
            raw[key] = value
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, str]) -> BrokerConfig:
        values: dict[str, object] = {k: default for k, (_, default) in BROKER_PROPERTIES.items()}
        unknown = []
        for key, text in raw.items():
            if key in BROKER_PROPERTIES:
                values[key] = _convert(key, BROKER_PROPERTIES[key][0], text)
            else:
                values[key] = text
                unknown.append(key)
        config = cls(values, tuple(sorted(unknown)), frozenset(raw))
        config.validate()
        return config

    def get(self, key: str) -> object:
        return self.values.get(key)

    def validate(self) -> None:
        self.listeners  # noqa: B018 - parses and raises on malformed listeners
        self.advertised_listeners  # noqa: B018
        if self.node_id < 0:
            raise ConfigError(f"node.id={self.node_id}: must be >= 0")
        for key in ("message.max.bytes", "log.segment.bytes", "socket.request.max.bytes"):
            if int(self.values[key]) <= 0:  # type: ignore[arg-type]
                raise ConfigError(f"{key}={self.values[key]}: must be > 0")
        if self.num_partitions < 1:
            raise ConfigError(f"num.partitions={self.num_partitions}: must be >= 1")
        if self.get_int("brook.metadata.snapshot.records") < 0:
            raise ConfigError("brook.metadata.snapshot.records="
                              f"{self.values['brook.metadata.snapshot.records']}: must be >= 0 "
                              "(0: never snapshot)")

    # -- typed accessors -------------------------------------------------------------
    @property
    def node_id(self) -> int:
        legacy = self.values.get("broker.id")
        if "node.id" not in self.explicit and legacy is not None:
            return int(legacy)  # type: ignore[arg-type]
        return int(self.values["node.id"])  # type: ignore[arg-type]

    @property
    def listeners(self) -> list[Listener]:
        text = str(self.values["listeners"])
        return [Listener.parse(item) for item in text.split(",") if item.strip()]

    @property
    def client_listener(self) -> Listener:
        """The listener clients use: the inter-broker one if named, else the first."""
        wanted = self.values.get("inter.broker.listener.name")
        controller_names = set(str(self.values.get("controller.listener.names") or "").split(","))
        for listener in self.listeners:
            if wanted and listener.name == str(wanted).upper():
                return listener
        for listener in self.listeners:
            if listener.name not in controller_names:
                return listener
        raise ConfigError("listeners: no client listener (all are controller listeners)")

    @property
    def advertised_listeners(self) -> list[Listener]:
        text = self.values.get("advertised.listeners")
        if not text:
            return self.listeners
        return [Listener.parse(item) for item in str(text).split(",") if item.strip()]

    @property
    def advertised_client_listener(self) -> Listener:
        name = self.client_listener.name
        for listener in self.advertised_listeners:
            if listener.name == name:
                return listener
        return self.client_listener

    @property
    def log_dirs(self) -> list[Path]:
        text = self.values.get("log.dirs") or self.values["log.dir"]
        return [Path(item.strip()) for item in str(text).split(",") if item.strip()]

    @property
    def num_partitions(self) -> int:
        return int(self.values["num.partitions"])  # type: ignore[arg-type]

    @property
    def default_replication_factor(self) -> int:
        return int(self.values["default.replication.factor"])  # type: ignore[arg-type]

    @property
    def auto_create_topics(self) -> bool:
        return bool(self.values["auto.create.topics.enable"])

    @property
    def message_max_bytes(self) -> int:
        return int(self.values["message.max.bytes"])  # type: ignore[arg-type]

    @property
    def socket_request_max_bytes(self) -> int:
        return int(self.values["socket.request.max.bytes"])  # type: ignore[arg-type]

    @property
    def retention_ms(self) -> int:
        """log.retention.ms wins over .minutes, which wins over .hours (as in Kafka)."""
        if self.values.get("log.retention.ms") is not None:
            return int(self.values["log.retention.ms"])  # type: ignore[arg-type]
        if self.values.get("log.retention.minutes") is not None:
            return int(self.values["log.retention.minutes"]) * 60_000  # type: ignore[arg-type]
        return int(self.values["log.retention.hours"]) * 3_600_000  # type: ignore[arg-type]

    @property
    def roll_ms(self) -> int:
        if self.values.get("log.roll.ms") is not None:
            return int(self.values["log.roll.ms"])  # type: ignore[arg-type]
        return int(self.values["log.roll.hours"]) * 3_600_000  # type: ignore[arg-type]

    @property
    def metrics_listener(self) -> tuple[str, int] | None:
        text = str(self.values.get("brook.metrics.listener") or "").strip()
        if not text:
            return None
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ConfigError(f"brook.metrics.listener={text!r}: expected host:port")
        return host or "0.0.0.0", int(port)

    def get_int(self, key: str) -> int:
        return int(self.values[key])  # type: ignore[arg-type]
