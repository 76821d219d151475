"""Start a real Kubernetes control plane on loopback for level-4 tests.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler, built by
build.sh, run as child processes with certificates generated here (openssl).
Nothing listens outside 127.0.0.0/8; everything lives in one work directory.

    with ControlPlane(workdir) as cp:
        os.environ["KUBECONFIG"] = cp.kubeconfig

Command line (for poking at it by hand):

    python tools/controlplane/controlplane.py up [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.ports import free_port  # noqa: E402

HERE = Path(__file__).resolve().parent
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
CLUSTER_DOMAIN = "cluster.local"


class ControlPlaneError(RuntimeError):
    pass


def _parent_death_signal():
    """A preexec_fn: the child gets SIGKILL when the process that started it dies.

    The programs run in their own sessions (Ctrl-C must not reach them before the
    harness stops them in order); without this, a harness killed outright (SIGKILL,
    a CI timeout) would leave etcd, kube-apiserver and brokers running.
    """
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)

    return preexec


DIE_WITH_PARENT = _parent_death_signal()


def read_versions() -> dict[str, str]:
    out = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def cache_dir() -> Path:
    return Path(os.environ.get("BROOK_CACHE") or Path.home() / ".cache" / "brook")


def bin_dir() -> Path:
    v = read_versions()
    stamp = f"k8s-{v['KUBERNETES_VERSION']}_etcd-{v['ETCD_VERSION']}_helm-{v['HELM_VERSION']}"
    return cache_dir() / "controlplane" / "bin" / stamp


PROGRAMS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "helm")


def missing_programs(directory: Path | None = None) -> list[str]:
    directory = directory or bin_dir()
    return [p for p in PROGRAMS if not os.access(directory / p, os.X_OK)]


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ControlPlaneError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def generate_pki(directory: Path) -> None:
    """A CA, the apiserver's serving cert, an admin client cert, the SA key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "admin.crt").exists():
        return
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
             "-subj", "/CN=brook-test-ca", cwd=directory)
    sans = ",".join(
        ["IP:127.0.0.1", f"IP:{KUBERNETES_SERVICE_IP}", "DNS:localhost", "DNS:kubernetes",
         "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
         f"DNS:kubernetes.default.svc.{CLUSTER_DOMAIN}"]
    )
    certs = {
        "apiserver": ("/CN=kube-apiserver", f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n"),
        # system:masters: full access, as kubeadm's admin.conf.
        "admin": ("/O=system:masters/CN=brook-admin", "extendedKeyUsage=clientAuth\n"),
    }
    for name, (subject, ext) in certs.items():
        (directory / f"{name}.ext").write_text(ext)
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
                 cwd=directory)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "3650",
                 "-extfile", f"{name}.ext", cwd=directory)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=directory)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)


