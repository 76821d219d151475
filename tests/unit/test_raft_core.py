"""Scenario tests of the Raft core: one rule per test, messages delivered by hand."""

from __future__ import annotations

import pytest

from brook.broker.raft.core import RaftCore, Role
from brook.broker.raft.entries import Entry, EntryKind, Snapshot, bootstrap_snapshot
from brook.broker.raft.errors import ConfigurationChangeInProgress, LearnerNotCaughtUp, NotLeader
from brook.broker.raft.membership import Configuration, InvalidConfigurationChange, Member
from brook.broker.raft.memory_store import MemoryStore
from brook.broker.raft.messages import (
    AppendRequest,
    AppendResponse,
    Message,
    SnapshotRequest,
    VoteRequest,
    VoteResponse,
)
from brook.broker.raft.options import RaftOptions
from brook.broker.raft.ready import PersistentState, SaveTermAndVote

OPTIONS = RaftOptions(election_timeout_ms=100, heartbeat_interval_ms=20,
                      snapshot_chunk_bytes=4, max_entries_per_append=3)


class Cluster:
    """Nodes on a perfect network; `blocked` pairs drop messages (partitions)."""

    def __init__(self, voters=(1, 2, 3), extra=(), options=OPTIONS) -> None:
        configuration = Configuration.of_voters(Member(i, f"n{i}") for i in voters)
        self.options = options
        self.now = 0
        self.stores = {i: MemoryStore(configuration) for i in voters}
        self.stores.update({i: MemoryStore() for i in extra})
        self.nodes: dict[int, RaftCore] = {}
        self.applied: dict[int, list[Entry]] = {i: [] for i in self.stores}
        self.blocked: set[frozenset[int]] = set()
        self.in_flight: list[Message] = []
        for node_id in self.stores:
            self.start(node_id)

    def start(self, node_id: int) -> RaftCore:
        core = RaftCore(node_id, self.stores[node_id].load(), self.options, seed=node_id,
                        now=self.now)
        self.nodes[node_id] = core
        self.applied[node_id] = []
        self._drain(core)
        return core

    def crash(self, node_id: int) -> None:
        del self.nodes[node_id]

    def isolate(self, node_id: int) -> None:
        self.blocked |= {frozenset((node_id, other)) for other in self.stores if other != node_id}

    def heal(self) -> None:
        self.blocked.clear()

    def _drain(self, core: RaftCore, response: Message | None = None) -> None:
        ready = core.take_ready()
        self.stores[core.node_id].apply(ready.storage)
        self.in_flight.extend(ready.messages)
        if response is not None:
            self.in_flight.append(response)
        self.applied[core.node_id].extend(ready.committed)

    def deliver(self, limit: int = 10_000, until=lambda: False) -> None:
        """Deliver messages (and the messages they cause) until the network is quiet,
        or until `until()` holds after a delivery."""
        for _ in range(limit):
            if not self.in_flight or until():
                return
            message = self.in_flight.pop(0)
            core = self.nodes.get(message.recipient)
            if core is None or frozenset((message.sender, message.recipient)) in self.blocked:
                continue
            self._drain(core, core.receive(message, self.now))
        raise AssertionError("network never went quiet")

    def advance(self, ms: int, step: int = 5) -> None:
        for _ in range(0, ms, step):
            self.now += step
            for core in list(self.nodes.values()):
                if core.next_deadline() <= self.now:
                    core.tick(self.now)
                    self._drain(core)
            self.deliver()

    def leader(self) -> RaftCore:
        leaders = [core for core in self.nodes.values() if core.is_leader]
        assert len(leaders) == 1, [(c.node_id, c.role, c.term) for c in self.nodes.values()]
        return leaders[0]

    def propose(self, data: bytes) -> int:
        leader = self.leader()
        index = leader.propose(data)
        self._drain(leader)
        self.deliver()
        return index

    def commands(self, node_id: int) -> list[bytes]:
        return [e.data for e in self.applied[node_id] if e.kind is EntryKind.COMMAND]


