"""Controller operations decided against the image; commits applied in memory."""

import asyncio

from kio.schema.errors import ErrorCode

from brook.broker.config import BrokerConfig
from brook.broker.controller.service import Controller, NotController
from brook.broker.metadata.image import MetadataImage


class Harness:
    def __init__(self, leader=True):
        self.image = MetadataImage()
        self.now = 0.0
        self.leader = leader
        self.epoch = 1
        config = BrokerConfig.from_sources(None, ["num.partitions=3",
                                                  "default.replication.factor=3"])
        self.controller = Controller(0, lambda: self.image, self.commit, lambda: self.leader,
                                     lambda: 0 if self.leader else 2, config,
                                     clock=lambda: self.now, leader_epoch=lambda: self.epoch)

    async def commit(self, records):
        for record in records:
            self.image.apply(record, self.image.offset + 1)

    def call(self, op, request):
        return asyncio.run(self.controller.call(op, request))

    def join(self, broker_id, incarnation="first"):
        reg = self.call("register_broker", {"broker_id": broker_id,
                                            "incarnation_id": f"{incarnation}-{broker_id}",
                                            "host": "127.0.0.1", "port": 9092 + broker_id,
                                            "controller_port": 9093})
        beat = self.call("heartbeat", {"broker_id": broker_id, "broker_epoch": reg["broker_epoch"],
                                       "metadata_offset": self.image.offset})
        assert beat == {"error_code": 0, "fenced": False}
        return reg["broker_epoch"]


def test_only_the_quorum_leader_serves():
    h = Harness(leader=False)
    try:
        h.call("create_topics", {"topics": []})
    except NotController as exc:
        assert exc.leader_id == 2
    else:
        raise AssertionError("a follower served a controller operation")


def test_brokers_register_unfence_and_topics_spread_over_them():
    h = Harness()
    for b in range(3):
        h.join(b)
    result = h.call("create_topics", {"topics": [{"name": "t", "num_partitions": -1,
                                                  "replication_factor": -1, "configs": {}}]})
    assert result["topics"][0]["error_code"] == 0
    topic = h.image.topics["t"]
    assert len(topic.partitions) == 3
    assert {p.leader for p in topic.partitions.values()} == {0, 1, 2}
    again = h.call("create_topics", {"topics": [{"name": "t", "num_partitions": 1,
                                                 "replication_factor": 1, "configs": {}}]})
    assert again["topics"][0]["error_code"] == ErrorCode.topic_already_exists
    too_many = h.call("create_topics", {"topics": [{"name": "u", "num_partitions": 1,
                                                    "replication_factor": 4, "configs": {}}]})
    assert too_many["topics"][0]["error_code"] == ErrorCode.invalid_replication_factor


def test_session_timeout_fences_and_moves_leadership():
    h = Harness()
    epochs = {b: h.join(b) for b in range(3)}
    h.call("create_topics", {"topics": [{"name": "t", "num_partitions": 3,
                                         "replication_factor": 3, "configs": {}}]})
    asyncio.run(h.controller.check_sessions())
    h.now = 5.0
    for b in (1, 2):
        h.call("heartbeat", {"broker_id": b, "broker_epoch": epochs[b],
                             "metadata_offset": h.image.offset})
    h.now = 10.0
    asyncio.run(h.controller.check_sessions())
    assert h.image.brokers[0].fenced
    assert all(p.leader in (1, 2) and 0 not in p.isr for p in h.image.topics["t"].partitions.values())


def test_a_controller_elected_again_gives_every_broker_a_fresh_session():
    h = Harness()
    for b in range(3):
        h.join(b)
    asyncio.run(h.controller.check_sessions())  # leads term 1, heartbeats seen at t=0
    h.leader = False  # another node leads for a while; this one misses no check
    h.now, h.epoch = 20.0, 3
    h.leader = True  # ... and leads again, brokers still timing out on the old leader
    asyncio.run(h.controller.check_sessions())
    assert not any(b.fenced for b in h.image.brokers.values())
    h.now = 20.0 + h.controller.session_timeout_s + 0.1  # nobody reached it within a session
    asyncio.run(h.controller.check_sessions())
    assert all(b.fenced for b in h.image.brokers.values())


