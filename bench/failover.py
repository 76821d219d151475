"""python -m bench.failover: leader kill -> first acknowledged acks=all produce.

Three combined broker+controller nodes (Brook through tests/support/cluster.py, Apache
Kafka through tools/reference_kafka.py), one topic with RF=3 and min.insync.replicas=2,
and a confluent-kafka idempotent acks=all producer writing continuously. Each round
kill -9s the partition's leader and measures the time from the kill to the first
successful delivery of a record produced after the kill; the victim is then restarted
and the next round waits until the ISR holds all three replicas again.

Both clusters get the same heartbeat, session and replica-lag settings (Kafka's defaults
unless --fast), since the session timeout is what bounds failover after a crash.

    python -m bench.failover [--kills 5] [--brokers brook,kafka] [--fast]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic

from bench import RESULTS_DIR
from bench.brokers import CLUSTER_NODES, machine_note

TOPIC = "failover"
# Kafka's defaults; --fast uses what Brook's fault tests use
KAFKA_TIMING = {"broker.heartbeat.interval.ms": "2000", "broker.session.timeout.ms": "9000",
                "replica.lag.time.max.ms": "30000"}
FAST_TIMING = {"broker.heartbeat.interval.ms": "500", "broker.session.timeout.ms": "3000",
               "replica.lag.time.max.ms": "3000"}
SETTLE_TIMEOUT = 120.0  # per wait for a leader / a full ISR


class BrookNodes:
    label = "Brook"

    def __init__(self, timing: dict[str, str]) -> None:
        from tests.support.cluster import BrokerCluster
        self.root = Path(tempfile.mkdtemp(prefix="brook-failover-"))
        self.cluster = BrokerCluster(self.root, CLUSTER_NODES, **{
            k.replace(".", "_"): v for k, v in timing.items()})
        self.bootstrap = ""

    def start(self) -> None:
        self.cluster.start(timeout=120)
        self.bootstrap = ",".join(b.bootstrap for b in self.cluster.brokers)

    def kill(self, node_id: int) -> None:
        self.cluster.brokers[node_id].kill()

    def restart(self, node_id: int) -> None:
        self.cluster.brokers[node_id].start(timeout=120)

    def stop(self) -> None:
        self.cluster.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class KafkaNodes:
    label = "Kafka"

    def __init__(self, timing: dict[str, str]) -> None:
        from tools.reference_kafka import ReferenceKafkaCluster
        self.kafka = ReferenceKafkaCluster(CLUSTER_NODES, port=0, heap="512m",
                                           broker_config=dict(timing), start_timeout=180)
        self.bootstrap = ""

    def start(self) -> None:
        self.kafka.start()
        self.bootstrap = self.kafka.bootstrap

    def _index(self, node_id: int) -> int:
        return next(i for i, n in enumerate(self.kafka.nodes) if n.node_id == node_id)

    def kill(self, node_id: int) -> None:
        self.kafka.stop_node(self._index(node_id), kill=True)

    def restart(self, node_id: int) -> None:
        self.kafka.start_node(self._index(node_id), timeout=180)

    def stop(self) -> None:
        self.kafka.stop()


class Writer(threading.Thread):
    """acks=all idempotent producer; remembers when each record was produced and acked."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True)
        self.producer = confluent_kafka.Producer({
            "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
            "linger.ms": 2, "message.timeout.ms": 300_000, "log_level": 0})
        self.lock = threading.Lock()
        self.acks: list[tuple[float, float]] = []  # (produced at, acked at)
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            produced = time.monotonic()
            try:
                self.producer.produce(TOPIC, value=b"x" * 100, on_delivery=(
                    lambda err, msg, p=produced: self._delivered(err, p)))
            except BufferError:
                pass
            self.producer.poll(0.005)
        self.producer.flush(60)

    def _delivered(self, err, produced: float) -> None:
        with self.lock:
            if err is None:
                self.acks.append((produced, time.monotonic()))
            else:
                self.errors.append(str(err))

    def first_ack_after(self, t: float) -> float | None:
        with self.lock:
            times = [acked for produced, acked in self.acks if produced > t]
        return min(times) if times else None