def elected(cluster: Cluster, max_ms: int = 2000) -> RaftCore:
    for _ in range(0, max_ms, 10):
        cluster.advance(10)
        if sum(core.is_leader for core in cluster.nodes.values()) == 1:
            return cluster.leader()
    raise AssertionError("no leader elected")


def test_single_voter_elects_itself_and_commits_after_persisting():
    store = MemoryStore(Configuration.of_voters([1]))
    core = RaftCore(1, store.load(), OPTIONS)
    assert core.next_deadline() == 0  # nobody to wait for: no election timeout first
    core.tick(0)
    assert core.role is Role.LEADER and core.term == 1
    index = core.propose(b"x")
    ready = core.take_ready()
    # The entry is committed in the same Ready that persists it: the driver persists first.
    appended = [e for op in ready.storage for e in getattr(op, "entries", ())]
    assert [e.index for e in appended] == [1, 2]
    assert [e.index for e in ready.committed] == [1, index]
    assert ready.committed[-1].data == b"x"


def test_three_voters_elect_one_leader_and_replicate():
    cluster = Cluster()
    leader = elected(cluster)
    for n in range(5):
        cluster.propose(b"c%d" % n)
    cluster.advance(50)
    for node_id in cluster.nodes:
        assert cluster.commands(node_id) == [b"c%d" % n for n in range(5)]
    assert leader.term == 1  # pre-vote: no term was wasted on failed campaigns


def test_pre_vote_does_not_raise_terms_and_a_rejoining_node_does_not_disrupt_the_leader():
    cluster = Cluster(voters=(1, 2, 3, 4, 5))
    leader = elected(cluster)
    term = leader.term
    follower = next(i for i in cluster.nodes if i != leader.node_id)
    cluster.isolate(follower)
    cluster.advance(2000)  # twenty election timeouts alone
    assert cluster.nodes[follower].term == term
    assert cluster.nodes[follower].role is Role.PRE_CANDIDATE
    cluster.heal()
    cluster.advance(300)
    assert cluster.leader() is leader and leader.term == term
    assert cluster.nodes[follower].leader_id == leader.node_id


def test_follower_that_hears_a_leader_refuses_votes_and_keeps_its_term():
    cluster = Cluster()
    leader = elected(cluster)
    follower = next(core for core in cluster.nodes.values() if core is not leader)
    response = follower.receive(VoteRequest(99, follower.node_id, leader.term + 5,
                                            follower.log.last_index + 10, leader.term + 5),
                                cluster.now)
    assert not response.granted and follower.term == leader.term


def test_vote_is_persisted_before_the_response_is_sent():
    store = MemoryStore(Configuration.of_voters([1, 2, 3]))
    core = RaftCore(1, store.load(), OPTIONS)
    response = core.receive(VoteRequest(2, 1, 1, 0, 0), now=0)
    ready = core.take_ready()
    assert response.granted
    assert SaveTermAndVote(1, 2) in ready.storage
    # ...and a restarted node remembers the vote and refuses a second candidate of that term.
    store.apply(ready.storage)
    restarted = RaftCore(1, store.load(), OPTIONS)
    assert not restarted.receive(VoteRequest(3, 1, 1, 0, 0), now=0).granted


def test_candidate_with_a_stale_log_is_refused():
    snapshot = bootstrap_snapshot(Configuration.of_voters([1, 2, 3]))
    core = RaftCore(1, PersistentState(2, None, snapshot, (Entry(1, 1, EntryKind.COMMAND),
                                                           Entry(2, 2, EntryKind.COMMAND))))
    assert not core.receive(VoteRequest(2, 1, 3, 5, 1), now=0).granted   # older last term
    assert not core.receive(VoteRequest(3, 1, 3, 1, 2), now=0).granted   # shorter, same term
    assert core.receive(VoteRequest(3, 1, 4, 2, 2), now=0).granted


