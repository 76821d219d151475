"""Operator configuration from its environment (set by the Helm chart). Pure."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_IMAGE = "brook:0.1.0"  # the chart passes the image it deploys the operator with


class OperatorConfigError(ValueError):
    pass


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    text = env.get(key, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise OperatorConfigError(f"{key}={text!r}: expected a number of seconds") from None
    if value < 0:
        raise OperatorConfigError(f"{key}={text!r}: must be >= 0")
    return value


@dataclass(frozen=True)
class OperatorConfig:
    # Broker image for clusters that do not name one (the chart passes its own image).
    broker_image: str = DEFAULT_IMAGE
    # DNS suffix of the Kubernetes cluster, used in brokers' advertised listeners.
    cluster_domain: str = "cluster.local"
    # Namespaces to watch; empty means all namespaces.
    namespaces: tuple[str, ...] = ()
    # How often a KafkaCluster's status and a Topic's state are re-checked (drift).
    resync_seconds: float = 30.0
    # How long the deletion of a Topic waits for an unreachable cluster before the
    # finalizer is released anyway (the topic is then left in Kafka).
    topic_delete_timeout_seconds: float = 300.0
    # Timeout of one Kafka Admin API call.
    admin_timeout_seconds: float = 15.0
    # How long a broker restarted by a rolling update may take to become ready before
    # the roll is halted (condition RollHalted) instead of restarting the next one.
    roll_halt_seconds: float = 300.0
    # How long every broker must have been ready before the next one is restarted.
    roll_settle_seconds: float = 0.0
    # Partitions reassigned at a time when balancing after a scale-up (the brokers have
    # no replication throttle, so the copying is bounded by batching instead).
    balance_batch_partitions: int = 4
    # Kafka's reassignment throttle (leader/follower.replication.throttled.rate, bytes/s)
    # while the operator moves partitions (balancing, draining); 0: unthrottled.
    reassign_throttle_bytes: int = 10 * 1024 * 1024
    # Overrides the bootstrap address of every cluster: "{name}" and "{namespace}"
    # are substituted. For running the operator outside the Kubernetes cluster.
    bootstrap_override: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        env = os.environ if env is None else env
        namespaces = tuple(
            ns.strip() for ns in env.get("BROOK_WATCH_NAMESPACES", "").split(",") if ns.strip()
        )
        domain = env.get("BROOK_CLUSTER_DOMAIN", "").strip().strip(".") or "cluster.local"
        return cls(
            broker_image=env.get("BROOK_BROKER_IMAGE", "").strip() or DEFAULT_IMAGE,
            cluster_domain=domain,
            namespaces=namespaces,
            resync_seconds=_float(env, "BROOK_RESYNC_SECONDS", 30.0) or 30.0,
            topic_delete_timeout_seconds=_float(env, "BROOK_TOPIC_DELETE_TIMEOUT_SECONDS", 300.0),
            admin_timeout_seconds=_float(env, "BROOK_ADMIN_TIMEOUT_SECONDS", 15.0) or 15.0,
            roll_halt_seconds=_float(env, "BROOK_ROLL_HALT_SECONDS", 300.0) or 300.0,
            roll_settle_seconds=_float(env, "BROOK_ROLL_SETTLE_SECONDS", 0.0),
            balance_batch_partitions=max(1, int(_float(env, "BROOK_BALANCE_BATCH_PARTITIONS", 4))),
            reassign_throttle_bytes=int(_float(env, "BROOK_REASSIGN_THROTTLE_BYTES", 10 * 1024 * 1024)),
            bootstrap_override=env.get("BROOK_BOOTSTRAP_OVERRIDE", "").strip() or None,
        )
