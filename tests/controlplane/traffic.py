"""A real acks=all producer running through a level-4 scenario, and the check that
every acknowledged record is read back exactly once, in order.

The producer is tests/controlplane/kafka_client.py `produce-until`, started as a pod of
the namespace would run it (cluster DNS), stopped by a file; the records are read back
with `dump` (a consumer group, up to the high watermarks).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrafficResult:
    acked: list[tuple[int, int, int]]  # (seq, partition, offset)
    failed: int
    worst_pause: float
    sent: int
    problems: list[str] = field(default_factory=list)


def check_exactly_once_in_order(acked: list[tuple[int, int, int]],
                                records: list[tuple[int, int, str]], tag: str) -> list[str]:
    """Problems (empty when fine): an acknowledged record missing or read twice, or the
    records of a partition read in another order than they were acknowledged. Only
    records of this producer run (values "TAG-SEQ") count."""
    problems = []
    records = [(p, o, v.rsplit("-", 1)[1]) for p, o, v in records if v.rsplit("-", 1)[0] == tag]
    read = Counter(int(value) for _, _, value in records)
    missing = [seq for seq, _, _ in acked if read[seq] == 0]
    twice = [seq for seq, _, _ in acked if read[seq] > 1]
    if missing:
        problems.append(f"{len(missing)} acknowledged record(s) never read, e.g. {missing[:5]}")
    if twice:
        problems.append(f"{len(twice)} acknowledged record(s) read more than once, e.g. {twice[:5]}")
    acked_seqs = {seq for seq, _, _ in acked}
    by_partition: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for partition, offset, value in records:
        if int(value) in acked_seqs:
            by_partition[partition].append((offset, int(value)))
    for partition, items in by_partition.items():
        seqs = [seq for _, seq in sorted(items)]
        # Records of one key (seq % 16) land on one partition in produce order.
        last: dict[int, int] = {}
        for seq in seqs:
            if last.get(seq % 16, -1) > seq:
                problems.append(f"partition {partition}: record {seq} read after {last[seq % 16]}")
                break
            last[seq % 16] = seq
    return problems


class Traffic:
    def __init__(self, harness, namespace: str, bootstrap: str, topic: str):
        self.harness, self.namespace, self.bootstrap, self.topic = harness, namespace, bootstrap, topic
        self.stopfile = Path(harness.workdir) / f"stop-{namespace}-{topic}-{time.monotonic_ns()}"
        self.process: subprocess.Popen | None = None
        self.tag = uuid.uuid4().hex[:8]

    def start(self) -> Traffic:
        client = Path(__file__).resolve().parent / "kafka_client.py"
        self.process = self.harness.runner_popen(
            self.namespace, [sys.executable, str(client), self.bootstrap, "produce-until", self.topic,
                             str(self.stopfile), self.tag])
        return self

    def stop(self) -> TrafficResult:
        assert self.process is not None
        self.stopfile.write_text("stop")
        try:
            out, err = self.process.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        if self.process.returncode != 0:
            raise AssertionError(f"producer failed ({self.process.returncode}):\n{out}\n{err[-3000:]}")
        data = json.loads(out.strip().splitlines()[-1])
        acked = [tuple(item) for item in data["acked"]]
        result = TrafficResult(acked, data["failed"], data["worst_pause"], data["sent"])
        dump = self.harness.kafka(self.namespace, self.bootstrap, "dump", self.topic, timeout=120)
        if not dump["complete"]:
            result.problems.append("could not read up to the high watermarks")
        result.problems += check_exactly_once_in_order(acked, [tuple(r) for r in dump["records"]], self.tag)
        return result

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