def win_election(core: RaftCore) -> None:
    """Time out and collect every vote by hand, bypassing the network."""
    core.tick(core.next_deadline())
    for _ in range(2):
        for message in core.take_ready().messages:
            if isinstance(message, VoteRequest):
                # A pre-vote is answered in the voter's current term, a vote in the new one.
                term = message.term - 1 if message.pre_vote else message.term
                core.receive(VoteResponse(message.recipient, message.sender, term, True,
                                          message.pre_vote), now=0)
    assert core.is_leader


def test_leader_commits_older_terms_only_through_an_entry_of_its_own_term():
    """Raft §5.4.2 (the paper's Figure 8): replicas of an old-term entry are not enough."""
    snapshot = bootstrap_snapshot(Configuration.of_voters([1, 2, 3]))
    old = (Entry(1, 1, EntryKind.COMMAND, b"a"), Entry(2, 2, EntryKind.COMMAND, b"b"))
    core = RaftCore(1, PersistentState(3, None, snapshot, old), OPTIONS)
    win_election(core)
    assert core.term == 4 and core.log.last_index == 3  # its LEADER_CHANGE entry
    core.take_ready()
    core.receive(AppendResponse(2, 1, 4, success=True, match_index=2), now=0)
    assert core.commit_index == 0  # a majority holds index 2 (term 2), but it is not of term 4
    core.receive(AppendResponse(2, 1, 4, success=True, match_index=3), now=0)
    assert core.commit_index == 3
    assert [e.index for e in core.take_ready().committed] == [1, 2, 3]


def test_fast_backtracking_skips_a_whole_conflicting_term_per_round_trip():
    snapshot = bootstrap_snapshot(Configuration.of_voters([1, 2]))
    follower_entries = tuple(Entry(2, i, EntryKind.COMMAND) for i in range(1, 41))
    follower = RaftCore(2, PersistentState(2, None, snapshot, follower_entries), OPTIONS)
    leader_entries = (*(Entry(1, i, EntryKind.COMMAND) for i in range(1, 21)),
                      *(Entry(3, i, EntryKind.COMMAND) for i in range(21, 61)))
    leader = RaftCore(1, PersistentState(3, 1, snapshot, leader_entries), OPTIONS)
    win_election(leader)
    assert leader.term == 4
    rejections = 0
    messages = [m for m in leader.take_ready().messages if isinstance(m, AppendRequest)]
    for _ in range(100):
        if not messages:
            break
        response = follower.receive(messages[0], now=0)
        follower.take_ready()
        rejections += not response.success
        leader.receive(response, now=0)
        messages = [m for m in leader.take_ready().messages if isinstance(m, AppendRequest)]
    assert follower.log.last_index == leader.log.last_index == leader.match_index(2)
    assert [follower.log.term_at(i) for i in (20, 21, 61)] == [1, 3, 4]
    # One rejection for the gap past the follower's end, one for the whole of term 2
    # (entry by entry it would take 40).
    assert rejections == 2


def test_stale_duplicate_append_does_not_truncate_newer_entries():
    snapshot = bootstrap_snapshot(Configuration.of_voters([1, 2]))
    follower = RaftCore(2, PersistentState(1, None, snapshot), OPTIONS)
    entries = tuple(Entry(1, i, EntryKind.COMMAND, b"%d" % i) for i in range(1, 4))
    follower.receive(AppendRequest(1, 2, 1, 0, 0, entries, 0), now=0)
    late = follower.receive(AppendRequest(1, 2, 1, 0, 0, entries[:1], 0), now=1)
    assert late.success and late.match_index == 1
    assert follower.log.last_index == 3


def test_follower_rejects_a_gap_with_its_log_end_as_the_hint():
    snapshot = bootstrap_snapshot(Configuration.of_voters([1, 2]))
    follower = RaftCore(2, PersistentState(1, None, snapshot), OPTIONS)
    response = follower.receive(AppendRequest(1, 2, 1, 7, 1, (), 0), now=0)
    assert not response.success and response.conflict_index == 1 and response.conflict_term == 0


