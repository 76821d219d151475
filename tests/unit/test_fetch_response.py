"""The hand-written Fetch response encoder against kio's, byte for byte."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brook.broker.protocol.codec import encode_response, response_class
from brook.broker.protocol.entities import build
from brook.broker.protocol.fetch_response import (
    FETCH_MAX_VERSION,
    FETCH_MIN_VERSION,
    PartitionData,
    encode_fetch_response,
    frame_size,
)
from brook.broker.storage.log import FileSlice, read_slices


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A file of distinct bytes standing in for a segment."""
    path = tmp_path_factory.mktemp("segment") / "00000.log"
    path.write_bytes(bytes(range(256)) * 64)
    fd = os.open(path, os.O_RDONLY)
    yield fd
    os.close(fd)


def flatten(parts):
    return b"".join(p if isinstance(p, bytes) else read_slices([p]) for p in parts)


partitions = st.builds(
    PartitionData,
    partition_index=st.integers(0, 2**31 - 1),
    error_code=st.sampled_from([0, 1, 3, 6, 74]),
    high_watermark=st.integers(-1, 2**62),
    last_stable_offset=st.integers(-1, 2**62),
    log_start_offset=st.integers(-1, 2**62),
    aborted_transactions=st.none() | st.lists(st.tuples(st.integers(0, 2**62),
                                                        st.integers(0, 2**62)), max_size=2),
    preferred_read_replica=st.integers(-1, 5),
    slices=st.lists(st.tuples(st.integers(0, 16_000), st.integers(0, 300)), max_size=3),
)
topics = st.lists(st.tuples(st.text(min_size=1, max_size=20), st.lists(partitions, max_size=3)),
                  max_size=3)


@settings(max_examples=150, deadline=None)
@given(version=st.integers(FETCH_MIN_VERSION, FETCH_MAX_VERSION), topics=topics,
       correlation_id=st.integers(-2**31, 2**31 - 1), error_code=st.sampled_from([0, 70]),
       session_id=st.integers(0, 2**31 - 1))
def test_matches_kio_for_every_version(stored, version, topics, correlation_id, error_code,
                                       session_id):
    for _, parts in topics:  # (position, length) pairs become slices of the stored file
        for p in parts:
            p.slices = [FileSlice(stored, pos, length) for pos, length in p.slices]
    ours = encode_fetch_response(version, correlation_id, topics, error_code=error_code,
                                 session_id=session_id)
    body = {"throttle_time": 0, "error_code": error_code, "session_id": session_id,
            "responses": [{"topic": name, "partitions": [{
                "partition_index": p.partition_index, "error_code": p.error_code,
                "high_watermark": p.high_watermark, "last_stable_offset": p.last_stable_offset,
                "log_start_offset": p.log_start_offset,
                "aborted_transactions": None if p.aborted_transactions is None else [
                    {"producer_id": pid, "first_offset": first}
                    for pid, first in p.aborted_transactions],
                "preferred_read_replica": p.preferred_read_replica,
                "records": read_slices(p.slices)} for p in parts]} for name, parts in topics]}
    theirs = encode_response(1, version, correlation_id, build(response_class(1, version), body))
    assert flatten(ours) == theirs
    assert frame_size(ours) == len(theirs)


def test_file_slices_stay_parts_of_their_own(stored):
    parts = encode_fetch_response(12, 7, [("t", [PartitionData(0, slices=[
        FileSlice(stored, 0, 100), FileSlice(stored, 500, 50)])])])
    assert [type(p).__name__ for p in parts] == ["bytes", "FileSlice", "FileSlice", "bytes"]


def test_versions_outside_the_served_range_are_refused():
    with pytest.raises(ValueError):
        encode_fetch_response(3, 1, [])
