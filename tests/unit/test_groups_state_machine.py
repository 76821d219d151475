"""The classic group state machine (pure): rebalances, fencing, timeouts, static members."""

import itertools

from kio.schema.errors import ErrorCode

from brook.broker.groups.group import ClassicGroup, GroupSettings, GroupState, JoinRequest
from brook.broker.groups.log_format import OffsetValue
from brook.broker.groups.offsets import expired_offsets

SESSION, REBALANCE = 10_000, 30_000


class Harness:
    """Drives one group like the coordinator does, with a fake clock."""

    def __init__(self, delay=0, **settings):
        self.now = 1_000_000
        self.group = ClassicGroup("g", self.now, GroupSettings(initial_rebalance_delay_ms=delay,
                                                               **settings))
        ids = itertools.count(1)
        self.group.id_factory = lambda: f"id{next(ids)}"
        self.tokens = itertools.count(1)
        self.responses = {}

    def drain(self):
        for token, response in self.group.completions:
            self.responses[token] = response
        self.group.completions = []

    def join(self, member_id="", protocols=(("range", b"m"),), instance=None, client="c",
             version=9, protocol_type="consumer", session=SESSION, rebalance=REBALANCE):
        token = next(self.tokens)
        request = JoinRequest(member_id, instance, client, "/127.0.0.1", session, rebalance,
                              protocol_type, tuple(protocols), require_known_member_id=version >= 4,
                              supports_skip_assignment=version >= 9)
        response = self.group.join(self.now, token, request)
        self.drain()
        return token, response

    def join_new(self, **kw):
        """Join as a new dynamic member: MEMBER_ID_REQUIRED, then join with the id."""
        _, first = self.join(**kw)
        assert first["error_code"] == ErrorCode.member_id_required
        return self.join(member_id=first["member_id"], **kw)

    def result(self, token):
        return self.responses.get(token)

    def sync(self, member_id, generation, assignments=None, instance=None):
        token = next(self.tokens)
        response = self.group.sync(self.now, token, member_id, instance, generation, None, None,
                                   assignments or {})
        self.drain()
        return token, response

    def advance(self, ms):
        self.now += ms
        while True:
            deadline = self.group.next_deadline()
            if deadline is None or deadline > self.now:
                break
            self.group.tick(self.now)
            self.drain()


def stable_pair():
    h = Harness()
    t1, r = h.join_new(client="a")
    assert r is None
    first = h.result(t1)
    assert first["error_code"] == ErrorCode.none and first["generation_id"] == 1
    a = first["member_id"]
    h.sync(a, 1, {a: b"A"})
    t2, r = h.join_new(client="b")
    assert r is None and h.group.state == GroupState.PREPARING_REBALANCE
    # a learns about the rebalance from its heartbeat and rejoins
    assert h.group.heartbeat(h.now, a, None, 1) == ErrorCode.rebalance_in_progress
    t3, r = h.join(member_id=a)
    assert r is None
    joined_a, joined_b = h.result(t3), h.result(t2)
    assert joined_a["generation_id"] == joined_b["generation_id"] == 2
    b = joined_b["member_id"]
    assert joined_a["leader"] == a and {m["member_id"] for m in joined_a["members"]} == {a, b}
    assert joined_b["members"] == []
    ts_b, r = h.sync(b, 2)
    assert r is None  # parked until the leader's assignment arrives
    _, r = h.sync(a, 2, {a: b"A2", b: b"B2"})
    assert r is None
    assert h.group.state == GroupState.STABLE and h.group.store_requested
    assert h.result(ts_b)["assignment"] == b"B2"
    return h, a, b


def test_first_member_needs_a_member_id_then_becomes_leader():
    h = Harness()
    _, r = h.join(client="app")
    assert r["error_code"] == ErrorCode.member_id_required and r["member_id"] == "app-id1"
    t, r = h.join(member_id="app-id1")
    assert r is None
    response = h.result(t)
    assert response["error_code"] == ErrorCode.none
    assert response["leader"] == "app-id1" and response["protocol_name"] == "range"
    assert response["members"] == [{"member_id": "app-id1", "group_instance_id": None,
                                    "metadata": b"m"}]
    assert h.group.state == GroupState.COMPLETING_REBALANCE


def test_old_join_versions_get_an_id_at_once():
    h = Harness()
    t, r = h.join(version=3)
    assert r is None and h.result(t)["member_id"] == "c-id1"


def test_two_members_rebalance_and_sync():
    h, a, b = stable_pair()
    _, r = h.sync(b, 2)
    assert r["assignment"] == b"B2" and r["error_code"] == ErrorCode.none
    assert h.group.heartbeat(h.now, a, None, 2) == ErrorCode.none


