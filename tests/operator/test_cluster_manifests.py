from __future__ import annotations

import re

import pytest

from brook.operator.cluster_manifests import (
    ClusterNames,
    broker_args,
    broker_properties,
    build_cluster_objects,
    build_statefulset,
    cluster_id_for,
    config_hash,
    owner_reference,
)
from brook.operator.cluster_spec import parse_cluster
from brook.operator.config import OperatorConfig

OWNER = {"apiVersion": "brook.dev/v1alpha1", "kind": "KafkaCluster",
         "metadata": {"name": "events", "namespace": "prod", "uid": "2f1c2a84-8a3c-4a0e-9e39-2b8a0a6d2f10"}}
CONFIG = OperatorConfig(broker_image="brook:test")


def spec(**raw):
    return parse_cluster({**OWNER, "spec": raw}).spec


def props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def by_kind(objects):
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def test_names():
    n = ClusterNames("events", "prod")
    assert n.statefulset == "events-broker" and n.pod(2) == "events-broker-2"
    assert n.pod_host(1, "cluster.local") == "events-broker-1.events-brokers.prod.svc.cluster.local"
    assert n.bootstrap_servers("example.org") == "events-bootstrap.prod.svc.example.org:9092"


def test_objects_and_owner_references():
    objects = build_cluster_objects(spec(replicas=3), OWNER, CONFIG)
    assert [o["kind"] for o in objects] == [
        "ServiceAccount", "ConfigMap", "Service", "Service", "PodDisruptionBudget", "StatefulSet"]
    ref = owner_reference(OWNER)
    assert ref == {"apiVersion": "brook.dev/v1alpha1", "kind": "KafkaCluster", "name": "events",
                   "uid": OWNER["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    for o in objects:
        assert o["metadata"]["namespace"] == "prod"
        assert o["metadata"]["ownerReferences"] == [ref]
        assert o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "brook-operator"
        assert o["metadata"]["labels"]["brook.dev/cluster"] == "events"
        assert len(o["metadata"]["name"]) <= 63


def test_broker_properties():
    p = props(broker_properties(spec(replicas=5, config={"log.retention.hours": "1",
                                                          "offsets.topic.replication.factor": "2"}),
                                OWNER, CONFIG))
    voters = p["controller.quorum.voters"].split(",")
    assert voters == [f"{i}@events-broker-{i}.events-brokers.prod.svc.cluster.local:9093" for i in range(3)]
    assert p["log.dirs"] == "/var/lib/brook/data"
    assert p["log.retention.hours"] == "1"
    assert p["offsets.topic.replication.factor"] == "2"  # the user's value wins
    assert p["transaction.state.log.replication.factor"] == "3"
    assert p["cluster.id"] == cluster_id_for(OWNER["metadata"]["uid"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", p["cluster.id"])
    single = props(broker_properties(spec(replicas=1), OWNER, CONFIG))
    assert single["offsets.topic.replication.factor"] == "1"
    assert single["transaction.state.log.min.isr"] == "1"


def test_properties_escape_newlines():
    text = broker_properties(spec(config={"x.y": "a\nb=c"}), OWNER, CONFIG)
    assert "x.y=a\\nb=c" in text.splitlines()


def test_broker_args_are_per_pod_through_env():
    args = broker_args(spec(), CONFIG)
    assert args[:3] == ["broker", "--config", "/etc/brook/server.properties"]
    overrides = dict(a.split("=", 1) for a in args[3:] if a != "--override")
    assert overrides == {
        "node.id": "$(BROOK_NODE_ID)",
        "listeners": "PLAINTEXT://$(POD_IP):9092,CONTROLLER://$(POD_IP):9093",
        "advertised.listeners": "PLAINTEXT://$(POD_NAME).events-brokers.$(POD_NAMESPACE).svc.cluster.local:9092",
        "brook.metrics.listener": "$(POD_IP):9404",
    }


def test_services_and_pdb():
    objects = by_kind(build_cluster_objects(spec(replicas=3), OWNER, CONFIG))
    headless = objects[("Service", "events-brokers")]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert {p["name"]: p["port"] for p in headless["ports"]} == {"kafka": 9092, "controller": 9093, "metrics": 9404}
    bootstrap = objects[("Service", "events-bootstrap")]["spec"]
    assert bootstrap["type"] == "ClusterIP" and [p["port"] for p in bootstrap["ports"]] == [9092]
    selector = {"app.kubernetes.io/name": "brook", "app.kubernetes.io/instance": "events",
                "app.kubernetes.io/component": "broker"}
    assert headless["selector"] == bootstrap["selector"] == selector
    pdb = objects[("PodDisruptionBudget", "events-broker")]["spec"]
    assert pdb == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}


def test_statefulset():
    s = spec(replicas=3, storage={"size": "10Gi", "storageClassName": "fast"},
             resources={"requests": {"cpu": "1"}}, pod={"labels": {"team": "a"}, "annotations": {"x": "y"},
                                                        "nodeSelector": {"disk": "ssd"}})
    sts = build_statefulset(s, OWNER, CONFIG)["spec"]
    assert sts["replicas"] == 3 and sts["serviceName"] == "events-brokers"
    assert sts["podManagementPolicy"] == "Parallel"
    assert sts["updateStrategy"] == {"type": "OnDelete"}
    assert sts["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "events"
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    claim = sts["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}},
                             "storageClassName": "fast"}
    template = sts["template"]
    assert template["metadata"]["labels"]["team"] == "a"
    assert template["metadata"]["labels"]["app.kubernetes.io/component"] == "broker"
    assert template["metadata"]["annotations"]["x"] == "y"
    assert template["metadata"]["annotations"]["brook.dev/config-hash"] == config_hash(
        broker_properties(s, OWNER, CONFIG))
    pod = template["spec"]
    assert pod["serviceAccountName"] == "events-broker" and pod["automountServiceAccountToken"] is False
    assert pod["nodeSelector"] == {"disk": "ssd"}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["fsGroup"] == 10001
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    (c,) = pod["containers"]
    assert c["image"] == "brook:test" and c["command"] == ["brook"]
    assert c["resources"] == {"requests": {"cpu": "1"}}
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    env = {e["name"]: e for e in c["env"]}
    assert env["BROOK_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.labels['apps.kubernetes.io/pod-index']"
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {"config": "/etc/brook", "data": "/var/lib/brook", "tmp": "/tmp"}
    assert c["readinessProbe"]["tcpSocket"] == {"port": "kafka"}
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 300


def test_config_change_changes_hash_and_delete_claim_policy():
    a = build_statefulset(spec(), OWNER, CONFIG)["spec"]["template"]["metadata"]["annotations"]
    b = build_statefulset(spec(config={"log.retention.hours": "2"}), OWNER, CONFIG)["spec"]["template"]
    assert a["brook.dev/config-hash"] != b["metadata"]["annotations"]["brook.dev/config-hash"]
    d = build_statefulset(spec(storage={"deleteClaim": True}), OWNER, CONFIG)["spec"]
    assert d["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Delete", "whenScaled": "Delete"}


def test_user_affinity_replaces_default_and_image_override():
    s = spec(image="mine:2", imagePullPolicy="Always", pod={"affinity": {"nodeAffinity": {"x": 1}}})
    pod = build_statefulset(s, OWNER, CONFIG)["spec"]["template"]["spec"]
    assert pod["affinity"] == {"nodeAffinity": {"x": 1}}
    assert pod["containers"][0]["image"] == "mine:2"
    assert pod["containers"][0]["imagePullPolicy"] == "Always"


def test_cluster_domain():
    p = props(broker_properties(spec(replicas=1), OWNER, OperatorConfig(cluster_domain="corp.example")))
    assert p["controller.quorum.voters"].endswith("events-brokers.prod.svc.corp.example:9093")


@pytest.mark.parametrize("uid", ["not-a-uuid", "2f1c2a84-8a3c-4a0e-9e39-2b8a0a6d2f10"])
def test_cluster_id_is_stable(uid):
    assert cluster_id_for(uid) == cluster_id_for(uid)
    assert len(cluster_id_for(uid)) == 22


def test_quorum_voters_are_fixed_once_the_cluster_exists():
    created = props(broker_properties(spec(replicas=1), OWNER, CONFIG))
    grown = props(broker_properties(spec(replicas=3), OWNER, CONFIG, current=created))
    assert grown["controller.quorum.voters"] == created["controller.quorum.voters"]
    assert grown["offsets.topic.replication.factor"] == "1"  # from the voters: no restart on growth
    assert grown == created
    fresh = props(broker_properties(spec(replicas=3), OWNER, CONFIG))
    assert len(fresh["controller.quorum.voters"].split(",")) == 3


def test_parse_properties_round_trip():
    from brook.operator.cluster_manifests import parse_properties, voter_ids

    p = parse_properties(broker_properties(spec(replicas=4), OWNER, CONFIG))
    assert voter_ids(p["controller.quorum.voters"]) == [0, 1, 2]
