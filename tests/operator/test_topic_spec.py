from __future__ import annotations

import pytest

from brook.operator.annotations import deletion_policy, is_paused
from brook.operator.cluster_spec import SpecError
from brook.operator.topic_spec import managing_topic, parse_topic, validate_topic_name


def body(spec, name="orders", **meta):
    return {"metadata": {"name": name, "namespace": "ns", **meta}, "spec": spec}


def test_parse():
    parsed = parse_topic(body({"cluster": "events", "partitions": 12, "replicationFactor": 3,
                               "minInSyncReplicas": 2, "config": {"retention.ms": "1"}}))
    spec = parsed.spec
    assert (spec.cluster, spec.topic_name, spec.partitions, spec.replication_factor) == ("events", "orders", 12, 3)
    assert spec.desired_config() == {"retention.ms": "1", "min.insync.replicas": "2"}
    assert parsed.warnings == ()


def test_defaults_and_topic_name():
    spec = parse_topic(body({"cluster": "c", "topicName": "Orders_V2"})).spec
    assert spec.topic_name == "Orders_V2" and spec.partitions == 1
    assert spec.replication_factor is None and spec.desired_config() == {}


@pytest.mark.parametrize("spec,message", [
    ({}, "spec.cluster must name a KafkaCluster"),
    ({"cluster": "c", "partitions": 0}, "spec.partitions=0"),
    ({"cluster": "c", "replicationFactor": 2, "minInSyncReplicas": 3}, "exceeds spec.replicationFactor=2"),
    ({"cluster": "c", "minInSyncReplicas": 1, "config": {"min.insync.replicas": "1"}}, "through spec.minInSyncReplicas"),
    ({"cluster": "c", "config": {"retention.ms": 10}}, "must be a string"),
    ({"cluster": "c", "topicName": "a b"}, "may contain only"),
])
def test_problems(spec, message):
    with pytest.raises(SpecError, match=message):
        parse_topic(body(spec))


def test_warnings():
    w = parse_topic(body({"cluster": "c", "replicationFactor": 3, "minInSyncReplicas": 3})).warnings
    assert any("stop whenever one replica is down" in x for x in w)
    assert parse_topic(body({"cluster": "c", "replicationFactor": 1})).warnings


def test_topic_names():
    assert validate_topic_name("ok.name_-1") is None
    assert validate_topic_name("..") and validate_topic_name("") and validate_topic_name("x" * 250)


def test_annotations():
    assert is_paused(body({}, annotations={"brook.dev/pause-reconciliation": "True"}))
    assert not is_paused(body({}, annotations={"brook.dev/pause-reconciliation": "no"}))
    assert deletion_policy(body({})) == "delete"
    assert deletion_policy(body({}, annotations={"brook.dev/deletion-policy": "Orphan"})) == "orphan"


def test_managing_topic_oldest_wins():
    a = body({"cluster": "c"}, name="orders", uid="1", creationTimestamp="2026-01-01T00:00:00Z")
    b = body({"cluster": "c", "topicName": "orders"}, name="orders-2", uid="2",
             creationTimestamp="2026-01-02T00:00:00Z")
    other_cluster = body({"cluster": "d"}, name="orders", uid="3", creationTimestamp="2025-01-01T00:00:00Z")
    assert managing_topic(b, [a, b, other_cluster]) is a
    assert managing_topic(a, [a, b, other_cluster]) is None
    deleting = {**a, "metadata": {**a["metadata"], "deletionTimestamp": "2026-01-03T00:00:00Z"}}
    assert managing_topic(b, [deleting, b]) is None