def test_partitioned_leader_steps_down_by_check_quorum():
    cluster = Cluster()
    leader = elected(cluster)
    cluster.isolate(leader.node_id)
    cluster.advance(250)
    assert leader.role is Role.FOLLOWER
    others = [core for core in cluster.nodes.values() if core is not leader]
    cluster.advance(500)
    assert sum(core.is_leader for core in others) == 1
    with pytest.raises(NotLeader):
        leader.propose(b"lost")


def test_committed_entries_survive_leader_crash_and_restart():
    cluster = Cluster()
    first = elected(cluster)
    cluster.propose(b"kept")
    cluster.advance(50)
    cluster.crash(first.node_id)
    cluster.advance(600)
    second = cluster.leader()
    assert second.node_id != first.node_id
    cluster.propose(b"after")
    restarted = cluster.start(first.node_id)
    cluster.advance(200)
    assert restarted.leader_id == second.node_id
    assert cluster.commands(first.node_id) == [b"kept", b"after"]


def test_lagging_learner_catches_up_from_a_chunked_snapshot_then_is_promoted():
    cluster = Cluster(voters=(1,), extra=(2,))
    leader = elected(cluster)
    for n in range(10):
        cluster.propose(b"c%d" % n)
    leader.compact(leader.applied_index, b"state-at-%d" % leader.applied_index)
    cluster._drain(leader)
    leader.add_learner(Member(2, "n2"))
    cluster._drain(leader)
    with pytest.raises(LearnerNotCaughtUp):
        leader.promote_learner(2)
    snapshot_chunks = []
    original = cluster.nodes[2].receive

    def spy(message, now):
        if isinstance(message, SnapshotRequest):
            snapshot_chunks.append(message)
        return original(message, now)

    cluster.nodes[2].receive = spy
    cluster.advance(100)
    learner = cluster.nodes[2]
    assert learner.snapshot.data == leader.snapshot.data
    assert len(snapshot_chunks) >= 3  # 4-byte chunks
    assert learner.commit_index == leader.commit_index
    assert learner.role is Role.FOLLOWER and 2 in learner.configuration.learners
    leader.promote_learner(2)
    cluster._drain(leader)
    cluster.advance(50)
    assert learner.configuration.voters == {1, 2}
    cluster.propose(b"two voters")
    assert cluster.commands(2)[-1] == b"two voters"


def test_cluster_grows_from_one_to_three_voters_and_shrinks_back():
    cluster = Cluster(voters=(1,), extra=(2, 3))
    leader = elected(cluster)
    for node_id in (2, 3):
        leader.add_learner(Member(node_id, f"n{node_id}"))
        cluster._drain(leader)
        cluster.advance(50)
        leader.promote_learner(node_id)
        cluster._drain(leader)
        cluster.advance(50)
    assert leader.committed_configuration.voters == {1, 2, 3}
    cluster.crash(3)
    cluster.propose(b"two of three")  # still a quorum
    assert cluster.commands(2)[-1] == b"two of three"
    leader.remove_member(3)
    cluster._drain(leader)
    cluster.advance(50)
    leader.remove_member(2)
    cluster._drain(leader)
    cluster.advance(50)
    assert leader.committed_configuration.voters == {1}
    cluster.crash(2)
    cluster.propose(b"alone again")
    assert cluster.commands(1)[-1] == b"alone again"


def test_only_one_configuration_change_at_a_time_and_not_before_the_leaders_first_commit():
    cluster = Cluster(voters=(1, 2, 3), extra=(4, 5))
    leader = elected(cluster)
    cluster.isolate(2)
    cluster.isolate(3)
    leader.add_learner(Member(4, "n4"))  # cannot commit without a second voter
    with pytest.raises(ConfigurationChangeInProgress):
        leader.add_learner(Member(5, "n5"))
    with pytest.raises(InvalidConfigurationChange):
        Configuration.of_voters([1]).without(1)
    # A brand-new leader has not committed its LEADER_CHANGE entry yet.
    fresh = RaftCore(1, MemoryStore(Configuration.of_voters([1, 2, 3])).load(), OPTIONS)
    win_election(fresh)
    with pytest.raises(ConfigurationChangeInProgress):
        fresh.add_learner(Member(9, "n9"))
    fresh.receive(AppendResponse(2, 1, fresh.term, success=True, match_index=1), now=0)
    fresh.add_learner(Member(9, "n9"))


