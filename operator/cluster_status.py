"""Status of a KafkaCluster from what its StatefulSet reports. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from brook.operator.cluster_manifests import ClusterNames, selector_labels
from brook.operator.conditions import PAUSED, READY, WARNING, Condition, render_conditions


@dataclass(frozen=True)
class ClusterObservation:
    """What the handler saw: the StatefulSet (or None) and facts from the brokers."""

    statefulset: Mapping[str, Any] | None = None
    controller: int | None = None  # active controller node id, from the Admin API
    cluster_id: str | None = None
    apply_error: str | None = None  # the API server refused an object
    spec_error: str | None = None  # the spec cannot be reconciled
    scale_refusal: str | None = None  # a scale-down that would lose replicas
    roll_note: str | None = None  # what the ISR-aware rolling restart is doing
    warnings: tuple[str, ...] = ()
    paused: bool = False


def _ready_condition(desired: int, obs: ClusterObservation) -> Condition:
    if obs.spec_error:
        return Condition.false(READY, "InvalidSpec", obs.spec_error)
    if obs.apply_error:
        return Condition.false(READY, "ApplyFailed", obs.apply_error)
    if obs.scale_refusal:
        return Condition.false(READY, "ScaleDownRefused", obs.scale_refusal)
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
    return Condition.true(READY, "BrokersReady", f"{ready}/{desired} brokers ready")


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
    conditions = [_ready_condition(desired, obs)]
    if obs.warnings:
        conditions.append(Condition.true(WARNING, "SpecWarnings", "; ".join(obs.warnings)))
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
        "conditions": render_conditions(conditions, previous, meta.get("generation"), now),
    }
    if obs.controller is not None:
        status["controller"] = obs.controller
    if obs.cluster_id:
        status["clusterId"] = obs.cluster_id
    return status
