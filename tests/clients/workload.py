"""Records to produce and the checks to run on what comes back, shaped by a driver's
capability flags, so the same test body works for every client and every broker."""

from __future__ import annotations

import os
import random
import struct
import time
from collections import Counter, defaultdict
from pathlib import Path

from .base import ClientDriver

INDEX_LEN = 8  # every value starts with its zero-padded record index


def make_records(driver: ClientDriver, count: int = 10_000, *, keys: int = 200,
                 value_size: int = 100, seed: int = 0, timestamps: bool = True,
                 first_index: int = 0) -> list[dict]:
    """`count` keyed records of ~value_size bytes with headers (per record where the
    driver can; binary header values and repeated names where it can) and creation
    timestamps in the last few seconds (if the driver can set them).

    Values start with their index, first_index .. first_index+count-1, so a later call
    with the same seed continues a topic: same key pool (same key -> same partition
    holds across both), same uniform headers, fresh values."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    key_pool = [b"key-%d-" % k + rng.randbytes(rng.randrange(0, 12)) for k in range(keys)]
    uniform_headers = [("source", driver.name.encode()), ("run", b"%d" % seed)]
    if first_index:
        rng.seed(seed * 1_000_003 + first_index)
    out = []
    for i in range(first_index, first_index + count):
        body_len = max(0, value_size - INDEX_LEN)
        value = b"%08d" % i + rng.randbytes(body_len // 2) + b"x" * (body_len - body_len // 2)
        if driver.supports_per_record_headers:
            headers = [("idx", b"%d" % i)]
            headers.append(("bin", rng.randbytes(6) + b",=\n\x00" if driver.supports_binary_headers
                            else b"v%d" % rng.randrange(1000)))
            if driver.supports_duplicate_headers:
                headers.append(("idx", b"again"))
        else:
            headers = list(uniform_headers)
        out.append({
            "key": key_pool[rng.randrange(keys)],
            "value": value,
            "headers": headers,
            "timestamp_ms": (now - (first_index + count - i)
                             if timestamps and driver.supports_timestamps else None),
            "partition": None,
        })
    return out


def record_index(value: bytes) -> int:
    return int(value[:INDEX_LEN])


def produce_stamped(driver: ClientDriver, bootstrap: str, topic: str, records: list[dict],
                    compression: str = "none") -> list[tuple[int, int]]:
    """driver.produce, noting the wall-clock window around it on every record sent
    without a timestamp: the client stamps those itself (CreateTime = when produce() was
    called), so check_roundtrip can still check the timestamps read back."""
    before = int(time.time() * 1000)
    acks = driver.produce(bootstrap, topic, records, compression=compression)
    after = int(time.time() * 1000) + 1
    for r in records:
        if r.get("timestamp_ms") is None:
            r["sent_window"] = (before, after)
    return acks


def check_roundtrip(driver: ClientDriver, produced: list[dict], acks: list[tuple[int, int]],
                    consumed: list[dict], partitions: int) -> None:
    """Assert: every record read back exactly once, per-partition order kept, same key ->
    same partition, acks match the offsets read, headers/timestamps intact where the
    driver supports them. A record sent without a timestamp (the client stamps it) must
    come back with one inside the window produce_stamped noted around its produce call.
    Record i of `produced` has index first + i, first being produced[0]'s index."""
    n = len(produced)
    first = record_index(produced[0]["value"]) if produced else 0
    assert len(acks) == n, f"{len(acks)} acks for {n} records"
    assert len(set(acks)) == n, "duplicate (partition, offset) acks"
    assert all(0 <= p < partitions and o >= 0 for p, o in acks), "ack outside the topic"

    positions = [(r["partition"], r["offset"]) for r in consumed]
    assert len(consumed) == n, f"read {len(consumed)} records, produced {n}"
    assert len(set(positions)) == n, "a (partition, offset) was read twice"
    assert set(positions) == set(acks), "offsets read differ from offsets acked"

    by_index: dict[int, dict] = {}
    for r in consumed:
        i = record_index(r["value"])
        assert i not in by_index, f"record {i} read twice"
        by_index[i] = r
    assert sorted(by_index) == list(range(first, first + n)), "some records missing"

    compare_headers = driver.supports_per_record_headers or _uniform(produced, "headers")
    key_partitions: dict[bytes, set[int]] = defaultdict(set)
    per_partition: dict[int, list[tuple[int, int]]] = defaultdict(list)
    sent_ts = [sent.get("timestamp_ms") for sent in produced]
    stamped_in_order = all(t is not None for t in sent_ts) and sent_ts == sorted(sent_ts)
    stamped_by_client = all("sent_window" in sent for sent in produced)
    for i, sent in enumerate(produced):
        got = by_index[first + i]
        assert got["key"] == sent["key"], f"record {i}: key {got['key']!r} != {sent['key']!r}"
        assert got["value"] == sent["value"], f"record {i}: value differs"
        if compare_headers:
            assert _norm_headers(driver, got["headers"]) == _norm_headers(driver, sent["headers"]), \
                f"record {i}: headers {got['headers']} != {sent['headers']}"
        if driver.supports_timestamps and sent.get("timestamp_ms") is not None:
            assert got["timestamp_ms"] == sent["timestamp_ms"], f"record {i}: timestamp differs"
        elif "sent_window" in sent:
            low, high = sent["sent_window"]
            assert low <= got["timestamp_ms"] <= high, \
                f"record {i}: timestamp {got['timestamp_ms']} outside its produce call {low}..{high}"
        if driver.exact_acks or sent.get("partition") is not None or sent.get("key"):
            assert acks[i] == (got["partition"], got["offset"]), \
                f"record {i}: acked {acks[i]} but read at {(got['partition'], got['offset'])}"
        key_partitions[sent["key"]].add(got["partition"])
        per_partition[got["partition"]].append((got["offset"], i, got["timestamp_ms"]))
    split = {k: v for k, v in key_partitions.items() if len(v) > 1}
    assert not split, f"{len(split)} keys landed in several partitions"
    for p, items in per_partition.items():
        items.sort()
        order = [i for _, i, _ in items]
        assert order == sorted(order), f"partition {p}: records out of produce order"
        if stamped_in_order or stamped_by_client:
            # timestamps given in send order, or stamped by the client as it sent each
            # record in order: within a partition they never go back
            times = [t for _, _, t in items]
            assert times == sorted(times), f"partition {p}: timestamps go back"


