"""LogManager: partition directories across log dirs, deletion, background passes."""

from __future__ import annotations

import asyncio

import pytest

from brook.broker.records import Record, encode_batch, parse_batches
from brook.broker.storage.log import CLEAN_SHUTDOWN_FILE
from brook.broker.storage.log_config import LogConfig
from brook.broker.storage.log_manager import (
    LogManager,
    is_pending_delete_dir,
    parse_partition_dir_name,
)


def produce(log, count=1, timestamp=1_000):
    buf = bytearray(
        encode_batch([Record(i, timestamp, None, b"x" * 100, []) for i in range(count)])
    )
    return log.append(buf, parse_batches(buf))


@pytest.fixture
def manager(tmp_path):
    created = LogManager([tmp_path / "a", tmp_path / "b"])
    created.load_existing()
    yield created
    created.close_all()


def test_partition_directory_names():
    assert parse_partition_dir_name("orders-3") == ("orders", 3)
    assert parse_partition_dir_name("my-topic.v2-10") == ("my-topic.v2", 10)
    assert parse_partition_dir_name("lost+found") is None
    assert parse_partition_dir_name("orders-3.0123-future") is None
    assert is_pending_delete_dir("orders-3." + "ab" * 16 + "-delete")
    assert not is_pending_delete_dir("orders-delete-0")


def test_new_partitions_go_to_the_least_loaded_log_dir(tmp_path, manager):
    for partition in range(4):
        manager.create_log("orders", partition, LogConfig())
    homes = [manager.log_dir_of("orders", p).name for p in range(4)]
    assert sorted(homes) == ["a", "a", "b", "b"]
    assert (tmp_path / homes[0] / "orders-0").is_dir()
    assert manager.create_log("orders", 0, LogConfig()) is manager.get("orders", 0)
    assert manager.partitions_of("orders") == [0, 1, 2, 3]


def test_restart_opens_every_partition_and_finishes_interrupted_deletes(tmp_path, manager):
    produce(manager.create_log("orders", 0, LogConfig()), 3)
    manager.create_log("orders", 1, LogConfig())
    manager.create_log("audit", 0, LogConfig())
    manager.close_all()
    assert (tmp_path / "a" / "orders-0" / CLEAN_SHUTDOWN_FILE).exists()
    leftover = tmp_path / "b" / ("gone-0." + "cd" * 16 + "-delete")
    leftover.mkdir()
    (leftover / "00000000000000000000.log").write_bytes(b"x")
    (tmp_path / "a" / "lost+found").mkdir()
    restarted = LogManager([tmp_path / "a", tmp_path / "b"])
    logs = restarted.load_existing(
        lambda topic: LogConfig(retention_ms=5 if topic == "audit" else -1)
    )
    assert sorted(logs) == [("audit", 0), ("orders", 0), ("orders", 1)]
    assert logs[("orders", 0)].log_end_offset == 3
    assert logs[("audit", 0)].config.retention_ms == 5
    assert not leftover.exists()
    restarted.close_all()


def test_the_same_partition_in_two_log_dirs_is_an_error(tmp_path):
    (tmp_path / "a" / "t-0").mkdir(parents=True)
    (tmp_path / "b" / "t-0").mkdir(parents=True)
    broken = LogManager([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(RuntimeError):
        broken.load_existing()
    broken.close_all()


def test_delete_topic_logs_removes_only_that_topic(tmp_path, manager):
    for partition in range(3):
        produce(manager.create_log("doomed", partition, LogConfig()))
    produce(manager.create_log("kept", 0, LogConfig()))
    assert manager.delete_topic_logs("doomed") == [0, 1, 2]
    assert manager.get("doomed", 0) is None
    remaining = sorted(p.name for d in ("a", "b") for p in (tmp_path / d).iterdir())
    assert remaining == ["kept-0"]
    assert manager.delete_topic_logs("doomed") == []
    assert manager.delete_log("kept", 0) and not manager.delete_log("kept", 0)


def test_update_config_reaches_every_partition(manager):
    for partition in range(2):
        manager.create_log("t", partition, LogConfig())
    manager.update_config("t", LogConfig(retention_ms=1))
    assert all(manager.get("t", p).config.retention_ms == 1 for p in range(2))


def test_background_passes(manager):
    config = LogConfig(segment_bytes=400, retention_ms=1_000, flush_ms=0)
    log = manager.create_log("t", 0, config)
    for _ in range(10):
        produce(log, 1, timestamp=1_000)
    segments = log.segments
    assert segments > 2

    async def passes():
        flushed = await manager.flush_pass()
        deleted = await manager.retention_pass(now_ms=10_000)
        return flushed, deleted

    flushed, deleted = asyncio.run(passes())
    assert flushed == 1 and log.recovery_point == log.log_end_offset
    assert deleted == segments - 1


def test_retention_stops_at_the_high_watermark(manager):
    log = manager.create_log("t", 0, LogConfig(segment_bytes=400, retention_ms=0))
    for _ in range(10):
        produce(log, 1, timestamp=1)
    second_segment = log.segment_base_offsets[1]

    deleted = asyncio.run(
        manager.retention_pass(now_ms=10**9, high_watermark_of=lambda topic, p: second_segment)
    )
    assert deleted == 1 and log.log_start_offset == second_segment


def test_background_loops_run_until_cancelled(manager):
    log = manager.create_log("t", 0, LogConfig(segment_bytes=400, retention_ms=0))
    for _ in range(6):
        produce(log, 1, timestamp=1)

    async def run_briefly():
        tasks = [
            asyncio.create_task(manager.run_retention(interval_ms=1)),
            asyncio.create_task(manager.run_flusher(interval_ms=1)),
        ]
        for _ in range(100):
            await asyncio.sleep(0.005)
            if log.segments == 1 and log.recovery_point == log.segment_base_offsets[-1]:
                break
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run_briefly())
    assert log.segments == 1
