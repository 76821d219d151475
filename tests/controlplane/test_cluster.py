"""KafkaCluster against the real control plane: the operator's objects field by
field, Kubernetes' own StatefulSet/PV/GC controllers acting on them, brokers run
by the pod runner, and the status the operator reports."""

from __future__ import annotations

import json

import pytest
from kubeapi import wait_for

from .conftest import BROOK, kafka_cluster, table

pytestmark = pytest.mark.timeout(180)


def _managers(obj: dict) -> set[str]:
    return {m["manager"] for m in obj["metadata"].get("managedFields") or [] if m.get("operation") == "Apply"}


def test_cluster_objects_field_by_field_and_ready(harness, namespace):
    api = harness.api
    kc = harness.create(kafka_cluster("events", namespace, replicas=3, storage={"size": "2Gi"},
                                      config={"default.replication.factor": "3", "min.insync.replicas": "2"}))
    uid = kc["metadata"]["uid"]
    path = harness.custom(namespace, "kafkaclusters", "events")
    ready = harness.wait_condition(path, "True", "BrokersReady", timeout=90, namespace=namespace)
    status = ready["status"]
    assert status["readyReplicas"] == 3 and status["replicas"] == 3
    assert status["bootstrapServers"] == f"events-bootstrap.{namespace}.svc.cluster.local:9092"
    assert status["selector"] == ("app.kubernetes.io/name=brook,app.kubernetes.io/instance=events,"
                                  "app.kubernetes.io/component=broker")
    assert status["observedGeneration"] == ready["metadata"]["generation"]

    owner = {"apiVersion": "brook.dev/v1alpha1", "kind": "KafkaCluster", "name": "events", "uid": uid,
             "controller": True, "blockOwnerDeletion": True}
    objects = {
        "ServiceAccount": api.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/events-broker"),
        "ConfigMap": api.get(f"/api/v1/namespaces/{namespace}/configmaps/events-config"),
        "headless": api.get(f"/api/v1/namespaces/{namespace}/services/events-brokers"),
        "bootstrap": api.get(f"/api/v1/namespaces/{namespace}/services/events-bootstrap"),
        "PDB": api.get(f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/events-broker"),
        "StatefulSet": api.get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/events-broker"),
    }
    for name, obj in objects.items():
        assert obj["metadata"]["ownerReferences"] == [owner], name
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "brook-operator", name
        assert _managers(obj) == {"brook-operator"}, f"{name}: applied by {_managers(obj)}"

    assert objects["ServiceAccount"]["automountServiceAccountToken"] is False
    props = dict(line.split("=", 1) for line in objects["ConfigMap"]["data"]["server.properties"].splitlines()
                 if line and not line.startswith("#"))
    host = f"events-broker-{{}}.events-brokers.{namespace}.svc.cluster.local:9093"
    assert props["controller.quorum.voters"] == ",".join(f"{i}@{host.format(i)}" for i in range(3))
    assert props["default.replication.factor"] == "3" and props["min.insync.replicas"] == "2"
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["log.dirs"] == "/var/lib/brook/data"
    assert len(props["cluster.id"]) == 22

    headless = objects["headless"]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert [p["port"] for p in headless["ports"]] == [9092, 9093, 9404]
    assert objects["bootstrap"]["spec"]["type"] == "ClusterIP"
    assert [p["port"] for p in objects["bootstrap"]["spec"]["ports"]] == [9092]
    assert objects["PDB"]["spec"]["maxUnavailable"] == 1
    assert objects["PDB"]["status"]["expectedPods"] == 3  # the disruption controller saw the pods

    sts = objects["StatefulSet"]["spec"]
    assert sts["replicas"] == 3 and sts["serviceName"] == "events-brokers"
    assert sts["podManagementPolicy"] == "Parallel"
    claim = sts["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    pod = sts["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["brook"]
    assert container["args"][:3] == ["broker", "--config", "/etc/brook/server.properties"]
    assert "node.id=$(BROOK_NODE_ID)" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert env["BROOK_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.labels['apps.kubernetes.io/pod-index']"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container)

    # Kubernetes' controllers did the rest: PVCs bound through the provisioner, pods
    # labelled with their ordinal, each broker advertising its headless DNS name.
    pvcs = api.items(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")
    assert sorted(p["metadata"]["name"] for p in pvcs) == [f"data-events-broker-{i}" for i in range(3)]
    assert all(p["status"]["phase"] == "Bound" for p in pvcs)
    for i in range(3):
        p = api.get(f"/api/v1/namespaces/{namespace}/pods/events-broker-{i}")
        assert p["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == str(i)
        log = harness.runner.pod_log(namespace, f"events-broker-{i}")
        assert f"node {i} ready on PLAINTEXT://events-broker-{i}.events-brokers.{namespace}" in log, log

    out = harness.kubectl("-n", namespace, "get", "bkc", "events").stdout
    assert out.split("\n")[0].split() == ["NAME", "DESIRED", "READY-REPLICAS", "CONTROLLER", "READY", "ACTIVITY",
                                          "AGE"]
    (row,) = table(out)
    assert (row["DESIRED"], row["READY-REPLICAS"], row["READY"], row["ACTIVITY"]) == ("3", "3", "True", "Idle"), out
    result = harness.kubectl("-n", namespace, "wait", "--for=condition=Ready", "kafkacluster/events",
                             "--timeout=5s")
    assert "condition met" in result.stdout

    # Scaling away a voter: its replicas are drained, it leaves the quorum's voters, then it goes.
    harness.kubectl("-n", namespace, "scale", "kafkacluster/events", "--replicas=2")
    done = harness.wait_condition(path, "True", "BrokersReady", timeout=90, namespace=namespace)
    assert done["status"]["replicas"] == 2
    assert api.get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/events-broker")["spec"]["replicas"] == 2
    events = [e.get("message", "") for e in api.items(f"/api/v1/namespaces/{namespace}/events")
              if e.get("reason") == "VoterRemoved"]
    assert events == ["removed broker 2 from the metadata quorum's voters"], events
    quorum = harness.runner.run_in_cluster(namespace, [str(BROOK), "quorum", "describe", "--controller",
                                                       f"events-broker-0.events-brokers.{namespace}.svc"
                                                       ".cluster.local:9093"], timeout=30)
    assert json.loads(quorum.stdout)["voters"] == [0, 1], quorum


def test_scale_roll_drift_and_garbage_collection(harness, namespace):
    api = harness.api
    harness.create(kafka_cluster("roll", namespace, replicas=1))
    path = harness.custom(namespace, "kafkaclusters", "roll")
    harness.wait_condition(path, "True", timeout=90, namespace=namespace)
    pod0 = api.get(f"/api/v1/namespaces/{namespace}/pods/roll-broker-0")
    # A consumer group makes the brokers create __consumer_offsets: one replica, as
    # the cluster has one broker.
    bootstrap = "roll-bootstrap:9092"
    harness.kafka(namespace, bootstrap, "produce", "early", "5")
    assert len(harness.kafka(namespace, bootstrap, "consume", "early", "5")["values"]) == 5

    def offsets_rf() -> set[int]:
        layout = harness.kafka(namespace, bootstrap, "replicas", "__consumer_offsets")["replicas"]
        return {len(r) for r in layout.values()}
    assert offsets_rf() == {1}

    # Scale through the scale subresource, as `kubectl scale` does. The new broker joins
    # the metadata quorum's voters through the quorum itself (controller.quorum.voters
    # only bootstraps it), so growing changes no configuration and restarts nothing.
    harness.kubectl("-n", namespace, "scale", "kafkacluster/roll", "--replicas=2")
    ready = harness.wait_condition(path, "True", timeout=90, namespace=namespace)
    assert ready["status"]["readyReplicas"] == 2
    wait_for(lambda: api.get(path)["status"].get("voters") == [0, 1], 60, "broker 1 a metadata quorum voter")
    added = [e.get("message", "") for e in api.items(f"/api/v1/namespaces/{namespace}/events")
             if e.get("reason") == "VoterAdded"]
    assert added == ["broker 1 joined the metadata quorum's voters (now 0, 1)"], added
    # The internal topic grew with the cluster: the committed offsets survive losing a broker.
    wait_for(lambda: offsets_rf() == {2}, 60, "__consumer_offsets on both brokers")
    assert api.get(f"/api/v1/namespaces/{namespace}/pods/roll-broker-0")["metadata"]["uid"] == \
        pod0["metadata"]["uid"]

    # A config change changes the config hash. The update strategy is OnDelete: the
    # operator restarts the pods one at a time (deletes them; the StatefulSet controller
    # recreates them from the new template).
    api.merge_patch(path, {"spec": {"config": {"log.retention.hours": "1"}}})
    def rolled() -> bool:
        p = api.get_or_none(f"/api/v1/namespaces/{namespace}/pods/roll-broker-0")
        return bool(p) and p["metadata"]["uid"] != pod0["metadata"]["uid"]
    wait_for(rolled, 90, "roll-broker-0 replaced by the rolling update")
    harness.wait_condition(path, "True", "BrokersReady", timeout=90, namespace=namespace)
    cm = api.get(f"/api/v1/namespaces/{namespace}/configmaps/roll-config")
    assert "log.retention.hours=1" in cm["data"]["server.properties"]

    # Scale down: broker 1's replicas of __consumer_offsets are dropped (the internal
    # topic shrinks with the cluster), it leaves the voters, then it goes.
    harness.kubectl("-n", namespace, "scale", "kafkacluster/roll", "--replicas=1")
    wait_for(lambda: api.get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/roll-broker")
             ["spec"]["replicas"] == 1, 30, "StatefulSet scaled down")
    ready = harness.wait_condition(path, "True", "BrokersReady", timeout=90, namespace=namespace)
    assert ready["status"]["replicas"] == 1
    wait_for(lambda: api.get(path)["status"].get("voters") == [0], 30, "broker 1 no longer a voter")
    assert offsets_rf() == {1}

    # Someone edits an owned field: the operator's next resync restores it.
    sts_path = f"/apis/apps/v1/namespaces/{namespace}/statefulsets/roll-broker"
    api.merge_patch(sts_path, {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 5}}}})
    wait_for(lambda: api.get(sts_path)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60,
             30, "drift corrected")

    # Deleting the cluster: the garbage collector removes everything it owns. The
    # resync timer (every 2 s here) is often mid-run at this moment; the operator must
    # still let the cluster go within seconds (Kopf re-checked a busy timer only every
    # 60 s by default, which stalled this deletion past the wait below).
    api.delete(path)
    def collected() -> bool:
        return api.get_or_none(sts_path) is None and \
            api.get_or_none(f"/api/v1/namespaces/{namespace}/services/roll-bootstrap") is None
    try:
        wait_for(collected, 30, "owned objects garbage-collected")
    except TimeoutError as exc:
        left = api.get_or_none(path)
        sts = api.get_or_none(sts_path)
        raise AssertionError(
            f"{exc}\ncluster: {left and left['metadata'].get('finalizers')} "
            f"deleting since {left and left['metadata'].get('deletionTimestamp')}\n"
            f"statefulset: {sts and sts['metadata'].get('ownerReferences')} {sts and sts['metadata'].get('finalizers')}"
            f"\n{harness.diagnostics()}") from None
    # deleteClaim defaults to false: the volumes (and the data) stay.
    assert len(api.items(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")) == 2  # both kept


def test_warning_condition_and_pause(harness, namespace):
    api = harness.api
    harness.create(kafka_cluster("paused", namespace, replicas=1,
                                 config={"min.insync.replicas": "2"}))
    path = harness.custom(namespace, "kafkaclusters", "paused")
    obj = harness.wait_condition(path, "True", timeout=90, namespace=namespace)
    warning = harness.condition(obj, "Warning")
    assert warning["status"] == "True" and "NOT_ENOUGH_REPLICAS" in warning["message"]

    api.merge_patch(path, {"metadata": {"annotations": {"brook.dev/pause-reconciliation": "true"}}})
    wait_for(lambda: harness.condition(api.get(path), "ReconciliationPaused").get("status") == "True",
             30, "paused condition")
    assert api.get(path)["status"]["activity"] == "Paused"
    api.merge_patch(path, {"spec": {"replicas": 2}})
    import time
    time.sleep(5)  # > two resync periods
    sts = api.get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/paused-broker")
    assert sts["spec"]["replicas"] == 1, "a paused cluster must not change"
    obj = api.get(path)
    assert obj["status"]["observedGeneration"] < obj["metadata"]["generation"]

    api.merge_patch(path, {"metadata": {"annotations": {"brook.dev/pause-reconciliation": None}}})
    obj = harness.wait_condition(path, "True", timeout=90, namespace=namespace)
    assert obj["status"]["readyReplicas"] == 2
    assert harness.condition(obj, "ReconciliationPaused") == {}
    assert json.dumps(obj["status"]).count("ReconciliationPaused") == 0


def test_config_fix_reaches_a_crashing_broker(harness, namespace):
    """A broker that crashes with its configuration gets the fixed one without waiting
    for it to be ready (the rolling restart restarts broken brokers first)."""
    api = harness.api
    path = harness.custom(namespace, "kafkaclusters", "broken")
    harness.create(kafka_cluster("broken", namespace, replicas=1, config={"message.max.bytes": "0"}))
    from kubeapi import wait_for

    def crashing() -> bool:
        pod = api.get_or_none(f"/api/v1/namespaces/{namespace}/pods/broken-broker-0")
        statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
        return bool(statuses) and statuses[0].get("restartCount", 0) >= 1
    wait_for(crashing, 60, "the broker crashing with message.max.bytes=0")
    assert "message.max.bytes=0" in harness.runner.pod_log(namespace, "broken-broker-0")
    harness.wait_condition(path, "False", "BrokersNotReady", namespace=namespace)

    api.merge_patch(path, {"spec": {"config": {"message.max.bytes": "1048588"}}})
    harness.wait_condition(path, "True", "BrokersReady", timeout=90, namespace=namespace)
