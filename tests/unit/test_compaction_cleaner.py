"""The log cleaner against real partition logs in a temp dir (no sockets), incl. crashes."""

import asyncio
import random
import time

import pytest

from brook.broker import records as rec
from brook.broker.compaction import cleaner as cleaner_module
from brook.broker.groups.coordinator import iter_log_records
from brook.broker.storage import segment_swap
from tests.support.local_broker import LocalBroker

TOPIC = "changelog"
COMPACTED = {"cleanup.policy": "compact", "segment.bytes": "8192",
             "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "1000"}


def open_broker(tmp_path):
    return LocalBroker({"log.dirs": str(tmp_path / "data"),
                                          "brook.metrics.listener": ""})


def produce(partition, items, per_batch=7, producer_id=-1):
    now = int(time.time() * 1000)
    sequence = 0
    for start in range(0, len(items), per_batch):
        chunk = items[start:start + per_batch]
        data = rec.encode_batch(
            [rec.Record(i, now, k, v, []) for i, (k, v) in enumerate(chunk)],
            compression=rec.COMPRESSION_LZ4 if start % 2 else rec.COMPRESSION_NONE,
            producer_id=producer_id, producer_epoch=0 if producer_id >= 0 else -1,
            base_sequence=sequence if producer_id >= 0 else -1)
        sequence += len(chunk)
        outcome = partition.append(data, now)
        assert outcome.error == 0, outcome


def read_all(partition):
    return [(r.offset, r.key, r.value) for _, r in iter_log_records(partition.log)]


def latest(entries):
    state = {}
    for _, key, value in entries:
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    return state


def updates(n, keys, seed=1, tombstone_every=0):
    rng = random.Random(seed)
    items = []
    for i in range(n):
        key = b"k%04d" % rng.randrange(keys)
        value = None if tombstone_every and i % tombstone_every == 0 else b"v%d" % i
        items.append((key, value))
    return items


def clean(broker, now_ms=None):
    partition = broker.partition(TOPIC, 0)
    settings = broker.log_cleaner.settings_of(TOPIC)
    return asyncio.run(broker.log_cleaner.clean_partition(partition, settings, now_ms))


def crash(broker):
    """Stop without a clean shutdown: descriptors closed, nothing flushed or marked."""
    for partition in broker.partitions.values():
        partition.log.close_without_flush()


@pytest.fixture
def broker(tmp_path):
    broker = open_broker(tmp_path)
    broker.create_topic(TOPIC, 1, dict(COMPACTED))
    yield broker


def test_latest_value_per_key_survives_and_offsets_are_kept(broker, tmp_path):
    partition = broker.partition(TOPIC, 0)
    produce(partition, updates(3000, 40, tombstone_every=97))
    before = read_all(partition)
    size_before = partition.log.size_bytes
    result = clean(broker)
    assert result.cleaned and result.records_after < result.records_before
    after = read_all(partition)
    assert latest(after) == latest(before)
    assert set(after) <= set(before)  # same (offset, key, value) triples: offsets preserved
    uncleanable = segment_swap.segments_of(partition.log)[-1].base_offset
    cleaned_keys = [key for offset, key, _ in after if offset < uncleanable]
    assert len(cleaned_keys) == len(set(cleaned_keys))  # one record per key in the clean part
    assert partition.log.size_bytes < size_before / 3
    assert partition.log.log_end_offset == 3000
    # A consumer fetching from an offset that was compacted away gets the next record.
    slices = partition.log.read(1, 10_000)
    assert slices
    broker.close()
    reopened = open_broker(tmp_path)
    assert read_all(reopened.partition(TOPIC, 0)) == after


def test_tombstones_go_after_delete_retention(broker):
    partition = broker.partition(TOPIC, 0)
    produce(partition, [(b"gone", b"1"), (b"kept", b"1"), (b"gone", None)])
    produce(partition, updates(400, 5, seed=2))  # filler, so the tombstone's segment closes
    now = int(time.time() * 1000)
    assert clean(broker, now).cleaned
    assert (2, b"gone", None) in read_all(partition)  # first clean: kept for consumers
    assert not clean(broker, now + 500).cleaned  # nothing dirty, tombstone not old enough
    assert clean(broker, now + 1000).cleaned
    after = read_all(partition)
    assert all(key != b"gone" for _, key, _ in after)
    assert (1, b"kept", b"1") in after


def test_last_batch_of_a_producer_is_kept_for_idempotence(broker):
    partition = broker.partition(TOPIC, 0)
    produce(partition, [(b"x", b"1")] * 14, producer_id=42)  # two batches, all superseded
    produce(partition, updates(600, 3, seed=3))
    clean(broker)
    headers = list(partition.log.iter_batch_headers(0))
    assert [h.base_offset for h in headers if h.producer_id == 42] == [7]
    assert partition.producers.entries[42].last_seq == 13


def test_unchanged_log_changes_nothing_on_a_second_pass(broker):
    partition = broker.partition(TOPIC, 0)
    produce(partition, updates(1500, 30))
    clean(broker)
    after = read_all(partition)
    assert not clean(broker).cleaned
    assert read_all(partition) == after


def _prepare(broker):
    partition = broker.partition(TOPIC, 0)
    produce(partition, updates(2000, 25, tombstone_every=50))
    return partition, read_all(partition)


def test_crash_while_writing_the_cleaned_segment_loses_nothing(broker, tmp_path, monkeypatch):
    partition, before = _prepare(broker)
    real = segment_swap.write_manifest

    def die(*args, **kwargs):
        raise SystemExit("crash before the manifest")

    monkeypatch.setattr(segment_swap, "write_manifest", die)
    with pytest.raises(SystemExit):
        clean(broker)
    staged = [p for p in partition.log.directory.iterdir() if p.name.startswith(".cleaning-")]
    assert staged
    crash(broker)
    monkeypatch.setattr(segment_swap, "write_manifest", real)
    reopened = open_broker(tmp_path)
    assert read_all(reopened.partition(TOPIC, 0)) == before
    assert not any(p.name.startswith(".") for p in partition.log.directory.iterdir()
                   if p.is_dir())


@pytest.mark.parametrize("moved", [0, 1, 2, 3])
def test_crash_after_commit_completes_the_swap(broker, tmp_path, monkeypatch, moved):
    """Crash after the commit rename, with 0..3 of the new files already moved in."""
    partition, before = _prepare(broker)
    real_rename = cleaner_module.segment_swap.os.rename
    state = {"renames": 0, "committed": False}

    def rename(src, dst):
        src_name = str(src)
        if segment_swap.SWAP_PREFIX in str(dst) and segment_swap.STAGING_PREFIX in src_name:
            state["committed"] = True
        elif state["committed"] and segment_swap.SWAP_PREFIX in src_name:
            if state["renames"] == moved:
                raise SystemExit("crash while moving files in")
            state["renames"] += 1
        return real_rename(src, dst)

    monkeypatch.setattr(segment_swap.os, "rename", rename)
    with pytest.raises(SystemExit):
        clean(broker)
    monkeypatch.setattr(segment_swap.os, "rename", real_rename)
    crash(broker)
    reopened = open_broker(tmp_path)
    after = read_all(reopened.partition(TOPIC, 0))
    assert latest(after) == latest(before)
    assert set(after) <= set(before)
    assert len(after) < len(before)  # the first group's cleaning took effect


def test_swap_refuses_when_the_log_changed(broker):
    partition, before = _prepare(broker)
    segments = segment_swap.segments_of(partition.log)
    staging = segment_swap.staging_dir(partition.log.directory, segments[0].base_offset)
    staging.mkdir()
    with pytest.raises(segment_swap.SwapAborted):
        segment_swap.swap_into_log(partition.log, [segments[0], segments[2]], staging,
                                   segments[0].base_offset)
    with pytest.raises(segment_swap.SwapAborted):  # never the active segment
        segment_swap.swap_into_log(partition.log, [segments[-1]], staging, 0)
    assert not staging.exists()
    assert read_all(partition) == before