def test_configuration_takes_effect_when_appended_and_reverts_when_truncated():
    snapshot = bootstrap_snapshot(Configuration.of_voters([1, 2, 3]))
    follower = RaftCore(3, PersistentState(1, None, snapshot), OPTIONS)
    from brook.broker.raft.codec import encode_configuration
    grown = Configuration.of_voters([1, 2, 3, 4])
    change = Entry(1, 1, EntryKind.CONFIGURATION, encode_configuration(grown))
    follower.receive(AppendRequest(1, 3, 1, 0, 0, (change,), 0), now=0)
    assert follower.configuration == grown and follower.committed_configuration != grown
    replacement = Entry(2, 1, EntryKind.LEADER_CHANGE)
    follower.receive(AppendRequest(2, 3, 2, 0, 0, (replacement,), 0), now=1)
    assert follower.configuration == Configuration.of_voters([1, 2, 3])


def test_leader_that_removes_itself_steps_down_once_committed():
    cluster = Cluster()
    leader = elected(cluster)
    leader.remove_member(leader.node_id)
    cluster._drain(leader)
    cluster.advance(30)
    assert leader.role is Role.FOLLOWER
    assert leader.node_id not in leader.configuration.voters
    cluster.advance(600)
    new_leader = cluster.leader()
    assert new_leader is not leader and new_leader.configuration.voters == \
        {1, 2, 3} - {leader.node_id}
    cluster.advance(1000)
    assert leader.role is Role.FOLLOWER  # a removed node never campaigns


def test_restart_restores_the_state_machine_from_the_snapshot_first():
    configuration = Configuration.of_voters([1])
    snapshot = Snapshot(5, 1, configuration, b"state")
    core = RaftCore(1, PersistentState(1, 1, snapshot, (Entry(1, 6, EntryKind.COMMAND, b"x"),)))
    ready = core.take_ready()
    assert ready.restore == snapshot and core.commit_index == 5
    core.tick(core.next_deadline())
    ready = core.take_ready()
    assert [e.index for e in ready.committed] == [6, 7]


def test_messages_for_another_node_are_ignored():
    core = RaftCore(1, MemoryStore(Configuration.of_voters([1, 2])).load(), OPTIONS)
    assert core.receive(VoteRequest(2, 7, 1, 0, 0), now=0) is None


def test_voter_removed_by_an_uncommitted_change_still_campaigns_after_a_restart():
    """Found by the simulator: the removed leader may hold the only copy of its removal."""
    from brook.broker.raft.codec import encode_configuration
    snapshot = bootstrap_snapshot(Configuration.of_voters([1, 2, 3]))
    log = (Entry(1, 1, EntryKind.CONFIGURATION, encode_configuration(Configuration.of_voters([2, 3]))),
           Entry(1, 2, EntryKind.CONFIGURATION, encode_configuration(Configuration.of_voters([2]))))
    core = RaftCore(3, PersistentState(1, 3, snapshot, log), OPTIONS)  # commit index lost
    core.tick(core.next_deadline())
    assert core.role is Role.PRE_CANDIDATE
    assert {m.recipient for m in core.take_ready().messages} == {2}  # only the new voters
    core.receive(VoteResponse(2, 3, 1, True, pre_vote=True), now=0)
    (vote,) = core.take_ready().messages
    core.receive(VoteResponse(2, 3, vote.term, True), now=0)
    assert core.is_leader  # elected by {2}, its own vote not counted
    core.receive(AppendResponse(2, 3, core.term, success=True, match_index=3), now=0)
    assert core.commit_index == 3 and core.role is Role.FOLLOWER  # removal committed: steps down
    core.tick(core.next_deadline())
    assert core.role is Role.FOLLOWER  # and never campaigns again


