from __future__ import annotations

from brook.operator.topic_plan import (
    ConfigValue,
    ObservedTopic,
    TopicOutcome,
    plan_topic,
    topic_status,
)
from brook.operator.topic_spec import parse_topic


def spec(**raw):
    return parse_topic({"metadata": {"name": "orders", "namespace": "ns"},
                        "spec": {"cluster": "c", **raw}}).spec


def observed(partitions=3, rf=1, **configs):
    values = {k.replace("_", "."): ConfigValue(v, "DYNAMIC_TOPIC_CONFIG") for k, v in configs.items()}
    values.setdefault("cleanup.policy", ConfigValue("delete", "DEFAULT_CONFIG"))
    return ObservedTopic("orders", partitions, rf, values)


def test_create():
    plan = plan_topic(spec(partitions=6, replicationFactor=3, minInSyncReplicas=2,
                           config={"retention.ms": "1"}), None)
    assert plan.create and plan.partitions == 6 and plan.replication_factor == 3
    assert dict(plan.set_configs) == {"retention.ms": "1", "min.insync.replicas": "2"}
    assert plan.add_partitions is None and plan.changes
    assert plan.describe()[0] == "create with 6 partitions, replication factor 3"


def test_in_sync_means_no_changes():
    plan = plan_topic(spec(partitions=3, config={"retention.ms": "1"}), observed(retention_ms="1"))
    assert not plan.changes and plan.refusals == ()


def test_value_equal_to_default_counts_as_set():
    plan = plan_topic(spec(partitions=3, config={"cleanup.policy": "delete"}), observed())
    assert not plan.changes


def test_grow_set_and_reset():
    plan = plan_topic(spec(partitions=5, config={"retention.ms": "2"}),
                      observed(retention_ms="1", segment_bytes="100"))
    assert plan.add_partitions == 5
    assert dict(plan.set_configs) == {"retention.ms": "2"}
    assert plan.delete_configs == ("segment.bytes",)
    assert plan.describe() == ["grow to 5 partitions", "set retention.ms=2", "reset segment.bytes"]


def test_list_values_compare_without_spaces():
    plan = plan_topic(spec(partitions=3, config={"cleanup.policy": "compact, delete"}),
                      observed(cleanup_policy="compact,delete"))
    assert not plan.changes


def test_refusals():
    plan = plan_topic(spec(partitions=2, replicationFactor=3, config={"retention.ms": "5"}), observed(partitions=4))
    reasons = [r.reason for r in plan.refusals]
    assert reasons == ["PartitionsDecreaseRefused", "ReplicationFactorChangeUnsupported"]
    assert "4 partitions" in plan.refusals[0].message
    assert dict(plan.set_configs) == {"retention.ms": "5"}  # the rest still applies
    assert plan.add_partitions is None


def test_status():
    body = {"metadata": {"name": "orders", "generation": 4}, "status": {}}
    s = spec(partitions=3)
    ok = topic_status(body, s, TopicOutcome(observed=observed(), plan=plan_topic(s, observed())))
    assert ok["observedGeneration"] == 4 and ok["partitions"] == 3 and ok["replicationFactor"] == 1
    assert ok["conditions"][0]["reason"] == "TopicReady"
    refused = topic_status(body, spec(partitions=2), TopicOutcome(
        observed=observed(), plan=plan_topic(spec(partitions=2), observed())))
    assert refused["conditions"][0]["status"] == "False"
    assert refused["conditions"][0]["reason"] == "PartitionsDecreaseRefused"
    paused = topic_status(body, s, TopicOutcome(paused=True, warnings=("w",)))
    assert [c["type"] for c in paused["conditions"]] == ["Ready", "Warning", "ReconciliationPaused"]


def test_replication_factor_change_plans_a_reassignment():
    obs = ObservedTopic("orders", 2, 1, {}, assignments={0: (0,), 1: (1,)}, brokers=(0, 1, 2))
    plan = plan_topic(spec(partitions=2, replicationFactor=3), obs)
    assert plan.refusals == () and plan.changes
    assert all(len(r) == 3 for r in plan.reassign.values())
    assert plan.describe() == ["reassign 2 partition(s) to replication factor 3"]
    body = {"metadata": {"name": "orders", "generation": 2}, "status": {}}
    status = topic_status(body, spec(), TopicOutcome(observed=obs, plan=plan))
    assert status["conditions"][0]["reason"] == "ReplicationFactorChanging"


def test_replication_factor_change_in_progress_and_impossible():
    moving = ObservedTopic("orders", 1, 3, {}, assignments={0: (0, 1, 2)}, brokers=(0, 1, 2),
                           reassigning={0: (0, 1, 2)})
    plan = plan_topic(spec(partitions=1, replicationFactor=3), moving)
    assert not plan.reassign and plan.in_progress and not plan.refusals
    body = {"metadata": {"name": "orders", "generation": 2}, "status": {}}
    ready = topic_status(body, spec(), TopicOutcome(observed=moving, plan=plan))["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "ReplicationFactorChanging")
    # Target and progress: 2 of 3 partitions at RF 2, the third moving (0,1,2 -> 1,2).
    three = ObservedTopic("orders", 3, 2, {}, assignments={0: (0, 1), 1: (1, 2), 2: (0, 1, 2)},
                          brokers=(0, 1, 2), reassigning={2: (1, 2)})
    status = topic_status(body, spec(partitions=3, replicationFactor=2),
                          TopicOutcome(observed=three, plan=plan_topic(spec(partitions=3, replicationFactor=2), three)))
    assert status["reassignment"] == {"targetReplicationFactor": 2, "partitionsDone": 2, "partitions": 3}
    assert status["conditions"][0]["message"] == \
        "replication factor of topic 'orders' changing to 2: 2/3 partition(s) done, 1 being reassigned"
    done = ObservedTopic("orders", 3, 2, {}, assignments={0: (0, 1), 1: (1, 2), 2: (1, 2)}, brokers=(0, 1, 2))
    status = topic_status(body, spec(partitions=3, replicationFactor=2), TopicOutcome(observed=done))
    assert "reassignment" not in status and status["conditions"][0]["reason"] == "TopicReady"
    too_many = ObservedTopic("orders", 1, 1, {}, assignments={0: (0,)}, brokers=(0, 1, 2))
    plan = plan_topic(spec(partitions=1, replicationFactor=4), too_many)
    assert [r.reason for r in plan.refusals] == ["InvalidReplicationFactor"]


def test_min_insync_above_the_actual_replication_factor_is_refused():
    # replicationFactor not declared: the topic's own factor (2) is what counts.
    plan = plan_topic(spec(partitions=3, minInSyncReplicas=3), observed(rf=2, min_insync_replicas="1"))
    assert [r.reason for r in plan.refusals] == ["MinInSyncReplicasTooHigh"]
    assert "spec.minInSyncReplicas=3 exceeds the replication factor 2" in plan.refusals[0].message
    assert "min.insync.replicas" not in plan.set_configs and plan.delete_configs == ()  # left as it is
    ok = plan_topic(spec(partitions=3, minInSyncReplicas=2), observed(rf=2, min_insync_replicas="1"))
    assert ok.refusals == () and dict(ok.set_configs) == {"min.insync.replicas": "2"}


def test_the_operators_reassignment_throttle_is_not_reset():
    plan = plan_topic(spec(partitions=3), observed(leader_replication_throttled_replicas="*",
                                                   follower_replication_throttled_replicas="*", retention_ms="5"))
    assert plan.delete_configs == ("retention.ms",)
