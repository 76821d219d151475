"""Status of a KafkaCluster from what its StatefulSet reports. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from brook.operator.cluster_manifests import ClusterNames, selector_labels
from brook.operator.cluster_rolling import PartitionState
from brook.operator.conditions import PAUSED, READY, WARNING, Condition, find, render_conditions
from brook.operator.constants import INTERNAL_TOPICS

TOPICS_AT_RISK = "TopicsAtRisk"


def topic_risks(partitions: Sequence[PartitionState], max_listed: int = 10) -> tuple[str, ...]:
    """Warnings about topics whose settings leave no room for a broker failure: a
    replication factor of 1 (a lost broker loses data), or one not above
    min.insync.replicas (acks=all writes stop when any replica is down). Internal
    topics are the operator's own and left out."""
    rf: dict[str, int] = {}
    min_isr: dict[str, int] = {}
    for p in partitions:
        topic = p.name.rsplit("-", 1)[0]
        if topic in INTERNAL_TOPICS:
            continue
        rf[topic] = min(rf.get(topic, len(p.replicas)), len(p.replicas))
        min_isr[topic] = p.min_isr
    single = sorted(t for t, r in rf.items() if r == 1)
    tight = sorted(t for t, r in rf.items() if 1 < r <= min_isr[t])
    out = []

    def shown(items: list[str]) -> str:
        return ", ".join(items[:max_listed]) + (f" and {len(items) - max_listed} more" if len(items) > max_listed else "")

    if single:
        out.append(f"replication factor 1 (a lost broker loses their data): {shown(single)}")
    if tight:
        out.append("replication factor not above min.insync.replicas (acks=all writes stop while any "
                   "replica is down, so no broker may fail or restart): "
                   + shown([f"{t} (RF {rf[t]}, min.insync.replicas {min_isr[t]})" for t in tight]))
    return tuple(out)


@dataclass(frozen=True)
class ClusterObservation:
    """What the handler saw: the StatefulSet (or None) and facts from the brokers."""

    statefulset: Mapping[str, Any] | None = None
    controller: int | None = None  # active controller node id, from the Admin API
    cluster_id: str | None = None
    apply_error: str | None = None  # the API server refused an object
    spec_error: str | None = None  # the spec cannot be reconciled
    scale_refusal: str | None = None  # a scale-down that would lose replicas
    scale_progress: str | None = None  # a scale-down draining the departing brokers
    roll_note: str | None = None  # what the ISR-aware rolling restart is doing
    roll_halted: str | None = None  # broker(s) that did not come back: the roll stopped
    balance_pending: bool = False  # balancing after a scale-up is not finished
    balance_progress: str | None = None
    balance_elected: int | None = None
    topic_risks: tuple[str, ...] | None = None  # None: not asked this time, keep the last verdict
    voters: Sequence[int] | None = None  # the metadata quorum's voters, when known
    quorum_progress: str | None = None  # a new broker was just made a voter
    warnings: tuple[str, ...] = ()
    paused: bool = False