def test_figure_8_history_never_commits_an_entry_that_a_later_leader_overwrites():
    """The Raft paper's Figure 8, end to end: S1 re-elected in term 3 gets its old term-1
    entry onto a majority and crashes before its own entry follows; S5 (holding a term-2
    entry at that index) then wins and overwrites it. Safe only because S1 never
    committed the old entry by counting replicas (§5.4.2)."""
    one_at_a_time = RaftOptions(election_timeout_ms=100, heartbeat_interval_ms=20,
                                max_entries_per_append=1)
    cluster = Cluster(voters=(1, 2, 3, 4, 5), options=one_at_a_time)
    nodes = cluster.nodes

    def campaign(node_id: int, reachable: set[int]) -> None:
        cluster.blocked = {frozenset((a, b)) for a in cluster.stores for b in cluster.stores
                           if a != b and not {a, b} <= reachable}
        cluster.now += 10 * OPTIONS.election_timeout_ms  # everyone's leader contact is stale
        for _ in range(5):
            nodes[node_id].tick(cluster.now)
            cluster._drain(nodes[node_id])
            cluster.deliver(until=lambda: nodes[node_id].is_leader)
            if nodes[node_id].is_leader:
                return
            cluster.now += 2 * OPTIONS.election_timeout_ms
        raise AssertionError(f"S{node_id} did not win")

    def applied_by_index() -> dict[int, set[Entry]]:
        seen: dict[int, set[Entry]] = {}
        for entries in cluster.applied.values():
            for entry in entries:
                seen.setdefault(entry.index, set()).add(entry)
        return seen

    campaign(1, {1, 2, 3, 4, 5})
    cluster.deliver()  # term 1: S1 leads, everyone holds its LEADER_CHANGE entry (index 1)
    cluster.blocked = {frozenset((1, n)) for n in (3, 4, 5)}
    nodes[1].propose(b"A")  # index 2, term 1: reaches S2 only
    cluster._drain(nodes[1])
    cluster.deliver()
    cluster.crash(1)

    campaign(5, {3, 4, 5})  # term 2: S5 wins with S3 and S4 ...
    cluster.in_flight.clear()  # ... and its entry at index 2 (term 2) never leaves it
    cluster.crash(5)

    cluster.start(1)
    campaign(1, {1, 2, 3})  # term 3: S1 again; it sends index 2 (term 1) to S3, one at a time
    s3 = nodes[3]
    cluster.deliver(until=lambda: nodes[1].match_index(3) == 2)  # S3 acknowledged index 2
    assert s3.log.entry(2).data == b"A" and s3.log.last_index == 2
    assert nodes[1].match_index(2) == 3  # so index 2 (term 1) is on S1, S2, S3: a majority
    commit_before_crash = nodes[1].commit_index
    cluster._drain(nodes[1])
    cluster.crash(1)  # before its term-3 entry reaches S3
    cluster.in_flight.clear()
    assert commit_before_crash < 2

    cluster.start(5)
    campaign(5, {3, 4, 5})  # term 4: S5's last entry (term 2) beats S3's and S4's
    cluster.advance(100)
    assert nodes[3].log.term_at(2) == 2  # A was overwritten ...
    for index, entries in applied_by_index().items():  # ... and no node ever applied it
        assert len(entries) == 1, (index, entries)


def test_followers_refuse_every_change_with_the_leader_to_ask():
    cluster = Cluster()
    leader = elected(cluster)
    follower = next(core for core in cluster.nodes.values() if core is not leader)
    for change in (lambda: follower.propose(b"x"), lambda: follower.add_learner(Member(1, "n1")),
                   lambda: follower.promote_learner(9), lambda: follower.remove_member(42)):
        with pytest.raises(NotLeader) as refused:
            change()
        assert refused.value.leader_id == leader.node_id
