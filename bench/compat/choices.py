"""Deliberate differences between Brook and Apache Kafka, each with its reason, and the
known causes of the differences that are bugs (so the report groups them).

A difference the compatibility suite finds is a bug unless a Choice here matches it
(fnmatch patterns on scenario, key and client; optionally the exact two values, or the
only fields allowed to differ). Keep each entry narrow: a broad pattern would hide the
next real bug.
"""

from __future__ import annotations

from bench.compat.model import Choice

STATIC_BROKER_CONFIGS = (
    "Brook's broker configs are static except the replication throttle rates "
    "(leader/follower.replication.throttled.rate): AlterConfigs/IncrementalAlterConfigs of "
    "any other on a BROKER resource is refused with INVALID_CONFIG (set it in "
    "server.properties or --override and restart), so Brook reports those read-only; Kafka "
    "marks every dynamically updatable one read_only=false.")

CLUSTER_MIN_ISR = (
    "Kafka 4's `kafka-storage format` writes a cluster-level min.insync.replicas=1 record "
    "(eligible leader replicas, KIP-966), so Kafka reports that config as "
    "DYNAMIC_DEFAULT_BROKER_CONFIG; Brook has no dynamic cluster defaults and reports the same "
    "value as DEFAULT_CONFIG.")

NO_TIERED_STORAGE = (
    "Brook has no tiered storage (KIP-405), so it neither describes nor accepts the "
    "remote.*/local.retention.* topic configs: a tool cannot believe it turned tiered storage "
    "on. Kafka describes them with their defaults even when tiered storage is disabled.")

CHOICES: list[Choice] = [
    Choice("admin/config-metadata", "broker config count",
           "Brook describes only the broker properties it implements (broker/config.py "
           "BROKER_PROPERTIES, plus its own brook.* ones); Kafka describes all of its ~340, "
           "most of which have no meaning in Brook (ZooKeeper migration, SASL/SSL, quotas, "
           "tiered storage, share groups, ...)."),
    Choice("admin/config-metadata", "broker *", STATIC_BROKER_CONFIGS,
           only_fields=frozenset({"read_only"})),
    Choice("admin/config-metadata", "broker min.insync.replicas",
           CLUSTER_MIN_ISR + " " + STATIC_BROKER_CONFIGS,
           only_fields=frozenset({"read_only", "source"})),
    Choice("admin/config-metadata", "topic min.insync.replicas", CLUSTER_MIN_ISR,
           only_fields=frozenset({"source"})),
    *[Choice("admin/default-topic-configs", key, NO_TIERED_STORAGE)
      for key in ("remote.storage.enable", "remote.log.copy.disable",
                  "remote.log.delete.on.disable", "local.retention.bytes",
                  "local.retention.ms")],
    Choice("errors", "create remote.storage.enable=false", NO_TIERED_STORAGE,
           brook="error INVALID_CONFIG", kafka="ok"),
]


# ---------------------------------------------------------------- known bugs
# Differences that are bugs, grouped by cause: each entry's reason is the heading the
# report files the matching rows under (with the analysis after the first full stop).
# Fixing the cause makes every row under it disappear; a row matching none is "other".

AUTO_CREATE = (
    "Metadata auto-creation answers at once. Kafka 4.3 forwards the creation of a missing "
    "topic (Metadata with allow_auto_topic_creation=true, auto.create.topics.enable=true) to "
    "the controller and answers that request with UNKNOWN_TOPIC_OR_PARTITION and no "
    "partitions; the topic shows up in later Metadata responses. Brook creates the topic "
    "inline and returns it with its partitions in the same response. Both end up with the "
    "topic; what differs is the first answer: the Java consumer's partitionsFor() and "
    "kafkajs' consumer fail on Kafka but see the topic on Brook, and aiokafka's "
    "describe_topics (Metadata v5, auto-create allowed) reports a missing -- even a just "
    "deleted -- topic as existing on Brook (and re-creates it).")
FUTURE_TIMESTAMP = (
    "message.timestamp.after.max.ms is not enforced. Kafka refuses a CreateTime record "
    "stamped more than message.timestamp.after.max.ms (default 3600000 = 1 h) after the "
    "broker's clock with INVALID_TIMESTAMP (code 32) for the whole batch; Brook appends it. "
    "(message.timestamp.before.max.ms is the other bound, unlimited by default.)")
COMPRESSION_LEVELS = (
    "compression.gzip.level / compression.lz4.level / compression.zstd.level are missing. "
    "Kafka 3.8+ (KIP-390) has these topic configs (defaults -1, 9, 3; broker synonyms "
    "compression.*.level) used when the broker recompresses (topic compression.type other "
    "than producer); Brook neither describes nor accepts them.")
GROUP_OPERATIONS = (
    "DescribeGroups authorized operations lack DESCRIBE_CONFIGS and ALTER_CONFIGS. When a "
    "client asks for include_authorized_operations, Kafka 4 (no authorizer: everything "
    "allowed) lists READ, DESCRIBE, DELETE, DESCRIBE_CONFIGS, ALTER_CONFIGS for a group "
    "(group configs, KIP-848); Brook lists READ, DESCRIBE, DELETE.")
BROKER_ID = (
    "DescribeConfigs BROKER does not report broker.id. With node.id=1 set, Kafka describes "
    "broker.id as \"1\" (STATIC_BROKER_CONFIG, it is node.id's synonym); Brook reports null "
    "with DEFAULT_CONFIG.")

KNOWN_BUGS: list[Choice] = [
    Choice("wire/metadata", "allow_auto=True: response", AUTO_CREATE),
    Choice("errors", "consume missing topic", AUTO_CREATE),
    Choice("errors", "describe missing topic", AUTO_CREATE),
    Choice("errors", "missing topic exists after*", AUTO_CREATE),
    Choice("admin/topic-lifecycle", "12 describe after delete", AUTO_CREATE),
    Choice("errors", "produce timestamp 2 h in the future", FUTURE_TIMESTAMP),
    Choice("admin/default-topic-configs", "compression.*.level", COMPRESSION_LEVELS),
    Choice("admin/config-metadata", "broker compression.*.level", COMPRESSION_LEVELS),
    Choice("errors", "create compression.zstd.level=5", COMPRESSION_LEVELS),
    Choice("groups", "* describe *", GROUP_OPERATIONS, only_fields=frozenset({"authorized_operations"})),
    Choice("admin/config-metadata", "broker broker.id", BROKER_ID),
]
