"""Durable state kept in memory: the reference semantics of the storage operations.

The simulator uses it as each node's "disk" (it survives a simulated crash, the
RaftCore does not); the file store must behave the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from .entries import Entry, Snapshot, bootstrap_snapshot
from .membership import Configuration
from .ready import AppendLog, PersistentState, SaveSnapshot, SaveTermAndVote, StorageOp, TruncateLog


class MemoryStore:
    def __init__(self, configuration: Configuration | None = None) -> None:
        self.term = 0
        self.voted_for: int | None = None
        self.snapshot: Snapshot = bootstrap_snapshot(configuration or Configuration())
        self.entries: list[Entry] = []

    @property
    def last_index(self) -> int:
        return self.entries[-1].index if self.entries else self.snapshot.last_index

    def apply(self, operations: Iterable[StorageOp]) -> None:
        for operation in operations:
            match operation:
                case SaveTermAndVote(term, voted_for):
                    self.term, self.voted_for = term, voted_for
                case SaveSnapshot(snapshot):
                    self.snapshot = snapshot
                    follows = any(e.index == snapshot.last_index and e.term == snapshot.last_term
                                  for e in self.entries)
                    self.entries = ([e for e in self.entries if e.index > snapshot.last_index]
                                    if follows else [])
                case TruncateLog(from_index):
                    self.entries = [e for e in self.entries if e.index < from_index]
                case AppendLog(entries):
                    if entries and entries[0].index != self.last_index + 1:
                        raise ValueError(f"append at {entries[0].index} after {self.last_index}")
                    self.entries.extend(entries)

    def load(self) -> PersistentState:
        return PersistentState(self.term, self.voted_for, self.snapshot, tuple(self.entries))
