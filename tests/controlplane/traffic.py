"""A real acks=all producer and a consumer group member running through a level-4
scenario, and the checks that every acknowledged record is read exactly once, in order.

Both are tests/controlplane/kafka_client.py commands (`produce-until`, `consume-until`)
started as a pod of the namespace would run them (cluster DNS), each stopped by a file.
The group member reads the whole time; at the end the records are also read back with
`dump` (a fresh consumer group, up to the high watermarks). The checks are pure
functions of the lists the commands print.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrafficResult:
    acked: list[tuple[int, int, int]]  # (seq, partition, offset)
    failed: int
    worst_pause: float
    sent: int
    # The consumer group member that read throughout: distinct records of this run it
    # read, reads beyond the first of an offset, partition assignments it was given
    # (the first one included), longest wait between two records while the scenario ran.
    consumed: int = 0
    redelivered: int = 0
    rebalances: int = 0
    worst_gap: float = 0.0
    assigned_after: list[float] = field(default_factory=list)  # seconds after its start, each assignment
    problems: list[str] = field(default_factory=list)

    def report(self, what: str, seconds: float) -> None:
        """One `[issue-7]` line (pytest -s): how long a step took and what clients saw."""
        print(f"\n[issue-7] {what}: {seconds:.1f}s; producer: {len(self.acked)} acked, "
              f"{self.failed} failed, worst pause {self.worst_pause:.2f}s; group consumer: "
              f"{self.consumed} consumed, {self.redelivered} redelivered, {self.rebalances} assignment(s) "
              f"(at {', '.join(f'{t:.1f}' for t in self.assigned_after)}s), "
              f"worst gap {self.worst_gap:.2f}s")


@dataclass
class GroupCheck:
    consumed: int
    redelivered: int
    problems: list[str]


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


def check_group_reads(acked: list[tuple[int, int, int]], reads: list[tuple[int, int, str]], tag: str,
                      assigned_at: Sequence[int] = ()) -> GroupCheck:
    """The reads of a consumer group member that ran throughout, in the order they
    arrived; `assigned_at[i]` is how many reads had arrived when assignment i came.

    A group member may be given records again after a rebalance (at-least-once), so the
    reads are first collapsed by (partition, offset): one offset read with two values
    is a problem (divergent logs after a leader change); a record read again at its own
    offset is not. The collapsed reads must then hold every acknowledged record exactly
    once, in order (check_exactly_once_in_order). And within one assignment, the
    offsets of a partition read for the first time must increase: going back to an
    offset not read before, without a rebalance, means the member skipped it."""
    problems: list[str] = []
    first: dict[tuple[int, int], str] = {}
    divergent: list[str] = []
    redelivered = 0
    newest: dict[int, tuple[int, int]] = {}  # partition -> (offset, assignment) of its newest first read
    backwards: list[str] = []
    for index, (partition, offset, value) in enumerate(reads):
        if value.rsplit("-", 1)[0] != tag:
            continue
        seen = first.get((partition, offset))
        if seen is not None:
            redelivered += 1
            if seen != value:
                divergent.append(f"partition {partition} offset {offset}: {seen!r} then {value!r}")
            continue
        first[(partition, offset)] = value
        assignment = bisect_right(assigned_at, index)
        before = newest.get(partition)
        if before is not None and offset < before[0] and before[1] == assignment:
            backwards.append(f"partition {partition}: offset {offset} first read after {before[0]}")
        newest[partition] = (offset, assignment) if before is None or offset > before[0] or \
            before[1] != assignment else before
    if divergent:
        problems.append(f"{len(divergent)} offset(s) read with two different values, e.g. {divergent[:3]}")
    if backwards:
        problems.append(f"{len(backwards)} offset(s) read out of order without a rebalance, e.g. {backwards[:3]}")
    collapsed = [(partition, offset, value) for (partition, offset), value in first.items()]
    problems += check_exactly_once_in_order(acked, collapsed, tag)
    return GroupCheck(len(first), redelivered, problems)


class Traffic:
    def __init__(self, harness, namespace: str, bootstrap: str, topic: str):
        self.harness, self.namespace, self.bootstrap, self.topic = harness, namespace, bootstrap, topic
        stamp = time.monotonic_ns()
        self.stopfile = Path(harness.workdir) / f"stop-{namespace}-{topic}-{stamp}"
        self.consumer_stopfile = Path(harness.workdir) / f"stop-consumer-{namespace}-{topic}-{stamp}"
        self.consumer_ready = Path(harness.workdir) / f"assigned-consumer-{namespace}-{topic}-{stamp}"
        self.process: subprocess.Popen | None = None
        self.consumer: subprocess.Popen | None = None
        self.tag = uuid.uuid4().hex[:8]
        self.group = f"traffic-{self.tag}"

    def start(self, join_timeout: float = 60) -> Traffic:
        """Start the group member, wait until it has its partitions (joining a new group
        takes the initial rebalance delay, 3 s), then start the producer: the member is
        in the group before the scenario begins."""
        client = Path(__file__).resolve().parent / "kafka_client.py"
        self.consumer = self.harness.runner_popen(
            self.namespace, [sys.executable, str(client), self.bootstrap, "consume-until", self.topic,
                             str(self.consumer_stopfile), self.group, self.tag, str(self.consumer_ready)])
        deadline = time.monotonic() + join_timeout
        while not self.consumer_ready.exists():
            if self.consumer.poll() is not None or time.monotonic() > deadline:
                self.kill()
                out, err = self.consumer.communicate()
                raise AssertionError(f"group consumer not assigned within {join_timeout:.0f}s "
                                     f"(exit {self.consumer.returncode}):\n{out[-1000:]}\n{err[-3000:]}")
            time.sleep(0.1)
        self.process = self.harness.runner_popen(
            self.namespace, [sys.executable, str(client), self.bootstrap, "produce-until", self.topic,
                             str(self.stopfile), self.tag])
        return self

    @staticmethod
    def _finish(process: subprocess.Popen, stopfile: Path, timeout: float) -> tuple[int, str, str]:
        stopfile.write_text("stop")
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        return process.returncode, out, err

    def stop(self) -> TrafficResult:
        """Stop the producer (it flushes), then the group member (it reads on up to the
        high watermarks), then read everything back with a fresh group and check."""
        assert self.process is not None and self.consumer is not None
        code, out, err = self._finish(self.process, self.stopfile, 180)
        if code != 0:
            self.kill()
            raise AssertionError(f"producer failed ({code}):\n{out}\n{err[-3000:]}")
        data = json.loads(out.strip().splitlines()[-1])
        acked = [tuple(item) for item in data["acked"]]
        result = TrafficResult(acked, data["failed"], data["worst_pause"], data["sent"])

        code, out, err = self._finish(self.consumer, self.consumer_stopfile, 150)
        if code != 0:
            result.problems.append(f"group consumer failed ({code}): {out[-1000:]} {err[-2000:]}")
        else:
            group = json.loads(out.strip().splitlines()[-1])
            result.rebalances, result.worst_gap = group["rebalances"], group["worst_gap"]
            result.assigned_after = group["assigned_after"]
            if not group["complete"]:
                result.problems.append("group consumer (ran throughout): could not read up to the high watermarks")
            check = check_group_reads(acked, [tuple(r) for r in group["records"]], self.tag, group["assigned_at"])
            result.consumed, result.redelivered = check.consumed, check.redelivered
            result.problems += [f"group consumer (ran throughout): {p}" for p in check.problems]

        dump = self.harness.kafka(self.namespace, self.bootstrap, "dump", self.topic, timeout=120)
        if not dump["complete"]:
            result.problems.append("could not read up to the high watermarks")
        result.problems += check_exactly_once_in_order(acked, [tuple(r) for r in dump["records"]], self.tag)
        return result

    def kill(self) -> None:
        for process in (self.process, self.consumer):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
