"""The leader's record of one follower's (or learner's) replication."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Progress:
    next_index: int          # the next entry to send
    match_index: int = 0     # the highest index known to be replicated
    last_heard: int = 0      # when it last answered in this term (check-quorum)
    awaiting_reply: bool = False  # one request in flight at a time; heartbeats retry it
    snapshot_index: int | None = None  # while sending a snapshot: which one ...
    snapshot_offset: int = 0           # ... and the next chunk's offset


def commit_candidate(matches: list[int], quorum: int) -> int:
    """The highest index a quorum of voters holds, given each voter's match index."""
    if len(matches) < quorum:
        return 0
    return sorted(matches, reverse=True)[quorum - 1]