def test_controlled_shutdown_moves_leaders_first():
    h = Harness()
    epochs = {b: h.join(b) for b in range(2)}
    h.call("create_topics", {"topics": [{"name": "t", "num_partitions": 2,
                                         "replication_factor": 2, "configs": {}}]})
    answer = h.call("heartbeat", {"broker_id": 0, "broker_epoch": epochs[0],
                                  "want_shutdown": True})
    assert answer["shutdown_ready"] is True
    assert all(p.leader == 1 for p in h.image.topics["t"].partitions.values())


def test_configs_reassignment_elections_and_producer_ids():
    h = Harness()
    for b in range(4):
        h.join(b)
    mixed = h.call("create_topics", {"topics": [{"name": "t", "num_partitions": 1, "assignments": [
        {"partition_index": 0, "broker_ids": [0, 1, 2]}]}]})
    assert mixed["topics"][0]["error_code"] == ErrorCode.invalid_request
    h.call("create_topics", {"topics": [{"name": "t",
                                         "assignments": [{"partition_index": 0,
                                                          "broker_ids": [0, 1, 2]}],
                                         "configs": {"retention.ms": "1000"}}]})
    assert h.image.topic_configs("t") == {"retention.ms": "1000"}
    assert h.call("set_topic_configs", {"name": "t", "configs": {"segment.ms": "5000"}}) == \
        {"error_code": 0}
    assert h.image.topic_configs("t") == {"segment.ms": "5000"}
    bad = h.call("set_topic_configs", {"name": "t", "configs": {"retention.ms": "x"}})
    assert bad["error_code"] == ErrorCode.invalid_config

    h.call("alter_reassignments", {"partitions": [{"topic": "t", "partition": 0,
                                                   "replicas": [1, 2, 3]}]})
    state = h.image.partition("t", 0)
    assert state.adding == (3,) and state.removing == (0,)
    h.call("alter_partition", {"broker_id": 0, "topic_id": h.image.topics["t"].topic_id,
                               "partition": 0, "leader_epoch": state.leader_epoch,
                               "partition_epoch": state.partition_epoch,
                               "new_isr": [0, 1, 2, 3]})
    state = h.image.partition("t", 0)
    assert state.replicas == (1, 2, 3) and state.leader == 1

    first = h.call("allocate_producer_ids", {"broker_id": 1})
    second = h.call("allocate_producer_ids", {"broker_id": 2})
    assert second["first_id"] == first["first_id"] + first["size"]


def test_leadership_returns_to_preferred_replicas():
    h = Harness()
    epochs = {b: h.join(b) for b in range(3)}
    h.call("create_topics", {"topics": [{"name": "t", "num_partitions": 3,
                                         "replication_factor": 3, "configs": {}}]})
    preferred = {i: p.replicas[0] for i, p in h.image.topics["t"].partitions.items()}
    h.call("heartbeat", {"broker_id": 0, "broker_epoch": epochs[0], "want_shutdown": True})
    assert all(p.leader != 0 for p in h.image.topics["t"].partitions.values())
    epochs[0] = h.join(0, incarnation="restarted")  # back, and caught up (the ISR would re-admit it via AlterPartition)
    for index, state in h.image.topics["t"].partitions.items():
        if 0 not in state.isr:
            h.call("alter_partition", {"broker_id": state.leader,
                                       "topic_id": h.image.topics["t"].topic_id,
                                       "partition": index, "leader_epoch": state.leader_epoch,
                                       "partition_epoch": state.partition_epoch,
                                       "new_isr": list(state.isr) + [0]})
    assert asyncio.run(h.controller.rebalance_leaders()) == 1
    assert {i: p.leader for i, p in h.image.topics["t"].partitions.items()} == preferred
    assert asyncio.run(h.controller.rebalance_leaders()) == 0
