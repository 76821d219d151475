"""python -m bench.raft_quorum: commit latency, throughput and failover of the metadata quorum.

Three QuorumNodes on 127.0.0.1 over gRPC with the default RaftOptions (election timeout
1 s, heartbeat 100 ms), fsync on every Ready. All three share one process and one event
loop, so the numbers are a pessimistic floor for a real three-host quorum.

    python -m bench.raft_quorum [--sequential 300] [--concurrent 64] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from brook.broker.raft import Configuration, Member, NotLeader
from brook.broker.raft.driver import QuorumNode
from tools.ports import free_ports


class Counter:
    def __init__(self) -> None:
        self.applied = 0

    def apply(self, entry) -> None:
        self.applied += 1

    def snapshot(self) -> bytes:
        return str(self.applied).encode()

    def restore(self, data: bytes) -> None:
        self.applied = int(data or b"0")


async def _leader(nodes: dict[int, QuorumNode]) -> QuorumNode:
    while True:
        leaders = [n for n in nodes.values() if n.is_leader]
        if len(leaders) == 1:
            return leaders[0]
        await asyncio.sleep(0.005)


def _ms(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


async def run(sequential: int, concurrent: int, seconds: float) -> None:
    root = Path(tempfile.mkdtemp(prefix="raft-bench-"))
    addresses = {i: f"127.0.0.1:{p}" for i, p in zip((1, 2, 3), free_ports(3), strict=True)}
    voters = Configuration(tuple(Member(i, a) for i, a in addresses.items()))
    nodes = {i: QuorumNode(i, root / str(i), Counter(), bootstrap=voters) for i in addresses}
    started = time.monotonic()
    for node_id, node in nodes.items():
        await node.start(listen=addresses[node_id])
    leader = await _leader(nodes)
    print(f"first leader elected after {time.monotonic() - started:.2f} s")

    latencies = []
    for n in range(sequential):
        began = time.monotonic()
        await leader.propose(b"seq-%d" % n)
        latencies.append(time.monotonic() - began)
    print(f"sequential propose -> committed and applied: {_ms(latencies)}")

    done, deadline = 0, time.monotonic() + seconds

    async def writer(worker: int) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await leader.propose(b"w%d" % worker)
            done += 1

    began = time.monotonic()
    await asyncio.gather(*(writer(w) for w in range(concurrent)))
    print(f"{concurrent} concurrent proposers: {done / (time.monotonic() - began):.0f} commits/s")

    old = leader.node_id
    killed = time.monotonic()
    await nodes.pop(old).stop()
    new = await _leader(nodes)
    elected = time.monotonic() - killed
    while True:
        try:
            await new.propose(b"after failover")
            break
        except NotLeader:
            new = await _leader(nodes)
    print(f"failover: leader {old} stopped -> {new.node_id} elected after {elected:.2f} s, "
          f"first commit after {time.monotonic() - killed:.2f} s")
    for node in nodes.values():
        await node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--concurrent", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(run(args.sequential, args.concurrent, args.seconds))


if __name__ == "__main__":
    main()
