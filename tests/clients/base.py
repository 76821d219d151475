"""The common interface every client driver implements.

A driver runs one real Kafka client (a library, a CLI or a helper process) with its
DEFAULT settings, except bootstrap servers and the compression codec.

Records given to ``produce``::

    {"key": bytes | None, "value": bytes | None, "headers": [(str, bytes | None), ...],
     "timestamp_ms": int | None, "partition": int | None}

Records returned by ``consume``::

    {"partition": int, "offset": int, "key": bytes | None, "value": bytes | None,
     "headers": [(str, bytes | None), ...], "timestamp_ms": int}

Capability flags (class attributes) say what a client cannot do; tests adapt to them
instead of special-casing driver names. Operations a client lacks raise
:class:`Unsupported`; errors returned by the broker raise :class:`KafkaClientError`
carrying the Kafka error name (e.g. ``TOPIC_ALREADY_EXISTS``) and code.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")

# Topics the brokers create for themselves; list_topics() leaves them out for every
# client (librdkafka-based clients have no "internal" flag to filter on).
INTERNAL_TOPICS = frozenset({
    "__consumer_offsets", "__transaction_state", "__share_group_state", "__cluster_metadata",
})


class KafkaClientError(Exception):
    """The client reported an error. ``name``/``code`` are Kafka's protocol error name and
    code when the broker refused (``code`` is None for client-side errors)."""

    def __init__(self, name: str, code: int | None = None, message: str = "", client: str = ""):
        self.client_name = name  # as the client spelled it (librdkafka: UNKNOWN_TOPIC_OR_PART)
        name = canonical_error_name(code) or name
        self.name = name
        self.code = code
        self.message = message
        self.client = client
        super().__init__(f"[{client}] {name}" + (f" ({code})" if code is not None else "")
                         + (f": {message}" if message else ""))


def canonical_error_name(code: int | None) -> str | None:
    """Kafka's own name (org.apache.kafka.common.protocol.Errors) for a protocol error
    code, so every driver reports e.g. UNKNOWN_TOPIC_OR_PARTITION for code 3."""
    if code is None:
        return None
    try:
        from kafka.errors import for_code
    except ImportError:
        return None
    cls = for_code(code)
    return cls.message if getattr(cls, "errno", None) == code else None


class Unsupported(NotImplementedError):
    """The client has no way to do this (see the driver's capability flags)."""


class ToolUnavailable(RuntimeError):
    """The client's executable/library is not installed; the message says how to fix it."""


@dataclass
class TopicDescription:
    name: str
    partitions: int
    replication_factor: int
    # every config the broker describes for the topic: name -> value (None if sensitive)
    configs: dict[str, str | None] = field(default_factory=dict)


class ClientDriver(abc.ABC):
    #: registry key and pytest id
    name: str = "?"

    # ---- capability flags --------------------------------------------------------
    #: codecs this client can produce/consume with
    compressions: frozenset[str] = frozenset(COMPRESSIONS)
    #: per-record timestamp_ms honoured on produce (else the client stamps "now")
    supports_timestamps: bool = True
    #: every record may carry its own headers (else all records of a produce call must
    #: share one header list)
    supports_per_record_headers: bool = True
    #: header values may be arbitrary bytes, including b"," b"=" b"\n" and NUL
    supports_binary_headers: bool = True
    #: headers may repeat a name, interleaved with others, and keep their order
    supports_duplicate_headers: bool = True
    #: keys/values: null and b"" are distinct
    supports_null_vs_empty: bool = True
    #: record["partition"] honoured on produce
    supports_explicit_partition: bool = True
    #: produce() returns one (partition, offset) per record, in record order. When
    #: False the multiset of acks is right but records without key AND without
    #: partition may be paired with another such record's ack.
    exact_acks: bool = True
    #: admin API (create/describe/alter/create-partitions/delete topics)
    supports_admin: bool = True
    #: list_topics() works (kcat can list metadata, without an admin API)
    supports_list_topics: bool = True
    #: alter_topic_config uses IncrementalAlterConfigs; if False the driver emulates it
    #: with describe + AlterConfigs (read-modify-write of the topic's dynamic configs)
    incremental_alter_configs: bool = True
    #: create_topic(validate_only=True) supported
    supports_validate_only: bool = True

    # ---- lifecycle ---------------------------------------------------------------
    def unavailable_reason(self) -> str | None:
        """None when the client can run here, else why not (and how to fix it)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most drivers hold nothing
        """Release helper processes. The driver can be used again afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    # ---- data path ---------------------------------------------------------------
    @abc.abstractmethod
    def produce(self, bootstrap: str, topic: str, records: list[dict],
                compression: str = "none") -> list[tuple[int, int]]:
        """Produce all records (in order), wait for every ack, return one
        (partition, offset) per record. Raises KafkaClientError if any record failed."""

    @abc.abstractmethod
    def consume(self, bootstrap: str, topic: str, partitions: list[int] | None = None,
                expected_count: int = 0, timeout_s: float = 30.0) -> list[dict]:
        """Read from the beginning of each partition (all partitions when None) with
        manual assignment (no consumer group) until at least expected_count records or
        timeout_s; return what was read (possibly fewer: the caller asserts)."""

    # ---- admin -------------------------------------------------------------------
    def create_topic(self, bootstrap: str, name: str, partitions: int,
                     config: dict[str, str] | None = None, validate_only: bool = False,
                     replication_factor: int | None = None) -> None:
        """replication_factor None = the broker's default."""
        raise Unsupported(f"{self.name}: no admin API")

    def describe_topic(self, bootstrap: str, name: str) -> TopicDescription:
        raise Unsupported(f"{self.name}: no admin API")

    def alter_topic_config(self, bootstrap: str, name: str,
                           changes: dict[str, str | None]) -> None:
        """Set each key to its value; None removes the override (back to default).
        Other dynamic configs of the topic are left as they are."""
        raise Unsupported(f"{self.name}: no admin API")

    def create_partitions(self, bootstrap: str, name: str, total: int) -> None:
        raise Unsupported(f"{self.name}: no admin API")

    def delete_topic(self, bootstrap: str, name: str) -> None:
        raise Unsupported(f"{self.name}: no admin API")

    def list_topics(self, bootstrap: str) -> list[str]:
        """Sorted topic names, without INTERNAL_TOPICS."""
        raise Unsupported(f"{self.name}: cannot list topics")

    # ---- helpers for subclasses ----------------------------------------------------
    def _check_compression(self, compression: str) -> None:
        if compression not in COMPRESSIONS:
            raise ValueError(f"unknown compression {compression!r}; one of {COMPRESSIONS}")
        if compression not in self.compressions:
            raise Unsupported(f"{self.name} cannot use {compression} compression here")


def user_topics(names) -> list[str]:
    return sorted(n for n in names if n not in INTERNAL_TOPICS)
