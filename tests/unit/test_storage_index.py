"""Offset and time indexes: lookups, truncation, file format and sanity checks."""

from __future__ import annotations

import struct
from array import array

from hypothesis import given
from hypothesis import strategies as st

from brook.broker.storage.index import (
    OffsetIndex,
    TimeIndex,
    decode_offset_entries,
    decode_time_entries,
    offset_index_problem,
    time_index_problem,
)


def test_offset_index_file_is_kafkas_format(tmp_path):
    index = OffsetIndex(tmp_path / "x.index", base_offset=100, max_entries=10)
    assert index.load_problem == "missing"
    index.append(105, 4096)
    index.append(130, 8200)
    index.close()
    assert (tmp_path / "x.index").read_bytes() == struct.pack(">iiii", 5, 4096, 30, 8200)
    reopened = OffsetIndex(tmp_path / "x.index", base_offset=100, max_entries=10)
    assert reopened.load_problem is None
    assert reopened.last_entry() == (130, 8200)
    reopened.close()


def test_offset_lookup_finds_the_last_entry_at_or_before(tmp_path):
    index = OffsetIndex(tmp_path / "x.index", base_offset=100, max_entries=2)
    assert index.lookup(150) == (100, 0)
    index.append(110, 1000)
    assert not index.is_full
    index.append(120, 2000)
    assert index.is_full
    assert index.lookup(109) == (100, 0)
    assert index.lookup(110) == (110, 1000)
    assert index.lookup(119) == (110, 1000)
    assert index.lookup(500) == (120, 2000)
    assert index.floor_position(1999) == 1000
    assert index.floor_position(999) == 0
    index.truncate_to_position(2000)
    assert index.lookup(500) == (110, 1000)
    assert (tmp_path / "x.index").stat().st_size == 8
    index.close()


def test_time_index_keeps_only_new_maxima_and_looks_up_strictly_below(tmp_path):
    index = TimeIndex(tmp_path / "x.timeindex", base_offset=0, max_entries=100)
    index.maybe_append(1_000, 3)
    index.maybe_append(1_000, 5)  # not larger: ignored
    index.maybe_append(900, 6)
    index.maybe_append(2_000, 9)
    assert len(index) == 2
    assert index.last_entry() == (2_000, 9)
    assert index.lookup_before(1_000) is None
    assert index.lookup_before(1_001) == (1_000, 3)
    assert index.lookup_before(5_000) == (2_000, 9)
    index.truncate_to_offset(9)
    assert index.last_entry() == (1_000, 3)
    index.close()
    assert (tmp_path / "x.timeindex").read_bytes() == struct.pack(">qi", 1_000, 3)


def test_replace_all_rewrites_the_file(tmp_path):
    index = OffsetIndex(tmp_path / "x.index", base_offset=10, max_entries=100)
    index.append(20, 50)
    index.replace_all([(11, 5), (12, 9)])
    assert (tmp_path / "x.index").read_bytes() == struct.pack(">iiii", 1, 5, 2, 9)
    index.close()


def test_torn_files_are_reported_not_trusted(tmp_path):
    (tmp_path / "x.index").write_bytes(b"\x00" * 13)
    index = OffsetIndex(tmp_path / "x.index", base_offset=0, max_entries=100)
    assert index.problem(log_size=10_000) is not None
    assert len(index) == 0
    index.close()
    (tmp_path / "x.timeindex").write_bytes(b"\x00" * 13)
    time_index = TimeIndex(tmp_path / "x.timeindex", base_offset=0, max_entries=100)
    assert time_index.problem(next_offset=10) is not None
    time_index.close()


def test_sanity_checks():
    assert offset_index_problem(array("i", [1, 5]), array("i", [10, 20]), 100) is None
    assert offset_index_problem(array("i", [5, 1]), array("i", [10, 20]), 100)
    assert offset_index_problem(array("i", [1, 5]), array("i", [20, 10]), 100)
    assert offset_index_problem(array("i", [1, 5]), array("i", [10, 100]), 100)
    assert offset_index_problem(array("i", [-1]), array("i", [10]), 100)
    assert time_index_problem(array("q", [1, 2]), array("i", [0, 4]), 5) is None
    assert time_index_problem(array("q", [2, 2]), array("i", [0, 4]), 5)
    assert time_index_problem(array("q", [1, 2]), array("i", [4, 0]), 5)
    assert time_index_problem(array("q", [1, 2]), array("i", [0, 5]), 5)


@given(st.lists(st.tuples(st.integers(-(2**31), 2**31 - 1), st.integers(-(2**31), 2**31 - 1))))
def test_offset_entries_decode_what_kafka_writes(entries):
    data = b"".join(struct.pack(">ii", *entry) for entry in entries)
    offsets, positions = decode_offset_entries(data)
    assert list(zip(offsets, positions, strict=True)) == entries


@given(st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**31), 2**31 - 1))))
def test_time_entries_decode_what_kafka_writes(entries):
    data = b"".join(struct.pack(">qi", *entry) for entry in entries)
    timestamps, offsets = decode_time_entries(data)
    assert list(zip(timestamps, offsets, strict=True)) == entries
