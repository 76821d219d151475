from __future__ import annotations

import dataclasses

import pytest

from brook.operator.cluster_spec import ClusterSpec, SpecError, parse_cluster


def body(spec=None, name="events", namespace="ns"):
    return {"metadata": {"name": name, "namespace": namespace, "uid": "u"}, "spec": spec or {}}


def test_defaults():
    parsed = parse_cluster(body())
    spec = parsed.spec
    assert spec.replicas == 1 and spec.voters == 1
    assert spec.storage.size == "1Gi" and spec.storage.delete_claim is False
    assert spec.image is None and dict(spec.config) == {}
    assert parsed.warnings == ()


def test_full_spec():
    spec = parse_cluster(body({
        "replicas": 5, "image": "brook:1", "imagePullPolicy": "IfNotPresent",
        "storage": {"size": "10Gi", "storageClassName": "fast", "deleteClaim": True},
        "config": {"default.replication.factor": "3", "min.insync.replicas": "2"},
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": 2147483648}},
        "pod": {"labels": {"team": "a"}, "nodeSelector": {"disk": "ssd"}, "tolerations": [{"key": "k"}],
                "terminationGracePeriodSeconds": 30, "priorityClassName": "high"},
    })).spec
    assert spec.replicas == 5 and spec.voters == 3
    assert spec.storage.storage_class_name == "fast"
    assert dict(spec.requests) == {"cpu": "500m", "memory": "1Gi"}
    assert dict(spec.limits) == {"memory": "2147483648"}
    assert spec.pod.termination_grace_period_seconds == 30
    assert dict(spec.pod.tolerations[0]) == {"key": "k"}


def test_frozen():
    spec = parse_cluster(body()).spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.replicas = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.config["x"] = "y"  # type: ignore[index]
    assert isinstance(spec, ClusterSpec)


@pytest.mark.parametrize("spec,message", [
    ({"replicas": 0}, "spec.replicas=0: must be at least 1"),
    ({"replicas": "3"}, "spec.replicas must be an integer"),
    ({"config": {"node.id": "1", "listeners": "x"}}, "must not set listeners, node.id"),
    ({"config": {"retention.ms": 5}}, "spec.config.retention.ms must be a string"),
    ({"storage": {"size": "ten gigs"}}, "is not a Kubernetes quantity"),
    ({"imagePullPolicy": "Sometimes"}, "spec.imagePullPolicy='Sometimes'"),
    ({"resources": {"requests": {"cpu": "lots"}}}, "spec.resources.requests.cpu='lots'"),
    ({"config": {"min.insync.replicas": "two"}}, "spec.config.min.insync.replicas='two' must be an integer"),
])
def test_problems(spec, message):
    with pytest.raises(SpecError) as err:
        parse_cluster(body(spec))
    assert message in str(err.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SpecError) as err:
        parse_cluster(body({"replicas": 0, "config": {"node.id": "1"}}, name="Bad_Name"))
    assert len(err.value.problems) == 3


def test_name_limit():
    with pytest.raises(SpecError, match="at most 40 characters"):
        parse_cluster(body(name="a" * 41))
    parse_cluster(body(name="a" * 40))


def test_warnings():
    w = parse_cluster(body({"replicas": 1, "config": {"default.replication.factor": "3"}})).warnings
    assert any("default.replication.factor=3 exceeds spec.replicas=1" in x for x in w)
    w = parse_cluster(body({"replicas": 3, "config": {"min.insync.replicas": "2"}})).warnings
    assert any("NOT_ENOUGH_REPLICAS" in x for x in w)  # default RF is 1
    w = parse_cluster(body({"replicas": 3, "config": {"default.replication.factor": "3",
                                                       "min.insync.replicas": "3"}})).warnings
    assert any("any single broker restart" in x for x in w)
    w = parse_cluster(body({"replicas": 3, "config": {"default.replication.factor": "3",
                                                       "min.insync.replicas": "2"}})).warnings
    assert w == ()
    assert parse_cluster(body({"storage": {"deleteClaim": True}})).warnings
