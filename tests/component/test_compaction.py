"""Log compaction against a broker subprocess, written and read with confluent-kafka."""

from __future__ import annotations

import json
import random
import re
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.timeout(180)


def create_topic(bootstrap: str, name: str, **configs) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {k.replace("_", "."): str(v) for k, v in configs.items()}
    admin.create_topics([NewTopic(name, 1, 1, config=config)])[name].result(10)


def produce(bootstrap: str, topic: str, items) -> dict[int, tuple[bytes, bytes | None]]:
    """Produce (key, value) pairs in order; returns offset -> (key, value) as acked."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                         "compression.type": "lz4"})
    acked: dict[int, tuple[bytes, bytes | None]] = {}
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked[msg.offset()] = (msg.key(), msg.value())

    for key, value in items:
        while True:
            try:
                producer.produce(topic, key=key, value=value, partition=0, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0 and not errors, errors[:3]
    return acked


def read_all(bootstrap: str, topic: str, end_offset: int,
             start: int = 0) -> list[tuple[int, bytes, bytes]]:
    """Every record from offset `start` up to (excluding) end_offset."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, 0, start)])
    out = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    if msg.offset() >= end_offset:
                        break
                    continue
                raise AssertionError(msg.error())
            if msg.offset() >= end_offset:
                break
            out.append((msg.offset(), msg.key(), msg.value()))
    finally:
        consumer.close()
    return out


def live_state(items) -> dict[bytes, bytes]:
    state: dict[bytes, bytes] = {}
    for key, value in items:
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    return state