def test_initial_delay_waits_for_more_members():
    h = Harness(delay=3000)
    t1, _ = h.join_new(client="a")
    h.advance(1000)
    t2, _ = h.join_new(client="b")
    h.advance(2000)  # first delay over, but a member arrived: extended
    assert h.result(t1) is None and h.group.state == GroupState.PREPARING_REBALANCE
    h.advance(3000)
    assert h.result(t1)["generation_id"] == h.result(t2)["generation_id"] == 1
    assert len(h.result(t1)["members"]) == 2


def test_fencing_errors():
    h, a, b = stable_pair()
    assert h.group.heartbeat(h.now, "nobody", None, 2) == ErrorCode.unknown_member_id
    assert h.group.heartbeat(h.now, a, None, 1) == ErrorCode.illegal_generation
    _, r = h.sync(a, 7)
    assert r["error_code"] == ErrorCode.illegal_generation
    _, r = h.sync("nobody", 2)
    assert r["error_code"] == ErrorCode.unknown_member_id
    _, r = h.join(member_id="nobody")
    assert r["error_code"] == ErrorCode.unknown_member_id
    _, r = h.join(member_id=a, protocol_type="connect")
    assert r["error_code"] == ErrorCode.inconsistent_group_protocol
    _, r = h.join(protocols=(("roundrobin", b""),))
    assert r["error_code"] == ErrorCode.inconsistent_group_protocol


def test_follower_rejoin_without_change_gets_current_generation():
    h, a, b = stable_pair()
    _, r = h.join(member_id=b)
    assert r["generation_id"] == 2 and r["members"] == [] and h.group.state == GroupState.STABLE


def test_changed_metadata_or_leader_rejoin_rebalances():
    h, a, b = stable_pair()
    tb, r = h.join(member_id=b, protocols=(("range", b"owned-partitions-changed"),))
    assert r is None and h.group.state == GroupState.PREPARING_REBALANCE
    ta, _ = h.join(member_id=a)
    assert h.result(ta)["generation_id"] == h.result(tb)["generation_id"] == 3


