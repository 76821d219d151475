"""What the Raft core asks of its driver, and the durable state it starts from.

After every input the driver takes one `Ready` from the core and handles it in
this order — the core's safety rests on it:

1. apply `storage` operations in order and make them durable (fsync);
2. only then send `messages` (and any response returned by `RaftCore.receive`),
   because a vote or an acknowledgement promises that the state is on disk;
3. load `restore` into the state machine, if set;
4. apply `committed` entries in order.

A crash may happen anywhere; what was durable is handed back as `PersistentState`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .entries import Entry, Snapshot
from .messages import Message


@dataclass(frozen=True, slots=True)
class SaveTermAndVote:
    """Replace the durable (current term, voted for) pair atomically."""

    term: int
    voted_for: int | None


@dataclass(frozen=True, slots=True)
class SaveSnapshot:
    """Store the snapshot; the log keeps only the entries that follow it (those after
    its last index, and only if the entry at its last index has its term)."""

    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class TruncateLog:
    """Drop log entries at `from_index` and after."""

    from_index: int


@dataclass(frozen=True, slots=True)
class AppendLog:
    """Append entries; the first follows the last stored entry (or the snapshot)."""

    entries: tuple[Entry, ...]


StorageOp = SaveTermAndVote | SaveSnapshot | TruncateLog | AppendLog


@dataclass(frozen=True, slots=True)
class Ready:
    storage: tuple[StorageOp, ...] = ()
    messages: tuple[Message, ...] = ()
    restore: Snapshot | None = None
    committed: tuple[Entry, ...] = ()
    snapshot_due: bool = False  # enough applied since the last snapshot: call RaftCore.compact

    def __bool__(self) -> bool:
        return bool(self.storage or self.messages or self.restore or self.committed)


@dataclass(frozen=True, slots=True)
class PersistentState:
    """Everything that survives a crash; a new node starts from `bootstrap_snapshot`."""

    term: int
    voted_for: int | None
    snapshot: Snapshot
    entries: tuple[Entry, ...] = ()
