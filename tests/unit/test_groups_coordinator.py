"""The coordinator with real logs in a temp dir (no sockets): persistence, replay, expiry."""

import asyncio

from kio.schema.errors import ErrorCode

from brook.broker.groups.coordinator import CommitEntry, iter_log_records, now_ms
from brook.broker.groups.group import GroupState, JoinRequest
from brook.broker.groups.log_format import GroupKey, OffsetKey, decode_key
from brook.broker.groups.placement import OFFSETS_TOPIC, partition_for
from tests.support.local_broker import LocalBroker


def open_broker(tmp_path, **extra):
    return LocalBroker({
        "log.dirs": str(tmp_path / "data"), "brook.metrics.listener": "",
        "group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "5", **extra})


def join_and_sync(coordinator, group_id):
    async def run():
        request = JoinRequest("", None, "app", "/127.0.0.1", 10000, 30000, "consumer",
                              (("range", b"\x00\x00\x00\x00\x00\x01\x00\x01t"),),
                              require_known_member_id=False)
        joined = await coordinator.join(group_id, request)
        member = joined["member_id"]
        synced = await coordinator.sync(group_id, member, None, joined["generation_id"], None,
                                        None, {member: b"assignment"})
        return joined, synced
    return asyncio.run(run())


def test_offsets_and_groups_survive_a_restart(tmp_path):
    broker = open_broker(tmp_path)
    broker.create_topic("t", 2, {})
    coordinator = broker.group_coordinator
    joined, synced = join_and_sync(coordinator, "g1")
    assert synced["error_code"] == ErrorCode.none and synced["assignment"] == b"assignment"
    member, generation = joined["member_id"], joined["generation_id"]
    errors = coordinator.commit_offsets("g1", member, None, generation, -1, [
        CommitEntry("t", 0, 42, 3, "meta"), CommitEntry("t", 9, 1, -1, None)], 9)
    assert errors == [ErrorCode.none, ErrorCode.unknown_topic_or_partition]
    assert coordinator.commit_offsets("simple", "", None, -1, -1,
                                      [CommitEntry("t", 1, 7, -1, "")], 9) == [ErrorCode.none]
    # Records sit on the group's own partition of __consumer_offsets, in Kafka's format.
    partition = broker.partition(OFFSETS_TOPIC, partition_for("g1", 5))
    keys = [decode_key(r.key) for _, r in iter_log_records(partition.log)]
    assert GroupKey("g1") in keys and OffsetKey("g1", "t", 0) in keys
    broker.close()

    reopened = open_broker(tmp_path)
    coordinator = reopened.group_coordinator
    group = coordinator.groups["g1"]
    assert group.state == GroupState.STABLE and group.generation == generation
    assert group.members[member].assignment == b"assignment"
    assert coordinator.heartbeat("g1", member, None, generation) == ErrorCode.none
    ((topic, committed),) = coordinator.fetch_offsets("g1", [("t", [0, 1])])
    assert topic == "t" and committed[0][1].offset == 42 and committed[0][1].leader_epoch == 3
    assert committed[0][1].metadata == "meta" and committed[1][1] is None
    assert coordinator.groups["simple"].state == GroupState.EMPTY
    assert coordinator.fetch_offsets("simple", None)[0][1][0][1].offset == 7
    reopened.close()


def test_expiry_removes_offsets_then_the_empty_group(tmp_path):
    broker = open_broker(tmp_path, **{"offsets.retention.minutes": "1"})
    broker.create_topic("t", 1, {})
    coordinator = broker.group_coordinator
    coordinator.commit_offsets("simple", "", None, -1, -1, [CommitEntry("t", 0, 5, -1, "")], 9)
    assert coordinator.expire_offsets(now_ms() + 30_000) == 0
    assert coordinator.expire_offsets(now_ms() + 61_000) == 1
    assert "simple" not in coordinator.groups and not coordinator.offsets.flat
    broker.close()
    reopened = open_broker(tmp_path)
    assert "simple" not in reopened.group_coordinator.groups
    reopened.close()


def test_delete_group_and_topic_write_tombstones(tmp_path):
    broker = open_broker(tmp_path)
    broker.create_topic("t", 1, {})
    broker.create_topic("u", 1, {})
    coordinator = broker.group_coordinator
    for group in ("a", "b"):
        coordinator.commit_offsets(group, "", None, -1, -1, [CommitEntry("t", 0, 1, -1, ""),
                                                             CommitEntry("u", 0, 2, -1, "")], 9)
    assert coordinator.delete_group("a") == ErrorCode.none
    assert coordinator.delete_group("a") == ErrorCode.group_id_not_found
    broker.delete_topic("u")
    assert coordinator.fetch_offsets("b", None) == [("t", [(0, coordinator.offsets.get(
        "b", "t", 0))])]
    broker.close()
    reopened = open_broker(tmp_path)
    assert set(reopened.group_coordinator.groups) == {"b"}
    assert set(reopened.group_coordinator.offsets.flat) == {("b", "t", 0)}
    reopened.close()


def test_lag_collector(tmp_path):
    broker = open_broker(tmp_path)
    broker.create_topic("t", 1, {})
    from brook.broker import records as rec

    broker.partition("t", 0).append(rec.encode_batch(
        [rec.Record(i, 0, None, b"x", []) for i in range(10)]))
    broker.group_coordinator.commit_offsets("g", "", None, -1, -1,
                                            [CommitEntry("t", 0, 4, -1, "")], 9)
    samples = {(s.name, s.labels.get("group"), s.labels.get("topic")): s.value
               for family in broker.metrics.registry.collect() for s in family.samples}
    assert samples[("brook_consumer_group_committed_offset", "g", "t")] == 4
    assert samples[("brook_consumer_group_log_end_offset", "g", "t")] == 10
    assert samples[("brook_consumer_group_lag", "g", "t")] == 6
    assert samples[("brook_consumer_group_topic_lag", "g", "t")] == 6
    broker.close()
