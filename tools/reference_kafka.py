"""Run Apache Kafka (KRaft, combined broker+controller) on loopback as a reference broker.

Uses the jars fetched by tools/setup-test-tools.sh, no shell scripts: the storage is
formatted with ``kafka.tools.StorageTool`` and the node runs ``kafka.Kafka`` with a
generated server.properties.

Python::

    from tools.reference_kafka import ReferenceKafka, reference_kafka_cluster
    with ReferenceKafka(port=0) as kafka:          # port=0: pick free ports
        use(kafka.bootstrap)                       # "127.0.0.1:<port>"
    with reference_kafka_cluster(3, port=0) as cluster:
        use(cluster.bootstrap)                     # three combined nodes
        cluster.stop_node(2); cluster.start_node(2)

CLI (the broker keeps running in the background until ``stop``)::

    python tools/reference_kafka.py start [--nodes 3] [--port 19092] [--controller-port P]
    python tools/reference_kafka.py status [--port 19092]
    python tools/reference_kafka.py stop [--port 19092]
    python tools/reference_kafka.py run ...        # foreground, Ctrl-C stops it

Node i listens on port+i (Kafka protocol) and controller_port+i (KRaft controller;
default port+100+i). Data and logs (server.log per node) live in a temp dir that is
removed on stop unless a data dir was given or keep_data is set.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import paths  # noqa: E402
from tools.ports import free_port  # noqa: E402

DEFAULT_PORT = 19092
CONTROLLER_PORT_OFFSET = 100
STORAGE_TOOL_CLASS = "kafka.tools.StorageTool"  # Kafka 4.x: in kafka_2.13 (core)
BROKER_MAIN_CLASS = "kafka.Kafka"


class ReferenceKafkaError(RuntimeError):
    pass


@dataclass
class KafkaNode:
    node_id: int
    host: str
    port: int
    controller_port: int
    directory: Path
    process: subprocess.Popen | None = field(default=None, repr=False)
    pid: int | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @property
    def config_path(self) -> Path:
        return self.directory / "server.properties"

    def is_running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self.pid is not None and _pid_alive(self.pid)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists"; treat it as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def new_cluster_id() -> str:
    """A Kafka Uuid in its base64url form (never starting with '-', like Uuid.randomUuid)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _set_pdeathsig() -> None:  # runs in the child before exec (Linux)
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# ---------------------------------------------------------------- Metadata probe

def _kstring(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def metadata_brokers(host: str, port: int, timeout: float = 3.0) -> tuple[list[int], int]:
    """Send a Metadata v4 request (no topics); return ([broker ids], controller id)."""
    body = struct.pack(">i", 0) + b"\x00"  # topics: empty array; allow_auto_topic_creation=false
    header = struct.pack(">hhi", 3, 4, 1) + _kstring("brook-reference-probe")
    req = header + body
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(req)) + req)
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        data = _recv_exact(s, size)
    pos = 4 + 4  # correlation id, throttle_time_ms
    (n_brokers,) = struct.unpack_from(">i", data, pos)
    pos += 4
    ids = []
    for _ in range(n_brokers):
        (node_id,) = struct.unpack_from(">i", data, pos)
        pos += 4
        (hlen,) = struct.unpack_from(">h", data, pos)
        pos += 2 + hlen + 4  # host, port
        (rlen,) = struct.unpack_from(">h", data, pos)
        pos += 2 + max(rlen, 0)  # rack
        ids.append(node_id)
    (clen,) = struct.unpack_from(">h", data, pos)
    pos += 2 + max(clen, 0)  # cluster id
    (controller,) = struct.unpack_from(">i", data, pos)
    return sorted(ids), controller


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return bytes(buf)


# ---------------------------------------------------------------- cluster

