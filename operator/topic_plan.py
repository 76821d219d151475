"""What to do to a Kafka topic so it matches its Topic resource. Pure.

The handler describes the topic through the Admin API (ObservedTopic), asks
plan_topic() for a TopicPlan, carries out its actions, and turns the plan and the
broker's answers into status with topic_status().
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from brook.operator.cluster_spec import frozen_map
from brook.operator.conditions import PAUSED, READY, WARNING, Condition, render_conditions
from brook.operator.replica_plan import ReplicaPlanError, plan_replicas
from brook.operator.topic_spec import TopicSpec

DYNAMIC_TOPIC_CONFIG = "DYNAMIC_TOPIC_CONFIG"
# Set by the operator on the topics it moves while a reassignment is throttled (as
# kafka-reassign-partitions --throttle does), and removed afterwards: not the Topic's.
THROTTLE_REPLICA_KEYS = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")


@dataclass(frozen=True)
class ConfigValue:
    value: str | None
    source: str  # Kafka's ConfigSource name, e.g. DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG
    read_only: bool = False
    sensitive: bool = False


@dataclass(frozen=True)
class ObservedTopic:
    name: str
    partitions: int
    replication_factor: int  # the smallest replica count over the partitions
    configs: Mapping[str, ConfigValue] = field(default_factory=frozen_map)
    # partition -> replica node ids; empty when not described
    assignments: Mapping[int, tuple[int, ...]] = field(default_factory=frozen_map)
    brokers: tuple[int, ...] = ()  # node ids of the cluster's live brokers
    # partition -> target replicas, for reassignments in progress
    reassigning: Mapping[int, tuple[int, ...]] = field(default_factory=frozen_map)


@dataclass(frozen=True)
class Refusal:
    """A declared change the operator will not (or cannot) make; becomes Ready=False."""

    reason: str
    message: str


@dataclass(frozen=True)
class TopicPlan:
    create: bool = False
    partitions: int | None = None  # create with, or grow to, this many partitions
    replication_factor: int | None = None  # for create; None: the broker's default
    set_configs: Mapping[str, str] = field(default_factory=frozen_map)
    delete_configs: tuple[str, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    # partition -> new replica list (a replication factor change)
    reassign: Mapping[int, tuple[int, ...]] = field(default_factory=frozen_map)
    # a replication factor change still moving data: reported, not a refusal
    in_progress: str | None = None

    @property
    def add_partitions(self) -> int | None:
        return None if self.create else self.partitions

    @property
    def changes(self) -> bool:
        return bool(self.create or self.partitions or self.set_configs or self.delete_configs
                    or self.reassign)

    def describe(self) -> list[str]:
        """Human-readable list of the actions, for events and logs."""
        out = []
        if self.create:
            rf = self.replication_factor if self.replication_factor is not None else "default"
            out.append(f"create with {self.partitions} partitions, replication factor {rf}")
        elif self.partitions:
            out.append(f"grow to {self.partitions} partitions")
        if self.set_configs:
            out.append("set " + ", ".join(f"{k}={v}" for k, v in sorted(self.set_configs.items())))
        if self.delete_configs:
            out.append("reset " + ", ".join(sorted(self.delete_configs)))
        if self.reassign:
            rf = len(next(iter(self.reassign.values())))
            out.append(f"reassign {len(self.reassign)} partition(s) to replication factor {rf}")
        return out


def _same(a: str | None, b: str) -> bool:
    if a is None:
        return False
    norm = lambda s: ",".join(part.strip() for part in s.strip().split(","))  # noqa: E731
    return norm(a) == norm(b)


def plan_topic(spec: TopicSpec, observed: ObservedTopic | None) -> TopicPlan:
    desired = spec.desired_config()
    if observed is None:
        return TopicPlan(
            create=True,
            partitions=spec.partitions,
            replication_factor=spec.replication_factor,
            set_configs=frozen_map(desired),
        )
    refusals = []
    grow = None
    if spec.partitions > observed.partitions:
        grow = spec.partitions
    elif spec.partitions < observed.partitions:
        refusals.append(
            Refusal(
                "PartitionsDecreaseRefused",
                f"spec.partitions={spec.partitions} is less than the {observed.partitions} partitions "
                f"topic {spec.topic_name!r} has: Kafka cannot remove partitions. Set "
                f"spec.partitions to {observed.partitions} or more.",
            )
        )
    reassign: dict[int, tuple[int, ...]] = {}
    in_progress = None
    rf = spec.replication_factor
    if rf is not None and observed.reassigning:
        in_progress = (
            f"reassigning {len(observed.reassigning)} partition(s) of topic {spec.topic_name!r} "
            f"towards replication factor {rf}"
        )
    elif rf is not None and not observed.assignments and rf != observed.replication_factor:
        refusals.append(Refusal(
            "ReplicationFactorChangeUnsupported",
            f"spec.replicationFactor={rf} differs from the topic's {observed.replication_factor}, "
            "and the partitions' replicas are unknown",
        ))
    elif rf is not None and any(len(r) != rf for r in observed.assignments.values()):
        try:
            reassign = plan_replicas(observed.assignments, observed.brokers, rf)
        except ReplicaPlanError as exc:
            refusals.append(Refusal("InvalidReplicationFactor", f"spec.replicationFactor={rf}: {exc}"))
    min_isr = spec.min_insync_replicas
    effective_rf = rf if rf is not None else observed.replication_factor
    if min_isr is not None and min_isr > effective_rf:
        # The schema refuses it when replicationFactor is declared; otherwise it is the
        # topic's actual factor that counts. Applying it would stop every acks=all write.
        refusals.append(Refusal(
            "MinInSyncReplicasTooHigh",
            f"spec.minInSyncReplicas={min_isr} exceeds the replication factor {effective_rf} of topic "
            f"{spec.topic_name!r}: every acks=all write would fail with NOT_ENOUGH_REPLICAS; "
            "min.insync.replicas is left as it is",
        ))
        desired = {k: v for k, v in desired.items() if k != "min.insync.replicas"}
        desired.update({k: v.value for k, v in observed.configs.items()
                        if k == "min.insync.replicas" and v.source == DYNAMIC_TOPIC_CONFIG and v.value})
    # A config is satisfied when its value matches, whatever its source: a broker may
    # store an override equal to the default as the default, and re-setting it on
    # every resync would never converge. Sensitive values cannot be compared.
    to_set = {}
    for key, value in desired.items():
        current = observed.configs.get(key)
        if current is None or (not current.sensitive and not _same(current.value, value)):
            to_set[key] = value
    to_delete = tuple(
        sorted(
            key
            for key, current in observed.configs.items()
            if current.source == DYNAMIC_TOPIC_CONFIG and key not in desired and not current.read_only
            and key not in THROTTLE_REPLICA_KEYS
        )
    )
    return TopicPlan(
        partitions=grow,
        set_configs=frozen_map(to_set),
        delete_configs=to_delete,
        refusals=tuple(refusals),
        reassign=frozen_map(reassign),
        in_progress=in_progress,
    )


@dataclass(frozen=True)
class TopicOutcome:
    """How a reconcile went, for status."""

    observed: ObservedTopic | None = None
    plan: TopicPlan | None = None
    error: Refusal | None = None  # the cluster refused or could not be reached
    warnings: tuple[str, ...] = ()
    paused: bool = False


@dataclass(frozen=True)
class ReassignmentProgress:
    target: int  # the replication factor being reached
    done: int  # partitions at the target and not being moved
    partitions: int

    def describe(self, topic: str, moving: int) -> str:
        return (f"replication factor of topic {topic!r} changing to {self.target}: {self.done}/{self.partitions} "
                f"partition(s) done, {moving} being reassigned")


def reassignment_progress(spec: TopicSpec | None, outcome: TopicOutcome) -> ReassignmentProgress | None:
    """How far a replication factor change is, while one is in progress."""
    observed = outcome.observed
    if spec is None or spec.replication_factor is None or observed is None:
        return None
    started = outcome.plan.reassign if outcome.plan is not None else {}
    if not observed.reassigning and not started:
        return None
    target = spec.replication_factor
    done = sum(1 for p, replicas in observed.assignments.items()
               if len(replicas) == target and p not in observed.reassigning and p not in started)
    return ReassignmentProgress(target, done, observed.partitions)


def _ready(outcome: TopicOutcome, progress: ReassignmentProgress | None = None) -> Condition:
    if outcome.error is not None:
        return Condition.false(READY, outcome.error.reason, outcome.error.message)
    if outcome.plan is not None and outcome.plan.refusals:
        first = outcome.plan.refusals[0]
        message = " ".join(r.message for r in outcome.plan.refusals)
        return Condition.false(READY, first.reason, message)
    observed = outcome.observed
    if observed is None:
        return Condition.unknown(READY, "Pending", "the topic has not been described yet")
    started = outcome.plan.reassign if outcome.plan is not None else {}
    if observed.reassigning or started:
        moving = len(set(observed.reassigning) | set(started))
        message = (progress.describe(observed.name, moving) if progress is not None
                   else f"reassigning {moving} partition(s) of topic {observed.name!r}")
        return Condition.false(READY, "ReplicationFactorChanging", message)
    return Condition.true(
        READY,
        "TopicReady",
        f"topic {observed.name!r} has {observed.partitions} partitions, "
        f"replication factor {observed.replication_factor}",
    )


def topic_status(
    body: Mapping[str, Any], spec: TopicSpec | None, outcome: TopicOutcome, now: datetime | None = None
) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    previous_status = body.get("status") or {}
    previous = previous_status.get("conditions")
    progress = reassignment_progress(spec, outcome)
    conditions = [_ready(outcome, progress)]
    if outcome.warnings:
        conditions.append(Condition.true(WARNING, "SpecWarnings", "; ".join(outcome.warnings)))
    if outcome.paused:
        conditions.append(
            Condition.true(PAUSED, "Paused", "annotation brook.dev/pause-reconciliation is \"true\"")
        )
    status: dict[str, Any] = {
        "observedGeneration": meta.get("generation"),
        "conditions": render_conditions(conditions, previous, meta.get("generation"), now),
    }
    if spec is not None:
        status["topicName"] = spec.topic_name
    if outcome.observed is not None:
        status["partitions"] = outcome.observed.partitions
        status["replicationFactor"] = outcome.observed.replication_factor
    else:
        for key in ("partitions", "replicationFactor"):
            if key in previous_status:
                status[key] = previous_status[key]
    if progress is not None:
        status["reassignment"] = {"targetReplicationFactor": progress.target, "partitionsDone": progress.done,
                                  "partitions": progress.partitions}
    return status