def _ready_condition(desired: int, obs: ClusterObservation) -> Condition:
    if obs.spec_error:
        return Condition.false(READY, "InvalidSpec", obs.spec_error)
    if obs.apply_error:
        return Condition.false(READY, "ApplyFailed", obs.apply_error)
    if obs.scale_refusal:
        return Condition.false(READY, "ScaleDownRefused", obs.scale_refusal)
    if obs.scale_progress:
        return Condition.false(READY, "Draining", obs.scale_progress)
    sts = obs.statefulset
    if sts is None:
        return Condition.false(READY, "Creating", "the broker StatefulSet does not exist yet")
    meta = sts.get("metadata") or {}
    st = sts.get("status") or {}
    ready = int(st.get("readyReplicas") or 0)
    updated = int(st.get("updatedReplicas") or 0)
    current = int(st.get("replicas") or 0)
    if int(st.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return Condition.false(READY, "Progressing", "the StatefulSet controller has not seen the latest spec yet")
    rev_current, rev_update = st.get("currentRevision"), st.get("updateRevision")
    if obs.roll_halted:
        return Condition.false(READY, "RollHalted", obs.roll_note or f"{obs.roll_halted} did not come back")
    if rev_current and rev_update and rev_current != rev_update and updated < desired:
        note = f"; {obs.roll_note}" if obs.roll_note else ""
        return Condition.false(
            READY,
            "RollingUpdate",
            f"{updated}/{desired} brokers run the latest configuration; {ready}/{desired} ready{note}",
        )
    if current > desired:
        return Condition.false(READY, "ScalingDown", f"{current} brokers running, {desired} desired")
    if ready < desired:
        reason = "ScalingUp" if 0 < current < desired and ready == current else "BrokersNotReady"
        return Condition.false(READY, reason, f"{ready}/{desired} brokers ready")
    if obs.quorum_progress:
        return Condition.false(READY, "ScalingUp", obs.quorum_progress)
    if obs.balance_pending:
        return Condition.false(READY, "Reassigning", obs.balance_progress or "balancing after the scale-up")
    return Condition.true(READY, "BrokersReady", f"{ready}/{desired} brokers ready")


# What the operator is doing, by the Ready condition's reason (status.activity).
ACTIVITY_BY_REASON = {
    "Creating": "Creating",
    "Progressing": "Scaling",
    "ScalingUp": "Scaling",
    "ScalingDown": "Scaling",
    "BrokersNotReady": "Scaling",
    "Draining": "Draining",
    "RollingUpdate": "Rolling",
    "Reassigning": "Reassigning",
    "BrokersReady": "Idle",
    "InvalidSpec": "Blocked",
    "ApplyFailed": "Blocked",
    "ScaleDownRefused": "Blocked",
    "RollHalted": "Blocked",
}


def compute_cluster_status(
    body: Mapping[str, Any],
    obs: ClusterObservation,
    cluster_domain: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The full status of a KafkaCluster (everything the operator owns in it)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    names = ClusterNames(str(meta.get("name")), str(meta.get("namespace")))
    desired = int(spec.get("replicas") or 1)
    previous = (body.get("status") or {}).get("conditions")
    ready = _ready_condition(desired, obs)
    conditions = [ready]
    if obs.warnings:
        conditions.append(Condition.true(WARNING, "SpecWarnings", "; ".join(obs.warnings)))
    if obs.topic_risks:
        conditions.append(Condition.true(TOPICS_AT_RISK, "NoRoomForFailure", "; ".join(obs.topic_risks)))
    elif obs.topic_risks is not None:
        conditions.append(Condition.false(TOPICS_AT_RISK, "TopicsTolerateFailures",
                                          "every topic has a replication factor above 1 and above "
                                          "min.insync.replicas"))
    else:
        kept = find(previous, TOPICS_AT_RISK)
        if kept is not None:
            conditions.append(Condition(TOPICS_AT_RISK, str(kept.get("status")), str(kept.get("reason")),
                                        str(kept.get("message") or "")))
    if obs.paused:
        conditions.append(
            Condition.true(PAUSED, "Paused", "annotation brook.dev/pause-reconciliation is \"true\"")
        )
    st = (obs.statefulset or {}).get("status") or {}
    status: dict[str, Any] = {
        "observedGeneration": meta.get("generation"),
        "replicas": int(st.get("replicas") or 0),
        "readyReplicas": int(st.get("readyReplicas") or 0),
        "selector": ",".join(f"{k}={v}" for k, v in selector_labels(names.cluster).items()),
        "bootstrapServers": names.bootstrap_servers(cluster_domain),
        "activity": ACTIVITY_BY_REASON.get(ready.reason, "Blocked"),
        "conditions": render_conditions(conditions, previous, meta.get("generation"), now),
    }
    if obs.balance_pending:
        status["balance"] = {"pending": True, "message": obs.balance_progress or ""}
        if obs.balance_elected is not None:
            status["balance"]["elected"] = obs.balance_elected
    if obs.controller is not None:
        status["controller"] = obs.controller
    if obs.voters is not None:
        status["voters"] = sorted(int(v) for v in obs.voters)
    if obs.cluster_id:
        status["clusterId"] = obs.cluster_id
    return status
