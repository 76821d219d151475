"""The Helm chart: lint, template, schema, and an install against the real API
server whose operator pod (run by the pod runner with the chart's ServiceAccount
token and RBAC) reconciles a cluster and a topic."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid

import pytest
import yaml
from controlplane import bin_dir
from kubeapi import wait_for

from .conftest import ROOT, kafka_cluster, topic

pytestmark = pytest.mark.timeout(240)
CHART = ROOT / "helm" / "brook"


def helm(*args: str, kubeconfig: str | None = None, check: bool = True, tmp=None) -> subprocess.CompletedProcess:
    exe = bin_dir() / "helm"
    if not exe.exists():
        pytest.skip(f"helm not built in {bin_dir()}: run tools/controlplane/build.sh")
    env = {**os.environ}
    base = str(tmp or "/tmp")
    env.update({"HELM_CACHE_HOME": f"{base}/helm/cache", "HELM_CONFIG_HOME": f"{base}/helm/config",
                "HELM_DATA_HOME": f"{base}/helm/data"})
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    result = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
    return result


def render(tmp_path, *sets: str) -> list[dict]:
    args = ["template", "r", str(CHART), "--namespace", "brook-system"]
    for s in sets:
        args += ["--set", s]
    return [d for d in yaml.safe_load_all(helm(*args, tmp=tmp_path).stdout) if d]


def test_lint_and_template(tmp_path):
    out = helm("lint", "--strict", str(CHART), tmp=tmp_path).stdout
    assert "0 chart(s) failed" in out
    helm("lint", "--strict", str(CHART), "--set", "operator.watchNamespaces={a,b}",
         "--set", "metrics.serviceMonitor.enabled=true", tmp=tmp_path)
    docs = render(tmp_path)
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert kinds == [("ClusterRole", "r-brook"), ("ClusterRoleBinding", "r-brook"),
                     ("CustomResourceDefinition", "kafkaclusters.brook.dev"),
                     ("CustomResourceDefinition", "topics.brook.dev"),
                     ("Deployment", "r-brook"), ("ServiceAccount", "r-brook")]
    for crd in (d for d in docs if d["kind"] == "CustomResourceDefinition"):
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        source = yaml.safe_load((ROOT / "crds" / f"brook.dev_{crd['spec']['names']['plural']}.yaml").read_text())
        assert crd["spec"] == source["spec"]
    (deploy,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["command"] == ["brook"] and c["args"][0] == "operator"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert deploy["spec"]["strategy"]["type"] == "Recreate"
    assert re.fullmatch(r"[0-9a-f]{64}", deploy["spec"]["template"]["metadata"]["annotations"]["checksum/crds"])
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["BROOK_REASSIGN_THROTTLE_BYTES"] == "10485760"  # not 1.048576e+07
    assert (env["BROOK_BALANCE_BATCH_PARTITIONS"], env["BROOK_ROLL_HALT_SECONDS"]) == ("4", "300")
    tuned = render(tmp_path, "operator.reassignThrottleBytesPerSecond=0", "operator.rollHaltSeconds=600")
    (tuned_c,) = [d for d in tuned if d["kind"] == "Deployment"][0]["spec"]["template"]["spec"]["containers"]
    tuned_env = {e["name"]: e.get("value") for e in tuned_c["env"]}
    assert (tuned_env["BROOK_REASSIGN_THROTTLE_BYTES"], tuned_env["BROOK_ROLL_HALT_SECONDS"]) == ("0", "600")
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert "*" not in verbs
    deletable = {r for rule in role["rules"] if "delete" in rule["verbs"] for r in rule["resources"]}
    assert deletable == {"pods"}  # only for the rolling restart
    assert all("*" not in rule["resources"] for rule in role["rules"])
    assert not any("secrets" in rule["resources"] for rule in role["rules"])

    namespaced = render(tmp_path, "operator.watchNamespaces={a,b}", "crds.install=false",
                        "metrics.serviceMonitor.enabled=true")
    kinds = sorted((d["kind"], d["metadata"].get("namespace")) for d in namespaced)
    assert ("Role", "a") in kinds and ("RoleBinding", "b") in kinds and ("ServiceMonitor", "brook-system") in kinds
    assert not any(k == "ClusterRole" or k == "CustomResourceDefinition" for k, _ in kinds)


@pytest.mark.parametrize("value,message", [
    ("unknown=1", "additional properties 'unknown' not allowed"),
    ("operator.typo=1", "additional properties 'typo' not allowed"),
    ("image.pullPolicy=Sometimes", "value must be one of"),
    ("operator.logLevel=loud", "value must be one of"),
    ("operator.balanceBatchPartitions=0", "minimum"),
    # The Kubernetes-typed values are closed too: a typo fails, it is not dropped.
    ("podSecurityContext.runAsNonroot=true", "additional properties 'runAsNonroot' not allowed"),
    ("podSecurityContext.seccompProfile.typ=x", "additional properties 'typ' not allowed"),
    ("securityContext.readOnlyRootFs=true", "additional properties 'readOnlyRootFs' not allowed"),
    ("securityContext.capabilities.dropp={ALL}", "additional properties 'dropp' not allowed"),
    ("affinity.nodeAfinity.x=1", "additional properties 'nodeAfinity' not allowed"),
    ("tolerations[0].keys=a", "additional properties 'keys' not allowed"),
    ("operator.extraEnv[0].name=A,operator.extraEnv[0].valu=b", "additional properties 'valu' not allowed"),
    ("operator.extraEnv[0].name=A,operator.extraEnv[0].valueFrom.secretRef.key=b",
     "additional properties 'secretRef' not allowed"),
    ("resources.limit.cpu=1", "additional properties 'limit' not allowed"),
    ("resources.requests.cpus=1", "invalid propertyName 'cpus'"),
])
def test_schema_rejects(tmp_path, value, message):
    result = helm("template", "r", str(CHART), "--set", value, check=False, tmp=tmp_path)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_schema_accepts_the_kubernetes_fields(tmp_path):
    docs = render(tmp_path, "tolerations[0].key=k,tolerations[0].operator=Exists,tolerations[0].effect=NoSchedule",
                  "operator.extraEnv[0].name=A,operator.extraEnv[0].valueFrom.fieldRef.fieldPath=metadata.name",
                  "resources.limits.nvidia\\.com/gpu=1", "affinity.nodeAffinity.x=1",
                  "podSecurityContext.supplementalGroups={5}", "securityContext.capabilities.add={NET_BIND_SERVICE}")
    (pod,) = [d["spec"]["template"]["spec"] for d in docs if d["kind"] == "Deployment"]
    assert pod["tolerations"] == [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_rendered_chart_applies_to_the_api_server(harness, tmp_path):
    rendered = helm("template", "r", str(CHART), "--namespace", "default", tmp=tmp_path).stdout
    result = harness.kubectl("apply", "--server-side", "--dry-run=server", "--force-conflicts",
                             "--field-manager=brook-helm-test", "-f", "-", input=rendered)
    for kind in ("customresourcedefinition.apiextensions.k8s.io/kafkaclusters.brook.dev",
                 "clusterrole.rbac.authorization.k8s.io/r-brook", "deployment.apps/r-brook"):
        assert kind in result.stdout, result.stdout


@pytest.fixture
def session_operator_paused(harness):
    """Only one operator may reconcile a namespace: stop the session's while the chart's runs."""
    harness.stop_operator()
    yield
    harness.start_operator()


@pytest.mark.parametrize("scope", ["namespaces", "cluster"])
def test_helm_install_runs_the_operator_with_its_rbac(scope, harness, namespace, tmp_path,
                                                      session_operator_paused):
    """The chart's operator, under its own ServiceAccount token, reconciles a cluster and
    a topic with no 403: with watchNamespaces (a Role per namespace) and without it (the
    ClusterRole)."""
    api = harness.api
    watch = ["--set", f"operator.watchNamespaces={{{namespace}}}"] if scope == "namespaces" else []
    release_ns = f"brook-{uuid.uuid4().hex[:6]}"
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": release_ns}})
    kubeconfig = harness.cp.kubeconfig
    try:
        try:
            helm("install", "brook", str(CHART), "--namespace", release_ns, "--wait", "--timeout", "90s",
                 "--set", "crds.install=false",  # the session installed them: see the test above
                 *watch, "--set", "operator.resyncSeconds=2",
                 kubeconfig=kubeconfig, tmp=tmp_path)
        except AssertionError as exc:
            events = [f"{e['involvedObject']['name']}: {e.get('reason')} {e.get('message')}"
                      for e in api.items(f"/api/v1/namespaces/{release_ns}/events")]
            raise AssertionError(f"{exc}\n{harness.diagnostics(release_ns)}\n" + "\n".join(events)) from None
        pods = api.items(f"/api/v1/namespaces/{release_ns}/pods")
        assert len(pods) == 1 and pods[0]["spec"]["serviceAccountName"] == "brook"
        bindings = [b for b in api.items("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings")
                    if any(subject.get("namespace") == release_ns for subject in b.get("subjects", []))]
        assert len(bindings) == (1 if scope == "cluster" else 0), bindings
        harness.create(kafka_cluster("events", namespace, replicas=1))
        harness.create(topic("orders", namespace, "events", partitions=2))
        harness.wait_condition(harness.custom(namespace, "kafkaclusters", "events"), "True",
                               timeout=90, namespace=namespace)
        harness.wait_condition(harness.custom(namespace, "topics", "orders"), "True",
                               timeout=60, namespace=namespace)
        # It ran in-cluster: its writes were made by its ServiceAccount.
        cm = api.get(f"/api/v1/namespaces/{namespace}/configmaps/events-config")
        assert any(m["manager"] == "brook-operator" for m in cm["metadata"]["managedFields"])
        log = harness.runner.pod_log(release_ns, pods[0]["metadata"]["name"], lines=200)
        # Kubernetes' refusals read "... is forbidden ... 'reason': 'Forbidden', 'code': 403".
        # The 403 is looked for in the messages only: the header names the pod's
        # directory (a uid) and each line starts with a timestamp (",403" milliseconds).
        messages = "\n".join(re.sub(r"^\[[^]]*\]", "", line) for line in log.splitlines()[1:])
        assert not re.search(r"forbidden|\b403\b", messages, re.IGNORECASE), log
        helm("uninstall", "brook", "--namespace", release_ns, "--wait", kubeconfig=kubeconfig, tmp=tmp_path)
        wait_for(lambda: not api.items(f"/api/v1/namespaces/{release_ns}/pods"), 60, "operator pod gone")
    finally:
        api.delete(f"/api/v1/namespaces/{release_ns}")


CRD_NAMES = ("kafkaclusters.brook.dev", "topics.brook.dev")
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"


@pytest.fixture
def crds_adoptable_by_helm(harness):
    """The session's CRDs, marked as the release's so `helm install` adopts them (as an
    operator upgrading from a CRDs-managed-elsewhere install would); restored after."""
    def mark(release: str, release_ns: str) -> None:
        for name in CRD_NAMES:
            harness.api.merge_patch(CRD_PATH + name, {"metadata": {
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {"meta.helm.sh/release-name": release,
                                "meta.helm.sh/release-namespace": release_ns}}})
    yield mark
    # A replace, not an apply: fields helm wrote (its labels, annotations, a column the
    # upgrade added) must go, and an apply leaves fields another manager owns.
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        source = yaml.safe_load(path.read_text())
        live = harness.api.get(CRD_PATH + source["metadata"]["name"])
        source["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        restored = harness.api.request("PUT", CRD_PATH + source["metadata"]["name"], source)
        assert "meta.helm.sh/release-name" not in (restored["metadata"].get("annotations") or {})
        assert restored["spec"]["versions"] == source["spec"]["versions"]
    harness.install_crds()


def test_chart_installs_upgrades_and_keeps_crds(harness, namespace, tmp_path, crds_adoptable_by_helm):
    """crds.install=true for real: the release owns the CRDs, an upgrade changes what the
    API server serves and restarts the operator, an uninstall keeps CRDs and resources."""
    api = harness.api
    release, release_ns = "brook-crds", f"brook-{uuid.uuid4().hex[:6]}"
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": release_ns}})
    kubeconfig = harness.cp.kubeconfig
    # The session's operator keeps reconciling: this release's operator watches only its
    # own namespace, and its pod stays Pending (no node matches), so nothing fights.
    sets = ["--set", f"operator.watchNamespaces={{{release_ns}}}", "--set", "nodeSelector.brook-test/none=none"]
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    try:
        crds_adoptable_by_helm(release, release_ns)
        helm("install", release, str(chart), "--namespace", release_ns, *sets,
             kubeconfig=kubeconfig, tmp=tmp_path)
        for name in CRD_NAMES:
            crd = api.get(CRD_PATH + name)
            assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == release
            assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        harness.create(topic("kept", namespace, "absent", partitions=1))
        deployment = f"/apis/apps/v1/namespaces/{release_ns}/deployments/{release}"
        checksum = api.get(deployment)["spec"]["template"]["metadata"]["annotations"]["checksum/crds"]

        # A new chart version whose Topic CRD has one more printer column.
        crd_file = chart / "files" / "crds" / "brook.dev_topics.yaml"
        crd = yaml.safe_load(crd_file.read_text())
        columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        columns.insert(0, {"name": "Probe", "type": "string", "jsonPath": ".metadata.name",
                           "description": "added by the chart upgrade test"})
        crd_file.write_text(yaml.safe_dump(crd, sort_keys=False))
        helm("upgrade", release, str(chart), "--namespace", release_ns, *sets, kubeconfig=kubeconfig, tmp=tmp_path)

        def served_header() -> list[str] | None:
            header = harness.kubectl("get", "topics", "-n", namespace).stdout.splitlines()[0].split()
            return header if header[:2] == ["NAME", "PROBE"] else None

        wait_for(served_header, 30, "the upgraded Topic CRD's column served")
        assert api.get(deployment)["spec"]["template"]["metadata"]["annotations"]["checksum/crds"] != checksum

        helm("uninstall", release, "--namespace", release_ns, "--wait", kubeconfig=kubeconfig, tmp=tmp_path)
        assert api.get_or_none(deployment) is None
        for name in CRD_NAMES:
            assert api.get_or_none(CRD_PATH + name) is not None, f"{name} deleted by helm uninstall"
        assert api.get(harness.custom(namespace, "topics", "kept"))["spec"]["partitions"] == 1
    finally:
        helm("uninstall", release, "--namespace", release_ns, kubeconfig=kubeconfig, check=False, tmp=tmp_path)
        api.delete(f"/api/v1/namespaces/{release_ns}")
