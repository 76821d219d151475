"""The messages Raft peers exchange (Raft §5, thesis §4.2.3 and §9.6 for pre-vote).

Every message names its sender and recipient and carries the sender's term.
Requests are answered by exactly one response, which the transport carries back
on the same call; a lost request or response is simply retried by the leader's
next heartbeat or the next election timeout.
"""

from __future__ import annotations

from dataclasses import dataclass

from .entries import Entry
from .membership import Configuration


@dataclass(frozen=True, slots=True)
class VoteRequest:
    sender: int
    recipient: int
    term: int            # for a pre-vote: the term the sender would campaign in
    last_log_index: int
    last_log_term: int
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class VoteResponse:
    sender: int
    recipient: int
    term: int            # the responder's current term (never raised by a pre-vote)
    granted: bool
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class AppendRequest:
    sender: int
    recipient: int
    term: int
    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    leader_commit: int


@dataclass(frozen=True, slots=True)
class AppendResponse:
    sender: int
    recipient: int
    term: int
    success: bool
    match_index: int = 0          # on success: the follower's log equals the leader's up to here
    rejected_prev_index: int = 0  # on rejection: the request's prev_index, to spot stale replies
    conflict_index: int = 0       # on rejection: where the leader should try next ...
    conflict_term: int = 0        # ... unless it has entries of this term (fast backtracking)


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """One chunk of the leader's snapshot (InstallSnapshot)."""

    sender: int
    recipient: int
    term: int
    last_index: int
    last_term: int
    configuration: Configuration
    offset: int
    data: bytes
    done: bool


@dataclass(frozen=True, slots=True)
class SnapshotResponse:
    sender: int
    recipient: int
    term: int
    last_index: int   # which snapshot this answers
    next_offset: int  # the chunk the follower wants next
    done: bool        # the follower holds everything up to last_index


Request = VoteRequest | AppendRequest | SnapshotRequest
Response = VoteResponse | AppendResponse | SnapshotResponse
Message = Request | Response
