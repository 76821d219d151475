"""Several `brook broker` processes on loopback forming one cluster (testing ladder 3)."""

from __future__ import annotations

from pathlib import Path

from .broker_process import BrokerProcess


class BrokerCluster:
    def __init__(self, base_dir: Path, size: int = 3, voters: int | None = None,
                 **overrides: str) -> None:
        self.brokers = [BrokerProcess(base_dir / f"broker{i}" / "data") for i in range(size)]
        voter_count = min(3, size) if voters is None else voters
        quorum = ",".join(f"{i}@127.0.0.1:{b.controller_port}"
                          for i, b in enumerate(self.brokers[:voter_count]))
        for i, broker in enumerate(self.brokers):
            broker.overrides.update({
                "node.id": str(i), "controller.quorum.voters": quorum,
                "broker.heartbeat.interval.ms": "500", "broker.session.timeout.ms": "3000",
                "replica.lag.time.max.ms": "3000",
                **{k.replace("_", "."): str(v) for k, v in overrides.items()}})

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers if b.alive())

    def start(self, timeout: float = 60.0) -> BrokerCluster:
        for broker in self.brokers:
            broker.launch()
        for broker in self.brokers:
            broker.wait_ready(timeout)
        return self

    def stop(self) -> None:
        for broker in self.brokers:
            broker.kill()
