"""Topic against the real control plane and a real broker (run by the pod runner):
the Kafka Admin API path end to end, checked with an independent Kafka client."""

from __future__ import annotations

import signal
import time

import pytest
from kubeapi import wait_for

from .conftest import ROOT, kafka_cluster, table, topic

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def cluster(harness, namespace):
    harness.create(kafka_cluster("events", namespace, replicas=1))
    harness.wait_condition(harness.custom(namespace, "kafkaclusters", "events"), "True",
                           timeout=90, namespace=namespace)
    return f"events-bootstrap.{namespace}.svc.cluster.local:9092"


def test_topic_lifecycle_with_produce_and_consume(harness, namespace, cluster):
    api = harness.api
    harness.create(topic("orders", namespace, "events", partitions=3, minInSyncReplicas=1,
                         config={"retention.ms": "604800000", "cleanup.policy": "delete"}))
    path = harness.custom(namespace, "topics", "orders")
    obj = harness.wait_condition(path, "True", "TopicReady", namespace=namespace)
    assert obj["status"]["partitions"] == 3 and obj["status"]["replicationFactor"] == 1
    assert obj["status"]["topicName"] == "orders"

    described = harness.kafka(namespace, cluster, "describe", "orders")
    assert described["partitions"] == 3
    assert described["configs"]["retention.ms"] == "604800000"
    assert described["configs"]["min.insync.replicas"] == "1"

    # The cluster's status names the active controller, asked through the Admin API.
    kc = wait_for(lambda: (o := api.get(harness.custom(namespace, "kafkaclusters", "events")))
                  ["status"].get("controller") is not None and o, 30, "status.controller")
    assert kc["status"]["controller"] == 0 and kc["status"]["clusterId"]
    (row,) = table(harness.kubectl("-n", namespace, "get", "bkc", "events").stdout)
    assert [row[c] for c in ("DESIRED", "READY-REPLICAS", "CONTROLLER", "READY", "ACTIVITY")] == \
        ["1", "1", "0", "True", "Idle"]

    # Applications use the bootstrap Service name, nothing else.
    assert harness.kafka(namespace, "events-bootstrap:9092", "produce", "orders", "20") == {"produced": 20}
    values = harness.kafka(namespace, "events-bootstrap:9092", "consume", "orders", "20")["values"]
    assert values == sorted(f"value-{i}" for i in range(20))

    # Grow partitions and change config; drop a config to reset it to the default.
    api.merge_patch(path, {"spec": {"partitions": 5, "config": {"retention.ms": "3600000",
                                                                 "cleanup.policy": None}}})
    obj = harness.wait_condition(path, "True", "TopicReady", namespace=namespace)
    assert obj["status"]["partitions"] == 5
    described = harness.kafka(namespace, cluster, "describe", "orders")
    assert described["partitions"] == 5 and described["configs"]["retention.ms"] == "3600000"

    # Deleting the Topic deletes the Kafka topic (behind the finalizer).
    assert "brook.dev/finalizer" in api.get(path)["metadata"]["finalizers"]
    api.delete(path)
    wait_for(lambda: api.get_or_none(path) is None, 30, "Topic resource gone")
    assert "orders" not in harness.kafka(namespace, cluster, "topics")["topics"]


def test_refusals_become_conditions_with_the_brokers_message(harness, namespace, cluster):
    api = harness.api
    # The cluster refuses a config value: Ready=False carrying the broker's words.
    harness.create(topic("badcfg", namespace, "events", config={"retention.ms": "soon"}))
    obj = harness.wait_condition(harness.custom(namespace, "topics", "badcfg"), "False", "InvalidConfig",
                                 namespace=namespace)
    assert "retention.ms" in harness.condition(obj)["message"]

    # More replicas than brokers: refused by the cluster at creation.
    harness.create(topic("rf3", namespace, "events", replicationFactor=3))
    obj = harness.wait_condition(harness.custom(namespace, "topics", "rf3"), "False",
                                 "InvalidReplicationFactor", namespace=namespace)
    assert "3" in harness.condition(obj)["message"]

    # A topic that already has more partitions than declared (adopted): refused,
    # never "fixed"; the rest of the spec is still applied.
    harness.kafka(namespace, cluster, "create", "legacy", "6")
    harness.create(topic("legacy", namespace, "events", partitions=2, config={"retention.ms": "1000"}))
    obj = harness.wait_condition(harness.custom(namespace, "topics", "legacy"), "False",
                                 "PartitionsDecreaseRefused", namespace=namespace)
    assert "Kafka cannot remove partitions" in harness.condition(obj)["message"]
    described = harness.kafka(namespace, cluster, "describe", "legacy")
    assert described["partitions"] == 6 and described["configs"]["retention.ms"] == "1000"

    # Two Topic resources for one Kafka topic: the younger one is told so.
    harness.create({**topic("legacy-twin", namespace, "events", partitions=6),
                    "spec": {"cluster": "events", "topicName": "legacy", "partitions": 6}})
    harness.wait_condition(harness.custom(namespace, "topics", "legacy-twin"), "False",
                           "TopicAlreadyManaged", namespace=namespace)

    # Topics no Topic resource names are left alone, even by a deleted twin.
    harness.kafka(namespace, cluster, "create", "unmanaged", "1")
    api.delete(harness.custom(namespace, "topics", "legacy-twin"))
    wait_for(lambda: api.get_or_none(harness.custom(namespace, "topics", "legacy-twin")) is None, 30,
             "twin deleted")
    topics = harness.kafka(namespace, cluster, "topics")["topics"]
    assert "unmanaged" in topics and "legacy" in topics


