"""Background retention, topic auto-creation and timestamp types on a live broker."""

import time

import confluent_kafka
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec


def _produce_batches(bootstrap, topic, count, size=200):
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(count):
        producer.produce(topic, value=bytes([i % 256]) * size)
        producer.flush(10)


def _earliest(admin, topic):
    tp = TopicPartition(topic, 0)
    return admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result(10).offset


def _wait_for(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_retention_by_size_and_time_deletes_whole_old_segments(fresh_broker, topic_name):
    broker = fresh_broker(log_retention_check_interval_ms=300)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    by_size, by_time = topic_name + "-size", topic_name + "-time"
    admin.create_topics([
        NewTopic(by_size, 1, 1, config={"segment.bytes": "1024", "retention.bytes": "2048"}),
        NewTopic(by_time, 1, 1, config={"segment.bytes": "1024", "retention.ms": "1000"}),
    ])[by_size].result(10)
    _produce_batches(broker.bootstrap, by_size, 40)
    _produce_batches(broker.bootstrap, by_time, 40)
    assert _wait_for(lambda: _earliest(admin, by_size) > 0), "size retention never ran"
    size_dir = broker.data_dir / f"{by_size}-0"
    assert _wait_for(lambda: sum(f.stat().st_size for f in size_dir.glob("*.log")) <= 2048 + 1024)
    assert _wait_for(lambda: _earliest(admin, by_time) > 30), "time retention never ran"
    # the active segment always stays, so the latest records are still readable
    tp = TopicPartition(by_time, 0)
    assert admin.list_offsets({tp: OffsetSpec.latest()})[tp].result(10).offset == 40


def test_auto_create_follows_the_broker_setting(fresh_broker, topic_name):
    on = fresh_broker(num_partitions=3)
    producer = confluent_kafka.Producer({"bootstrap.servers": on.bootstrap})
    producer.produce(topic_name, value=b"x")
    assert producer.flush(15) == 0
    meta = AdminClient({"bootstrap.servers": on.bootstrap}).list_topics(timeout=10)
    assert len(meta.topics[topic_name].partitions) == 3

    off = fresh_broker(auto_create_topics_enable="false")
    errors = []
    producer = confluent_kafka.Producer({"bootstrap.servers": off.bootstrap,
                                         "message.timeout.ms": 3000})
    producer.produce(topic_name, value=b"x", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert errors and errors[0] is not None
    assert topic_name not in AdminClient({"bootstrap.servers": off.bootstrap}).list_topics(
        timeout=10).topics


def test_log_append_time_overrides_the_producer_timestamp(broker, topic_name):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1, config={
        "message.timestamp.type": "LogAppendTime"})])[topic_name].result(10)
    producer = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce(topic_name, value=b"x", timestamp=1_000_000)
    producer.flush(10)
    consumer = confluent_kafka.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "x",
                                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic_name, 0, 0)])
    msg = None
    for _ in range(20):
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            break
    consumer.close()
    kind, ts = msg.timestamp()
    assert kind == confluent_kafka.TIMESTAMP_LOG_APPEND_TIME
    assert abs(ts - time.time() * 1000) < 60_000
