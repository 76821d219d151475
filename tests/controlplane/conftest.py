"""Level-4 fixtures: a real control plane, the pod runner, the operator.

One control plane per test session (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler built by tools/controlplane/build.sh), with the CRDs from crds/
installed, a pod runner playing the kubelet of one Node, and the operator
(`brook operator`) running against it. Each test gets its own namespace.

Skipped, with the reason, when the control-plane programs have not been built
(`tools/controlplane/build.sh`, about 15 minutes once, then cached), except under CI
(environment variable CI set), where that fails. Refused private mount namespaces
always fail: `make test` built everything, so only missing privileges can stop these
tests, and a suite that silently skips them must not pass. BROOK_SKIP_CONTROLPLANE=1
skips them on purpose.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "controlplane"
sys.path.insert(0, str(TOOLS))

from controlplane import DIE_WITH_PARENT, ControlPlane, bin_dir, missing_programs  # noqa: E402
from kubeapi import ApiError, KubeApi, object_path, wait_for  # noqa: E402
from podrunner import PodRunner  # noqa: E402

from tools.ports import free_port  # noqa: E402

BROOK = str(Path(sys.executable).parent / "brook")
CLIENT = Path(__file__).resolve().parent / "kafka_client.py"

REASSIGN_THROTTLE_BYTES = 4 * 1024 * 1024

# Short loops so tests converge fast; the operator's defaults are for production.
OPERATOR_ENV = {
    "BROOK_RESYNC_SECONDS": "2",
    "BROOK_TOPIC_DELETE_TIMEOUT_SECONDS": "6",
    "BROOK_ADMIN_TIMEOUT_SECONDS": "4",
    "BROOK_ROLL_HALT_SECONDS": "45",
    # Low enough that a few MiB show the reassignment throttle at work (test_scaling).
    "BROOK_REASSIGN_THROTTLE_BYTES": str(REASSIGN_THROTTLE_BYTES),
}


def operator_metric(harness: Harness, name: str, **labels: str) -> float:
    """One sample of the operator's Prometheus metrics (0 when absent)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{harness.metrics_port}/metrics", timeout=10).read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


