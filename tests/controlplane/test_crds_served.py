"""CRDs against the real API server: served, defaulted, and invalid specs rejected
with readable messages (schema and CEL rules evaluated by kube-apiserver itself)."""

from __future__ import annotations

import pytest

from .conftest import kafka_cluster, topic

pytestmark = pytest.mark.timeout(120)


def test_crds_are_served_with_short_names_and_columns(harness, namespace):
    resources = harness.api.get("/apis/brook.dev/v1alpha1")["resources"]
    by_name = {r["name"]: r for r in resources}
    assert by_name["kafkaclusters"]["kind"] == "KafkaCluster"
    assert by_name["kafkaclusters"]["shortNames"] == ["bkc"]
    assert by_name["topics"]["shortNames"] == ["btopic"]
    assert {"kafkaclusters/status", "kafkaclusters/scale", "topics/status"} <= set(by_name)
    harness.kubectl("-n", namespace, "apply", "-f", "-", input=(
        "apiVersion: brook.dev/v1alpha1\nkind: Topic\nmetadata: {name: orders}\n"
        "spec: {cluster: nowhere, partitions: 12, replicationFactor: 3, minInSyncReplicas: 2}\n"))
    out = harness.kubectl("-n", namespace, "get", "btopic", "orders").stdout
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "CLUSTER", "PARTITIONS", "REPLICATION", "MINISR", "READY", "AGE"]
    assert row.split()[:5] == ["orders", "nowhere", "12", "3", "2"]
    assert "NAME" in harness.kubectl("get", "brook", "-A").stdout  # the category


def test_defaults_are_applied_by_the_api_server(harness, namespace):
    created = harness.create(kafka_cluster("defaults", namespace, replicas=1))
    assert created["spec"]["replicas"] == 1
    assert created["spec"]["storage"] == {"size": "1Gi", "deleteClaim": False}
    bare = {"apiVersion": "brook.dev/v1alpha1", "kind": "KafkaCluster",
            "metadata": {"name": "bare", "namespace": namespace}}
    assert harness.create(bare)["spec"]["replicas"] == 1
    t = harness.create(topic("t1", namespace, "defaults"))
    assert t["spec"]["partitions"] == 1
    assert "replicationFactor" not in t["spec"]


INVALID = [
    (kafka_cluster("zero", "NS", replicas=0), "spec.replicas must be at least 1"),
    (kafka_cluster("reserved", "NS", config={"node.id": "3"}), "must not set node.id"),
    (kafka_cluster("x" * 41, "NS"), "metadata.name must be at most 40 characters"),
    (topic("isr", "NS", "c", replicationFactor=2, minInSyncReplicas=3),
     "spec.minInSyncReplicas must not exceed spec.replicationFactor"),
    (topic("both", "NS", "c", minInSyncReplicas=1, config={"min.insync.replicas": "1"}),
     "set min.insync.replicas through spec.minInSyncReplicas"),
    (topic("badname", "NS", "c", topicName="no spaces"), "spec.topicName in body should match"),
    (topic("zero", "NS", "c", partitions=0), "spec.partitions in body should be greater than or equal to 1"),
    (topic("unquoted", "NS", "c", config={"retention.ms": 5}), "must be of type string"),
]


@pytest.mark.parametrize("obj,message", INVALID, ids=[o["metadata"]["name"][:12] for o, _ in INVALID])
def test_invalid_specs_are_rejected_with_a_readable_message(harness, namespace, obj, message):
    obj["metadata"]["namespace"] = namespace
    result = harness.kubectl("apply", "-f", "-", input=__import__("json").dumps(obj), check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_transition_rules(harness, namespace):
    harness.create(kafka_cluster("imm", namespace, storage={"size": "2Gi"}))
    harness.create(topic("grow", namespace, "imm", partitions=4))
    cases = [
        ("kafkaclusters", "imm", {"spec": {"storage": {"size": "3Gi"}}}, "spec.storage.size is immutable"),
        ("topics", "grow", {"spec": {"partitions": 3}}, "spec.partitions cannot be decreased"),
        ("topics", "grow", {"spec": {"cluster": "other"}}, "spec.cluster is immutable"),
        ("topics", "grow", {"spec": {"topicName": "renamed"}}, "spec.topicName is immutable"),
    ]
    for plural, name, patch, message in cases:
        result = harness.kubectl("-n", namespace, "patch", plural + ".brook.dev", name, "--type=merge",
                                 "-p", __import__("json").dumps(patch), check=False)
        assert result.returncode != 0 and message in result.stderr, result.stderr
    harness.kubectl("-n", namespace, "patch", "topics.brook.dev", "grow", "--type=merge",
                    "-p", '{"spec": {"partitions": 6}}')


def test_examples_are_accepted_by_the_api_server(harness, namespace):
    from .conftest import ROOT

    for path in sorted((ROOT / "examples").glob("*.yaml")):
        result = harness.kubectl("-n", namespace, "apply", "--dry-run=server", "-f", str(path))
        assert "(server dry run)" in result.stdout, result.stdout