def _uniform(records: list[dict], field: str) -> bool:
    first = records[0].get(field) if records else None
    return all(r.get(field) == first for r in records)


def _norm_headers(driver: ClientDriver, headers) -> list:
    hs = [(k, v) for k, v in headers or ()]
    if not driver.supports_duplicate_headers:  # e.g. kafkajs groups values by name
        return sorted(hs, key=lambda kv: kv[0])
    return hs


# ---------------------------------------------------------------- on-disk batches

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def batch_codecs(log_dir: str | os.PathLike) -> Counter:
    """Count record batches per compression codec in a Kafka-format partition directory
    (segment files *.log: baseOffset, length, leaderEpoch, magic, crc, attributes...)."""
    counts: Counter = Counter()
    for seg in sorted(Path(log_dir).glob("*.log")):
        data = seg.read_bytes()
        pos = 0
        while pos + 23 <= len(data):
            _base, length = struct.unpack_from(">qi", data, pos)
            if length <= 0:
                break
            magic = data[pos + 16]
            (attributes,) = struct.unpack_from(">h", data, pos + 21)
            if magic == 2:
                counts[CODECS.get(attributes & 7, f"codec{attributes & 7}")] += 1
            pos += 12 + length
    return counts


def wait_topic_ready(bootstrap: str, topic: str, partitions: int, timeout_s: float = 30.0) -> None:
    """Wait until every partition has a leader that answers ListOffsets.

    CreateTopics returns once the controller has committed the topic; brokers learn it
    a moment later. Producing in that window gets NOT_LEADER_OR_FOLLOWER, and clients
    without idempotence (kafkajs, kafka-python, aiokafka, librdkafka by default) may then
    retry batches that were already written for other partitions: duplicates that a
    roundtrip check would rightly report. Tests call this between create and produce.
    (Uses confluent-kafka's admin client: Metadata + ListOffsets, no consumer group.)
    """
    from confluent_kafka import KafkaException, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_s
    last: object = "no metadata"
    while True:
        try:
            md = admin.list_topics(topic, timeout=5).topics.get(topic)
            if md is not None and md.error is None and len(md.partitions) == partitions \
                    and all(p.leader >= 0 and p.error is None for p in md.partitions.values()):
                futures = admin.list_offsets(
                    {TopicPartition(topic, p): OffsetSpec.earliest() for p in range(partitions)},
                    request_timeout=5)
                for f in futures.values():
                    f.result()
                return
            last = md.error if md is not None else "topic missing"
        except KafkaException as e:
            last = e
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} not ready after {timeout_s}s: {last}")
        time.sleep(0.1)