class Harness:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.cp = ControlPlane(workdir / "controlplane")
        self.api: KubeApi
        self.runner: PodRunner
        self.operator: subprocess.Popen | None = None
        self.operator_log = workdir / "operator.log"
        self.timings: dict[str, float] = {}
        self.metrics_port = free_port()

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Harness:
        t0 = time.monotonic()
        def crds_first() -> None:
            self.api = KubeApi(self.cp.kubeconfig)
            self.install_crds()

        self.cp.start(before_controllers=crds_first)
        self.runner = PodRunner(self.cp.kubeconfig, self.cp.server, self.workdir / "node",
                                executables={"brook": BROOK}, interval=0.4,
                                keep_visible=(str(ROOT),)).start()
        self.start_operator()
        self.timings = {**self.cp.timings, "harness": time.monotonic() - t0}
        return self

    def install_crds(self) -> None:
        for path in sorted((ROOT / "crds").glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            self.api.apply(object_path(crd), crd)
        for path in sorted((ROOT / "crds").glob("*.yaml")):
            name = yaml.safe_load(path.read_text())["metadata"]["name"]

            def established(name: str = name) -> bool:
                crd = self.api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                return any(c["type"] == "Established" and c["status"] == "True"
                           for c in (crd.get("status") or {}).get("conditions") or [])

            wait_for(established, 30, f"CRD {name} established")

    def start_operator(self) -> None:
        """`brook operator` with the admin kubeconfig, seeing cluster DNS like a pod."""
        env = {**os.environ, "KUBECONFIG": self.cp.kubeconfig, **OPERATOR_ENV}
        env.pop("BROOK_WATCH_NAMESPACES", None)
        scratch = self.workdir / "operator"
        scratch.mkdir(exist_ok=True)
        spec = scratch / "exec.json"
        spec.write_text(json.dumps({
            "hosts": str(self.runner.hosts_file(None)), "mounts": [], "env": env,
            "argv": [BROOK, "operator", "--liveness", "", "--metrics", f"127.0.0.1:{self.metrics_port}"],
            "scratch": str(scratch)}))
        handle = open(self.operator_log, "ab")  # noqa: SIM115
        self.operator = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", sys.executable,
             str(TOOLS / "pod_exec.py"), str(spec)],
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=DIE_WITH_PARENT)
        handle.close()

    def stop_operator(self) -> None:
        if self.operator and self.operator.poll() is None:
            os.killpg(self.operator.pid, signal.SIGTERM)
            try:
                self.operator.wait(8)
            except subprocess.TimeoutExpired:
                os.killpg(self.operator.pid, signal.SIGKILL)
                self.operator.wait()
        self.operator = None

    def stop(self) -> None:
        self.stop_operator()
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.stop()
        self.cp.stop()

    # -- helpers ------------------------------------------------------------------------
    def operator_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.operator_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def diagnostics(self, namespace: str | None = None) -> str:
        parts = [f"operator alive: {self.operator is not None and self.operator.poll() is None}",
                 "--- operator log", self.operator_tail(),
                 f"--- pod runner errors: {self.runner.errors[-5:]}"]
        if namespace:
            for pod in self.api.items(f"/api/v1/namespaces/{namespace}/pods"):
                name = pod["metadata"]["name"]
                phase = (pod.get("status") or {}).get("phase")
                parts.append(f"pod {name}: {phase} {json.dumps((pod.get('status') or {}).get('conditions'))}")
                parts.append(self.runner.pod_log(namespace, name, lines=15))
        return "\n".join(parts)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(bin_dir() / "kubectl"), "--kubeconfig", self.cp.kubeconfig, *args],
                                input=input, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def custom(self, namespace: str, plural: str, name: str = "") -> str:
        base = f"/apis/brook.dev/v1alpha1/namespaces/{namespace}/{plural}"
        return f"{base}/{name}" if name else base

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        path = object_path(obj).rsplit("/", 1)[0]
        return self.api.create(path, obj)

    def condition(self, obj: dict[str, Any] | None, type_: str = "Ready") -> dict[str, Any]:
        for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
            if cond.get("type") == type_:
                return cond
        return {}

    def wait_condition(self, path: str, status: str = "True", reason: str | None = None,
                       type_: str = "Ready", timeout: float = 60, namespace: str | None = None) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def check() -> dict[str, Any] | None:
            nonlocal last
            obj = self.api.get(path)
            last = obj
            cond = self.condition(obj, type_)
            if cond.get("status") == status and (reason is None or cond.get("reason") == reason) and \
                    (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]:
                return obj
            return None

        try:
            return wait_for(check, timeout, f"{path} {type_}={status} {reason or ''}")
        except TimeoutError as exc:
            raise AssertionError(
                f"{exc}\nlast status: {json.dumps(last.get('status'), indent=1)}\n"
                f"{self.diagnostics(namespace)}") from None

    def runner_popen(self, namespace: str, argv: list[str]) -> subprocess.Popen:
        """Start a long-running command as a pod of `namespace` would (its cluster DNS)."""
        scratch = self.workdir / "exec" / f"bg-{uuid.uuid4().hex[:8]}"
        scratch.mkdir(parents=True, exist_ok=True)
        spec = scratch / "exec.json"
        spec.write_text(json.dumps({"hosts": str(self.runner.hosts_file(namespace)), "mounts": [],
                                    "env": dict(os.environ), "argv": argv, "scratch": str(scratch)}))
        return subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", sys.executable, str(TOOLS / "pod_exec.py"),
             str(spec)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            preexec_fn=DIE_WITH_PARENT)

    def kafka(self, namespace: str, *args: str, timeout: float = 60) -> Any:
        """Run tests/controlplane/kafka_client.py as a pod of `namespace` would."""
        result = self.runner.run_in_cluster(namespace, [sys.executable, str(CLIENT), *args], timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"kafka_client {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return json.loads(result.stdout.strip().splitlines()[-1])


def unavailable(reason: str, *, always_fail: bool = False, env: dict[str, str] | None = None) -> None:
    """Skip or fail the level-4 tests because the harness cannot run (see the module doc)."""
    env = os.environ if env is None else env
    if env.get("BROOK_SKIP_CONTROLPLANE") == "1":
        pytest.skip(f"{reason} (BROOK_SKIP_CONTROLPLANE=1)")
    if always_fail or env.get("CI"):
        pytest.fail(f"level-4 operator tests cannot run: {reason}. Fix the environment, or set "
                    "BROOK_SKIP_CONTROLPLANE=1 to skip them knowingly.", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def harness(tmp_path_factory) -> Iterator[Harness]:
    missing = missing_programs()
    if missing:
        unavailable(f"control plane not built ({', '.join(missing)} missing in {bin_dir()}): "
                    "run tools/controlplane/build.sh")
    if shutil.which("unshare") is None or shutil.which("openssl") is None:
        unavailable("the pod runner needs unshare(1) and openssl(1)")
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        unavailable("the pod runner needs private mount namespaces (root or CAP_SYS_ADMIN): "
                    f"{probe.stderr.decode().strip()}", always_fail=True)
    h = Harness(tmp_path_factory.mktemp("controlplane"))
    try:
        h.start()
    except BaseException:
        h.stop()
        raise
    yield h
    h.stop()


@pytest.fixture
def namespace(harness: Harness) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    harness.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": name}})
    yield name
    try:
        harness.api.delete(f"/api/v1/namespaces/{name}")
    except ApiError:
        pass


def table(text: str) -> list[dict[str, str]]:
    """`kubectl get` output as rows keyed by header, cut at the header's column starts
    (an empty cell, such as a status field not set yet, prints as blanks)."""
    header, *rows = text.splitlines()
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    names = header.split()
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [{name: row[a:b].strip() for name, (a, b) in zip(names, bounds, strict=True)} for row in rows]


def pod_uids(api, namespace: str) -> dict[str, str]:
    """Pod name -> uid: a changed uid is a restarted pod."""
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in api.items(f"/api/v1/namespaces/{namespace}/pods")}


def kafka_cluster(name: str, namespace: str, replicas: int = 1, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "brook.dev/v1alpha1", "kind": "KafkaCluster",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, **spec}}


def topic(name: str, namespace: str, cluster: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "brook.dev/v1alpha1", "kind": "Topic",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"cluster": cluster, **spec}}
