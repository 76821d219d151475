"""Acknowledged records survive SIGKILL and SIGTERM; offsets continue after restart."""

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic

from brook.broker.storage.checkpoint import read_offset
from brook.broker.storage.log import CLEAN_SHUTDOWN_FILE, RECOVERY_POINT_FILE


def _create(bootstrap, topic, partitions=2, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})])
    futures[topic].result(15)


def _produce(bootstrap, topic, count, start=0, **conf):
    acked = []

    def on_delivery(err, msg):
        assert err is None, err
        acked.append((msg.partition(), msg.offset(), msg.value()))

    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **conf})
    for i in range(start, start + count):
        producer.produce(topic, key=f"k{i % 13}".encode(), value=f"v{i}".encode(),
                         on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    return acked


def _consume_all(bootstrap, topic, partitions, expected, timeout=30):
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                                         "enable.auto.commit": False})
    consumer.assign([confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
                     for p in range(partitions)])
    seen = []
    import time
    deadline = time.monotonic() + timeout
    while len(seen) < expected and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        seen.append((msg.partition(), msg.offset(), msg.value()))
    consumer.close()
    return seen


def test_sigkill_loses_no_acknowledged_record_and_offsets_continue(fresh_broker, topic_name):
    broker = fresh_broker()
    _create(broker.bootstrap, topic_name)
    first = _produce(broker.bootstrap, topic_name, 2000, acks="all")
    broker.kill()
    for partition in (0, 1):  # a crash leaves no clean-shutdown marker: recovery will run
        assert not (broker.data_dir / f"{topic_name}-{partition}" / CLEAN_SHUTDOWN_FILE).exists()
    broker.start()
    again = _consume_all(broker.bootstrap, topic_name, 2, len(first))
    assert sorted(again) == sorted(first)
    second = _produce(broker.bootstrap, topic_name, 500, start=2000, acks="all")
    for partition in (0, 1):
        before = max((o for p, o, _ in first if p == partition), default=-1)
        after = min((o for p, o, _ in second if p == partition), default=before + 1)
        assert after == before + 1, "offsets must continue where the log ended"
    assert len(_consume_all(broker.bootstrap, topic_name, 2, 2500)) == 2500


def test_sigterm_stops_cleanly_and_restart_needs_no_recovery(fresh_broker, topic_name):
    broker = fresh_broker()
    _create(broker.bootstrap, topic_name, partitions=1)
    acked = _produce(broker.bootstrap, topic_name, 300)
    assert broker.stop() == 0
    assert "stopped cleanly" in broker.log_tail()
    # A log opens without the recovery scan (CRC check of its tail segments) exactly when
    # this marker is present (storage/log.py); the recovery point covers the whole log.
    directory = broker.data_dir / f"{topic_name}-0"
    assert (directory / CLEAN_SHUTDOWN_FILE).exists()
    assert read_offset(directory / RECOVERY_POINT_FILE) == 300
    broker.start()
    assert not (directory / CLEAN_SHUTDOWN_FILE).exists()  # taken: the clean path was used
    assert sorted(_consume_all(broker.bootstrap, topic_name, 1, 300)) == sorted(acked)


def test_torn_tail_is_truncated_to_the_last_whole_batch(fresh_broker, topic_name):
    broker = fresh_broker()
    _create(broker.bootstrap, topic_name, partitions=1)
    acked = _produce(broker.bootstrap, topic_name, 100)
    broker.kill()
    segment = sorted((broker.data_dir / f"{topic_name}-0").glob("*.log"))[-1]
    with open(segment, "ab") as handle:
        handle.write(b"\x00\x00\x00\x00\x00\x00\x00\x99\x00\x00\x01\x00half a batch")
    broker.start()
    assert sorted(_consume_all(broker.bootstrap, topic_name, 1, 100)) == sorted(acked)
    more = _produce(broker.bootstrap, topic_name, 10, start=100)
    assert min(o for _, o, _ in more) == 100