def cleaner_state(partition_dir: Path) -> dict:
    try:
        return json.loads((partition_dir / "cleaner-state.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def log_bytes(partition_dir: Path) -> int:
    return sum(p.stat().st_size for p in partition_dir.glob("*.log"))


def updates(count: int, keys: int, seed: int, tombstone_every: int):
    rng = random.Random(seed)
    items = []
    for i in range(count):
        key = b"key-%05d" % rng.randrange(keys)
        items.append((key, None if i % tombstone_every == tombstone_every - 1 else b"v%d" % i))
    return items


def roll_with_sentinel(bootstrap: str, topic: str, segment_ms: int) -> int:
    """Close the active segment (segment.ms passed) by appending a unique record."""
    time.sleep(segment_ms / 1000 + 0.2)
    (offset,) = produce(bootstrap, topic, [(b"~sentinel", b"end")]).keys()
    return offset


def check_compacted(records, items, acked, sentinel):
    expected = live_state(items)
    body = [(o, k, v) for o, k, v in records if k != b"~sentinel"]
    keys = [k for _, k, _ in body]
    assert len(keys) == len(set(keys)), "a key appears more than once below the active segment"
    assert {k: v for _, k, v in body} == expected
    for offset, key, value in body:  # offsets preserved: each record where it was written
        assert acked[offset] == (key, value)
    assert records[-1] == (sentinel, b"~sentinel", b"end")


def test_100k_updates_over_1000_keys_keep_latest_value_and_shrink(fresh_broker, topic_name):
    broker = fresh_broker(log_cleaner_backoff_ms=250)
    bootstrap = broker.bootstrap
    create_topic(bootstrap, topic_name, cleanup_policy="compact", segment_bytes=262144,
                 segment_ms=1000, min_cleanable_dirty_ratio=0.01, delete_retention_ms=0)
    items = updates(100_000, 1_000, seed=7, tombstone_every=40)
    # and a final delete of 100 keys
    items += [(b"key-%05d" % k, None) for k in range(0, 1_000, 10)]
    acked = produce(bootstrap, topic_name, items)
    assert len(acked) == len(items)
    sentinel = roll_with_sentinel(bootstrap, topic_name, 1000)

    partition_dir = broker.data_dir / f"{topic_name}-0"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        state = cleaner_state(partition_dir)
        if state.get("clean_offset") == sentinel and state.get(
                "oldest_tombstone_cleaned_ms") is None:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"cleaning never finished: {cleaner_state(partition_dir)}\n"
                    f"{broker.log_tail()}")
    records = read_all(bootstrap, topic_name, sentinel + 1)
    check_compacted(records, items, acked, sentinel)
    assert len(live_state(items)) == len(records) - 1 < 1_000  # deleted keys are gone

    # The log shrank: compare with what the producer wrote (brook_topic_bytes_in).
    text = urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics",
                                  timeout=10).read().decode()
    written = float(re.search(rf'brook_topic_bytes_in_total{{topic="{topic_name}"}} (\S+)',
                              text).group(1))
    assert log_bytes(partition_dir) < written / 10

    # Records without a key are refused on a compacted topic.
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0})
    errors = []
    producer.produce(topic_name, value=b"no key", partition=0,
                     on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert errors and errors[0] is not None and errors[0].code() == KafkaError.INVALID_RECORD


def test_crash_during_cleaning_loses_nothing(fresh_broker, topic_name):
    broker = fresh_broker(log_cleaner_backoff_ms=50)
    bootstrap = broker.bootstrap
    # Nothing is cleanable for 4 s (min.compaction.lag.ms), then one big clean starts.
    create_topic(bootstrap, topic_name, cleanup_policy="compact", segment_bytes=1_048_576,
                 segment_ms=1000, min_compaction_lag_ms=4000, min_cleanable_dirty_ratio=0.01)
    items = updates(60_000, 500, seed=11, tombstone_every=25)
    acked = produce(bootstrap, topic_name, items)
    sentinel = roll_with_sentinel(bootstrap, topic_name, 1000)
    partition_dir = broker.data_dir / f"{topic_name}-0"

    caught = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and caught is None:
        for entry in partition_dir.iterdir():
            if entry.name.startswith((".cleaning-", ".swap-")):
                broker.kill()  # SIGKILL in the middle of a clean
                caught = entry.name
                break
        else:
            time.sleep(0.003)
    assert caught, "the cleaner never started"

    broker.start()
    # Right after the restart: every record is either the original or compacted away,
    # and the latest value of every key is still there.
    records = read_all(bootstrap, topic_name, sentinel + 1)
    assert all(acked[o] == (k, v) for o, k, v in records if k != b"~sentinel")
    assert live_state([(k, v) for _, k, v in records if k != b"~sentinel"]) == live_state(items)

    # The cleaning finishes after the restart.
    deadline = time.monotonic() + 90
    while cleaner_state(partition_dir).get("clean_offset") != sentinel:
        assert time.monotonic() < deadline, broker.log_tail()
        time.sleep(0.2)
    records = read_all(bootstrap, topic_name, sentinel + 1)
    assert live_state([(k, v) for _, k, v in records if k != b"~sentinel"]) == live_state(items)
    keys = [k for _, k, _ in records]
    assert len(keys) == len(set(keys))
    assert not any(p.name.startswith(".") for p in partition_dir.iterdir() if p.is_dir())



def log_start(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[0]
    finally:
        consumer.close()


def test_compact_and_delete_both_apply(fresh_broker, topic_name):
    """cleanup.policy=compact,delete: closed segments keep only each key's latest value,
    and whole segments older than retention.ms go, keys and all (Kafka's semantics)."""
    broker = fresh_broker(log_cleaner_backoff_ms=200, log_retention_check_interval_ms=500)
    bootstrap = broker.bootstrap
    create_topic(bootstrap, topic_name, cleanup_policy="compact,delete", segment_ms=1000,
                 min_cleanable_dirty_ratio=0.01, retention_ms=12000)
    old = [(b"old-%02d" % (i % 20), b"v%d" % i) for i in range(200)]  # 10 updates per key
    acked = produce(bootstrap, topic_name, old)
    sentinel = roll_with_sentinel(bootstrap, topic_name, 1000)

    # Compaction: one record per key below the active segment, the latest value.
    partition_dir = broker.data_dir / f"{topic_name}-0"
    deadline = time.monotonic() + 30
    while cleaner_state(partition_dir).get("clean_offset") != sentinel:
        assert time.monotonic() < deadline, f"never cleaned: {broker.log_tail()}"
        time.sleep(0.1)
    records = read_all(bootstrap, topic_name, sentinel + 1)
    check_compacted(records, old, acked, sentinel)
    assert len(records) == 21

    # Retention: once the old segments are older than retention.ms they are deleted,
    # though compaction alone would keep their keys forever.
    new = [(b"new-%02d" % i, b"n%d" % i) for i in range(5)]
    new_acked = produce(bootstrap, topic_name, new)
    deadline = time.monotonic() + 40
    while log_start(bootstrap, topic_name) <= max(acked):
        assert time.monotonic() < deadline, f"old segments never deleted: {broker.log_tail()}"
        time.sleep(0.25)
    start = log_start(bootstrap, topic_name)
    remaining = read_all(bootstrap, topic_name, max(new_acked) + 1, start)
    assert remaining[0][0] == start and not any(k.startswith(b"old-") for _, k, _ in remaining)
    assert [(o, k, v) for o, k, v in remaining if k != b"~sentinel"] == [
        (o, *new_acked[o]) for o in sorted(new_acked)]