class ReferenceKafkaCluster:
    """N combined (broker+controller) Apache Kafka nodes in KRaft mode on one host.

    port/controller_port: first ports; node i uses port+i and controller_port+i.
    port=0 picks free ports. broker_config: extra server.properties entries for all nodes.
    """

    def __init__(
        self,
        nodes: int = 1,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        controller_port: int | None = None,
        data_dir: str | os.PathLike | None = None,
        heap: str = "512m",
        broker_config: dict[str, object] | None = None,
        keep_data: bool = False,
        start_timeout: float = 120.0,
        stop_timeout: float = 30.0,
        die_with_parent: bool = True,
    ):
        if nodes < 1:
            raise ValueError("nodes must be >= 1")
        self.host = host
        self.heap = heap
        self.broker_config = dict(broker_config or {})
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.die_with_parent = die_with_parent
        self._owns_dir = data_dir is None
        self.keep_data = keep_data
        self.data_dir = Path(data_dir) if data_dir else None
        self.cluster_id = new_cluster_id()
        if port == 0:
            ports = [free_port(host) for _ in range(nodes)]
            cports = [free_port(host) for _ in range(nodes)]
        else:
            cport = controller_port if controller_port else port + CONTROLLER_PORT_OFFSET
            ports = [port + i for i in range(nodes)]
            cports = [cport + i for i in range(nodes)]
        self.nodes = [
            KafkaNode(node_id=i + 1, host=host, port=ports[i], controller_port=cports[i],
                      directory=Path())
            for i in range(nodes)
        ]

    # ----------------------------------------------------------------- properties
    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    @property
    def port(self) -> int:
        return self.nodes[0].port

    def __repr__(self) -> str:
        return f"<ReferenceKafkaCluster {self.bootstrap} dir={self.data_dir}>"

    def server_properties(self, node: KafkaNode) -> dict[str, object]:
        n = len(self.nodes)
        voters = ",".join(f"{x.node_id}@{x.host}:{x.controller_port}" for x in self.nodes)
        rf = min(3, n)
        props: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{node.host}:{node.port},CONTROLLER://{node.host}:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{node.host}:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(node.directory / "data"),
            "metadata.log.dir": str(node.directory / "metadata"),
            "default.replication.factor": rf,
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min(2, rf),
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": min(2, rf),
            "group.initial.rebalance.delay.ms": 0,
            "num.network.threads": 2,
            "num.io.threads": 4,
            "log.segment.bytes": 64 * 1024 * 1024,
        }
        props.update(self.broker_config)
        return props

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> ReferenceKafkaCluster:
        paths.kafka_home()  # raises ToolMissing with the fix
        for node in self.nodes:
            for p in (node.port, node.controller_port):
                if not _port_free(node.host, p):
                    raise ReferenceKafkaError(
                        f"port {node.host}:{p} is already in use (another reference Kafka? "
                        f"`python tools/reference_kafka.py stop --port {self.port}`), or pass port=0")
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="brook-refkafka-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._format_all()
            for node in self.nodes:
                self._spawn(node)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _java(self) -> list[str]:
        return [paths.java_path(), f"-Xmx{self.heap}", "-Xss1m", "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]

    def _format_all(self) -> None:
        procs = []
        for node in self.nodes:
            node.directory = self.data_dir / f"node-{node.node_id}"
            node.directory.mkdir(parents=True, exist_ok=True)
            self._write_config(node)
            if (node.directory / "metadata" / "meta.properties").exists():
                continue  # already formatted (restart with the same data dir)
            cmd = [*self._java()[:2], "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                   f"-Dlog4j2.configurationFile={paths.log4j_config('tools')}",
                   "-cp", paths.kafka_classpath(), STORAGE_TOOL_CLASS,
                   "format", "-t", self.cluster_id, "-c", str(node.config_path)]
            procs.append((node, cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, text=True)))
        for node, cmd, proc in procs:
            try:
                out, _ = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise ReferenceKafkaError(f"formatting storage of node {node.node_id} timed out") from None
            if proc.returncode != 0:
                raise ReferenceKafkaError(
                    f"{STORAGE_TOOL_CLASS} format failed for node {node.node_id} "
                    f"(exit {proc.returncode}):\n{out}\ncommand: {' '.join(cmd)}")

    def _write_config(self, node: KafkaNode) -> None:
        lines = [f"{k}={v}" for k, v in self.server_properties(node).items()]
        node.config_path.write_text("# generated by tools/reference_kafka.py\n" + "\n".join(lines) + "\n")

    def _spawn(self, node: KafkaNode) -> None:
        (node.directory / "logs").mkdir(exist_ok=True)
        cmd = [*self._java(), f"-Dlog4j2.configurationFile={paths.log4j_config('broker')}",
               f"-Dkafka.logs.dir={node.directory / 'logs'}",
               "-cp", paths.kafka_classpath(), BROKER_MAIN_CLASS, str(node.config_path)]
        with open(node.log_path, "ab") as log:
            node.process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_set_pdeathsig if self.die_with_parent else None)
        node.pid = node.process.pid

    def wait_ready(self, timeout: float | None = None, nodes: list[KafkaNode] | None = None) -> None:
        """Wait until every (given) node answers Metadata listing all running brokers."""
        deadline = time.monotonic() + (timeout or self.start_timeout)
        targets = nodes or self.nodes
        expected = sorted(n.node_id for n in self.nodes if n.is_running())
        last_error: Exception | str = "not started"
        pending = list(targets)
        while pending:
            node = pending[0]
            if not node.is_running():
                raise ReferenceKafkaError(
                    f"Kafka node {node.node_id} exited during start-up; last log lines:\n"
                    + self.tail_log(node))
            try:
                ids, controller = metadata_brokers(node.host, node.port)
                if ids == expected and controller >= 0:
                    pending.pop(0)
                    continue
                last_error = f"brokers {ids} (want {expected}), controller {controller}"
            except OSError as e:  # not listening yet / closed
                last_error = e
            except struct.error as e:
                last_error = e
            if time.monotonic() > deadline:
                raise ReferenceKafkaError(
                    f"Kafka node {node.node_id} on {node.bootstrap} not ready after "
                    f"{timeout or self.start_timeout:.0f}s ({last_error}); log tail:\n" + self.tail_log(node))
            time.sleep(0.2)

    def tail_log(self, node: KafkaNode, lines: int = 40) -> str:
        try:
            return "\n".join(node.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop_node(self, index: int, *, kill: bool = False, timeout: float | None = None) -> None:
        """Stop node `index` (0-based): SIGTERM (or SIGKILL if kill), SIGKILL after timeout."""
        _stop_pids([self.nodes[index]], kill=kill, timeout=timeout or self.stop_timeout)

    def start_node(self, index: int, timeout: float | None = None) -> None:
        """Restart a stopped node on its existing data."""
        node = self.nodes[index]
        if node.is_running():
            return
        self._spawn(node)
        self.wait_ready(timeout, nodes=[node])

    def stop(self) -> None:
        _stop_pids([n for n in self.nodes if n.pid], kill=False, timeout=self.stop_timeout)
        if self.data_dir and self._owns_dir and not self.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> ReferenceKafkaCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------- CLI state
    def state(self) -> dict:
        return {
            "bootstrap": self.bootstrap,
            "data_dir": str(self.data_dir),
            "owns_dir": self._owns_dir and not self.keep_data,
            "nodes": [{"node_id": n.node_id, "pid": n.pid, "port": n.port,
                       "controller_port": n.controller_port, "log": str(n.log_path)}
                      for n in self.nodes],
        }


def _stop_pids(nodes: list[KafkaNode], *, kill: bool, timeout: float) -> None:
    sig = signal.SIGKILL if kill else signal.SIGTERM
    for n in nodes:
        if n.pid and n.is_running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(n.pid, sig)
    deadline = time.monotonic() + timeout
    for n in nodes:
        while n.pid and n.is_running() and time.monotonic() < deadline:
            time.sleep(0.1)
        if n.pid and n.is_running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(n.pid, signal.SIGKILL)
        if n.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                n.process.wait(timeout=10)
        elif n.pid:
            t = time.monotonic() + 10
            while _pid_alive(n.pid) and time.monotonic() < t:
                time.sleep(0.05)


class ReferenceKafka(ReferenceKafkaCluster):
    """A single combined broker+controller node (the default reference broker)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, **kwargs):
        super().__init__(1, host=host, port=port, **kwargs)


def reference_kafka_cluster(nodes: int = 3, **kwargs) -> ReferenceKafkaCluster:
    """Three (or N) combined nodes forming one KRaft quorum; a context manager."""
    return ReferenceKafkaCluster(nodes, **kwargs)


# ---------------------------------------------------------------- CLI

def _state_file(port: int) -> Path:
    return paths.cache_dir() / "run" / f"reference-kafka-{port}.json"


def _cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="reference_kafka.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("start", "run"):
        p = sub.add_parser(name, help="start in the background" if name == "start" else "run in the foreground")
        p.add_argument("--nodes", type=int, default=1)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=DEFAULT_PORT)
        p.add_argument("--controller-port", type=int, default=None)
        p.add_argument("--data-dir", default=None)
        p.add_argument("--heap", default="512m")
        p.add_argument("--timeout", type=float, default=120.0)
        p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                       help="extra server.properties entry (repeatable)")
    for name in ("stop", "status"):
        p = sub.add_parser(name)
        p.add_argument("--port", type=int, default=DEFAULT_PORT)
        if name == "stop":
            p.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args(argv)

    if args.cmd in ("start", "run"):
        extra = dict(kv.split("=", 1) for kv in args.config)
        cluster = ReferenceKafkaCluster(
            args.nodes, host=args.host, port=args.port, controller_port=args.controller_port,
            data_dir=args.data_dir, heap=args.heap, broker_config=extra,
            start_timeout=args.timeout, die_with_parent=(args.cmd == "run"))
        t0 = time.monotonic()
        try:
            cluster.start()
        except (ReferenceKafkaError, paths.ToolMissing) as e:
            print(f"reference kafka: {e}", file=sys.stderr)
            return 1
        print(f"reference kafka {paths.kafka_version()} ready on {cluster.bootstrap} "
              f"in {time.monotonic() - t0:.1f}s (data: {cluster.data_dir})", flush=True)
        if args.cmd == "start":
            state = _state_file(cluster.port)
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text(json.dumps(cluster.state(), indent=2))
            print(f"stop with: python tools/reference_kafka.py stop --port {cluster.port}")
            return 0
        def _interrupt(*_):
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        try:
            while all(n.is_running() for n in cluster.nodes):
                time.sleep(0.5)
            print("a node exited", file=sys.stderr)
        except KeyboardInterrupt:
            pass
        finally:
            cluster.stop()
        return 0

    state_path = _state_file(args.port)
    if not state_path.exists():
        print(f"no reference kafka started by this tool on port {args.port} ({state_path} missing)",
              file=sys.stderr)
        return 1
    state = json.loads(state_path.read_text())
    nodes = [KafkaNode(node_id=n["node_id"], host="", port=n["port"],
                       controller_port=n["controller_port"], directory=Path(), pid=n["pid"])
             for n in state["nodes"]]
    if args.cmd == "status":
        for n in nodes:
            print(f"node {n.node_id} pid {n.pid} port {n.port}: "
                  f"{'running' if n.is_running() else 'not running'}")
        print(f"bootstrap {state['bootstrap']} data {state['data_dir']}")
        return 0 if all(n.is_running() for n in nodes) else 3
    _stop_pids(nodes, kill=False, timeout=args.timeout)
    if state.get("owns_dir"):
        shutil.rmtree(state["data_dir"], ignore_errors=True)
    state_path.unlink()
    print(f"reference kafka on {state['bootstrap']} stopped")
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
