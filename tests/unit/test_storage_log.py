"""PartitionLog against real files in tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brook.broker import records
from brook.broker.records import (
    MESSAGE_TOO_LARGE,
    RECORD_LIST_TOO_LARGE,
    InvalidRecordError,
    Record,
    decode_records,
    encode_batch,
    parse_batches,
)
from brook.broker.storage import segment as segment_module
from brook.broker.storage.log import (
    CLEAN_SHUTDOWN_FILE,
    LOG_START_OFFSET_FILE,
    RECOVERY_POINT_CHECKPOINT_INTERVAL_MS,
    RECOVERY_POINT_FILE,
    OffsetOutOfRangeError,
    PartitionLog,
    UnexpectedAppendOffsetError,
)
from brook.broker.storage.log_config import LogConfig

VALUE = b"v" * 60


class Clock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def make_batch(
    count: int = 1,
    timestamps: list[int] | None = None,
    compression: int = 0,
    value: bytes = VALUE,
) -> bytearray:
    timestamps = timestamps or [1_000] * count
    return bytearray(
        encode_batch(
            [Record(i, ts, b"key", value, []) for i, ts in enumerate(timestamps)],
            compression=compression,
        )
    )


def produce(log: PartitionLog, count: int = 1, **kwargs):
    now_ms = kwargs.pop("now_ms", None)
    buf = make_batch(count, **kwargs)
    return log.append(buf, parse_batches(buf), now_ms=now_ms)


def batch_ranges(data: bytes) -> list[tuple[int, int]]:
    return [(h.base_offset, h.last_offset) for h in parse_batches(data)] if data else []


def read_ranges(log: PartitionLog, offset: int, max_bytes: int = 1 << 30, **kwargs):
    return batch_ranges(log.read_bytes(log.read(offset, max_bytes, **kwargs)))


def crash(log: PartitionLog) -> None:
    """Drop the log as a killed process would: no flush, no clean-shutdown marker."""
    log.close_without_flush()


def small_segments(**overrides) -> LogConfig:
    settings = {"segment_bytes": 600, "index_interval_bytes": 150} | overrides
    return LogConfig(**settings)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def open_log(tmp_path, clock):
    opened = []

    def opener(config: LogConfig | None = None, name: str = "topic-0") -> PartitionLog:
        log = PartitionLog(tmp_path / name, config or small_segments(), clock=clock)
        opened.append(log)
        return log

    yield opener
    for log in opened:
        log.close_without_flush()


# ------------------------------------------------------------------ appending


def test_append_assigns_consecutive_offsets(open_log):
    log = open_log()
    assert (log.log_start_offset, log.log_end_offset) == (0, 0)
    first = produce(log, 3)
    second = produce(log, 2)
    assert (first.base_offset, first.last_offset) == (0, 2)
    assert (second.base_offset, second.last_offset) == (3, 4)
    assert second.log_append_time_ms == -1 and second.log_start_offset == 0
    assert log.log_end_offset == 5
    data = log.read_bytes(log.read(0, 1 << 20))
    assert batch_ranges(data) == [(0, 2), (3, 4)]
    assert [r.offset for r in decode_records(data[: parse_batches(data)[0].size])] == [0, 1, 2]


def test_append_stamps_the_leader_epoch(open_log):
    log = open_log()
    buf = make_batch(2)
    log.append(buf, parse_batches(buf), partition_leader_epoch=7)
    assert parse_batches(log.read_bytes(log.read(0, 1000)))[0].partition_leader_epoch == 7


def test_log_append_time_topics_use_the_brokers_clock(open_log):
    log = open_log(LogConfig(message_timestamp_type="LogAppendTime"))
    result = produce(log, 2, timestamps=[5, 6], now_ms=424_242)
    assert result.log_append_time_ms == 424_242
    stored = log.read_bytes(log.read(0, 1000))
    assert [r.timestamp for r in decode_records(stored)] == [424_242, 424_242]
    assert log.offset_for_timestamp(424_242) == (0, 424_242)


def test_oversized_batches_are_refused_before_anything_is_written(open_log):
    log = open_log(LogConfig(max_message_bytes=200))
    with pytest.raises(InvalidRecordError) as raised:
        produce(log, 10)
    assert raised.value.error_code == MESSAGE_TOO_LARGE
    assert log.log_end_offset == 0 and log.size_bytes == 0


def test_a_failed_write_leaves_no_half_batch(open_log, monkeypatch):
    log = open_log()
    produce(log, 2)
    size_before = log.size_bytes

    def write_half_then_fail(fd, data):
        os.write(fd, bytes(data)[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(segment_module, "_write_all", write_half_then_fail)
    with pytest.raises(OSError):
        produce(log, 2)
    monkeypatch.undo()
    assert log.log_end_offset == 2
    assert os.path.getsize(log.directory / "00000000000000000000.log") == size_before
    produce(log, 1)
    assert read_ranges(log, 0) == [(0, 1), (2, 2)]


def test_follower_appends_keep_the_leaders_offsets(open_log):
    log = open_log()
    data = encode_batch([Record(5, 1, None, b"x", [])], base_offset=5) + encode_batch(
        [Record(6, 1, None, b"y", []), Record(7, 1, None, b"z", [])], base_offset=6
    )
    result = log.append_as_follower(data, parse_batches(data))
    assert (result.base_offset, result.last_offset, log.log_end_offset) == (5, 7, 8)
    with pytest.raises(UnexpectedAppendOffsetError):
        log.append_as_follower(data, parse_batches(data))


# ------------------------------------------------------------------ segments


def test_segments_roll_by_size_and_reads_cross_them(open_log):
    log = open_log()
    for _ in range(20):
        produce(log, 2)
    assert log.segments > 3
    names = sorted(p.name for p in log.directory.glob("*.log"))
    assert names[0] == "00000000000000000000.log"
    assert all(len(Path(name).stem) == 20 for name in names)
    assert [int(Path(name).stem) for name in names] == log.segment_base_offsets
    assert all(p.stat().st_size <= 600 for p in log.directory.glob("*.log"))
    assert read_ranges(log, 0) == [(i, i + 1) for i in range(0, 40, 2)]
    # Every offset can be fetched, whatever segment it lives in.
    for offset in range(40):
        assert read_ranges(log, offset, 1)[0] == (offset - offset % 2, offset - offset % 2 + 1)


def test_segments_roll_by_age_of_their_first_timestamp(open_log):
    log = open_log(LogConfig(segment_ms=10_000))
    produce(log, timestamps=[100_000])
    produce(log, timestamps=[105_000])
    assert log.segments == 1
    produce(log, timestamps=[110_001])
    assert log.segment_base_offsets == [0, 2]


def test_segments_without_timestamps_roll_by_wall_clock(open_log, clock):
    log = open_log(LogConfig(segment_ms=10_000))
    produce(log, timestamps=[-1])
    clock.now += 10_001
    produce(log, timestamps=[-1])
    assert log.segment_base_offsets == [0, 1]


def test_appends_larger_than_a_segment_are_refused(open_log):
    log = open_log(LogConfig(segment_bytes=400, max_message_bytes=10_000))
    produce(log, 1)
    produce(log, 1, value=b"x" * 300)  # does not fit behind the first: a new segment
    assert log.segment_base_offsets == [0, 1]
    with pytest.raises(InvalidRecordError) as raised:
        produce(log, 1, value=b"x" * 400)
    assert raised.value.error_code == RECORD_LIST_TOO_LARGE
    assert log.log_end_offset == 2


# ------------------------------------------------------------------ reads


def test_read_stops_before_max_offset(open_log):
    log = open_log()
    for _ in range(10):
        produce(log, 2)
    assert read_ranges(log, 0, max_offset=6) == [(0, 1), (2, 3), (4, 5)]
    assert read_ranges(log, 4, max_offset=5) == []  # the high watermark is mid-batch
    assert read_ranges(log, 6, max_offset=6) == []


def test_read_returns_whole_batches_within_max_bytes(open_log):
    log = open_log(LogConfig())
    for _ in range(10):
        produce(log, 2)
    size = len(make_batch(2))
    assert read_ranges(log, 0, 3 * size) == [(0, 1), (2, 3), (4, 5)]
    assert read_ranges(log, 0, 3 * size + size - 1) == [(0, 1), (2, 3), (4, 5)]
    assert read_ranges(log, 3, 2 * size) == [(2, 3), (4, 5)]  # starts at the holding batch


def test_read_returns_one_oversized_batch_kip_74(open_log):
    log = open_log(LogConfig())
    produce(log, 5)
    produce(log, 1)
    assert read_ranges(log, 0, 10) == [(0, 4)]
    assert read_ranges(log, 0, 10, min_one_batch=False) == []
    assert read_ranges(log, 0, 0) == [(0, 4)]


def test_read_range_checks(open_log):
    log = open_log()
    produce(log, 3)
    assert log.read(3, 100) == []
    with pytest.raises(OffsetOutOfRangeError) as raised:
        log.read(4, 100)
    assert raised.value.error_code == 1
    log.delete_records_before(2)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(1, 100)
    # The batch holding the log start is returned whole; clients skip what is before it.
    assert read_ranges(log, 2) == [(0, 2)]


def test_iter_batch_headers(open_log):
    log = open_log()
    for _ in range(12):
        produce(log, 3)
    assert [h.base_offset for h in log.iter_batch_headers()] == list(range(0, 36, 3))
    assert [h.base_offset for h in log.iter_batch_headers(20)] == list(range(18, 36, 3))


# ------------------------------------------------------------------ timestamps


def test_offset_for_timestamp_finds_the_exact_record(open_log):
    log = open_log(small_segments(segment_bytes=900))
    base = 10_000
    for i in range(30):
        # Timestamps inside a batch are out of order; compressed every other batch.
        produce(
            log,
            3,
            timestamps=[base + 30 * i + 20, base + 30 * i, base + 30 * i + 10],
            compression=records.COMPRESSION_GZIP if i % 2 else 0,
        )
    assert log.segments > 2
    assert log.offset_for_timestamp(0) == (0, base + 20)
    for i in range(30):
        # The first record in offset order whose timestamp reaches the target.
        assert log.offset_for_timestamp(base + 30 * i + 15) == (3 * i, base + 30 * i + 20)
        after_batch = log.offset_for_timestamp(base + 30 * i + 21)
        assert after_batch == ((3 * i + 3, base + 30 * i + 50) if i < 29 else None)
    assert log.offset_for_timestamp(base + 10_000) is None


def test_offset_for_timestamp_in_compressed_batches_and_after_deleted_records(open_log):
    log = open_log()
    produce(log, 4, timestamps=[10, 40, 20, 30], compression=records.COMPRESSION_ZSTD)
    produce(log, 2, timestamps=[50, 60], compression=records.COMPRESSION_LZ4)
    assert log.offset_for_timestamp(15) == (1, 40)
    assert log.offset_for_timestamp(41) == (4, 50)
    log.delete_records_before(2)
    assert log.offset_for_timestamp(15) == (2, 20)
    assert log.offset_for_timestamp(25) == (3, 30)


def test_max_timestamp_offset_is_the_exact_record(open_log):
    log = open_log()
    assert log.max_timestamp_offset() is None
    produce(log, 3, timestamps=[10, 20, 15])
    produce(log, 4, timestamps=[30, 90, 50, 90], compression=records.COMPRESSION_SNAPPY)
    produce(log, 2, timestamps=[40, 90])
    assert log.max_timestamp_offset() == (4, 90)


def test_max_timestamp_survives_reopen_and_truncation(open_log):
    log = open_log()
    for i in range(20):
        produce(log, 2, timestamps=[1_000 + i, 5_000 - i])
    log.close()
    log = open_log()
    assert log.max_timestamp_offset() == (1, 5_000)
    log.truncate_to(1)
    produce(log, 1, timestamps=[4_000])
    assert log.max_timestamp_offset() == (0, 4_000)


# ------------------------------------------------------------------ recovery


def test_clean_reopen_restores_everything(open_log):
    log = open_log()
    for i in range(15):
        produce(log, 2, timestamps=[i, i + 1])
    segments, end = log.segment_base_offsets, log.log_end_offset
    log.close()
    assert (log.directory / CLEAN_SHUTDOWN_FILE).exists()
    log = open_log()
    assert not (log.directory / CLEAN_SHUTDOWN_FILE).exists()
    assert (log.segment_base_offsets, log.log_end_offset) == (segments, end)
    assert log.recovery_point == end
    produce(log, 1)
    assert read_ranges(log, 29) == [(28, 29), (30, 30)]


def test_torn_tail_is_cut_back_to_the_last_whole_batch(open_log):
    log = open_log(LogConfig())
    for _ in range(5):
        produce(log, 2)
    size = log.size_bytes
    crash(log)
    with open(log.directory / "00000000000000000000.log", "ab") as file:
        file.write(make_batch(3)[:40])  # half a batch
    log = open_log(LogConfig())
    assert log.log_end_offset == 10
    assert log.size_bytes == size == os.path.getsize(log.directory / "00000000000000000000.log")
    assert produce(log, 1).base_offset == 10


@pytest.mark.parametrize("cut", [1, 12, 61, 100])
def test_a_batch_cut_mid_way_is_dropped(open_log, cut):
    log = open_log(LogConfig())
    for _ in range(4):
        produce(log, 2)
    crash(log)
    path = log.directory / "00000000000000000000.log"
    whole = path.read_bytes()
    last = parse_batches(whole)[-1]
    os.truncate(path, len(whole) - last.size + cut)
    log = open_log(LogConfig())
    assert log.log_end_offset == 6
    assert read_ranges(log, 0) == [(0, 1), (2, 3), (4, 5)]


def test_garbage_after_the_last_batch_is_dropped(open_log):
    log = open_log(LogConfig())
    for _ in range(3):
        produce(log, 1)
    crash(log)
    with open(log.directory / "00000000000000000000.log", "ab") as file:
        file.write(os.urandom(500))
    log = open_log(LogConfig())
    assert log.log_end_offset == 3
    assert read_ranges(log, 0) == [(0, 0), (1, 1), (2, 2)]


def test_a_corrupt_batch_inside_an_unflushed_segment_drops_it_and_everything_after(open_log):
    log = open_log()
    for _ in range(20):
        produce(log, 2)
    bases = log.segment_base_offsets
    crash(log)
    damaged = log.directory / f"{bases[1]:020d}.log"
    data = bytearray(damaged.read_bytes())
    first = parse_batches(bytes(data))[0]
    data[first.size + 70] ^= 0xFF  # the segment's second batch
    damaged.write_bytes(bytes(data))
    log = open_log()
    assert log.log_end_offset == bases[1] + 2
    assert log.segment_base_offsets == bases[:2]


def test_flushed_segments_are_not_rescanned_but_the_rest_is(open_log, clock):
    log = open_log()
    for _ in range(10):
        produce(log, 2)
    clock.now += RECOVERY_POINT_CHECKPOINT_INTERVAL_MS
    log.flush()
    flushed = log.log_end_offset
    for _ in range(10):
        produce(log, 2)
    crash(log)
    assert int((log.directory / RECOVERY_POINT_FILE).read_text().split()[1]) == flushed
    last = log.directory / f"{log.segment_base_offsets[-1]:020d}.log"
    with open(last, "ab") as file:
        file.write(b"\x00" * 30)
    # A flipped bit below the recovery point goes unnoticed: that data was fsynced,
    # so it is trusted rather than re-read (as in Kafka).
    first = log.directory / "00000000000000000000.log"
    data = bytearray(first.read_bytes())
    data[-1] ^= 0xFF
    first.write_bytes(bytes(data))
    log = open_log()
    assert log.log_end_offset == 40
    last_base = log.segment_base_offsets[-1]
    assert os.path.getsize(last) == sum(h.size for h in log.iter_batch_headers(last_base))
    assert os.path.getsize(first) == len(data)


def test_damaged_or_missing_indexes_are_rebuilt(open_log):
    config = LogConfig(index_interval_bytes=100)
    log = open_log(config)
    for i in range(40):
        produce(log, 2, timestamps=[i * 10, i * 10 + 5])
    log.close()
    index = log.directory / "00000000000000000000.index"
    time_index = log.directory / "00000000000000000000.timeindex"
    good_index, good_time_index = index.read_bytes(), time_index.read_bytes()
    assert len(good_index) > 8 * 5
    index.write_bytes(good_index[::-1])  # out of order
    time_index.unlink()
    log = open_log(config)
    assert index.read_bytes() == good_index
    assert time_index.read_bytes() == good_time_index
    assert read_ranges(log, 41, 1) == [(40, 41)]
    assert log.offset_for_timestamp(203) == (41, 205)
    log.close()
    index.write_bytes(good_index[:-3])  # torn entry
    log = open_log(config)
    assert index.read_bytes() == good_index
    log.close()
    index.write_bytes(good_index[:8] + b"\x00\x00\x00\x05\x7f\x00\x00\x00" + good_index[16:])
    log = open_log(config)  # an entry pointing past the end of the log
    assert index.read_bytes() == good_index


def test_a_killed_process_loses_no_acknowledged_append(tmp_path):
    directory = tmp_path / "killed-0"
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from brook.broker.records import Record, encode_batch, parse_batches
        from brook.broker.storage.log import PartitionLog
        from brook.broker.storage.log_config import LogConfig
        log = PartitionLog(Path({str(directory)!r}), LogConfig(segment_bytes=2000))
        for i in range(50):
            buf = bytearray(encode_batch([Record(0, i, None, b"x" * 50, [])]))
            log.append(buf, parse_batches(buf))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    process = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=False)
    assert process.returncode == -9
    log = PartitionLog(directory, LogConfig(segment_bytes=2000))
    try:
        assert log.log_end_offset == 50
        assert len(read_ranges(log, 0)) == 50
    finally:
        log.close_without_flush()


# ------------------------------------------------------------------ deletion


def test_retention_by_time_deletes_whole_old_segments(open_log):
    log = open_log(small_segments(retention_ms=60_000))
    for i in range(30):
        produce(log, 2, timestamps=[i * 10_000, i * 10_000])
    bases = log.segment_base_offsets

    def newest_timestamp(slot: int) -> int:
        last_offset = (bases[slot + 1] if slot + 1 < len(bases) else 60) - 1
        return (last_offset // 2) * 10_000

    assert log.apply_retention(now_ms=newest_timestamp(0) + 60_000) == 0
    now = 200_000
    deleted = log.apply_retention(now_ms=now)
    assert deleted > 0
    # A segment goes once its newest record is older than retention.ms, oldest first.
    assert all(now - newest_timestamp(slot) > 60_000 for slot in range(deleted))
    assert now - newest_timestamp(deleted) <= 60_000
    assert log.log_start_offset == log.segment_base_offsets[0] == bases[deleted]
    assert not (log.directory / f"{bases[0]:020d}.log").exists()
    with pytest.raises(OffsetOutOfRangeError):
        log.read(0, 100)
    # Even when everything expired, the active segment stays.
    log.apply_retention(now_ms=10**9)
    assert log.segments == 1 and log.log_end_offset == 60


def test_retention_by_size_deletes_oldest_segments_while_the_rest_stays_above_the_limit(
    open_log,
):
    log = open_log(small_segments(retention_bytes=1_500, retention_ms=-1))
    for _ in range(40):
        produce(log, 2)
    assert log.size_bytes > 1_500
    deleted = log.apply_retention()
    assert deleted > 0
    # As in Kafka: whole segments go only while what remains is still >= retention.bytes.
    first_segment_size = (log.directory / f"{log.segment_base_offsets[0]:020d}.log").stat().st_size
    assert log.size_bytes >= 1_500 > log.size_bytes - first_segment_size
    assert log.log_start_offset == log.segment_base_offsets[0]


def test_retention_respects_the_high_watermark_and_cleanup_policy(open_log):
    log = open_log(small_segments(retention_ms=0, cleanup_policy="compact"))
    for _ in range(20):
        produce(log, 2, timestamps=[1, 1])
    assert log.apply_retention(now_ms=10**9) == 0
    log.update_config(small_segments(retention_ms=0))
    second = log.segment_base_offsets[1]
    assert log.apply_retention(now_ms=10**9, high_watermark=second) == 1


def test_slices_stay_readable_after_their_segment_is_deleted(open_log, clock):
    log = open_log(small_segments(retention_ms=0, file_delete_delay_ms=60_000))
    for _ in range(20):
        produce(log, 2, timestamps=[1, 1])
    slices = log.read(0, 300)
    expected = log.read_bytes(slices)
    assert log.apply_retention() > 0
    assert log.read_bytes(slices) == expected
    clock.now += 60_001
    log.apply_retention()  # closes the deleted segments' descriptors


def test_delete_records_before_moves_the_log_start_and_drops_segments(open_log):
    log = open_log()
    for _ in range(20):
        produce(log, 2)
    bases = log.segment_base_offsets
    target = bases[2] + 1
    assert log.delete_records_before(target) == target
    assert log.log_start_offset == target
    assert log.segment_base_offsets == bases[2:]
    assert log.delete_records_before(3) == target  # never backwards
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(41)
    crash(log)
    assert (log.directory / LOG_START_OFFSET_FILE).exists()
    log = open_log()
    assert log.log_start_offset == target
    log.delete_records_before(40)
    assert log.log_start_offset == 40 and log.read(40, 100) == []
    assert log.segments == 1


def test_truncate_to_drops_everything_from_the_offset(open_log):
    log = open_log()
    for _ in range(20):
        produce(log, 2)
    bases = log.segment_base_offsets
    assert bases[2] - bases[1] > 2
    log.truncate_to(bases[1] + 2)
    assert log.log_end_offset == bases[1] + 2
    assert log.segment_base_offsets == bases[:2]
    assert read_ranges(log, bases[1]) == [(bases[1], bases[1] + 1)]
    assert produce(log, 2).base_offset == bases[1] + 2
    log.truncate_to(bases[1])  # the segment starting there stays, empty
    assert log.segment_base_offsets == bases[:2] and log.log_end_offset == bases[1]
    log.truncate_to(3)  # inside a batch: the whole batch goes
    assert log.log_end_offset == 2
    crash(log)
    log = open_log()
    assert log.log_end_offset == 2
    assert read_ranges(log, 0) == [(0, 1)]


def test_truncate_below_the_log_start_restarts_the_log(open_log):
    log = open_log()
    for _ in range(5):
        produce(log, 2)
    log.delete_records_before(6)
    log.truncate_to(4)
    assert (log.log_start_offset, log.log_end_offset, log.segment_base_offsets) == (4, 4, [4])
    assert produce(log, 1).base_offset == 4


# ------------------------------------------------------------------ flushing


def test_flush_messages_advances_the_recovery_point(open_log, clock):
    log = open_log(LogConfig(flush_messages=3))
    produce(log, 2)
    assert log.recovery_point == 0
    produce(log, 1)
    assert log.recovery_point == 3
    # The checkpoint on disk lags (a lower one is safe) and catches up periodically.
    assert not (log.directory / RECOVERY_POINT_FILE).exists()
    clock.now += RECOVERY_POINT_CHECKPOINT_INTERVAL_MS
    produce(log, 3)
    assert (log.directory / RECOVERY_POINT_FILE).read_text() == "0\n6\n"


def test_flush_ms_and_rolled_segments_are_flushed_by_maybe_flush(open_log, clock):
    log = open_log(small_segments(flush_ms=5_000))
    produce(log, 2)
    assert not log.maybe_flush(clock.now + 1_000)
    assert log.maybe_flush(clock.now + 5_000)
    assert log.recovery_point == 2
    log.update_config(small_segments())  # flush.ms never
    for _ in range(10):
        produce(log, 2)
    assert log.segments > 1
    job = log.begin_flush()
    assert job is not None and job.target_offset == log.segment_base_offsets[-1]
    job.run()
    log.finish_flush(job)
    assert log.recovery_point == log.segment_base_offsets[-1]
    assert log.begin_flush() is None


def test_a_flush_that_raced_a_truncation_does_not_move_the_recovery_point(open_log):
    log = open_log()
    for _ in range(10):
        produce(log, 2)
    job = log.begin_flush()
    log.truncate_to(2)
    job.run()
    log.finish_flush(job)
    assert log.recovery_point == 0


# ------------------------------------------------------------------ model check


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    counts=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=25),
    segment_bytes=st.integers(min_value=300, max_value=2_000),
    index_interval_bytes=st.integers(min_value=0, max_value=500),
    reads=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(0, 3_000), st.integers(min_value=0)),
        min_size=1,
        max_size=10,
    ),
)
def test_reads_match_a_simple_model(counts, segment_bytes, index_interval_bytes, reads):
    config = LogConfig(
        segment_bytes=segment_bytes,
        index_interval_bytes=index_interval_bytes,
        max_message_bytes=10_000,
    )
    with tempfile.TemporaryDirectory() as directory:
        log = PartitionLog(Path(directory) / "t-0", config)
        model = []  # (base offset, last offset, size)
        for count in counts:
            buf = make_batch(count, value=b"m" * 20)
            result = log.append(buf, parse_batches(buf))
            model.append((result.base_offset, result.last_offset, len(buf)))
        end = model[-1][1] + 1
        for fetch, max_bytes, max_offset in reads:
            fetch %= end + 1
            max_offset %= end + 1
            expected = []
            taken = 0
            for base, last, size in model:
                if last < fetch or last >= max_offset:
                    continue
                if expected and taken + size > max_bytes:
                    break
                if not expected and size > max_bytes:
                    expected.append((base, last))
                    break
                expected.append((base, last))
                taken += size
            assert read_ranges(log, fetch, max_bytes, max_offset=max_offset) == expected
        log.close_without_flush()
