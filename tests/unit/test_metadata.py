"""Metadata records, the image, placement and controller decisions (all pure)."""

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode

from brook.broker.metadata import records as r
from brook.broker.metadata.decisions import (
    NO_LEADER,
    AlterPartitionRequest,
    alter_partition,
    on_broker_fenced,
    on_broker_unfenced,
    preferred_leader_change,
    start_reassignment,
)
from brook.broker.metadata.image import MetadataImage
from brook.broker.metadata.placement import BrokerSlot, PlacementError, assign_replicas


def image_with(brokers=(0, 1, 2), replicas=(0, 1, 2), isr=None, leader=None):
    image = MetadataImage()
    offset = 0
    for b in brokers:
        image.apply(r.RegisterBroker(b, f"inc{b}", "127.0.0.1", 9092 + b, 9093 + b), offset)
        image.apply(r.UnfenceBroker(b), offset + 1)
        offset += 2
    image.apply(r.TopicRecord("t", "tid"), offset)
    image.apply(r.PartitionRecord("tid", 0, replicas, isr or replicas,
                                  replicas[0] if leader is None else leader), offset + 1)
    return image


def apply_all(image, changes):
    for change in changes:
        image.apply(change, image.offset + 1)


def test_records_round_trip_through_bytes():
    for record in (r.RegisterBroker(1, "x", "h", 1, 2, "rack-a"),
                   r.PartitionRecord("tid", 3, (1, 2), (1,), 1, 4, 5, (2,), ()),
                   r.PartitionChange("tid", 3, isr=(1,)), r.ConfigRecord(2, "t", "k", None)):
        assert r.decode(r.encode(record)) == record


@given(st.integers(1, 9), st.integers(1, 60), st.integers(1, 3))
def test_placement_spreads_leaders_and_never_repeats_a_broker(brokers, partitions, rf):
    if rf > brokers:
        with pytest.raises(PlacementError):
            assign_replicas([BrokerSlot(b) for b in range(brokers)], partitions, rf)
        return
    plan = assign_replicas([BrokerSlot(b) for b in range(brokers)], partitions, rf)
    assert all(len(set(replicas)) == rf for replicas in plan)
    leaders = Counter(replicas[0] for replicas in plan)
    assert max(leaders.values()) - min(leaders.get(b, 0) for b in range(brokers)) <= 1


def test_rack_aware_placement_uses_every_rack():
    brokers = [BrokerSlot(0, "a"), BrokerSlot(1, "a"), BrokerSlot(2, "b"), BrokerSlot(3, "b"),
               BrokerSlot(4, "c"), BrokerSlot(5, "c")]
    racks = {b.broker_id: b.rack for b in brokers}
    for replicas in assign_replicas(brokers, 12, 3):
        assert {racks[b] for b in replicas} == {"a", "b", "c"}


def test_fencing_the_leader_elects_from_the_isr():
    image = image_with()
    image.apply(r.FenceBroker(0), image.offset + 1)
    apply_all(image, on_broker_fenced(image, 0))
    state = image.partition("t", 0)
    assert state.leader == 1 and state.isr == (1, 2) and state.leader_epoch == 1


def test_last_isr_member_fenced_leaves_the_partition_leaderless_but_keeps_the_isr():
    image = image_with(isr=(0,))
    image.apply(r.FenceBroker(0), image.offset + 1)
    apply_all(image, on_broker_fenced(image, 0))
    state = image.partition("t", 0)
    assert state.leader == NO_LEADER and state.isr == (0,)  # never elect an out-of-sync replica
    image.apply(r.UnfenceBroker(1), image.offset + 1)
    assert on_broker_unfenced(image, 1) == []
    image.apply(r.UnfenceBroker(0), image.offset + 1)
    apply_all(image, on_broker_unfenced(image, 0))
    assert image.partition("t", 0).leader == 0


def test_unclean_election_only_when_allowed():
    image = image_with(isr=(0,))
    image.apply(r.FenceBroker(0), image.offset + 1)
    changes = on_broker_fenced(image, 0, unclean_for=lambda topic: True)
    apply_all(image, changes)
    assert image.partition("t", 0).leader == 1 and image.partition("t", 0).isr == (1,)


def test_alter_partition_rules():
    image = image_with()
    state = image.partition("t", 0)

    def ask(**kw):
        args = dict(broker_id=0, topic_id="tid", partition=0, leader_epoch=state.leader_epoch,
                    partition_epoch=state.partition_epoch, new_isr=(0, 1))
        args.update(kw)
        return alter_partition(image, AlterPartitionRequest(**args))[0]

    assert ask(leader_epoch=7) == ErrorCode.fenced_leader_epoch
    assert ask(broker_id=1) == ErrorCode.not_leader_or_follower
    assert ask(partition_epoch=9) == ErrorCode.invalid_update_version
    assert ask(new_isr=(1, 2)) == ErrorCode.invalid_request  # leader must stay in
    assert ask(new_isr=(0, 5)) == ErrorCode.invalid_request  # not a replica
    error, changes = alter_partition(image, AlterPartitionRequest(0, "tid", 0, 0, 0, (0, 1)))
    assert error == ErrorCode.none
    apply_all(image, changes)
    assert image.partition("t", 0).isr == (0, 1)


def test_reassignment_adds_then_switches_then_removes():
    image = image_with(brokers=(0, 1, 2, 3))
    state = image.partition("t", 0)
    apply_all(image, [start_reassignment("tid", 0, state, (1, 2, 3), image.is_live)])
    state = image.partition("t", 0)
    assert state.replicas == (1, 2, 3, 0) and state.adding == (3,) and state.removing == (0,)
    # the leader (0) reports broker 3 caught up
    error, changes = alter_partition(image, AlterPartitionRequest(
        0, "tid", 0, state.leader_epoch, state.partition_epoch, (0, 1, 2, 3)))
    assert error == ErrorCode.none
    apply_all(image, changes)
    state = image.partition("t", 0)
    assert state.replicas == (1, 2, 3) and not state.reassigning
    assert state.isr == (1, 2, 3) and state.leader == 1


def test_preferred_leader_election():
    image = image_with(leader=2)
    error, change = preferred_leader_change("tid", 0, image.partition("t", 0), image.is_live)
    assert error == ErrorCode.none
    apply_all(image, [change])
    assert image.partition("t", 0).leader == 0
    assert preferred_leader_change("tid", 0, image.partition("t", 0), image.is_live)[0] == \
        ErrorCode.election_not_needed


def test_image_snapshot_round_trip_and_state_machine():
    from brook.broker.metadata.state_machine import MetadataStateMachine
    from brook.broker.raft.entries import Entry, EntryKind

    seen = []
    machine = MetadataStateMachine(seen.append)
    batch = r.encode_batch([r.TopicRecord("t", "tid"),
                            r.PartitionRecord("tid", 0, (0, 1), (0, 1), 0),
                            r.ConfigRecord(2, "t", "retention.ms", "5")])
    machine.apply(Entry(term=1, index=7, kind=EntryKind.COMMAND, data=batch))
    assert seen[-1].created_topics == {"t"} and seen[-1].changed_partitions == {("t", 0)}
    assert machine.image.offset == 7
    copy = MetadataStateMachine(seen.append)
    copy.restore(machine.snapshot())
    assert copy.image.partition("t", 0) == machine.image.partition("t", 0)
    assert copy.image.topic_configs("t") == {"retention.ms": "5"}
    assert seen[-1].changed_partitions == {("t", 0)}