def test_session_timeout_removes_member_and_rebalances():
    h, a, b = stable_pair()
    for _ in range(4):
        h.advance(SESSION // 2)
        assert h.group.heartbeat(h.now, a, None, 2) in (ErrorCode.none,
                                                        ErrorCode.rebalance_in_progress)
    assert b not in h.group.members
    assert h.group.state == GroupState.PREPARING_REBALANCE
    ta, r = h.join(member_id=a)
    assert h.result(ta)["generation_id"] == 3 and len(h.result(ta)["members"]) == 1


def test_rebalance_timeout_drops_members_that_do_not_rejoin():
    h, a, b = stable_pair()
    ta, _ = h.join(member_id=a, protocols=(("range", b"new"),))
    assert h.result(ta) is None
    h.advance(REBALANCE)
    assert h.result(ta)["generation_id"] == 3 and list(h.group.members) == [a]


def test_missing_sync_is_expired_after_rebalance_timeout():
    h, a, b = stable_pair()
    tb, _ = h.join(member_id=b, protocols=(("range", b"changed"),))
    h.join(member_id=a)
    assert h.result(tb)["generation_id"] == 3
    tsb, _ = h.sync(b, 3)  # the leader a heartbeats but never sends its assignment
    for _ in range(REBALANCE // 5000):
        h.advance(5000)
        h.group.heartbeat(h.now, a, None, 3)
    h.drain()
    assert a not in h.group.members and h.group.state == GroupState.PREPARING_REBALANCE
    assert h.result(tsb)["error_code"] == ErrorCode.rebalance_in_progress


def test_leave_triggers_rebalance_and_last_leave_empties_group():
    h, a, b = stable_pair()
    assert h.group.leave(h.now, [(b, None)]) == [ErrorCode.none]
    assert h.group.state == GroupState.PREPARING_REBALANCE
    assert h.group.leave(h.now, [("ghost", None)]) == [ErrorCode.unknown_member_id]
    assert h.group.leave(h.now, [(a, None)]) == [ErrorCode.none]
    assert h.group.state == GroupState.EMPTY and h.group.generation == 3
    assert h.group.store_requested


def test_parked_join_of_removed_member_is_answered():
    h, a, b = stable_pair()
    ta, _ = h.join(member_id=a, protocols=(("range", b"x"),))
    assert h.group.leave(h.now, [(a, None)]) == [ErrorCode.none]
    h.drain()
    assert h.result(ta)["error_code"] == ErrorCode.unknown_member_id


def test_sync_during_rebalance_and_commit_validation():
    h, a, b = stable_pair()
    h.join(member_id=a, protocols=(("range", b"x"),))
    _, r = h.sync(b, 2)
    assert r["error_code"] == ErrorCode.rebalance_in_progress
    assert h.group.heartbeat(h.now, b, None, 2) == ErrorCode.rebalance_in_progress
    # During PreparingRebalance a member of the current generation may still commit.
    assert h.group.validate_offset_commit(h.now, b, None, 2) == ErrorCode.none
    assert h.group.validate_offset_commit(h.now, b, None, 1) == ErrorCode.illegal_generation
    assert h.group.validate_offset_commit(h.now, "", None, -1) == ErrorCode.unknown_member_id
    h.join(member_id=b)
    assert h.group.state == GroupState.COMPLETING_REBALANCE
    assert h.group.validate_offset_commit(h.now, b, None, 3) == ErrorCode.rebalance_in_progress


def test_simple_commits_only_on_empty_groups():
    h = Harness()
    assert h.group.validate_offset_commit(h.now, "", None, -1) == ErrorCode.none
    assert h.group.validate_offset_commit(h.now, "x", None, 0) == ErrorCode.unknown_member_id


def test_static_member_restart_keeps_assignment_without_rebalance():
    h = Harness()
    t, r = h.join(instance="i-1", client="a")
    assert r is None
    old = h.result(t)["member_id"]
    assert old.startswith("i-1-")
    h.sync(old, 1, {old: b"A"})
    t2, r = h.join(instance="i-2", client="b")
    h.join(member_id=old, instance="i-1")
    other = h.result(t2)["member_id"]
    h.sync(old, 2, {old: b"A", other: b"B"})
    h.sync(other, 2, instance="i-2")
    assert h.group.state == GroupState.STABLE
    # i-2 restarts: it joins with no member id and the same group.instance.id.
    _, r = h.join(instance="i-2", client="b", version=5)
    assert r["error_code"] == ErrorCode.none and r["generation_id"] == 2
    new = r["member_id"]
    assert new != other and r["leader"] == old and h.group.state == GroupState.STABLE
    _, s = h.sync(new, 2, instance="i-2")
    assert s["assignment"] == b"B"
    # The old incarnation is fenced.
    assert h.group.heartbeat(h.now, other, "i-2", 2) == ErrorCode.fenced_instance_id
    assert h.group.heartbeat(h.now, new, "i-2", 2) == ErrorCode.none
    assert h.group.heartbeat(h.now, new, "i-9", 2) == ErrorCode.unknown_member_id


def test_static_leader_rejoin_v9_skips_assignment():
    h = Harness()
    t, _ = h.join(instance="i-1")
    old = h.result(t)["member_id"]
    h.sync(old, 1, {old: b"A"})
    _, r = h.join(instance="i-1", version=9)
    assert r["skip_assignment"] and r["leader"] == r["member_id"] != old
    assert [m["member_id"] for m in r["members"]] == [r["member_id"]]


def test_static_members_survive_rebalance_until_session_timeout():
    h = Harness()
    t1, _ = h.join(instance="i-1", client="a")
    a = h.result(t1)["member_id"]
    h.sync(a, 1, {a: b""})
    t2, _ = h.join(instance="i-2", client="b")
    for _ in range(REBALANCE // 5000):  # i-1 heartbeats but never rejoins
        h.advance(5000)
        h.group.heartbeat(h.now, a, "i-1", 1)
    assert h.result(t2)["generation_id"] == 2 and a in h.group.members
    b = h.result(t2)["member_id"]
    assert h.result(t2)["leader"] == b  # the leader that did not rejoin is replaced
    h.sync(b, 2, {a: b"", b: b""})
    h.advance(SESSION)
    assert a not in h.group.members


def test_group_max_size():
    h = Harness(max_size=1)
    h.join_new(client="a")
    _, r = h.join(member_id="", client="b", version=3)
    assert r["error_code"] == ErrorCode.group_max_size_reached


def test_persisted_group_loads_stable():
    h, a, b = stable_pair()
    value = h.group.to_value()
    loaded = ClassicGroup.from_value("g", value, h.now)
    assert loaded.state == GroupState.STABLE and loaded.generation == 2
    assert loaded.leader_id == a and loaded.members[b].assignment == b"B2"
    assert loaded.heartbeat(h.now, b, None, 2) == ErrorCode.none
    loaded.tick(h.now + SESSION + 1)
    assert loaded.state == GroupState.EMPTY and loaded.generation == 3  # nobody came back


def test_offset_expiry_rules():
    retention = 1000
    simple = ClassicGroup("s", 0)
    offsets = {("t", 0): OffsetValue(5, "", 100), ("t", 1): OffsetValue(5, "", 900)}
    expired, everything = expired_offsets(simple, offsets, 1500, retention)
    assert expired == [("t", 0)] and not everything
    h, a, b = stable_pair()  # a Stable group with an unparseable subscription: keep all
    assert expired_offsets(h.group, offsets, 10**12, retention) == ([], False)
    h.group.leave(h.now, [(a, None), (b, None)])
    became_empty = h.group.state_timestamp_ms
    assert expired_offsets(h.group, offsets, became_empty + 999, retention)[0] == []
    assert expired_offsets(h.group, offsets, became_empty + 1000, retention) == (
        [("t", 0), ("t", 1)], True)
    explicit = {("t", 0): OffsetValue(5, "", 0, expire_timestamp=10**13)}
    assert expired_offsets(simple, explicit, 10**12, retention) == ([], False)
