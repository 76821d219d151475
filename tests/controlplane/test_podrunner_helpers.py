"""Pure helpers of the pod runner (no control plane needed)."""

from __future__ import annotations

import pytest
from podrunner import expand, field_path

POD = {"metadata": {"name": "events-broker-2", "namespace": "prod", "uid": "u",
                    "labels": {"apps.kubernetes.io/pod-index": "2"}, "annotations": {"a": "b"}},
       "spec": {"nodeName": "n", "serviceAccountName": "sa"},
       "status": {"podIP": "127.1.2.3"}}


def test_expand_like_kubernetes():
    env = {"POD_IP": "127.1.2.3", "N": "2"}
    assert expand("PLAINTEXT://$(POD_IP):9092", env) == "PLAINTEXT://127.1.2.3:9092"
    assert expand("node.id=$(N)", env) == "node.id=2"
    assert expand("$(UNDEFINED) stays", env) == "$(UNDEFINED) stays"
    assert expand("$$(POD_IP) escaped", env) == "$(POD_IP) escaped"


@pytest.mark.parametrize("path,value", [
    ("metadata.name", "events-broker-2"),
    ("metadata.namespace", "prod"),
    ("metadata.labels['apps.kubernetes.io/pod-index']", "2"),
    ("metadata.annotations['a']", "b"),
    ("status.podIP", "127.1.2.3"),
    ("spec.serviceAccountName", "sa"),
])
def test_field_paths(path, value):
    assert field_path(POD, path) == value


def test_unsupported_field_path():
    with pytest.raises(ValueError):
        field_path(POD, "status.phase")


@pytest.mark.parametrize("env,always_fail,outcome", [
    ({}, False, "skip"),  # a developer without the control plane built
    ({"CI": "true"}, False, "fail"),  # CI must not pass without the level-4 tests
    ({}, True, "fail"),  # refused mount namespaces: always loud
    ({"CI": "true", "BROOK_SKIP_CONTROLPLANE": "1"}, True, "skip"),  # skipped on purpose
])
def test_harness_unavailable_skips_or_fails(env, always_fail, outcome):
    from _pytest.outcomes import Failed, Skipped

    from .conftest import unavailable

    expected = {"skip": Skipped, "fail": Failed}[outcome]
    with pytest.raises(expected, match="no mount namespaces"):
        unavailable("no mount namespaces", always_fail=always_fail, env=env)


def test_table_keeps_empty_cells_in_their_column():
    from .conftest import table

    out = ("NAME     DESIRED   READY-REPLICAS   CONTROLLER   READY   ACTIVITY   AGE\n"
           "events   3         3                             True    Idle       4s\n")
    assert table(out) == [{"NAME": "events", "DESIRED": "3", "READY-REPLICAS": "3", "CONTROLLER": "",
                           "READY": "True", "ACTIVITY": "Idle", "AGE": "4s"}]