def write_kubeconfig(path: Path, server: str, pki: Path, user: str = "admin") -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "brook-test", "cluster": {
            "server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": user, "user": {
            "client-certificate": str(pki / f"{user}.crt"),
            "client-key": str(pki / f"{user}.key")}}],
        "contexts": [{"name": "brook-test", "context": {"cluster": "brook-test", "user": user}}],
        "current-context": "brook-test",
    }
    path.write_text(json.dumps(config, indent=2))


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class ControlPlane:
    workdir: Path
    binaries: Path = field(default_factory=bin_dir)
    with_controllers: bool = True
    processes: list[Process] = field(default_factory=list)
    server: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def pki(self) -> Path:
        return self.workdir / "pki"

    @property
    def kubeconfig(self) -> str:
        return str(self.workdir / "kubeconfig")

    # -- processes -------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str]) -> Process:
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        handle = open(log, "ab")  # noqa: SIM115 - lives as long as the process
        popen = subprocess.Popen(
            [str(self.binaries / name), *args],
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=DIE_WITH_PARENT,
        )
        handle.close()
        proc = Process(name, popen, log)
        self.processes.append(proc)
        return proc

    def _wait(self, proc: Process, check, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise ControlPlaneError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
            try:
                if check():
                    return
            except (OSError, urllib.error.URLError, ssl.SSLError):
                pass
            time.sleep(0.2)
        raise ControlPlaneError(f"{proc.name}: {what} not reached in {timeout}s:\n{proc.tail()}")

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def get(self, path: str, timeout: float = 5) -> tuple[int, str]:
        request = urllib.request.Request(self.server + path)
        try:
            with urllib.request.urlopen(request, context=self._ssl_context(), timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, before_controllers: Callable[[], None] | None = None) -> ControlPlane:
        """Start everything; `before_controllers` runs once the API server answers.

        CRDs installed there are in the controllers' first discovery: installed later,
        the garbage collector learns of them only at its next discovery pass (30 s), and
        a custom resource deleted before that can leave its dependents uncollected."""
        needed = ["etcd", "kube-apiserver"]
        if self.with_controllers:
            needed += ["kube-controller-manager", "kube-scheduler"]
        missing = [p for p in missing_programs(self.binaries) if p in needed]
        if missing:
            raise ControlPlaneError(
                f"not built: {', '.join(missing)} in {self.binaries}; run tools/controlplane/build.sh"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        generate_pki(self.pki)
        self.timings["pki"] = time.monotonic() - t0
        try:
            self._start_etcd()
            self._start_apiserver()
            if before_controllers is not None:
                before_controllers()
            if self.with_controllers:
                self._start_controller_manager()
                self._start_scheduler()
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - t0
        return self

    def _start_etcd(self) -> None:
        t0 = time.monotonic()
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        proc = self._spawn("etcd", [
            "--name=brook-test",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=brook-test=http://127.0.0.1:{peer}",
            "--listen-metrics-urls=",
            "--unsafe-no-fsync=true",  # test data: durability is not the point, speed is
            "--log-level=warn",
        ])

        def healthy() -> bool:
            with urllib.request.urlopen(self.etcd_url + "/health", timeout=2) as r:
                return json.loads(r.read()).get("health") == "true"

        self._wait(proc, healthy, 30, "etcd /health")
        self.timings["etcd"] = time.monotonic() - t0

    def _start_apiserver(self) -> None:
        t0 = time.monotonic()
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        pki = self.pki
        proc = self._spawn("kube-apiserver", [
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--api-audiences=https://kubernetes.default.svc",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=false",
            "--profiling=false",
            # Loopback cannot be an endpoint of the kubernetes Service; pods reach the
            # apiserver through KUBERNETES_SERVICE_HOST=127.0.0.1 set by the pod runner.
            "--endpoint-reconciler-type=none",
            "--event-ttl=10m",
            "--v=0",
        ])
        write_kubeconfig(Path(self.kubeconfig), self.server, pki)
        self._wait(proc, lambda: self.get("/readyz")[0] == 200, 90, "/readyz")
        self.timings["kube-apiserver"] = time.monotonic() - t0

    def _start_controller_manager(self) -> None:
        t0 = time.monotonic()
        pki = self.pki
        proc = self._spawn("kube-controller-manager", [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            f"--cert-dir={self.workdir / 'kcm-certs'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
            # The pod runner plays a kubelet that never goes away: without node
            # lifecycle, a slow heartbeat cannot taint the node and evict the brokers.
            # Pods get loopback addresses (127.x.y.z), which the API server refuses in
            # Endpoints and EndpointSlices: the pod runner computes endpoints itself.
            "--controllers=*,-node-lifecycle-controller,-node-ipam-controller,-endpoints-controller,"
            "-endpointslice-controller,-endpointslice-mirroring-controller",
            "--concurrent-statefulset-syncs=5",
            "--v=0",
        ])
        self._wait(proc, lambda: self.get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
                   60, "the default ServiceAccount (serviceaccount controller running)")
        self.timings["kube-controller-manager"] = time.monotonic() - t0

    def _start_scheduler(self) -> None:
        t0 = time.monotonic()
        proc = self._spawn("kube-scheduler", [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            "--leader-elect=false",
            "--v=0",
        ])
        time.sleep(0.5)
        if not proc.alive():
            raise ControlPlaneError(f"kube-scheduler exited:\n{proc.tail()}")
        self.timings["kube-scheduler"] = time.monotonic() - t0

    def check_alive(self) -> None:
        dead = [p for p in self.processes if not p.alive()]
        if dead:
            raise ControlPlaneError(
                "; ".join(f"{p.name} exited ({p.popen.returncode}): {p.tail(5)}" for p in dead)
            )

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.alive():
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in reversed(self.processes):
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        self.processes.clear()

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a control plane and wait for Ctrl-C")
    up.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    up.add_argument("--no-controllers", action="store_true", help="etcd and kube-apiserver only")
    args = parser.parse_args(argv)
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="brook-controlplane-"))
    # SIGTERM (e.g. from `timeout`) stops the children too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with ControlPlane(workdir, with_controllers=not args.no_controllers) as cp:
        print(f"export KUBECONFIG={cp.kubeconfig}", flush=True)
        print(f"# started in {cp.timings['total']:.1f}s: {json.dumps(cp.timings)}", flush=True)
        try:
            while True:
                time.sleep(1)
                cp.check_alive()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
