"""Timing and size knobs of the Raft core (all times in the caller's logical milliseconds)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RaftOptions:
    # Kafka's controller.quorum.election.timeout.ms default; each node waits a random
    # time in [election_timeout_ms, 2 * election_timeout_ms) before campaigning.
    election_timeout_ms: int = 1000
    heartbeat_interval_ms: int = 100
    max_entries_per_append: int = 512
    max_bytes_per_append: int = 1 << 20      # keeps a request well under gRPC's 4 MiB limit
    snapshot_chunk_bytes: int = 1 << 20
    snapshot_threshold: int = 20_000         # applied entries since the last snapshot; 0 = never

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_interval_ms < self.election_timeout_ms:
            raise ValueError("need 0 < heartbeat_interval_ms < election_timeout_ms")
        if self.max_entries_per_append < 1 or self.snapshot_chunk_bytes < 1:
            raise ValueError("append and snapshot chunk limits must be positive")