def test_pause_stops_changes(harness, namespace, cluster):
    api = harness.api
    path = harness.custom(namespace, "topics", "paused")
    harness.create(topic("paused", namespace, "events", partitions=1))
    harness.wait_condition(path, "True", namespace=namespace)
    api.merge_patch(path, {"metadata": {"annotations": {"brook.dev/pause-reconciliation": "true"}},
                           "spec": {"partitions": 4}})
    wait_for(lambda: harness.condition(api.get(path), "ReconciliationPaused").get("status") == "True",
             30, "paused condition")
    time.sleep(5)  # > two resync periods
    assert harness.kafka(namespace, cluster, "describe", "paused")["partitions"] == 1
    api.merge_patch(path, {"metadata": {"annotations": {"brook.dev/pause-reconciliation": None}}})
    harness.wait_condition(path, "True", namespace=namespace)
    assert harness.kafka(namespace, cluster, "describe", "paused")["partitions"] == 4


def test_deletion_never_stuck(harness, namespace):
    """The escapes of the Topic finalizer (docs/operator.md, "Deleting topics")."""
    api = harness.api
    # A cluster whose brokers can never run (no node matches): unreachable.
    harness.create(kafka_cluster("ghost", namespace, replicas=1, pod={"nodeSelector": {"no-such": "node"}}))
    harness.create(topic("stuck", namespace, "ghost"))
    harness.create(topic("orphaned", namespace, "ghost"))
    harness.create(topic("nocluster", namespace, "missing"))
    harness.wait_condition(harness.custom(namespace, "topics", "stuck"), "False", "ClusterNotReady",
                           namespace=namespace)
    harness.wait_condition(harness.custom(namespace, "topics", "nocluster"), "False", "ClusterNotFound",
                           namespace=namespace)

    # 1. No such cluster: released at once.
    api.delete(harness.custom(namespace, "topics", "nocluster"))
    wait_for(lambda: api.get_or_none(harness.custom(namespace, "topics", "nocluster")) is None, 40,
             "Topic of a missing cluster released")
    # 2. deletion-policy=orphan: released at once, topic left in Kafka.
    api.merge_patch(harness.custom(namespace, "topics", "orphaned"),
                    {"metadata": {"annotations": {"brook.dev/deletion-policy": "orphan"}}})
    api.delete(harness.custom(namespace, "topics", "orphaned"))
    wait_for(lambda: api.get_or_none(harness.custom(namespace, "topics", "orphaned")) is None, 40,
             "orphaned Topic released")
    # 3. Unreachable: retried, status says why, released after the timeout (6 s here).
    started = time.monotonic()
    api.delete(harness.custom(namespace, "topics", "stuck"))
    wait_for(lambda: api.get_or_none(harness.custom(namespace, "topics", "stuck")) is None, 60,
             "Topic of an unreachable cluster released after the timeout")
    assert time.monotonic() - started >= 5
    events = api.items(f"/api/v1/namespaces/{namespace}/events")
    assert any(e.get("reason") == "TopicDeletionAbandoned" for e in events), [e.get("reason") for e in events]


