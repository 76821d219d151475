"""A pod runner that plays the kubelet of one Node, for level-4 tests.

Kubernetes' own controllers (StatefulSet, ReplicaSet, PV binder, endpoints,
garbage collector) and scheduler do their real work against the real API
server; this class does what a kubelet, a CSI provisioner and cluster DNS would:

* registers a Node (Ready, with capacity) and a default StorageClass;
* provisions a PersistentVolume (a local directory) for every pending claim of
  that class, and deletes released ones;
* for every Pod bound to the node: gives it its own loopback address
  (127.A.B.x), resolves its volumes (configMap, secret, emptyDir, PVC,
  projected service-account token / CA / namespace, downward API), its env
  (value, fieldRef, configMapKeyRef, secretKeyRef, $(VAR) expansion), and starts
  each container's command as a process in a private mount namespace with the
  volumes bind-mounted at their mount paths and a hosts file as /etc/hosts;
* runs startup, readiness and liveness probes (tcpSocket, httpGet, grpc),
  restarts exited containers per restartPolicy, and reports the pod's phase,
  IP, conditions and container statuses;
* on pod deletion, sends SIGTERM, waits the grace period, SIGKILLs, and
  finishes the deletion as the kubelet does;
* keeps a hosts file per namespace with the cluster DNS names of Services
  (from EndpointSlices) and StatefulSet pods, plus the short names of the
  namespace's Services, as a resolver with `search <ns>.svc.cluster.local` would.

What it does not do: images (a container's command is mapped to a local
executable, e.g. "brook" -> .venv/bin/brook), users (processes run as the
runner's user: the Python interpreter may not be readable by others),
resource limits, ClusterIP routing (a Service name resolves to a ready
endpoint's address; fine when port == targetPort), exec probes, init containers.
It polls the API server (every `interval` seconds) rather than watching:
simple, level-triggered, and cheap against a local API server.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from controlplane import DIE_WITH_PARENT  # noqa: E402
from kubeapi import ApiError, KubeApi  # noqa: E402

log = logging.getLogger("brook.podrunner")

PROVISIONER = "brook.dev/local-dir"
STORAGE_CLASS = "brook-local"
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion: defined vars replaced, $$ escapes, others kept."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env.get(name, m.group(0))

    return _VAR.sub(sub, text)


def field_path(pod: dict[str, Any], path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    m = re.match(r"metadata\.(labels|annotations)\['(.+)'\]$", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
    }
    if path not in simple:
        raise ValueError(f"fieldRef {path} is not supported by the pod runner")
    return str(simple[path] or "")


def parse_quantity_seconds(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


@dataclass
class Probe:
    kind: str  # startup | readiness | liveness
    spec: dict[str, Any]
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0

    @property
    def period(self) -> float:
        return float(self.spec.get("periodSeconds", 10))

    @property
    def failure_threshold(self) -> int:
        return int(self.spec.get("failureThreshold", 3))

    @property
    def success_threshold(self) -> int:
        return int(self.spec.get("successThreshold", 1))


@dataclass
class Container:
    name: str
    spec: dict[str, Any]
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    exec_spec: Path
    process: subprocess.Popen | None = None
    started_at: str | None = None
    restarts: int = 0
    started: bool = False  # startup probe passed (or none)
    ready: bool = False
    last_exit: dict[str, Any] | None = None
    next_restart: float = 0.0
    probes: dict[str, Probe] = field(default_factory=dict)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class RunningPod:
    uid: str
    namespace: str
    name: str
    ip: str
    directory: Path
    containers: list[Container]
    started: str
    stopping: bool = False
    phase: str = "Running"
    last_status: str = ""


def _rewrite_in_place(path: Path, text: str) -> None:
    """Replace a file's content for readers that may be reading it right now.

    The hosts file is bind-mounted by inode into running pods, so it cannot be
    replaced by a rename. A write followed by a truncate let a resolver read the new
    lines followed by the tail of the old ones, pairing one pod's address with another
    pod's name. One write of the whole text, padded with blank lines to the old length,
    never shows a mix (the file never shrinks; blank lines mean nothing in a hosts file).
    """
    data = text.encode()
    fd = os.open(path, os.O_WRONLY)
    try:
        old_size = os.fstat(fd).st_size
        os.pwrite(fd, data + b"\n" * max(0, old_size - len(data)), 0)
    finally:
        os.close(fd)


class PodRunner:
    def __init__(
        self,
        kubeconfig: str,
        apiserver: str,
        workdir: Path,
        executables: dict[str, str],
        node_name: str = "brook-node-0",
        cluster_domain: str = "cluster.local",
        interval: float = 0.3,
        max_grace_seconds: float = 15.0,
        read_only_root: bool = True,
        keep_visible: tuple[str, ...] = (),
    ):
        self.api = KubeApi(kubeconfig)
        self.apiserver = apiserver
        self.workdir = Path(workdir)
        self.executables = executables
        self.node = node_name
        self.domain = cluster_domain
        self.interval = interval
        self.max_grace = max_grace_seconds
        self.read_only_root = read_only_root
        # Host paths every container needs even under a volume that hides them: the
        # interpreter's environment and the executables' folders (a checkout in /tmp).
        self.keep_visible = sorted({sys.prefix, *keep_visible,
                                    *(str(Path(e).resolve().parent) for e in executables.values())})
        rng = random.Random(os.getpid() ^ int(time.time()))
        # A /24 of loopback unlikely to be used by anyone else on the machine.
        self.ip_prefix = f"127.{rng.randint(100, 199)}.{rng.randint(1, 254)}."
        self._next_ip = 10
        self.pods: dict[str, RunningPod] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self.errors: list[str] = []
        self._hosts_written: dict[str, str] = {}
        self._pending_reasons: dict[str, str] = {}
        self._dns_namespaces: set[str | None] = set()
        self.pod_exec = HERE / "pod_exec.py"

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> PodRunner:
        (self.workdir / "pods").mkdir(parents=True, exist_ok=True)
        (self.workdir / "volumes").mkdir(parents=True, exist_ok=True)
        (self.workdir / "dns").mkdir(parents=True, exist_ok=True)
        self._register_node()
        self._ensure_storage_class()
        self._thread = threading.Thread(target=self._loop, name="podrunner", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        with self._lock:
            pods = list(self.pods.values())
        self._kill_containers([c for pod in pods for c in pod.containers], grace=5)
        self.pods.clear()

    def __enter__(self) -> PodRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            for step in (self._provision_volumes, self._sync_pods, self._sync_dns, self._heartbeat):
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - keep the kubelet alive, report
                    message = f"{step.__name__}: {exc!r}"
                    if not self.errors or self.errors[-1] != message:
                        self.errors.append(message)
                        log.warning("pod runner: %s", message)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    # -- node and storage ------------------------------------------------------------------
    def _node_status(self) -> dict[str, Any]:
        stamp = now()
        capacity = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        return {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": self.node}],
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "brook pod runner is posting ready status",
                 "lastHeartbeatTime": stamp, "lastTransitionTime": stamp},
                *[{"type": t, "status": "False", "reason": f"KubeletHasNo{t}",
                   "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}
                  for t in ("MemoryPressure", "DiskPressure", "PIDPressure")],
            ],
            "nodeInfo": {"kubeletVersion": "v1.37.0", "operatingSystem": "linux",
                         "architecture": "amd64", "containerRuntimeVersion": "brook-podrunner://1",
                         "kernelVersion": "", "osImage": "brook pod runner", "kubeProxyVersion": "",
                         "machineID": "", "systemUUID": "", "bootID": ""},
        }

    def _register_node(self) -> None:
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.node, "labels": {
                "kubernetes.io/hostname": self.node, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/worker": ""}},
            "spec": {},
        }
        self.api.create_or_ignore("/api/v1/nodes", node)
        self.api.merge_patch(f"/api/v1/nodes/{self.node}/status", {"status": self._node_status()})
        # Admission taints a new node not-ready; the node lifecycle controller (off
        # here, see controlplane.py) would lift it once the kubelet reports Ready.
        self.api.merge_patch(f"/api/v1/nodes/{self.node}", {"spec": {"taints": None}})
        self._last_heartbeat = time.monotonic()

    def _heartbeat(self) -> None:
        if time.monotonic() - self._last_heartbeat > 20:
            self.api.merge_patch(f"/api/v1/nodes/{self.node}/status", {"status": self._node_status()})
            self._last_heartbeat = time.monotonic()

    def _ensure_storage_class(self) -> None:
        self.api.create_or_ignore("/apis/storage.k8s.io/v1/storageclasses", {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS, "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        })

    def _provision_volumes(self) -> None:
        classes = {c["metadata"]["name"]: c for c in self.api.items("/apis/storage.k8s.io/v1/storageclasses")}
        for pvc in self.api.items("/api/v1/persistentvolumeclaims"):
            meta, spec = pvc["metadata"], pvc["spec"]
            if (pvc.get("status") or {}).get("phase") != "Pending" or spec.get("volumeName"):
                continue
            sc = classes.get(spec.get("storageClassName") or "")
            if not sc or sc.get("provisioner") != PROVISIONER or meta.get("deletionTimestamp"):
                continue
            name = f"pvc-{meta['uid']}"
            directory = self.workdir / "volumes" / name
            directory.mkdir(parents=True, exist_ok=True)
            size = spec["resources"]["requests"]["storage"]
            self.api.create_or_ignore("/api/v1/persistentvolumes", {
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
                "spec": {
                    "capacity": {"storage": size},
                    "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                    "storageClassName": sc["metadata"]["name"],
                    "volumeMode": spec.get("volumeMode", "Filesystem"),
                    "local": {"path": str(directory)},
                    "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                 "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": [self.node]}]}]}},
                },
            })
            log.info("provisioned %s for %s/%s", name, meta["namespace"], meta["name"])
        for pv in self.api.items("/api/v1/persistentvolumes"):
            annotations = pv["metadata"].get("annotations") or {}
            if annotations.get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
                continue
            if (pv.get("status") or {}).get("phase") == "Released" and \
                    pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
                path = Path(pv["spec"]["local"]["path"])
                if path.is_relative_to(self.workdir):
                    shutil.rmtree(path, ignore_errors=True)
                self.api.delete(f"/api/v1/persistentvolumes/{pv['metadata']['name']}")

    # -- DNS --------------------------------------------------------------------------------
    def hosts_file(self, namespace: str | None) -> Path:
        path = self.workdir / "dns" / (f"hosts-{namespace}" if namespace else "hosts")
        self._dns_namespaces.add(namespace)
        if not path.exists():
            path.write_text("127.0.0.1 localhost\n")
        return path

    def _sync_dns(self) -> None:
        """Cluster DNS from Services and Pods, as kube-dns would serve it.

        Endpoints are computed here from selectors and pod readiness: the API server
        rejects loopback addresses in EndpointSlices, so the endpoint controllers
        are off (controlplane.py) and cannot be the source.
        """
        services = self.api.items("/api/v1/services")
        pods = [p for p in self.api.items("/api/v1/pods")
                if (p.get("status") or {}).get("podIP") and not p["metadata"].get("deletionTimestamp")]
        # (fqdn, ip, namespace-of-name, short names)
        records: list[tuple[str, str, str, list[str]]] = []
        for svc in services:
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            spec = svc.get("spec") or {}
            fqdn = f"{name}.{ns}.svc.{self.domain}"
            shorts = [name, f"{name}.{ns}", f"{name}.{ns}.svc"]
            if name == "kubernetes" and ns == "default":
                records.append((fqdn, "127.0.0.1", ns, shorts))
                continue
            selector = spec.get("selector") or {}
            if not selector:
                continue
            ips = []
            for pod in pods:
                meta = pod["metadata"]
                labels = meta.get("labels") or {}
                if meta["namespace"] != ns or any(labels.get(k) != v for k, v in selector.items()):
                    continue
                ip = pod["status"]["podIP"]
                ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in pod["status"].get("conditions") or [])
                if ready or spec.get("publishNotReadyAddresses"):
                    ips.append(ip)
                    hostname, subdomain = pod["spec"].get("hostname"), pod["spec"].get("subdomain")
                    if hostname and subdomain == name:
                        records.append((f"{hostname}.{fqdn}", ip, ns, [
                            f"{hostname}.{name}", f"{hostname}.{name}.{ns}", f"{hostname}.{name}.{ns}.svc"]))
            for ip in sorted(set(ips)):
                records.append((fqdn, ip, ns, shorts))
        namespaces = {svc["metadata"]["namespace"] for svc in services} | {None} | self._dns_namespaces
        for ns in namespaces:
            lines = ["127.0.0.1 localhost"]
            for fqdn, ip, rec_ns, shorts in records:
                names = [fqdn] + (shorts if ns == rec_ns else [])
                lines.append(f"{ip} {' '.join(names)}")
            text = "\n".join(lines) + "\n"
            path = self.hosts_file(ns)
            if self._hosts_written.get(str(path)) != text:
                _rewrite_in_place(path, text)
                self._hosts_written[str(path)] = text

    # -- pods --------------------------------------------------------------------------------
    def _allocate_ip(self) -> str:
        used = {p.ip for p in self.pods.values()}
        for _ in range(245):
            ip = f"{self.ip_prefix}{self._next_ip}"
            self._next_ip = 10 + (self._next_ip - 9) % 245
            if ip not in used:
                return ip
        raise RuntimeError("no free pod address")

    def _sync_pods(self) -> None:
        pods = self.api.items("/api/v1/pods", fieldSelector=f"spec.nodeName={self.node}")
        seen = set()
        for pod in pods:
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            running = self.pods.get(uid)
            if pod["metadata"].get("deletionTimestamp"):
                if running is None:
                    self._finish_deletion(pod)
                elif not running.stopping:
                    running.stopping = True
                    grace = min(self.max_grace, float(pod["metadata"].get("deletionGracePeriodSeconds") or 30))
                    threading.Thread(target=self._terminate, args=(running, pod, grace), daemon=True).start()
                continue
            if running is None:
                phase = (pod.get("status") or {}).get("phase")
                if phase in ("Succeeded", "Failed"):
                    continue
                self._admit(pod)
            else:
                self._tend(running, pod)
        for uid in [u for u in self.pods if u not in seen]:
            pod = self.pods[uid]
            if not pod.stopping:
                pod.stopping = True
                threading.Thread(target=self._kill_pod, args=(pod, 2), daemon=True).start()

    def _finish_deletion(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        try:
            self.api.request("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                             {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                              "preconditions": {"uid": meta["uid"]}})
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    def _terminate(self, running: RunningPod, pod: dict[str, Any], grace: float) -> None:
        self._kill_pod(running, grace)
        with self._lock:
            self.pods.pop(running.uid, None)
        if self._stop.is_set():
            return  # shutting down: the API server may already be gone
        try:
            self._finish_deletion(pod)
        except Exception as exc:  # noqa: BLE001 - a background thread: report, do not raise
            self.errors.append(f"finish deletion of {running.namespace}/{running.name}: {exc!r}")

    def _kill_pod(self, running: RunningPod, grace: float) -> None:
        self._kill_containers(running.containers, grace)

    @staticmethod
    def _kill_containers(containers: list[Container], grace: float) -> None:
        """SIGTERM all, wait up to `grace` seconds in total, SIGKILL what is left."""
        for c in containers:
            if c.alive():
                try:
                    os.killpg(c.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for c in containers:
            if c.process is None:
                continue
            try:
                c.process.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(c.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                c.process.wait()

    # -- volumes and env -------------------------------------------------------------------------
    def _write_files(self, directory: Path, files: dict[str, bytes]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for key, data in files.items():
            target = directory / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def _items(self, source: dict[str, Any], data: dict[str, bytes]) -> dict[str, bytes]:
        if not source.get("items"):
            return data
        return {item["path"]: data[item["key"]] for item in source["items"] if item["key"] in data}

    def _configmap_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        cm = self.api.get_or_none(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        if cm is None:
            return None
        data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
        return data

    def _secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        secret = self.api.get_or_none(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if secret is None:
            return None
        return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}

    def _sa_token(self, pod: dict[str, Any], source: dict[str, Any]) -> bytes:
        meta = pod["metadata"]
        sa = pod["spec"].get("serviceAccountName") or "default"
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
            "audiences": [source["audience"]] if source.get("audience") else None,
            "expirationSeconds": int(source.get("expirationSeconds", 3607)),
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}}}
        if request["spec"]["audiences"] is None:
            del request["spec"]["audiences"]
        result = self.api.create(f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{sa}/token", request)
        return result["status"]["token"].encode()

    def _volumes(self, pod: dict[str, Any], directory: Path) -> dict[str, Path] | str:
        """Local paths of the pod's volumes, or the reason they are not ready yet."""
        ns = pod["metadata"]["namespace"]
        out: dict[str, Path] = {}
        for volume in pod["spec"].get("volumes") or []:
            name = volume["name"]
            local = directory / "volumes" / name
            if "emptyDir" in volume:
                local.mkdir(parents=True, exist_ok=True)
            elif "configMap" in volume:
                src = volume["configMap"]
                data = self._configmap_data(ns, src["name"])
                if data is None:
                    if src.get("optional"):
                        data = {}
                    else:
                        return f"configmap {src['name']} not found"
                self._write_files(local, self._items(src, data))
            elif "secret" in volume:
                src = volume["secret"]
                data = self._secret_data(ns, src["secretName"])
                if data is None:
                    if src.get("optional"):
                        data = {}
                    else:
                        return f"secret {src['secretName']} not found"
                self._write_files(local, self._items(src, data))
            elif "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                pvc = self.api.get_or_none(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}")
                if pvc is None or (pvc.get("status") or {}).get("phase") != "Bound":
                    return f"persistentvolumeclaim {claim} not bound"
                pv = self.api.get(f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
                path = (pv["spec"].get("local") or pv["spec"].get("hostPath") or {}).get("path")
                if not path:
                    return f"persistentvolume {pv['metadata']['name']} has no local path"
                local = Path(path)
            elif "downwardAPI" in volume:
                files = {item["path"]: field_path(pod, item["fieldRef"]["fieldPath"]).encode()
                         for item in volume["downwardAPI"].get("items") or [] if "fieldRef" in item}
                self._write_files(local, files)
            elif "projected" in volume:
                files: dict[str, bytes] = {}
                for source in volume["projected"].get("sources") or []:
                    if "serviceAccountToken" in source:
                        st = source["serviceAccountToken"]
                        files[st["path"]] = self._sa_token(pod, st)
                    elif "configMap" in source:
                        data = self._configmap_data(ns, source["configMap"]["name"])
                        if data is None:
                            return f"configmap {source['configMap']['name']} not found"
                        files.update(self._items(source["configMap"], data))
                    elif "secret" in source:
                        data = self._secret_data(ns, source["secret"]["name"]) or {}
                        files.update(self._items(source["secret"], data))
                    elif "downwardAPI" in source:
                        for item in source["downwardAPI"].get("items") or []:
                            if "fieldRef" in item:
                                files[item["path"]] = field_path(pod, item["fieldRef"]["fieldPath"]).encode()
                self._write_files(local, files)
            else:
                return f"volume {name}: type not supported by the pod runner"
            out[name] = local
        return out

    def _env(self, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str] | str:
        ns = pod["metadata"]["namespace"]
        port = self.apiserver.rsplit(":", 1)[1]
        env: dict[str, str] = {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOSTNAME": pod["spec"].get("hostname") or pod["metadata"]["name"],
            "HOME": "/tmp",
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
        }
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                data = self._configmap_data(ns, source["configMapRef"]["name"]) or {}
            else:
                data = self._secret_data(ns, source["secretRef"]["name"]) or {}
            env.update({prefix + k: v.decode() for k, v in data.items()})
        for item in container.get("env") or []:
            name = item["name"]
            if "value" in item:
                env[name] = expand(item["value"], env)
            elif "valueFrom" in item:
                ref = item["valueFrom"]
                if "fieldRef" in ref:
                    env[name] = field_path(pod, ref["fieldRef"]["fieldPath"])
                elif "configMapKeyRef" in ref:
                    r = ref["configMapKeyRef"]
                    data = self._configmap_data(ns, r["name"]) or {}
                    if r["key"] not in data and not r.get("optional"):
                        return f"configmap key {r['name']}/{r['key']} not found"
                    env[name] = data.get(r["key"], b"").decode()
                elif "secretKeyRef" in ref:
                    r = ref["secretKeyRef"]
                    data = self._secret_data(ns, r["name"]) or {}
                    if r["key"] not in data and not r.get("optional"):
                        return f"secret key {r['name']}/{r['key']} not found"
                    env[name] = data.get(r["key"], b"").decode()
                elif "resourceFieldRef" in ref:
                    env[name] = "0"
            else:
                env[name] = ""
        return env

    def _argv(self, container: dict[str, Any], env: dict[str, str]) -> list[str] | str:
        command = container.get("command") or []
        args = container.get("args") or []
        if not command:
            return f"container {container['name']}: no command (images are not run; set command)"
        argv = [expand(a, env) for a in command + args]
        exe = self.executables.get(argv[0])
        if exe is None:
            return f"container {container['name']}: no local executable for {argv[0]!r}"
        return [exe, *argv[1:]]

    # -- starting and tending -----------------------------------------------------------------
    def _admit(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        directory = self.workdir / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
        directory.mkdir(parents=True, exist_ok=True)
        ip = self._allocate_ip()
        pod.setdefault("status", {})["podIP"] = ip  # visible to fieldRef status.podIP
        pod["status"]["hostIP"] = "127.0.0.1"
        volumes = self._volumes(pod, directory)
        if isinstance(volumes, str):
            self._pending(pod, volumes)
            return
        containers = []
        for spec in pod["spec"].get("containers") or []:
            env = self._env(pod, spec)
            if isinstance(env, str):
                self._pending(pod, env)
                return
            argv = self._argv(spec, env)
            if isinstance(argv, str):
                self._pending(pod, argv)
                return
            mounts = [{"source": str(volumes[m["name"]] / m.get("subPath", "")).rstrip("/"),
                       "target": m["mountPath"], "readOnly": bool(m.get("readOnly"))}
                      for m in spec.get("volumeMounts") or [] if m["name"] in volumes]
            security = spec.get("securityContext") or {}
            exec_spec = directory / f"{spec['name']}.exec.json"
            exec_spec.write_text(json.dumps({
                "hosts": str(self.hosts_file(meta["namespace"])),
                "mounts": mounts,
                "readOnlyRoot": bool(security.get("readOnlyRootFilesystem")) and self.read_only_root,
                "env": env, "argv": argv, "workingDir": spec.get("workingDir"),
                "scratch": str(directory / f"{spec['name']}.scratch"),
                "keepVisible": self.keep_visible,
            }))
            c = Container(spec["name"], spec, argv, env, directory / f"{spec['name']}.log", exec_spec)
            for kind in ("startup", "readiness", "liveness"):
                probe = spec.get(f"{kind}Probe")
                if probe:
                    c.probes[kind] = Probe(kind, probe)
            containers.append(c)
        running = RunningPod(meta["uid"], meta["namespace"], meta["name"], ip, directory, containers, now())
        with self._lock:
            self.pods[meta["uid"]] = running
        for c in containers:
            self._start_container(running, c)
        self._report(running, pod)

    def _start_container(self, pod: RunningPod, c: Container) -> None:
        handle = open(c.log_path, "ab")  # noqa: SIM115 - the child keeps it
        c.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", sys.executable, str(self.pod_exec),
             str(c.exec_spec)],
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=DIE_WITH_PARENT,
        )
        handle.close()
        c.started_at = now()
        c.started = "startup" not in c.probes
        c.ready = False
        t = time.monotonic()
        for probe in c.probes.values():
            probe.successes = probe.failures = 0
            probe.next_at = t + float(probe.spec.get("initialDelaySeconds", 0))

    def _pending(self, pod: dict[str, Any], reason: str) -> None:
        meta = pod["metadata"]
        if self._pending_reasons.get(meta["uid"]) == reason:
            return
        self._pending_reasons[meta["uid"]] = reason
        status = {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": reason}],
            "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "imageID": "",
                                   "ready": False, "restartCount": 0, "started": False,
                                   "state": {"waiting": {"reason": "ContainerCreating", "message": reason}}}
                                  for c in pod["spec"].get("containers") or []]}
        self.api.merge_patch(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                             {"status": status})

    def _probe_once(self, pod: RunningPod, spec: dict[str, Any], container: dict[str, Any]) -> bool:
        timeout = float(spec.get("timeoutSeconds", 1))

        def port_of(value: Any) -> int:
            if isinstance(value, int):
                return value
            for p in container.get("ports") or []:
                if p.get("name") == value:
                    return int(p["containerPort"])
            return int(value)

        try:
            if "tcpSocket" in spec:
                with socket.create_connection((pod.ip, port_of(spec["tcpSocket"]["port"])), timeout=timeout):
                    return True
            if "httpGet" in spec:
                h = spec["httpGet"]
                url = f"http://{h.get('host') or pod.ip}:{port_of(h['port'])}{h.get('path', '/')}"
                with urllib.request.urlopen(url, timeout=timeout) as r:
                    return 200 <= r.status < 400
            if "grpc" in spec:
                return self._grpc_health(pod.ip, port_of(spec["grpc"]["port"]), spec["grpc"].get("service", ""),
                                         timeout)
        except (OSError, ValueError):
            return False
        return False

    @staticmethod
    def _grpc_health(host: str, port: int, service: str, timeout: float) -> bool:
        try:
            import grpc
        except ImportError:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        request = b"" if not service else b"\x0a" + bytes([len(service)]) + service.encode()
        with grpc.insecure_channel(f"{host}:{port}") as channel:
            call = channel.unary_unary("/grpc.health.v1.Health/Check")
            try:
                response = call(request, timeout=timeout)
            except grpc.RpcError:
                return False
        return response == b"\x08\x01"  # status: SERVING

    def _tend(self, pod: RunningPod, body: dict[str, Any]) -> None:
        t = time.monotonic()
        restart_policy = body["spec"].get("restartPolicy", "Always")
        for c in pod.containers:
            if not c.alive():
                if c.process is not None and c.last_exit is None:
                    code = c.process.returncode
                    c.last_exit = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                   "startedAt": c.started_at, "finishedAt": now()}
                    c.ready = False
                    backoff = min(30.0, 1.0 * (2 ** min(c.restarts, 5)))
                    c.next_restart = t + backoff
                    log.info("%s/%s[%s] exited with %s", pod.namespace, pod.name, c.name, code)
                should_restart = restart_policy == "Always" or (
                    restart_policy == "OnFailure" and (c.last_exit or {}).get("exitCode") != 0)
                if should_restart and t >= c.next_restart:
                    c.restarts += 1
                    c.last_exit_saved = c.last_exit
                    c.last_exit = None
                    self._start_container(pod, c)
                continue
            for probe in c.probes.values():
                if t < probe.next_at:
                    continue
                if probe.kind != "startup" and not c.started:
                    continue
                if probe.kind == "startup" and c.started:
                    continue
                probe.next_at = t + probe.period
                ok = self._probe_once(pod, probe.spec, c.spec)
                if ok:
                    probe.successes += 1
                    probe.failures = 0
                else:
                    probe.failures += 1
                    probe.successes = 0
                if probe.kind == "startup":
                    if ok:
                        c.started = True
                    elif probe.failures >= probe.failure_threshold:
                        self._restart_unhealthy(pod, c, "startup")
                elif probe.kind == "readiness":
                    if ok and probe.successes >= probe.success_threshold:
                        c.ready = True
                    elif not ok and probe.failures >= probe.failure_threshold:
                        c.ready = False
                elif probe.kind == "liveness" and not ok and probe.failures >= probe.failure_threshold:
                    self._restart_unhealthy(pod, c, "liveness")
            if "readiness" not in c.probes and c.started:
                c.ready = True
        if restart_policy != "Always" and all(not c.alive() and c.last_exit for c in pod.containers):
            pod.phase = "Succeeded" if all(c.last_exit["exitCode"] == 0 for c in pod.containers) else "Failed"
        self._report(pod, body)

    def _restart_unhealthy(self, pod: RunningPod, c: Container, kind: str) -> None:
        log.info("%s/%s[%s] failed its %s probe: restarting", pod.namespace, pod.name, c.name, kind)
        try:
            os.killpg(c.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        c.process.wait()

    def _report(self, pod: RunningPod, body: dict[str, Any]) -> None:
        all_ready = all(c.ready for c in pod.containers)
        statuses = []
        for c in pod.containers:
            if c.alive():
                state = {"running": {"startedAt": c.started_at}}
            elif c.last_exit:
                state = {"terminated": c.last_exit} if pod.phase != "Running" else {
                    "waiting": {"reason": "CrashLoopBackOff",
                                "message": f"exited with {c.last_exit['exitCode']}; see {c.log_path}"}}
            else:
                state = {"waiting": {"reason": "ContainerCreating"}}
            entry = {"name": c.name, "image": c.spec.get("image", ""), "imageID": "",
                     "containerID": f"brook://{c.process.pid if c.process else 0}",
                     "ready": c.ready, "started": c.started and c.alive(), "restartCount": c.restarts,
                     "state": state}
            previous = getattr(c, "last_exit_saved", None)
            if previous:
                entry["lastState"] = {"terminated": previous}
            statuses.append(entry)
        cond = "True" if all_ready else "False"
        status = {
            "phase": pod.phase,
            "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": pod.ip, "podIPs": [{"ip": pod.ip}],
            "startTime": pod.started,
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": cond},
                {"type": "Ready", "status": cond},
                {"type": "PodScheduled", "status": "True"},
            ],
            "containerStatuses": statuses,
        }
        key = json.dumps(status, sort_keys=True)
        if key == pod.last_status:
            return
        stamp = now()
        old = {c.get("type"): c for c in ((body.get("status") or {}).get("conditions") or [])}
        for condition in status["conditions"]:
            before = old.get(condition["type"])
            same = before and before.get("status") == condition["status"]
            condition["lastTransitionTime"] = before.get("lastTransitionTime") if same else stamp
            condition["lastProbeTime"] = None
        try:
            self.api.merge_patch(f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/status", {"status": status})
            pod.last_status = key
        except ApiError as exc:
            if exc.status != 404:
                raise

    # -- helpers for tests ---------------------------------------------------------------------
    def pod_log(self, namespace: str, name: str, container: str | None = None, lines: int = 50) -> str:
        with self._lock:
            pods = [p for p in self.pods.values() if p.namespace == namespace and p.name == name]
        out = []
        for pod in pods:
            for c in pod.containers:
                if container and c.name != container:
                    continue
                try:
                    text = c.log_path.read_text(errors="replace").splitlines()[-lines:]
                except OSError:
                    text = []
                out.append(f"--- {namespace}/{name}[{c.name}] ({c.log_path})\n" + "\n".join(text))
        return "\n".join(out)

    def signal_pod(self, namespace: str, name: str, signum: int) -> int:
        """Send a signal to every running container of a pod; returns how many got it.

        SIGSTOP freezes a broker without the kubelet noticing: a tcpSocket probe is
        answered by the kernel, so the pod stays Ready while Kafka requests go
        unanswered (a hung broker); SIGCONT thaws it."""
        with self._lock:
            containers = [c for p in self.pods.values() if p.namespace == namespace and p.name == name
                          for c in p.containers if c.alive()]
        sent = 0
        for c in containers:
            try:
                os.killpg(c.process.pid, signum)
                sent += 1
            except ProcessLookupError:
                pass
        return sent

    def pod_ip(self, namespace: str, name: str) -> str | None:
        with self._lock:
            for p in self.pods.values():
                if p.namespace == namespace and p.name == name:
                    return p.ip
        return None

    def run_in_cluster(self, namespace: str, argv: list[str], timeout: float = 60,
                       env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run a command as a pod of `namespace` would see the cluster (its DNS names)."""
        scratch = self.workdir / "exec" / f"{int(time.time() * 1000)}-{random.randint(0, 1 << 30)}"
        scratch.mkdir(parents=True, exist_ok=True)
        spec = scratch / "exec.json"
        spec.write_text(json.dumps({"hosts": str(self.hosts_file(namespace)), "mounts": [], "env": {
            **os.environ, **(env or {})}, "argv": argv, "scratch": str(scratch)}))
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", sys.executable, str(self.pod_exec), str(spec)],
            capture_output=True, text=True, timeout=timeout,
        )