def _partition(admin: AdminClient):
    md = admin.list_topics(TOPIC, timeout=10)
    topic = md.topics.get(TOPIC)
    if topic is None or topic.error is not None or 0 not in topic.partitions:
        return None
    return topic.partitions[0]


def _leader(admin: AdminClient) -> tuple[int] | None:
    """(leader id,) -- a tuple so that node 0 is truthy for _wait."""
    p = _partition(admin)
    return (p.leader,) if p is not None and p.leader >= 0 else None


def _wait(what: str, check, timeout: float = SETTLE_TIMEOUT, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except confluent_kafka.KafkaException:
            value = None
        if value:
            return value
        time.sleep(poll)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def run_one(nodes, kills: int) -> dict:
    nodes.start()
    try:
        admin = AdminClient({"bootstrap.servers": nodes.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3, config={"min.insync.replicas": "2"})])[
            TOPIC].result(60)
        _wait("a full ISR", lambda: (p := _partition(admin)) and len(p.isrs) == 3)
        writer = Writer(nodes.bootstrap)
        writer.start()
        times: list[float] = []
        elections: list[float] = []
        try:
            _wait("first acks", lambda: writer.acks)
            for round_ in range(kills):
                time.sleep(2)  # steady state before the kill
                victim = _wait("a leader", lambda: _leader(admin))[0]
                killed_at = time.monotonic()
                nodes.kill(victim)
                # when Metadata (polled every 0.1 s) first names another leader: the
                # cluster's share of the failover, the rest is the client finding it
                elected = _wait("a new leader", lambda v=victim: (
                    (p := _partition(admin)) is not None and p.leader not in (-1, v)
                    and time.monotonic()), poll=0.1)
                acked = _wait("an acks=all delivery after the kill",
                              lambda t=killed_at: writer.first_ack_after(t))
                times.append(acked - killed_at)
                elections.append(elected - killed_at)
                print(f"  {nodes.label} kill {round_ + 1}/{kills}: leader {victim}, new leader "
                      f"in Metadata after {elections[-1]:.2f} s, first ack after "
                      f"{times[-1]:.2f} s", flush=True)
                nodes.restart(victim)
                _wait("the ISR to be full again",
                      lambda: (p := _partition(admin)) and len(p.isrs) == 3)
        finally:
            writer.stopping.set()
            writer.join(90)
        return {"failover_s": times, "new_leader_in_metadata_s": elections,
                "acked": len(writer.acks), "error_count": len(writer.errors),
                "errors": writer.errors[:5]}  # the first few, as examples
    finally:
        nodes.stop()


def _summary(times: list[float]) -> str:
    return (f"min {min(times):.2f} s, median {statistics.median(times):.2f} s, "
            f"max {max(times):.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=5, help="leader kills per cluster")
    parser.add_argument("--brokers", default="brook,kafka", help="brook, kafka or both")
    parser.add_argument("--fast", action="store_true",
                        help="heartbeat 500 ms, session 3 s, replica lag 3 s (both clusters)")
    args = parser.parse_args(argv)
    timing = FAST_TIMING if args.fast else KAFKA_TIMING
    kinds = {"brook": BrookNodes, "kafka": KafkaNodes}
    results = {}
    for kind in args.brokers.split(","):
        print(f"{kind}: 3 nodes, RF=3, min.insync.replicas=2, {timing}", flush=True)
        results[kind] = run_one(kinds[kind](timing), args.kills)
    print()
    for kind, result in results.items():
        print(f"{kind:6s} failover (kill -> first acks=all ack): {_summary(result['failover_s'])}"
              f"  [{', '.join(f'{t:.2f}' for t in result['failover_s'])}]"
              f"  delivery errors: {result['error_count']}")
        print(f"{'':6s} new leader in Metadata: "
              f"{_summary(result['new_leader_in_metadata_s'])}")
    if len(results) == 2:
        brook = statistics.median(results["brook"]["failover_s"])
        kafka = statistics.median(results["kafka"]["failover_s"])
        print(f"median Brook/Kafka: {brook / kafka:.2f}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"failover-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"timing": timing, "kills": args.kills, "results": results,
                               "machine": machine_note()}, indent=2))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
