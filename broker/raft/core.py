"""The Raft state machine of one quorum member: pure, deterministic, no I/O.

Inputs are explicit calls — `tick(now)` with a logical clock, `receive(message,
now)`, `propose(data)`, membership changes, `compact(index, data)` — and every
output waits in a `Ready` the driver takes with `take_ready()` (see ready.py for
the order in which it must be handled: persist, then send, then apply). Requests
are answered by the return value of `receive`, which is sent only after that
Ready is persisted. Randomness (election timeouts) comes from a seeded generator,
so a run is reproducible from its inputs and seed.

Beyond the basic algorithm (Raft §5) the core implements:
- pre-vote (thesis §9.6): a node campaigns only after a majority says it could
  win, so a node rejoining after a partition does not raise terms and depose a
  healthy leader; a node that heard from a leader within the minimum election
  timeout refuses votes (thesis §4.2.3), which also fends off removed servers;
- check-quorum: a leader that has not heard from a majority for an election
  timeout steps down, so a partitioned leader stops claiming leadership;
- a leader commits by counting replicas only for entries of its own term
  (§5.4.2), and appends a LEADER_CHANGE entry on election to get one;
- fast backtracking: a rejection carries the conflicting term and its first
  index, so the leader skips a whole term per round trip;
- snapshots, sent in chunks when a follower needs entries already compacted;
- single-server membership changes (thesis §4.1, with the fix that a leader
  first commits an entry of its own term), one in flight, effective when
  appended; learners receive the log but neither vote nor count for commits.
"""

from __future__ import annotations

import enum
import random

from .codec import decode_configuration, encode_configuration
from .configuration_history import ConfigurationHistory
from .entries import Entry, EntryKind, Snapshot
from .errors import ConfigurationChangeInProgress, LearnerNotCaughtUp, NotLeader
from .membership import Configuration, Member
from .messages import (
    AppendRequest,
    AppendResponse,
    Message,
    Response,
    SnapshotRequest,
    SnapshotResponse,
    VoteRequest,
    VoteResponse,
)
from .options import RaftOptions
from .progress import Progress, commit_candidate
from .raft_log import RaftLog
from .ready import (
    AppendLog,
    PersistentState,
    Ready,
    SaveSnapshot,
    SaveTermAndVote,
    StorageOp,
    TruncateLog,
)


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class _IncomingSnapshot:
    """Chunks of a leader's snapshot received so far (volatile)."""

    def __init__(self, last_index: int, last_term: int) -> None:
        self.last_index = last_index
        self.last_term = last_term
        self.data = bytearray()


