"""Frame reader and request decoding: hand-picked cases plus property-based fuzzing."""

import asyncio
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.metadata.v12 import MetadataRequest
from kio.schema.request_header.v2 import RequestHeader as KioHeader

from brook.broker.protocol.codec import (
    InvalidRequestError,
    decode_request,
    encode_entity,
    parse_request_header,
    request_class,
)
from brook.broker.protocol.frames import FrameError, read_frame

MAX = 1024


def _read(data: bytes, max_bytes: int = MAX):
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        frames = []
        while (frame := await read_frame(reader, max_bytes)) is not None:
            frames.append(frame)
        return frames

    return asyncio.run(go())


def test_frames_are_split_by_their_length_prefix():
    data = struct.pack(">i", 8) + b"A" * 8 + struct.pack(">i", 9) + b"B" * 9
    assert _read(data) == [b"A" * 8, b"B" * 9]


@pytest.mark.parametrize("size", [-1, -2**31, 0, 7, MAX + 1, 2**31 - 1])
def test_bad_lengths_are_refused_before_reading_the_body(size):
    with pytest.raises(FrameError):
        _read(struct.pack(">i", size) + b"x" * 16)


def test_truncated_frame_is_an_error():
    with pytest.raises(FrameError):
        _read(struct.pack(">i", 100) + b"x" * 10)


@given(st.binary(max_size=2048))
@settings(max_examples=300, deadline=None)
def test_frame_reader_only_ever_returns_frames_or_raises_frame_error(data):
    try:
        frames = _read(data)
    except FrameError:
        return
    assert all(8 <= len(f) <= MAX for f in frames)


def _metadata_frame() -> bytes:
    header = encode_entity(KioHeader(request_api_key=3, request_api_version=12,
                                     correlation_id=42, client_id="me"))
    body = encode_entity(MetadataRequest(topics=None, allow_auto_topic_creation=True,
                                         include_topic_authorized_operations=False))
    return header + body


def test_a_real_request_decodes():
    frame = _metadata_frame()
    header = parse_request_header(frame, flexible=True)
    assert (header.api_key, header.api_version, header.correlation_id) == (3, 12, 42)
    assert header.client_id == "me"
    request = decode_request(3, 12, frame, header.body_offset)
    assert request.topics is None


API_VERSIONS_UNDER_TEST = [(0, 9), (1, 12), (2, 8), (3, 12), (19, 7), (32, 4), (44, 1), (22, 5)]


@given(st.sampled_from(API_VERSIONS_UNDER_TEST), st.binary(max_size=512))
@settings(max_examples=400, deadline=None)
def test_garbage_bodies_raise_only_invalid_request(api, body):
    key, version = api
    frame = struct.pack(">hhih", key, version, 1, -1) + body
    flexible = request_class(key, version).__flexible__
    try:
        header = parse_request_header(frame, flexible)
        decode_request(key, version, frame, header.body_offset)
    except InvalidRequestError:
        pass


@given(st.integers(0, len(_metadata_frame()) - 1), st.integers(0, 255))
@settings(max_examples=300, deadline=None)
def test_corrupted_real_requests_raise_only_invalid_request(position, value):
    frame = bytearray(_metadata_frame())
    frame[position] = value
    try:
        header = parse_request_header(bytes(frame), flexible=True)
        decode_request(3, 12, bytes(frame), header.body_offset)
    except InvalidRequestError:
        pass