def test_deletion_released_when_ready_brokers_stop_answering(harness, namespace, cluster):
    """The real unreachable path: the cluster reports a ready broker, but the broker is
    hung (frozen; its tcpSocket probes still pass), so the Admin API call times out."""
    api = harness.api
    path = harness.custom(namespace, "topics", "hung")
    harness.create(topic("hung", namespace, "events", partitions=1))
    harness.wait_condition(path, "True", "TopicReady", namespace=namespace)
    assert harness.runner.signal_pod(namespace, "events-broker-0", signal.SIGSTOP) == 1
    try:
        started = time.monotonic()
        api.delete(path)

        def unreachable() -> dict | None:
            cond = harness.condition(api.get_or_none(path), "Ready")
            return cond if cond.get("reason") == "ClusterUnreachable" else None

        cond = wait_for(unreachable, 30, "the deleting Topic's Ready condition says ClusterUnreachable")
        assert cond["status"] == "False"
        # The Admin API's own failure, not the shortcut for a cluster without ready brokers.
        assert "deleting the Kafka topic" in cond["message"] and "no ready brokers" not in cond["message"]
        assert "brook.dev/deletion-policy=orphan" in cond["message"]  # the escape, named
        cluster_obj = api.get(harness.custom(namespace, "kafkaclusters", "events"))
        assert cluster_obj["status"]["readyReplicas"] == 1
        # Released after BROOK_TOPIC_DELETE_TIMEOUT_SECONDS (6 s here), with a warning.
        wait_for(lambda: api.get_or_none(path) is None, 60, "Topic of a hung cluster released after the timeout")
        assert time.monotonic() - started >= 5
        events = api.items(f"/api/v1/namespaces/{namespace}/events")
        assert any(e.get("reason") == "TopicDeletionAbandoned" and e["involvedObject"]["name"] == "hung"
                   for e in events), [e.get("reason") for e in events]
    finally:
        harness.runner.signal_pod(namespace, "events-broker-0", signal.SIGCONT)
    # As documented: the Kafka topic is left in place.
    assert harness.kafka(namespace, cluster, "describe", "hung")["partitions"] == 1


def test_design_example_replicated(harness, namespace):
    """DESIGN.md's cluster and topic, from examples/: three brokers, RF 3, min ISR 2."""
    api = harness.api
    for name in ("kafkacluster.yaml", "topic.yaml"):
        harness.kubectl("-n", namespace, "apply", "-f", str(ROOT / "examples" / name))
    harness.wait_condition(harness.custom(namespace, "kafkaclusters", "events"), "True", "BrokersReady",
                           timeout=120, namespace=namespace)
    obj = harness.wait_condition(harness.custom(namespace, "topics", "orders"), "True", "TopicReady",
                                 timeout=60, namespace=namespace)
    assert obj["status"]["partitions"] == 12 and obj["status"]["replicationFactor"] == 3
    described = harness.kafka(namespace, "events-bootstrap:9092", "describe", "orders")
    assert described["partitions"] == 12 and described["replication"] == 3
    assert described["configs"]["min.insync.replicas"] == "2"
    assert harness.kafka(namespace, "events-bootstrap:9092", "produce", "orders", "50") == {"produced": 50}
    values = harness.kafka(namespace, "events-bootstrap:9092", "consume", "orders", "50")["values"]
    assert len(values) == 50
    kc = api.get(harness.custom(namespace, "kafkaclusters", "events"))
    wait_for(lambda: api.get(harness.custom(namespace, "kafkaclusters", "events"))["status"].get("controller")
             in (0, 1, 2), 30, "the active controller is one of the voters")
    assert kc["status"]["readyReplicas"] == 3


def test_replication_factor_change_through_reassignment(harness, namespace):
    api = harness.api
    harness.create(kafka_cluster("events", namespace, replicas=3))
    harness.wait_condition(harness.custom(namespace, "kafkaclusters", "events"), "True", timeout=120,
                           namespace=namespace)
    path = harness.custom(namespace, "topics", "moving")
    harness.create(topic("moving", namespace, "events", partitions=3, replicationFactor=1))
    obj = harness.wait_condition(path, "True", namespace=namespace)
    assert obj["status"]["replicationFactor"] == 1
    harness.kafka(namespace, "events-bootstrap:9092", "produce", "moving", "30")

    api.merge_patch(path, {"spec": {"replicationFactor": 3}})
    obj = harness.wait_condition(path, "True", "TopicReady", timeout=90, namespace=namespace)
    assert obj["status"]["replicationFactor"] == 3
    assert harness.kafka(namespace, "events-bootstrap:9092", "describe", "moving")["replication"] == 3
    events = [(e.get("reason"), e.get("message", "")) for e in api.items(f"/api/v1/namespaces/{namespace}/events")
              if e["involvedObject"].get("kind") == "Topic"]
    assert ("TopicChanged", "reassign 3 partition(s) to replication factor 3") in events, events
    assert len(harness.kafka(namespace, "events-bootstrap:9092", "consume", "moving", "30")["values"]) == 30

    # More replicas than brokers: refused with the reason, nothing moves.
    api.merge_patch(path, {"spec": {"replicationFactor": 4}})
    obj = harness.wait_condition(path, "False", "InvalidReplicationFactor", namespace=namespace)
    assert "needs 4 brokers; the cluster has 3" in harness.condition(obj)["message"]
