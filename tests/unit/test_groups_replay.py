"""Loading and unloading groups per `__consumer_offsets` partition.

The pure replay, then the coordinator: losing a partition drops only its groups (their
parked calls answered NOT_COORDINATOR), gaining one loads only its groups, and groups
of unchanged partitions are never replaced (their parked calls still complete).
"""

import asyncio

from kio.schema.errors import ErrorCode

from brook.broker.groups.coordinator import CommitEntry
from brook.broker.groups.group import GroupState, JoinRequest
from brook.broker.groups.log_format import (
    GroupKey,
    OffsetKey,
    OffsetValue,
    encode_group_key,
    encode_offset_key,
    encode_offset_value,
)
from brook.broker.groups.placement import partition_for
from brook.broker.groups.replay import groups_on_partition, replay
from tests.support.local_broker import LocalBroker

PARTITIONS = 5


def offset_record(offset, group, topic, partition, committed):
    value = None if committed is None else encode_offset_value(OffsetValue(committed))
    return offset, encode_offset_key(OffsetKey(group, topic, partition)), value


def test_replay_keeps_the_latest_record_per_key_and_honours_tombstones():
    records = [
        offset_record(0, "a", "t", 0, 5),
        offset_record(1, "a", "t", 0, 9),        # newer commit wins
        offset_record(2, "a", "t", 1, 3),
        offset_record(3, "a", "t", 1, None),     # tombstone
        offset_record(4, "b", "t", 0, 1),
        (5, encode_group_key(GroupKey("b")), None),
        (6, b"\x00\x63other", b"x"),             # a key version Brook does not use: ignored
        (7, encode_offset_key(OffsetKey("c", "t", 0)), b"\x00\x09?"),  # unreadable: listed
    ]
    out = replay(records)
    assert {k: v.offset for k, v in out.offsets.items()} == {("a", "t", 0): 9, ("b", "t", 0): 1}
    assert out.groups == {} and out.group_ids() == {"a", "b"}
    assert out.records == 8 and [offset for offset, _ in out.unreadable] == [7]


def test_groups_on_partition_hashes_like_kafka():
    ids = [f"group-{i}" for i in range(40)]
    by_index = [groups_on_partition(ids, i, PARTITIONS) for i in range(PARTITIONS)]
    assert set().union(*by_index) == set(ids) and sum(map(len, by_index)) == len(ids)
    assert all(partition_for(g, PARTITIONS) == i for i, gs in enumerate(by_index) for g in gs)


def two_groups_on_different_partitions() -> tuple[str, str]:
    first = "g-0"
    other = next(f"g-{i}" for i in range(1, 100)
                 if partition_for(f"g-{i}", PARTITIONS) != partition_for(first, PARTITIONS))
    return first, other


def join_request(member_id=""):
    return JoinRequest(member_id, None, "app", "/127.0.0.1", 10000, 30000, "consumer",
                       (("range", b"\x00\x00\x00\x00\x00\x01\x00\x01t"),),
                       require_known_member_id=False)


def test_losing_a_partition_drops_only_its_groups_and_answers_their_parked_calls(tmp_path):
    broker = LocalBroker({"log.dirs": str(tmp_path / "data"), "brook.metrics.listener": "",
                          "group.initial.rebalance.delay.ms": "0",
                          "offsets.topic.num.partitions": str(PARTITIONS)})
    broker.create_topic("t", 1, {})
    coordinator = broker.group_coordinator
    lost, kept = two_groups_on_different_partitions()
    lost_index = partition_for(lost, PARTITIONS)

    async def scenario():
        firsts = {}
        for group_id in (lost, kept):
            joined = await coordinator.join(group_id, join_request())
            member = joined["member_id"]
            await coordinator.sync(group_id, member, None, joined["generation_id"], None, None,
                                   {member: b"a"})
            assert coordinator.commit_offsets(group_id, member, None, joined["generation_id"],
                                              -1, [CommitEntry("t", 0, 7, -1, "")], 9) == [
                ErrorCode.none]
            firsts[group_id] = joined
        # A second member of each group parks its JoinGroup until the first rejoins.
        parked = {g: asyncio.ensure_future(coordinator.join(g, join_request()))
                  for g in (lost, kept)}
        await asyncio.sleep(0.05)
        assert not any(f.done() for f in parked.values())
        kept_group = coordinator.groups[kept]

        coordinator.load()  # nothing changed: nothing reloaded, nothing answered
        await asyncio.sleep(0.05)
        assert coordinator.groups[kept] is kept_group and not parked[kept].done()

        coordinator.unload_partition(lost_index)  # another broker leads it now
        answer = await asyncio.wait_for(parked[lost], 5)
        assert answer["error_code"] == ErrorCode.not_coordinator
        assert lost not in coordinator.groups
        assert [g.group_id for g in coordinator.list_groups()] == [kept]
        assert {key[0] for key in coordinator.offsets.flat} == {kept}
        assert coordinator.groups[kept] is kept_group and not parked[kept].done()

        # The kept group's rebalance completes as usual.
        rejoined = await coordinator.join(kept, join_request(firsts[kept]["member_id"]))
        second = await asyncio.wait_for(parked[kept], 5)
        assert rejoined["error_code"] == second["error_code"] == ErrorCode.none
        assert second["generation_id"] == firsts[kept]["generation_id"] + 1

        # Leading the partition again loads the lost group back from its records.
        coordinator.load()
        back = coordinator.groups[lost]
        assert back.state == GroupState.STABLE
        assert back.generation == firsts[lost]["generation_id"]
        assert coordinator.offsets.get(lost, "t", 0).offset == 7
        assert coordinator.groups[kept] is kept_group

    try:
        asyncio.run(scenario())
    finally:
        broker.close()
