"""The benchmark workloads: Kafka's perf tools, the confluent-kafka worker, start-up probe,
and a sampler for the broker's resident memory and CPU time while a workload runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from bench import REPO_ROOT
from bench.brokers import rss_bytes
from tools import paths

MB = 1024 * 1024  # Kafka's perf tools report MB as 1024*1024 bytes; so do we


class WorkloadError(RuntimeError):
    pass


def tool_command(name: str, *args: str, heap: str = "512m") -> list[str]:
    """A Kafka tool with the JVM's normal JIT and GC (tools/paths.java_tool_command limits
    both for quick CLI calls, which would make the load generator the bottleneck)."""
    return [paths.java_path(), f"-Xmx{heap}", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={paths.log4j_config('tools')}",
            "-cp", paths.kafka_classpath(), paths.KAFKA_TOOLS.get(name, name), *args]


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=REPO_ROOT)
    except subprocess.TimeoutExpired as e:
        raise WorkloadError(f"timed out after {timeout:.0f}s: {' '.join(cmd[-12:])}") from e
    if proc.returncode != 0:
        raise WorkloadError(f"exit {proc.returncode}: {proc.stderr.strip()[-600:]}")
    return proc


# ---------------------------------------------------------------- topics

def create_topic(bootstrap: str, name: str, partitions: int, timeout: float = 60.0) -> None:
    """Create the topic and wait until every partition has a leader answering ListOffsets."""
    from confluent_kafka import KafkaException, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    admin.create_topics([NewTopic(name, partitions, -1)])[name].result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            md = admin.list_topics(name, timeout=5).topics.get(name)
            if md is not None and md.error is None and len(md.partitions) == partitions and all(
                    p.leader >= 0 and p.error is None for p in md.partitions.values()):
                futs = admin.list_offsets({TopicPartition(name, p): OffsetSpec.earliest()
                                           for p in range(partitions)}, request_timeout=5)
                for f in futs.values():
                    f.result()
                return
        except KafkaException:
            pass
        if time.monotonic() > deadline:
            raise WorkloadError(f"topic {name} not ready after {timeout:.0f}s")
        time.sleep(0.05)


# ---------------------------------------------------------------- sampler

def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Peak RSS and CPU time of one or more processes (summed) while a `with` block runs
    (10 Hz)."""

    def __init__(self, pids: int | list[int], interval: float = 0.1):
        self.pids = [pids] if isinstance(pids, int) else list(pids)
        self.interval = interval
        self.peak = 0
        self.cpu = None
        self._stop = threading.Event()

    def _cpu(self) -> float | None:
        times = [cpu_seconds(pid) for pid in self.pids]
        return None if None in times else sum(times)

    def _loop(self):
        while not self._stop.is_set():
            rss = sum(rss_bytes(pid) or 0 for pid in self.pids)
            if rss:
                self.peak = max(self.peak, rss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._cpu0 = self._cpu()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        cpu1 = self._cpu()
        if self._cpu0 is not None and cpu1 is not None:
            self.cpu = cpu1 - self._cpu0


# ---------------------------------------------------------------- Kafka's tools

_PP = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def parse_producer_perf(stdout: str) -> dict:
    """The summary line of ProducerPerformance (the last line that matches)."""
    found = _PP.findall(stdout)
    if not found:
        raise WorkloadError(f"no ProducerPerformance summary in: {stdout.strip()[-400:]}")
    n, rps, mbps, avg, mx, p50, p95, p99, p999 = found[-1]
    return {"records": int(n), "records/s": float(rps), "MB/s": float(mbps), "avg ms": float(avg),
            "max ms": float(mx), "p50 ms": float(p50), "p95 ms": float(p95), "p99 ms": float(p99),
            "p99.9 ms": float(p999)}


def producer_perf(bootstrap: str, topic: str, records: int, size: int, acks: str,
                  compression: str, throughput: int = -1, timeout: float = 600) -> dict:
    props = [f"bootstrap.servers={bootstrap}", f"acks={acks}"]
    if compression != "none":
        props.append(f"compression.type={compression}")
    cmd = tool_command("producer-perf-test", "--topic", topic, "--num-records", str(records),
                       "--record-size", str(size), "--throughput", str(throughput),
                       "--producer-props", *props)
    return parse_producer_perf(_run(cmd, timeout).stdout)


def parse_consumer_perf(stdout: str) -> dict:
    """ConsumerPerformance prints a CSV header and one line of values."""
    lines = [ln for ln in stdout.strip().splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if line.startswith("start.time"):
            names = [c.strip() for c in line.split(",")]
            values = [c.strip() for c in lines[i + 1].split(",")]
            row = dict(zip(names, values, strict=False))
            return {"MB": float(row["data.consumed.in.MB"]),
                    "records": int(row["data.consumed.in.nMsg"]),
                    "rebalance ms": float(row["rebalance.time.ms"]),
                    "fetch ms": float(row["fetch.time.ms"]),
                    "MB/s": float(row["fetch.MB.sec"]), "records/s": float(row["fetch.nMsg.sec"])}
    raise WorkloadError(f"no ConsumerPerformance result in: {stdout.strip()[-400:]}")


def consumer_perf(bootstrap: str, topic: str, records: int, timeout: float = 600) -> dict:
    cmd = tool_command("consumer-perf-test", "--bootstrap-server", bootstrap, "--topic", topic,
                       "--messages", str(records), "--timeout", "30000")
    return parse_consumer_perf(_run(cmd, timeout).stdout)


# ---------------------------------------------------------------- confluent-kafka worker

def ck(spec: dict, timeout: float = 600) -> dict:
    cmd = [sys.executable, "-m", "bench.ck_worker", json.dumps(spec)]
    out = _run(cmd, timeout).stdout.strip().splitlines()
    if not out:
        raise WorkloadError("confluent-kafka worker printed nothing")
    return json.loads(out[-1])


def ck_produce(bootstrap, topic, records, size, acks, compression) -> dict:
    r = ck({"mode": "produce", "bootstrap": bootstrap, "topic": topic, "records": records,
            "size": size, "acks": acks, "compression": compression})
    if r["errors"]:
        raise WorkloadError(f"{r['errors']} records not delivered")
    return {"records": r["records"], "records/s": r["records"] / r["seconds"],
            "MB/s": r["bytes"] / MB / r["seconds"]}


def ck_consume(bootstrap, topic, records, partitions=1) -> dict:
    r = ck({"mode": "consume", "bootstrap": bootstrap, "topic": topic, "records": records,
            "partitions": partitions})
    if r["records"] < records:
        raise WorkloadError(f"read {r['records']} of {records} records")
    return {"records": r["records"], "records/s": r["records"] / r["seconds"],
            "MB/s": r["bytes"] / MB / r["seconds"]}


def ck_e2e(bootstrap, topic, rate, seconds, size, acks="all", warmup=1.0) -> dict:
    r = ck({"mode": "e2e", "bootstrap": bootstrap, "topic": topic, "rate": rate,
            "seconds": seconds, "warmup": warmup, "size": size, "acks": acks},
           timeout=seconds + 180)
    if r["errors"] or r["received"] < r["sent"]:
        raise WorkloadError(f"e2e: sent {r['sent']}, received {r['received']}, "
                            f"{r['errors']} delivery errors")
    return {"p50 ms": r["p50_ms"], "p99 ms": r["p99_ms"], "p99.9 ms": r["p999_ms"],
            "achieved rec/s": r["sent"] / r["produce_seconds"] if r.get("produce_seconds") else None}


# ---------------------------------------------------------------- start-up

@dataclass
class Startup:
    to_first_produce: float
    to_ready: float
    format_seconds: float


def measure_startup(kind: str, start_fn, timeout: float = 120.0):
    """Start a fresh broker with start_fn(on_spawn=...) and produce one record (to a new,
    auto-created topic) from the moment the process is spawned until it is acknowledged.
    Returns (Startup, broker)."""
    from confluent_kafka import Producer
    result: dict = {}
    spawned = threading.Event()

    def on_spawn(bootstrap: str) -> None:
        result["t_spawn"] = time.monotonic()
        result["bootstrap"] = bootstrap
        spawned.set()

    def produce_loop():
        if not spawned.wait(timeout):
            return
        p = Producer({"bootstrap.servers": result["bootstrap"], "log_level": 0,
                      "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 50,
                      "topic.metadata.refresh.fast.interval.ms": 10,
                      "retry.backoff.ms": 10, "retry.backoff.max.ms": 50,
                      "message.timeout.ms": int(timeout * 1000)})

        def cb(err, _msg):
            if err is None:
                result["t_acked"] = time.monotonic()
            else:
                result["error"] = str(err)
        p.produce("startup-probe", b"hello", on_delivery=cb)
        deadline = time.monotonic() + timeout
        while "t_acked" not in result and "error" not in result and time.monotonic() < deadline:
            p.poll(0.002)
        p.flush(5)

    thread = threading.Thread(target=produce_loop, daemon=True)
    thread.start()
    broker = start_fn(on_spawn=on_spawn)
    thread.join(timeout)
    if "t_acked" not in result:
        broker.stop()
        raise WorkloadError(f"{kind}: no acknowledged produce within {timeout:.0f}s "
                            f"({result.get('error', 'no answer')})")
    return Startup(result["t_acked"] - result["t_spawn"], broker.ready_at - broker.spawned_at,
                   broker.format_seconds), broker