class RaftCore:
    def __init__(self, node_id: int, state: PersistentState,
                 options: RaftOptions | None = None, *, seed: int = 0, now: int = 0) -> None:
        self.node_id = node_id
        self.options = options or RaftOptions()
        self._random = random.Random(seed)
        self._now = now

        self.term = state.term
        self.voted_for = state.voted_for
        self.snapshot = state.snapshot
        self.log = RaftLog(state.snapshot, state.entries)
        self._configurations = ConfigurationHistory(state.snapshot.last_index,
                                                    state.snapshot.configuration)
        self._track_configurations(state.entries)

        self.role = Role.FOLLOWER
        self.leader_id: int | None = None
        self.commit_index = state.snapshot.last_index
        self.applied_index = state.snapshot.last_index
        self._last_leader_contact: int | None = None
        self._votes: set[int] = set()
        self._election_deadline = 0
        self._reset_election_timer()
        if self.configuration.voters == {self.node_id}:
            self._election_deadline = self._now  # a sole voter has nobody to wait for

        self._progress: dict[int, Progress] = {}
        self._heartbeat_deadline = 0
        self._check_quorum_deadline = 0
        self._term_start_index = 0
        self._replicate_pending = False
        self._incoming: _IncomingSnapshot | None = None

        self._storage: list[StorageOp] = []
        self._messages: list[Message] = []
        # A restarted node rebuilds its state machine from the snapshot first.
        self._restore: Snapshot | None = state.snapshot if state.snapshot.last_index else None

    # --- observation ----------------------------------------------------------------

    @property
    def configuration(self) -> Configuration:
        """The configuration in force: the latest one in the log, committed or not."""
        return self._configurations.latest

    @property
    def committed_configuration(self) -> Configuration:
        return self._configurations.at(self.commit_index)

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def next_deadline(self) -> int:
        """The logical time at which `tick` has something to do."""
        if self.role is Role.LEADER:
            return min(self._heartbeat_deadline, self._check_quorum_deadline)
        return self._election_deadline

    def match_index(self, node_id: int) -> int | None:
        """On the leader: how far a member's log is known to match."""
        progress = self._progress.get(node_id)
        return progress.match_index if progress else None

    # --- inputs ---------------------------------------------------------------------

    def tick(self, now: int) -> None:
        self._now = max(self._now, now)
        if self.role is Role.LEADER:
            if self._now >= self._check_quorum_deadline:
                if not self._quorum_recently_heard():
                    self._become_follower(self.term, leader_id=None)
                    return
                self._check_quorum_deadline = self._now + self.options.election_timeout_ms
            if self._now >= self._heartbeat_deadline:
                self._broadcast_append()
        elif self._now >= self._election_deadline:
            if self._may_campaign():
                self._start_pre_vote()
            else:
                self._reset_election_timer()

    def receive(self, message: Message, now: int) -> Response | None:
        """Handle a message; a request's response is returned (send it after persisting)."""
        self._now = max(self._now, now)
        if message.recipient != self.node_id:
            return None
        match message:
            case VoteRequest():
                return self._on_vote_request(message)
            case AppendRequest():
                return self._on_append_request(message)
            case SnapshotRequest():
                return self._on_snapshot_request(message)
            case VoteResponse():
                self._on_vote_response(message)
            case AppendResponse():
                self._on_append_response(message)
            case SnapshotResponse():
                self._on_snapshot_response(message)
        return None

    def propose(self, data: bytes) -> int:
        """Append a command on the leader; returns its index (it commits later, or never)."""
        self._require_leader()
        return self._append_as_leader(EntryKind.COMMAND, data)

    def add_learner(self, member: Member) -> int:
        """Start replicating to a new non-voting member; returns the configuration's index."""
        self._require_leader()
        return self._change_configuration(self.configuration.with_learner(member))

    def promote_learner(self, node_id: int) -> int:
        """Make a caught-up learner a voter."""
        self._require_leader()
        progress = self._progress.get(node_id)
        if node_id in self.configuration.learners and (
                progress is None or progress.match_index < self.commit_index):
            raise LearnerNotCaughtUp(f"learner {node_id} has not caught up yet")
        return self._change_configuration(self.configuration.with_promoted(node_id))

    def remove_member(self, node_id: int) -> int:
        """Remove a voter or learner; a leader that removes itself steps down once committed."""
        self._require_leader()
        return self._change_configuration(self.configuration.without(node_id))

    def compact(self, index: int, data: bytes) -> None:
        """The state machine's snapshot as of applied `index` replaces the log up to it."""
        if not self.snapshot.last_index < index <= self.applied_index:
            raise ValueError(f"snapshot index {index} not in "
                             f"({self.snapshot.last_index}, {self.applied_index}]")
        term = self.log.term_at(index)
        assert term is not None
        snapshot = Snapshot(index, term, self._configurations.at(index), data)
        self._configurations.compact(index, snapshot.configuration, keep_later=True)
        self.log.compact(snapshot)
        self.snapshot = snapshot
        self._storage.append(SaveSnapshot(snapshot))

    def take_ready(self) -> Ready:
        if self._replicate_pending and self.role is Role.LEADER:
            for node_id, progress in self._progress.items():
                if not progress.awaiting_reply:
                    self._send_append(node_id, progress)
        self._replicate_pending = False
        committed = self.log.entries(self.applied_index + 1, self.commit_index)
        self.applied_index = self.commit_index
        threshold = self.options.snapshot_threshold
        ready = Ready(
            storage=tuple(self._storage),
            messages=tuple(self._messages),
            restore=self._restore,
            committed=committed,
            snapshot_due=threshold > 0 and self.applied_index - self.snapshot.last_index >= threshold,
        )
        self._storage.clear()
        self._messages.clear()
        self._restore = None
        return ready

    # --- elections ------------------------------------------------------------------

    def _reset_election_timer(self) -> None:
        timeout = self.options.election_timeout_ms
        self._election_deadline = self._now + self._random.randrange(timeout, 2 * timeout)

    def _may_campaign(self) -> bool:
        """Voters campaign; so does a voter that an uncommitted change is removing (thesis
        §4.2.2): it may hold the only copy of that change. It then counts votes in the new
        configuration, not its own. Only the latest configuration in a log can be uncommitted
        (a leader appends one only after the previous one committed), so the one before it
        is the committed one — unlike this node's commit index, which a restart resets."""
        if self.node_id in self.configuration.voters:
            return True
        previous = self._configurations.previous
        return (previous is not None and self._configurations.latest_index > self.commit_index
                and self.node_id in previous.voters)

    def _in_leader_lease(self) -> bool:
        """Whether a leader is believed alive, so votes for others would only disrupt it."""
        if self.role is Role.LEADER:
            return True
        return (self.leader_id is not None and self._last_leader_contact is not None
                and self._now - self._last_leader_contact < self.options.election_timeout_ms)

    def _start_pre_vote(self) -> None:
        self.role = Role.PRE_CANDIDATE
        self.leader_id = None
        self._votes = {self.node_id}
        self._reset_election_timer()
        if self._has_quorum(self._votes):
            self._start_election()
            return
        for voter in self.configuration.voters - {self.node_id}:
            self._messages.append(VoteRequest(self.node_id, voter, self.term + 1,
                                              self.log.last_index, self.log.last_term,
                                              pre_vote=True))

    def _start_election(self) -> None:
        self.role = Role.CANDIDATE
        self._set_term_and_vote(self.term + 1, self.node_id)
        self._votes = {self.node_id}
        self._reset_election_timer()
        if self._has_quorum(self._votes):
            self._become_leader()
            return
        for voter in self.configuration.voters - {self.node_id}:
            self._messages.append(VoteRequest(self.node_id, voter, self.term,
                                              self.log.last_index, self.log.last_term))

    def _has_quorum(self, nodes: set[int]) -> bool:
        configuration = self.configuration
        return len(nodes & configuration.voters) >= configuration.quorum

    def _on_vote_request(self, request: VoteRequest) -> VoteResponse:
        log_ok = self.log.is_up_to_date(request.last_log_index, request.last_log_term)
        if request.pre_vote:
            granted = request.term > self.term and log_ok and not self._in_leader_lease()
            return VoteResponse(self.node_id, request.sender, self.term, granted, pre_vote=True)
        if request.term < self.term or (request.term > self.term and self._in_leader_lease()):
            return VoteResponse(self.node_id, request.sender, self.term, granted=False)
        if request.term > self.term:
            self._become_follower(request.term, leader_id=None)
        granted = log_ok and self.voted_for in (None, request.sender)
        if granted:
            self._set_term_and_vote(self.term, request.sender)
            self._reset_election_timer()
        return VoteResponse(self.node_id, request.sender, self.term, granted)

    def _on_vote_response(self, response: VoteResponse) -> None:
        if response.pre_vote:
            if not response.granted:
                if response.term > self.term:
                    self._become_follower(response.term, leader_id=None)
                return
            if self.role is Role.PRE_CANDIDATE:
                self._votes.add(response.sender)
                if self._has_quorum(self._votes):
                    self._start_election()
            return
        if response.term > self.term:
            self._become_follower(response.term, leader_id=None)
            return
        if self.role is Role.CANDIDATE and response.term == self.term and response.granted:
            self._votes.add(response.sender)
            if self._has_quorum(self._votes):
                self._become_leader()

    def _become_follower(self, term: int, leader_id: int | None) -> None:
        if term > self.term:
            self._set_term_and_vote(term, None)
        self.role = Role.FOLLOWER
        self.leader_id = leader_id
        self._progress = {}
        self._votes = set()
        self._reset_election_timer()

    def _become_leader(self) -> None:
        self.role = Role.LEADER
        self.leader_id = self.node_id
        self._votes = set()
        self._incoming = None
        self._progress = {}
        self._sync_progress_with_configuration()
        self._term_start_index = self._append_as_leader(EntryKind.LEADER_CHANGE, b"")
        self._heartbeat_deadline = self._now
        self._check_quorum_deadline = self._now + self.options.election_timeout_ms
        self._broadcast_append()

    def _set_term_and_vote(self, term: int, voted_for: int | None) -> None:
        self.term, self.voted_for = term, voted_for
        operation = SaveTermAndVote(term, voted_for)
        if self._storage and isinstance(self._storage[-1], SaveTermAndVote):
            self._storage[-1] = operation  # only the latest pair matters
        else:
            self._storage.append(operation)

    # --- replication: leader side ---------------------------------------------------

    def _require_leader(self) -> None:
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_id)

    def _append_as_leader(self, kind: EntryKind, data: bytes) -> int:
        entry = Entry(self.term, self.log.last_index + 1, kind, data)
        self._append_entries((entry,))
        self._replicate_pending = True
        self._advance_leader_commit()
        return entry.index

    def _change_configuration(self, configuration: Configuration) -> int:
        self._require_leader()
        if self._configurations.latest_index > self.commit_index:
            raise ConfigurationChangeInProgress("a configuration change is not committed yet")
        if self.commit_index < self._term_start_index:
            raise ConfigurationChangeInProgress("the new leader has not committed in its term yet")
        return self._append_as_leader(EntryKind.CONFIGURATION, encode_configuration(configuration))

    def _sync_progress_with_configuration(self) -> None:
        members = self.configuration.node_ids - {self.node_id}
        for node_id in list(self._progress):
            if node_id not in members:
                del self._progress[node_id]
        for node_id in members - self._progress.keys():
            self._progress[node_id] = Progress(next_index=self.log.last_index + 1,
                                               last_heard=self._now)

    def _broadcast_append(self) -> None:
        for node_id, progress in self._progress.items():
            self._send_append(node_id, progress)
        self._heartbeat_deadline = self._now + self.options.heartbeat_interval_ms

    def _send_append(self, node_id: int, progress: Progress) -> None:
        progress.awaiting_reply = True
        if progress.next_index <= self.log.snapshot_index:
            self._send_snapshot_chunk(node_id, progress)
            return
        progress.snapshot_index = None
        prev_index = progress.next_index - 1
        prev_term = self.log.term_at(prev_index)
        assert prev_term is not None, (prev_index, self.log.snapshot_index, self.log.last_index)
        entries = self.log.entries(
            progress.next_index, prev_index + self.options.max_entries_per_append,
            self.options.max_bytes_per_append)
        self._messages.append(AppendRequest(self.node_id, node_id, self.term, prev_index,
                                            prev_term, entries, self.commit_index))

    def _send_snapshot_chunk(self, node_id: int, progress: Progress) -> None:
        snapshot = self.snapshot
        if progress.snapshot_index != snapshot.last_index:
            progress.snapshot_index, progress.snapshot_offset = snapshot.last_index, 0
        offset = progress.snapshot_offset
        chunk = snapshot.data[offset:offset + self.options.snapshot_chunk_bytes]
        self._messages.append(SnapshotRequest(
            self.node_id, node_id, self.term, snapshot.last_index, snapshot.last_term,
            snapshot.configuration, offset, chunk, done=offset + len(chunk) >= len(snapshot.data)))

    def _on_append_response(self, response: AppendResponse) -> None:
        progress = self._progress_for_response(response)
        if progress is None:
            return
        if response.success:
            progress.match_index = max(progress.match_index, response.match_index)
            progress.next_index = max(progress.next_index, progress.match_index + 1)
            progress.awaiting_reply = False
            self._advance_leader_commit()
            if progress.next_index <= self.log.last_index:
                self._send_append(response.sender, progress)
            return
        if response.rejected_prev_index != progress.next_index - 1:
            return  # answers an older request; a newer one is on its way
        next_index = response.conflict_index
        if response.conflict_term:
            last_of_term = self.log.last_index_of_term(response.conflict_term)
            if last_of_term is not None:
                next_index = last_of_term + 1
        progress.next_index = max(progress.match_index + 1,
                                  min(next_index, progress.next_index - 1))
        self._send_append(response.sender, progress)

    def _on_snapshot_response(self, response: SnapshotResponse) -> None:
        progress = self._progress_for_response(response)
        if progress is None:
            return
        if response.done:
            progress.match_index = max(progress.match_index, response.last_index)
            progress.next_index = max(progress.next_index, progress.match_index + 1)
            progress.snapshot_index = None
            progress.awaiting_reply = False
            self._advance_leader_commit()
            if progress.next_index <= self.log.last_index:
                self._send_append(response.sender, progress)
        elif progress.snapshot_index == response.last_index:
            progress.snapshot_offset = response.next_offset
            self._send_append(response.sender, progress)

    def _progress_for_response(self, response: AppendResponse | SnapshotResponse
                               ) -> Progress | None:
        if response.term > self.term:
            self._become_follower(response.term, leader_id=None)
            return None
        if self.role is not Role.LEADER or response.term < self.term:
            return None
        progress = self._progress.get(response.sender)
        if progress is not None:
            progress.last_heard = self._now
        return progress

    def _advance_leader_commit(self) -> None:
        if self.role is not Role.LEADER:
            return
        configuration = self.configuration
        matches = [self._progress[v].match_index for v in configuration.voters if v in self._progress]
        if self.node_id in configuration.voters:
            matches.append(self.log.last_index)
        candidate = commit_candidate(matches, configuration.quorum)
        # Counting replicas commits only entries of the current term (§5.4.2).
        if candidate > self.commit_index and self.log.term_at(candidate) == self.term:
            self.commit_index = candidate
            self._replicate_pending = True  # tell followers soon, not at the next heartbeat
            if (self.node_id not in configuration.voters
                    and self._configurations.latest_index <= self.commit_index):
                self._become_follower(self.term, leader_id=None)  # removed from the voters

    def _quorum_recently_heard(self) -> bool:
        window_start = self._now - self.options.election_timeout_ms
        heard = {node_id for node_id, progress in self._progress.items()
                 if progress.last_heard >= window_start}
        heard.add(self.node_id)
        return self._has_quorum(heard)

    # --- replication: follower side -------------------------------------------------

    def _accept_leader(self, term: int, leader_id: int) -> None:
        if term > self.term or self.role is not Role.FOLLOWER:
            assert not (self.role is Role.LEADER and term == self.term), "two leaders in a term"
            self._become_follower(term, leader_id)
        self.leader_id = leader_id
        self._last_leader_contact = self._now
        self._reset_election_timer()

    def _on_append_request(self, request: AppendRequest) -> AppendResponse:
        if request.term < self.term:
            return AppendResponse(self.node_id, request.sender, self.term, success=False,
                                  rejected_prev_index=request.prev_index)
        self._accept_leader(request.term, request.sender)
        prev_index, entries = request.prev_index, request.entries
        if prev_index < self.log.snapshot_index:
            # Everything up to the snapshot is committed, hence identical to the leader's.
            skip = self.log.snapshot_index - prev_index
            prev_index, entries = self.log.snapshot_index, entries[skip:]
        else:
            local_term = self.log.term_at(prev_index)
            if local_term is None:
                return AppendResponse(self.node_id, request.sender, self.term, success=False,
                                      rejected_prev_index=request.prev_index,
                                      conflict_index=self.log.last_index + 1)
            if local_term != request.prev_term:
                return AppendResponse(self.node_id, request.sender, self.term, success=False,
                                      rejected_prev_index=request.prev_index,
                                      conflict_index=self.log.first_index_of_term(prev_index),
                                      conflict_term=local_term)
        for position, entry in enumerate(entries):
            local_term = self.log.term_at(entry.index)
            if local_term == entry.term:
                continue  # already held; a stale or duplicate request must not truncate
            if local_term is not None:
                assert entry.index > self.commit_index, "truncating committed entries"
                self._truncate_from(entry.index)
            self._append_entries(entries[position:])
            break
        match_index = request.prev_index + len(request.entries)
        if request.leader_commit > self.commit_index:
            self.commit_index = max(self.commit_index, min(request.leader_commit, match_index))
        return AppendResponse(self.node_id, request.sender, self.term, success=True,
                              match_index=match_index)

    def _on_snapshot_request(self, request: SnapshotRequest) -> SnapshotResponse:
        def reply(next_offset: int, done: bool) -> SnapshotResponse:
            return SnapshotResponse(self.node_id, request.sender, self.term,
                                    request.last_index, next_offset, done)

        if request.term < self.term:
            return reply(0, done=False)
        self._accept_leader(request.term, request.sender)
        if request.last_index <= self.commit_index:
            return reply(0, done=True)  # already hold (and agree on) all of it
        incoming = self._incoming
        same = (incoming is not None and incoming.last_index == request.last_index
                and incoming.last_term == request.last_term)
        if request.offset == 0:
            incoming = self._incoming = _IncomingSnapshot(request.last_index, request.last_term)
        elif not same or request.offset != len(incoming.data):
            return reply(len(incoming.data) if same else 0, done=False)
        incoming.data += request.data
        if not request.done:
            return reply(len(incoming.data), done=False)
        self._incoming = None
        self._install_snapshot(Snapshot(request.last_index, request.last_term,
                                        request.configuration, bytes(incoming.data)))
        return reply(0, done=True)

    def _install_snapshot(self, snapshot: Snapshot) -> None:
        keep_tail = self.log.term_at(snapshot.last_index) == snapshot.last_term
        self._storage.append(SaveSnapshot(snapshot))
        if not keep_tail:
            self._storage.append(TruncateLog(snapshot.last_index + 1))
        self.log.compact(snapshot)
        self._configurations.compact(snapshot.last_index, snapshot.configuration, keep_tail)
        self.snapshot = snapshot
        self.commit_index = self.applied_index = snapshot.last_index
        self._restore = snapshot

    # --- log changes shared by both sides -------------------------------------------

    def _append_entries(self, entries: tuple[Entry, ...]) -> None:
        self.log.append(entries)
        self._storage.append(AppendLog(entries))
        if self._track_configurations(entries) and self.role is Role.LEADER:
            self._sync_progress_with_configuration()

    def _truncate_from(self, index: int) -> None:
        self.log.truncate_from(index)
        self._storage.append(TruncateLog(index))
        self._configurations.truncate_from(index)

    def _track_configurations(self, entries: tuple[Entry, ...]) -> bool:
        changed = False
        for entry in entries:
            if entry.kind is EntryKind.CONFIGURATION:
                self._configurations.append(entry.index, decode_configuration(entry.data))
                changed = True
        return changed
