"""Deliberate differences between Brook and Apache Kafka, each with its reason.

A difference the compatibility suite finds is a bug unless a Choice here matches it
(fnmatch patterns on scenario, key and client; optionally the exact two values, or the
only fields allowed to differ). Keep each entry narrow: a broad pattern would hide the
next real bug.
"""

from __future__ import annotations

from bench.compat.model import Choice

STATIC_BROKER_CONFIGS = (
    "Brook's broker configs are static (AlterConfigs/IncrementalAlterConfigs on a BROKER "
    "resource is refused with INVALID_REQUEST: set them in server.properties or --override "
    "and restart), so it reports every broker config read-only; Kafka marks the dynamically "
    "updatable ones read_only=false.")

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
]
