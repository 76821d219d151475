"""Sanity checks of the CRDs in crds/ (level 1: no API server).

The API server itself checks them in tests/controlplane; here: that each is a
structural schema (every node typed, or int-or-string / preserve-unknown), that
the fields DESIGN.md names exist with their defaults, and that the CEL rules,
printer columns, short names and subresources the issue asks for are present.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"


def load(name: str) -> dict:
    return yaml.safe_load((CRD_DIR / name).read_text())


@pytest.fixture(scope="module")
def cluster_crd() -> dict:
    return load("brook.dev_kafkaclusters.yaml")


@pytest.fixture(scope="module")
def topic_crd() -> dict:
    return load("brook.dev_topics.yaml")


def version(crd: dict) -> dict:
    (v,) = crd["spec"]["versions"]
    return v


def schema(crd: dict) -> dict:
    return version(crd)["schema"]["openAPIV3Schema"]


def walk(node: dict, path: str = ""):
    yield path, node
    for key, child in (node.get("properties") or {}).items():
        yield from walk(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def all_rules(node: dict) -> list[str]:
    return [r["rule"] for _, n in walk(node) for r in n.get("x-kubernetes-validations", [])]


def test_every_yaml_in_crds_is_a_brook_crd():
    files = sorted(p.name for p in CRD_DIR.glob("*.yaml"))
    assert files == ["brook.dev_kafkaclusters.yaml", "brook.dev_topics.yaml"]
    for name in files:
        crd = load(name)
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["kind"] == "CustomResourceDefinition"
        assert crd["spec"]["group"] == "brook.dev"
        assert crd["metadata"]["name"] == f"{crd['spec']['names']['plural']}.brook.dev"
        assert name == f"brook.dev_{crd['spec']['names']['plural']}.yaml"


@pytest.mark.parametrize("fixture", ["cluster_crd", "topic_crd"])
def test_structural_schema(fixture, request):
    crd = request.getfixturevalue(fixture)
    v = version(crd)
    assert v["name"] == "v1alpha1" and v["served"] and v["storage"]
    assert crd["spec"]["scope"] == "Namespaced"
    for path, node in walk(schema(crd)):
        typed = "type" in node or node.get("x-kubernetes-int-or-string") or node.get(
            "x-kubernetes-preserve-unknown-fields"
        )
        assert typed, f"{path or '<root>'} has no type: not a structural schema"
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, f"{path}: int-or-string must not also set type"
        if "default" in node and node.get("type") == "object":
            assert node["default"] == {}, f"{path}: object defaults should be {{}} so nested defaults apply"


@pytest.mark.parametrize("fixture", ["cluster_crd", "topic_crd"])
def test_status_and_conditions(fixture, request):
    crd = request.getfixturevalue(fixture)
    v = version(crd)
    assert "status" in v["subresources"]
    status = schema(crd)["properties"]["status"]["properties"]
    assert status["observedGeneration"]["type"] == "integer"
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]["properties"]
    assert {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"} <= set(item)
    columns = {c["name"]: c for c in v["additionalPrinterColumns"]}
    assert "Age" in columns
    assert crd["spec"]["names"]["shortNames"]
    assert crd["spec"]["names"]["categories"] == ["brook"]


def test_cluster_fields_and_defaults(cluster_crd):
    spec = schema(cluster_crd)["properties"]["spec"]
    props = spec["properties"]
    assert spec["default"] == {}
    assert props["replicas"]["default"] == 1
    assert props["storage"]["default"] == {}
    assert props["storage"]["properties"]["size"]["default"] == "1Gi"
    assert props["storage"]["properties"]["deleteClaim"]["default"] is False
    assert props["config"]["additionalProperties"]["type"] == "string"
    status = schema(cluster_crd)["properties"]["status"]["properties"]
    assert {"readyReplicas", "replicas", "bootstrapServers", "controller", "selector"} <= set(status)


def test_cluster_rules(cluster_crd):
    rules = all_rules(schema(cluster_crd))
    assert "self >= 1" in rules  # replicas
    assert any("node.id" in r and "listeners" in r for r in rules)  # reserved properties
    assert any("metadata.name.size() <= 40" in r for r in rules)
    size = schema(cluster_crd)["properties"]["spec"]["properties"]["storage"]["properties"]["size"]
    assert size["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"


def test_cluster_printer_columns_and_scale(cluster_crd):
    v = version(cluster_crd)
    columns = {c["name"]: c["jsonPath"] for c in v["additionalPrinterColumns"]}
    assert columns["Desired"] == ".spec.replicas"
    assert columns["Ready-Replicas"] == ".status.readyReplicas"
    assert columns["Controller"] == ".status.controller"
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    shown = [c["name"] for c in v["additionalPrinterColumns"] if not c.get("priority")]
    assert shown == ["Desired", "Ready-Replicas", "Controller", "Ready", "Activity", "Age"]
    scale = v["subresources"]["scale"]
    assert scale == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }


def test_topic_fields_and_rules(topic_crd):
    spec = schema(topic_crd)["properties"]["spec"]
    props = spec["properties"]
    assert spec["required"] == ["cluster"]
    assert props["partitions"]["default"] == 1
    assert props["partitions"]["x-kubernetes-validations"][0]["rule"] == "self >= oldSelf"
    assert "default" not in props["replicationFactor"]  # unset: the cluster's default
    assert props["cluster"]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert any("self.minInSyncReplicas <= self.replicationFactor" in r for r in rules)
    assert any("'min.insync.replicas' in self.config" in r for r in rules)
    columns = {c["name"]: c["jsonPath"] for c in version(topic_crd)["additionalPrinterColumns"]}
    assert columns["Cluster"] == ".spec.cluster"
    assert columns["Partitions"] == ".spec.partitions"
    assert columns["Replication"] == ".spec.replicationFactor"
    assert columns["MinISR"] == ".spec.minInSyncReplicas"
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'


def test_helm_chart_carries_identical_crds():
    chart_crds = ROOT / "helm" / "brook" / "files" / "crds"
    for path in CRD_DIR.glob("*.yaml"):
        copy = chart_crds / path.name
        assert copy.exists(), f"{copy} missing: run helm/sync-crds.sh"
        assert yaml.safe_load(copy.read_text()) == yaml.safe_load(path.read_text()), (
            f"{copy} differs from {path}: crds/ is the source of truth, run helm/sync-crds.sh"
        )
    assert sorted(p.name for p in chart_crds.glob("*.yaml")) == sorted(p.name for p in CRD_DIR.glob("*.yaml"))
