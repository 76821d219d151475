"""Compaction planning, cleaner state and batch filtering (pure)."""

from brook.broker import records as rec
from brook.broker.compaction.plan import SegmentInfo, group_segments, plan_cleaning
from brook.broker.compaction.rewrite import OffsetMap, add_batch_to_map, filter_batch
from brook.broker.compaction.settings import CompactionSettings
from brook.broker.compaction.state import MAX_ROUNDS, CleanerState

NOW = 10_000_000
COMPACT = CompactionSettings(compact=True, delete_retention_ms=1000, min_cleanable_ratio=0.5)


def seg(base, next_offset, size=100, max_ts=1000, first_ts=1000):
    return SegmentInfo(base, next_offset, size, max_ts, first_ts)


def test_nothing_to_clean_without_closed_segments_or_compaction():
    assert plan_cleaning([seg(0, 10)], CleanerState(), COMPACT, NOW) is None
    delete = CompactionSettings(compact=False)
    assert plan_cleaning([seg(0, 10), seg(10, 20)], CleanerState(), delete, NOW) is None


def test_dirty_ratio_decides():
    segments = [seg(0, 10), seg(10, 20), seg(20, 30), seg(30, 31)]
    plan = plan_cleaning(segments, CleanerState(), COMPACT, NOW)
    assert plan.first_dirty == 0 and plan.first_uncleanable == 30 and plan.dirty_ratio == 1.0
    # two thirds cleaned already: ratio 1/3 < 0.5
    assert plan_cleaning(segments, CleanerState(clean_offset=20), COMPACT, NOW) is None
    low = CompactionSettings(compact=True, min_cleanable_ratio=0.3)
    assert plan_cleaning(segments, CleanerState(clean_offset=20), low, NOW).first_dirty == 20


def test_a_truncated_log_is_cleaned_from_the_start_again():
    segments = [seg(0, 10), seg(10, 20), seg(20, 21)]
    assert plan_cleaning(segments, CleanerState(clean_offset=500), COMPACT, NOW).first_dirty == 0


def test_active_segment_and_min_compaction_lag_are_never_cleaned():
    segments = [seg(0, 10, max_ts=NOW - 5000), seg(10, 20, max_ts=NOW - 10), seg(20, 21)]
    lagged = CompactionSettings(compact=True, min_cleanable_ratio=0.1, min_compaction_lag_ms=1000)
    assert plan_cleaning(segments, CleanerState(), lagged, NOW).first_uncleanable == 10
    young = [seg(0, 10, max_ts=NOW), seg(10, 11)]
    assert plan_cleaning(young, CleanerState(), lagged, NOW) is None


def test_max_compaction_lag_forces_a_clean():
    segments = [seg(0, 10, size=1000), seg(10, 20, size=1), seg(20, 21)]
    forced = CompactionSettings(compact=True, min_cleanable_ratio=0.9, max_compaction_lag_ms=100)
    plan = plan_cleaning(segments, CleanerState(clean_offset=10), forced, NOW)
    assert plan is not None and plan.reason == "max.compaction.lag.ms"


def test_tombstones_past_retention_trigger_a_clean():
    segments = [seg(0, 10), seg(10, 11)]
    state = CleanerState(clean_offset=10, rounds=((10, NOW - 2000),),
                         oldest_tombstone_cleaned_ms=NOW - 2000)
    assert plan_cleaning(segments, state, COMPACT, NOW).reason.startswith("tombstones")
    recent = CleanerState(clean_offset=10, rounds=((10, NOW),), oldest_tombstone_cleaned_ms=NOW)
    assert plan_cleaning(segments, recent, COMPACT, NOW) is None


def test_grouping_respects_segment_bytes():
    segments = [seg(0, 10, 40), seg(10, 20, 40), seg(20, 30, 40), seg(30, 40, 0)]
    groups = group_segments(segments, 100)
    assert [[s.base_offset for s in g] for g in groups] == [[0, 10], [20, 30]]


def test_tombstone_clock():
    state = CleanerState().after_round(100, 1000, 500, None)
    assert state.first_cleaned_ms(50) == 1000 and state.first_cleaned_ms(100) is None
    state = state.after_round(200, 2000, 500, 1000)
    assert state.first_cleaned_ms(150) == 2000
    assert state.tombstone_expired(50, 1500, 500) and not state.tombstone_expired(150, 2400, 500)
    assert CleanerState.from_json(state.to_json()) == state
    assert CleanerState.from_json(b"garbage") == CleanerState()
    many = CleanerState()
    for i in range(1, 200):
        many = many.after_round(i * 10, i, 10**9, None)
    assert len(many.rounds) <= MAX_ROUNDS
    # Merging never makes a tombstone removable sooner.
    assert many.first_cleaned_ms(5) >= 1


def batch(base, items, compression=0, producer_id=-1):
    records = [rec.Record(base + i, 1000 + i, k, v, [("h", b"x")])
               for i, (k, v) in enumerate(items)]
    return rec.encode_batch(records, base_offset=base, compression=compression,
                            producer_id=producer_id, producer_epoch=0 if producer_id >= 0 else -1,
                            base_sequence=0 if producer_id >= 0 else -1)


def test_filter_keeps_latest_per_key_and_offsets():
    old = batch(0, [(b"a", b"1"), (b"b", b"1"), (b"c", b"1")], compression=rec.COMPRESSION_ZSTD)
    new = batch(3, [(b"a", b"2"), (b"c", None)])
    offset_map = OffsetMap(10**6)
    for data in (old, new):
        add_batch_to_map(offset_map, data, rec.read_header(data), 0)
    assert offset_map.latest == {b"a": 3, b"b": 1, b"c": 4}
    result = filter_batch(old, rec.read_header(old), offset_map, lambda o: False, False)
    header = rec.read_header(result.data)
    assert header.base_offset == 0 and header.last_offset_delta == 2
    assert header.compression == rec.COMPRESSION_ZSTD
    kept = rec.decode_records(result.data)
    assert [(r.offset, r.key, r.value, r.headers) for r in kept] == [(1, b"b", b"1", [("h", b"x")])]
    unchanged = filter_batch(new, rec.read_header(new), offset_map, lambda o: False, False)
    assert unchanged.data == new and unchanged.tombstones_out == [4]
    gone = filter_batch(new, rec.read_header(new), offset_map, lambda o: True, False)
    assert [r.key for r in rec.decode_records(gone.data)] == [b"a"]
    # Batches parse and pass their CRC after the rewrite.
    assert len(list(rec.scan_valid_batches(result.data))) == 1


def test_keyless_records_are_dropped():
    data = batch(0, [(None, b"no key"), (b"k", b"v")])
    result = filter_batch(data, rec.read_header(data), OffsetMap(10**6), lambda o: False, False)
    assert [(r.offset, r.key) for r in rec.decode_records(result.data)] == [(1, b"k")]


def test_empty_batch_dropped_unless_last_of_a_producer():
    data = batch(0, [(b"a", b"1")], producer_id=7)
    offset_map = OffsetMap(10**6)
    offset_map.put(b"a", 5)
    header = rec.read_header(data)
    assert filter_batch(data, header, offset_map, lambda o: False, False).data is None
    kept = filter_batch(data, header, offset_map, lambda o: False, True).data
    kept_header = rec.read_header(kept)
    assert kept_header.records_count == 0 and kept_header.producer_id == 7
    assert kept_header.max_timestamp == header.max_timestamp
    assert list(rec.scan_valid_batches(kept))  # CRC still valid
