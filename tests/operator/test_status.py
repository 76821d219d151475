from __future__ import annotations

from datetime import UTC, datetime

from brook.operator.cluster_status import ClusterObservation, compute_cluster_status
from brook.operator.conditions import Condition, paused_status, render_conditions

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)


def cluster(replicas=3, generation=2, status=None):
    return {"metadata": {"name": "events", "namespace": "prod", "generation": generation},
            "spec": {"replicas": replicas}, "status": status or {}}


def sts(ready=3, replicas=3, updated=3, generation=1, observed=1, current="r1", update="r1"):
    return {"metadata": {"generation": generation},
            "status": {"readyReplicas": ready, "replicas": replicas, "updatedReplicas": updated,
                       "observedGeneration": observed, "currentRevision": current, "updateRevision": update}}


def ready_of(status):
    (ready,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    return ready


def test_ready():
    s = compute_cluster_status(cluster(), ClusterObservation(statefulset=sts(), controller=1, cluster_id="abc"),
                               "cluster.local", T0)
    assert ready_of(s) == {"type": "Ready", "status": "True", "reason": "BrokersReady",
                           "message": "3/3 brokers ready", "lastTransitionTime": "2026-01-01T00:00:00Z",
                           "observedGeneration": 2}
    assert s["observedGeneration"] == 2 and s["readyReplicas"] == 3 and s["replicas"] == 3
    assert s["controller"] == 1 and s["clusterId"] == "abc"
    assert s["bootstrapServers"] == "events-bootstrap.prod.svc.cluster.local:9092"
    assert s["selector"].startswith("app.kubernetes.io/name=brook,")


def test_not_ready_reasons():
    cases = [
        (ClusterObservation(), "Creating"),
        (ClusterObservation(statefulset=sts(ready=1)), "BrokersNotReady"),
        (ClusterObservation(statefulset=sts(generation=2, observed=1)), "Progressing"),
        (ClusterObservation(statefulset=sts(updated=1, current="r1", update="r2")), "RollingUpdate"),
        (ClusterObservation(statefulset=sts(ready=4, replicas=4)), "ScalingDown"),
        (ClusterObservation(statefulset=sts(ready=2, replicas=2)), "ScalingUp"),
        (ClusterObservation(statefulset=sts(), apply_error="quota exceeded"), "ApplyFailed"),
        (ClusterObservation(statefulset=sts(), spec_error="bad"), "InvalidSpec"),
    ]
    for obs, reason in cases:
        ready = ready_of(compute_cluster_status(cluster(), obs, "cluster.local", T0))
        assert (ready["status"], ready["reason"]) == ("False", reason)


def test_activity_says_what_the_operator_is_doing():
    cases = [
        (ClusterObservation(statefulset=sts()), "Idle"),
        (ClusterObservation(), "Creating"),
        (ClusterObservation(statefulset=sts(ready=2, replicas=2)), "Scaling"),
        (ClusterObservation(statefulset=sts(), quorum_progress="scaling up: broker 2 joined"), "Scaling"),
        (ClusterObservation(statefulset=sts(), scale_progress="draining brokers 3, 4"), "Draining"),
        (ClusterObservation(statefulset=sts(updated=1, current="r1", update="r2")), "Rolling"),
        (ClusterObservation(statefulset=sts(), balance_pending=True), "Reassigning"),
        (ClusterObservation(statefulset=sts(), scale_refusal="topics orders"), "Blocked"),
        (ClusterObservation(statefulset=sts(ready=2, updated=1, current="r1", update="r2"),
                            roll_halted="events-broker-2"), "Blocked"),
    ]
    for obs, activity in cases:
        assert compute_cluster_status(cluster(), obs, "cluster.local", T0)["activity"] == activity, obs


def test_new_voter_shows_as_scaling_up_with_the_voters():
    obs = ClusterObservation(statefulset=sts(), voters=[2, 0, 1],
                             quorum_progress="scaling up: broker 2 joined the metadata quorum's voters (now 0, 1, 2)")
    s = compute_cluster_status(cluster(), obs, "cluster.local", T0)
    assert (ready_of(s)["reason"], s["voters"]) == ("ScalingUp", [0, 1, 2])
    assert "broker 2 joined" in ready_of(s)["message"]
    assert "voters" not in compute_cluster_status(cluster(), ClusterObservation(statefulset=sts()), "d", T0)


def test_transition_time_kept_while_status_unchanged():
    first = compute_cluster_status(cluster(), ClusterObservation(statefulset=sts(ready=1)), "d", T0)
    second = compute_cluster_status(cluster(status=first), ClusterObservation(statefulset=sts(ready=2)), "d", T1)
    assert ready_of(second)["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert ready_of(second)["message"] == "2/3 brokers ready"
    third = compute_cluster_status(cluster(status=second), ClusterObservation(statefulset=sts()), "d", T1)
    assert ready_of(third)["lastTransitionTime"] == "2026-01-02T00:00:00Z"


def test_warnings_condition():
    s = compute_cluster_status(cluster(), ClusterObservation(statefulset=sts(), warnings=("a", "b")), "d", T0)
    (w,) = [c for c in s["conditions"] if c["type"] == "Warning"]
    assert w["status"] == "True" and w["message"] == "a; b"


def test_paused_status_keeps_generation_and_ready():
    before = compute_cluster_status(cluster(generation=2), ClusterObservation(statefulset=sts()), "d", T0)
    body = cluster(generation=3, status=before)
    paused = paused_status(body, T1)
    assert paused["observedGeneration"] == 2
    types = {c["type"]: c for c in paused["conditions"]}
    assert types["Ready"] == ready_of(before)
    assert types["ReconciliationPaused"]["status"] == "True"
    assert (before["activity"], paused["activity"]) == ("Idle", "Paused")
    again = paused_status({**body, "status": paused}, datetime(2026, 1, 3, tzinfo=UTC))
    assert [c["type"] for c in again["conditions"]].count("ReconciliationPaused") == 1
    assert {c["type"]: c for c in again["conditions"]}["ReconciliationPaused"]["lastTransitionTime"] == \
        "2026-01-02T00:00:00Z"


def test_render_truncates_long_messages():
    (c,) = render_conditions([Condition.false("Ready", "X", "m" * 40000)], None, 1, T0)
    assert len(c["message"]) == 32768


def test_scale_down_refusal_wins_over_progress():
    s = compute_cluster_status(cluster(replicas=2), ClusterObservation(statefulset=sts(), scale_refusal="no"),
                               "d", T0)
    assert (ready_of(s)["reason"], ready_of(s)["message"]) == ("ScaleDownRefused", "no")


def test_halted_roll_names_the_broker():
    obs = ClusterObservation(statefulset=sts(ready=2, updated=1, current="r1", update="r2"),
                             roll_note="roll halted: events-broker-2 did not become ready within 60s",
                             roll_halted="events-broker-2")
    ready = ready_of(compute_cluster_status(cluster(), obs, "cluster.local", T0))
    assert (ready["status"], ready["reason"]) == ("False", "RollHalted")
    assert "events-broker-2" in ready["message"]


def test_topics_at_risk_condition():
    from brook.operator.cluster_rolling import PartitionState
    from brook.operator.cluster_status import topic_risks

    states = [PartitionState("orders-0", (0, 1, 2), (0, 1, 2), 2),
              PartitionState("logs-0", (0,), (0,), 1),
              PartitionState("tight-0", (0, 1), (0, 1), 2), PartitionState("tight-1", (1, 2), (1, 2), 2),
              PartitionState("__consumer_offsets-0", (0,), (0,), 1)]
    risks = topic_risks(states)
    assert risks == ("replication factor 1 (a lost broker loses their data): logs",
                     "replication factor not above min.insync.replicas (acks=all writes stop while any "
                     "replica is down, so no broker may fail or restart): tight (RF 2, min.insync.replicas 2)")
    assert topic_risks(states[:1]) == ()

    def risk_condition(status):
        return [c for c in status["conditions"] if c["type"] == "TopicsAtRisk"]

    s = compute_cluster_status(cluster(), ClusterObservation(statefulset=sts(), topic_risks=risks), "cluster.local", T0)
    (cond,) = risk_condition(s)
    assert cond["status"] == "True" and "logs" in cond["message"] and "tight" in cond["message"]
    # Not asked this time (a StatefulSet event): the last verdict stays.
    again = compute_cluster_status(cluster(status=s), ClusterObservation(statefulset=sts()), "cluster.local", T0)
    assert risk_condition(again) == [cond]
    fine = compute_cluster_status(cluster(status=s), ClusterObservation(statefulset=sts(), topic_risks=()),
                                  "cluster.local", T0)
    assert risk_condition(fine)[0]["status"] == "False"


def test_reconcile_metrics_count_results_and_durations():
    import pytest

    from brook.operator.metrics import REGISTRY, reconciling

    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    ok = value("brook_operator_reconciles_total", kind="Probe", result="success")
    with reconciling("Probe"):
        pass
    with pytest.raises(RuntimeError), reconciling("Probe"):
        raise RuntimeError("apply failed")
    assert value("brook_operator_reconciles_total", kind="Probe", result="success") == ok + 1
    assert value("brook_operator_reconciles_total", kind="Probe", result="failure") == 1
    assert value("brook_operator_reconcile_duration_seconds_count", kind="Probe") == 2
