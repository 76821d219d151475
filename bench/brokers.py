"""Start Brook (BrokerProcess) or Apache Kafka (ReferenceKafka) behind one small interface.

Both get the same broker properties where the reference Kafka's generated
server.properties differs from Kafka's defaults (PARITY_CONFIG), so a comparison
measures behaviour, not configuration. Every process is started here and stopped by
its own PID.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import REPO_ROOT
from tests.support.broker_process import BrokerProcess
from tools import paths
from tools.reference_kafka import ReferenceKafka

KINDS = ("brook", "kafka")

# What tools/reference_kafka.py writes into server.properties that is not Kafka's
# default, applied to Brook too. node.id=1: both report the same node/coordinator id.
PARITY_CONFIG: dict[str, str] = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "default.replication.factor": "1",
    "offsets.topic.replication.factor": "1",
    "group.initial.rebalance.delay.ms": "0",
    "log.segment.bytes": str(64 * 1024 * 1024),
}

# The replicated comparison: three combined broker+controller nodes each, topics with
# RF=3 and min.insync.replicas=2 (the usual production choice). Brook's test cluster
# shortens heartbeats and lag timeouts for fault tests; Kafka's defaults come back here.
CLUSTER_NODES = 3
CLUSTER_CONFIG: dict[str, str] = {
    "default.replication.factor": "3",
    "offsets.topic.replication.factor": "3",
    "min.insync.replicas": "2",
    "group.initial.rebalance.delay.ms": "0",
    "log.segment.bytes": str(64 * 1024 * 1024),
}
_KAFKA_TIMING_DEFAULTS = {"broker.heartbeat.interval.ms": "2000",
                          "broker.session.timeout.ms": "9000",
                          "replica.lag.time.max.ms": "30000"}


def rss_bytes(pid: int) -> int | None:
    """Resident set size of pid and its descendants (from /proc), None if it is gone."""
    total = 0
    seen = False
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        seen = True
                        break
        except OSError:
            continue
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
    return total if seen else None


@dataclass
class Broker:
    kind: str  # "brook" | "kafka"
    bootstrap: str
    pid: int
    version: str
    spawned_at: float  # time.monotonic() just before the broker process was spawned
    ready_at: float  # when it first answered (Brook: port open; Kafka: Metadata)
    format_seconds: float = 0.0  # Kafka's storage format step (Brook has none)
    other_pids: tuple[int, ...] = ()  # the rest of a cluster
    _stop: object = field(default=None, repr=False)
    _data_root: Path | None = field(default=None, repr=False)
    _cleanup: Path | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return "Brook" if self.kind == "brook" else "Kafka"

    def partition_dir(self, topic: str, partition: int) -> Path:
        return self._data_root / f"{topic}-{partition}"

    @property
    def pids(self) -> list[int]:
        return [self.pid, *self.other_pids]

    def rss(self) -> int | None:
        sizes = [rss_bytes(pid) for pid in self.pids]
        return None if None in sizes else sum(sizes)

    def alive(self) -> bool:
        return all(rss_bytes(pid) is not None for pid in self.pids)

    def stop(self) -> None:
        try:
            self._stop()
        finally:
            if self._cleanup is not None:
                shutil.rmtree(self._cleanup, ignore_errors=True)

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class _QuietBrook(BrokerProcess):
    def __init__(self, *args, log_level: str = "WARNING", **kwargs):
        super().__init__(*args, **kwargs)
        self.log_level = log_level
        # as in the reference Kafka's server.properties
        self.overrides.setdefault("advertised.listeners", self.overrides["listeners"])

    def command(self) -> list[str]:
        return [*super().command(), "--log-level", self.log_level]


class _TimedKafka(ReferenceKafka):
    spawned_at: float | None = None
    format_seconds: float = 0.0
    on_spawn = None

    def _format_all(self) -> None:
        t0 = time.monotonic()
        super()._format_all()
        self.format_seconds = time.monotonic() - t0

    def _spawn(self, node) -> None:
        if self.spawned_at is None:
            if self.on_spawn is not None:
                self.on_spawn(self.bootstrap)
            self.spawned_at = time.monotonic()
        super()._spawn(node)


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


# Which Brook runs: None = the working tree (editable install), else a git revision whose
# broker/ is extracted (git archive) into a private directory put first on PYTHONPATH.
_BROOK_REF: str | None = None
_SNAPSHOT: Path | None = None


def use_brook_ref(ref: str | None) -> None:
    """Run Brook from a git revision ("HEAD", a sha, a branch) instead of the working tree,
    so a benchmark is reproducible while broker/ is being edited."""
    global _BROOK_REF, _SNAPSHOT
    _BROOK_REF = ref
    if ref is None:
        _SNAPSHOT = None
        return
    sha = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    root = Path(tempfile.mkdtemp(prefix=f"brook-src-{sha[:10]}-"))
    (root / "brook").mkdir()
    (root / "brook" / "__init__.py").write_text("")
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", sha, "broker"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(root / "brook")], input=archive, check=True)
    _SNAPSHOT = root
    atexit.register(shutil.rmtree, root, True)


def brook_version() -> str:
    try:
        if _BROOK_REF is not None:
            return f"brook @ {_git('rev-parse', '--short=10', _BROOK_REF)} ({_BROOK_REF})"
        dirty = _git("status", "--porcelain", "--", "broker")
        return f"brook working tree @ {_git('rev-parse', '--short=10', 'HEAD')}" + (
            " + uncommitted broker/ changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "brook (checkout)"


def start_brook(*, extra: dict[str, str] | None = None, log_level: str = "WARNING",
                workdir: Path | None = None, timeout: float = 30.0, on_spawn=None) -> Broker:
    """on_spawn(bootstrap) is called just before the broker process is spawned."""
    root = Path(tempfile.mkdtemp(prefix="brook-bench-", dir=workdir))
    proc = _QuietBrook(root / "data", {**PARITY_CONFIG, **(extra or {})}, log_level=log_level)
    if on_spawn is not None:
        on_spawn(proc.bootstrap)
    saved = os.environ.get("PYTHONPATH")
    if _SNAPSHOT is not None:  # BrokerProcess passes os.environ on to the broker
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_SNAPSHOT), saved]))
    spawned = time.monotonic()
    try:
        proc.start(timeout=timeout)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    finally:
        if _SNAPSHOT is not None:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
    return Broker("brook", proc.bootstrap, proc.proc.pid, brook_version(), spawned,
                  time.monotonic(), _stop=proc.stop, _data_root=root / "data", _cleanup=root)


def start_kafka(*, heap: str = "1g", extra: dict[str, str] | None = None,
                timeout: float = 120.0, on_spawn=None) -> Broker:
    """heap: -Xmx of the broker JVM (1g, as kafka-server-start.sh sets by default)."""
    kafka = _TimedKafka(port=0, heap=heap, broker_config=dict(extra or {}),
                        start_timeout=timeout)
    kafka.on_spawn = on_spawn
    kafka.start()
    node = kafka.nodes[0]
    return Broker("kafka", kafka.bootstrap, node.pid, f"kafka {paths.kafka_version()}",
                  kafka.spawned_at, time.monotonic(), format_seconds=kafka.format_seconds,
                  _stop=kafka.stop, _data_root=node.directory / "data")


def start(kind: str, **kwargs) -> Broker:
    if kind == "brook":
        kwargs.pop("heap", None)
        return start_brook(**kwargs)
    if kind == "kafka":
        kwargs.pop("log_level", None)
        kwargs.pop("workdir", None)
        return start_kafka(**kwargs)
    raise ValueError(f"unknown broker kind {kind!r}; one of {KINDS}")


def start_cluster(kind: str, *, heap: str = "1g", timeout: float = 180.0) -> Broker:
    """CLUSTER_NODES nodes of Brook or Kafka as one Broker (pids: every node)."""
    spawned = time.monotonic()
    if kind == "brook":
        from tests.support.cluster import BrokerCluster
        root = Path(tempfile.mkdtemp(prefix="brook-bench-cluster-"))
        if _SNAPSHOT is not None:
            raise SystemExit("--brook-ref does not cover the replicated section yet")
        cluster = BrokerCluster(root, CLUSTER_NODES, **{
            k.replace(".", "_"): v for k, v in {**CLUSTER_CONFIG,
                                                 **_KAFKA_TIMING_DEFAULTS}.items()})
        try:
            cluster.start(timeout=timeout)
        except BaseException:
            cluster.stop()
            shutil.rmtree(root, ignore_errors=True)
            raise
        pids = [b.proc.pid for b in cluster.brokers]
        return Broker("brook", cluster.bootstrap, pids[0], brook_version(), spawned,
                      time.monotonic(), other_pids=tuple(pids[1:]), _stop=cluster.stop,
                      _cleanup=root)
    if kind == "kafka":
        from tools.reference_kafka import ReferenceKafkaCluster
        kafka = ReferenceKafkaCluster(CLUSTER_NODES, port=0, heap=heap,
                                      broker_config=dict(CLUSTER_CONFIG), start_timeout=timeout)
        kafka.start()
        pids = [n.pid for n in kafka.nodes]
        return Broker("kafka", kafka.bootstrap, pids[0], f"kafka {paths.kafka_version()}",
                      spawned, time.monotonic(), other_pids=tuple(pids[1:]), _stop=kafka.stop)
    raise ValueError(f"unknown broker kind {kind!r}; one of {KINDS}")


def machine_note() -> dict:
    """What a reader needs to judge the figures: cores, load, memory, versions."""
    import platform
    load = os.getloadavg()
    mem_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": round(load[0], 2),
        "mem_total_mib": mem_kb // 1024,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kafka": paths.kafka_version(),
        "java": paths.java_path(),
        "note": ("shared machine: other engineers' jobs run on the same cores; "
                 "brokers and clients share the CPUs (loopback only)"),
    }
