"""Log entries and snapshots: the immutable values the quorum replicates and stores."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .membership import Configuration


class EntryKind(enum.IntEnum):
    COMMAND = 0        # the application's bytes; handed to apply()
    LEADER_CHANGE = 1  # the no-op a new leader appends so it can commit in its own term (§5.4.2)
    CONFIGURATION = 2  # an encoded Configuration; takes effect as soon as it is appended


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    kind: EntryKind
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state machine as of `last_index`, plus what Raft needs to continue after it."""

    last_index: int
    last_term: int
    configuration: Configuration
    data: bytes = b""


def bootstrap_snapshot(configuration: Configuration) -> Snapshot:
    """Index 0 of a new log: no state yet, only the voters the quorum starts with."""
    return Snapshot(last_index=0, last_term=0, configuration=configuration)
