"""Connection's frame assembly under every way a socket may split the bytes.

The protocol callbacks are driven directly (as the event loop would), so chunk
boundaries, frames larger than the scratch buffer and pipelined frames are covered
exhaustively; the component tests drive the same code over real sockets.
"""

import asyncio
import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brook.broker import connection
from brook.broker.connection import Connection
from brook.broker.protocol.frames import MIN_REQUEST_SIZE, FrameError


class RecordingTransport:
    def __init__(self):
        self.paused = False

    def pause_reading(self):
        self.paused = True

    def resume_reading(self):
        self.paused = False


def opened(max_request_bytes=10_000_000):
    conn = Connection(max_request_bytes, lambda c: None)
    conn.connection_made(RecordingTransport())
    return conn


def feed(conn, data: bytes, chunk_sizes) -> None:
    """Hand `data` to the protocol the way the loop does: into the buffer it offers."""
    sizes = iter(chunk_sizes)
    position = 0
    while position < len(data):
        buffer = conn.get_buffer(-1)
        assert len(buffer) > 0
        n = min(len(buffer), len(data) - position, next(sizes, 1 << 30))
        buffer[:n] = data[position:position + n]
        conn.buffer_updated(n)
        position += n


def frames_of(conn):
    async def drain():
        got = []
        while conn._frames:
            got.append(await conn.next_frame(1))
        return got
    return asyncio.run(drain())


def framed(payloads):
    return b"".join(struct.pack(">i", len(p)) + p for p in payloads)


sizes = st.integers(8, 40_000) | st.integers(connection.SCRATCH_BYTES - 8,
                                             connection.SCRATCH_BYTES + 70_000)


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(sizes, min_size=1, max_size=6),
       chunks=st.lists(st.integers(1, 300_000), max_size=50))
def test_frames_arrive_whole_and_in_order_however_the_bytes_are_split(lengths, chunks):
    payloads = [bytes([i % 251]) * n for i, n in enumerate(lengths)]
    conn = opened()
    feed(conn, framed(payloads), chunks)
    assert frames_of(conn) == payloads


def test_an_oversized_or_negative_length_fails_the_connection():
    for size in (-1, 3, 10_000_001):
        conn = opened()
        feed(conn, struct.pack(">i", size) + b"x" * 16, [])
        with pytest.raises(FrameError):
            asyncio.run(conn.next_frame(1))
        assert conn.transport.paused


def test_end_of_stream_inside_a_frame_is_an_error_and_between_frames_is_not():
    conn = opened()
    feed(conn, framed([b"complete"]) + struct.pack(">i", 100) + b"part", [])
    conn.eof_received()
    assert asyncio.run(conn.next_frame(1)) == b"complete"
    with pytest.raises(FrameError):
        asyncio.run(conn.next_frame(1))
    clean = opened()
    feed(clean, framed([b"only-one"]), [])
    clean.eof_received()
    assert frames_of(clean) == [b"only-one"]
    assert asyncio.run(clean.next_frame(1)) is None


def test_pipelined_requests_pause_reading_until_the_handler_catches_up():
    conn = opened()
    feed(conn, framed([b"r%07d" % i for i in range(connection.MAX_QUEUED_FRAMES)]), [])
    assert conn.transport.paused
    frames_of(conn)
    assert not conn.transport.paused


def test_an_idle_connection_times_out():
    with pytest.raises(TimeoutError):
        asyncio.run(opened().next_frame(0.05))


# ------------------------------------------------ arbitrary bytes, arbitrary splits

FUZZ_MAX = connection.SCRATCH_BYTES + 20_000  # frames past the scratch buffer are allowed


def expected_frames(data: bytes, max_request_bytes: int) -> tuple[list[bytes], bool]:
    """The reference reading of a byte stream: the whole frames before the first bad
    length, and whether the stream is refused (bad length, or it ends inside a frame)."""
    frames, position = [], 0
    while len(data) - position >= 4:
        (size,) = struct.unpack_from(">i", data, position)
        if size < MIN_REQUEST_SIZE or size > max_request_bytes:
            return frames, True
        if len(data) - position - 4 < size:
            break
        frames.append(data[position + 4:position + 4 + size])
        position += 4 + size
    return frames, position != len(data)


def read_like_the_loop(data: bytes, cuts, max_request_bytes: int):
    """Feed `data` as the event loop would: into the offered buffer, never while reading
    is paused, each read stopping at the next of the stream positions `cuts` (where the
    peer's sends ended) or when the buffer is full; then end the stream. Collect what
    the protocol yields. Returns (frames, refused)."""
    conn = opened(max_request_bytes)
    stops = sorted({c for c in cuts if 0 < c < len(data)} | {len(data)})

    async def run():
        got, position, ended = [], 0, False
        for _ in range(2 * len(data) + 1000):  # bounded
            if position < len(data) and not conn.transport.paused:
                buffer = conn.get_buffer(-1)
                assert len(buffer) > 0
                stop = next(c for c in stops if c > position)
                n = min(len(buffer), stop - position)
                buffer[:n] = data[position:position + n]
                conn.buffer_updated(n)
                position += n
                continue
            if position >= len(data) and not ended:
                conn.eof_received()
                ended = True
            # paused (a full queue or a refused length) or at the end: frames are waiting
            # or the outcome is known, so this never waits
            try:
                frame = await conn.next_frame(5)
            except FrameError:
                return got, True
            if frame is None:
                return got, False
            got.append(frame)
        raise AssertionError("reader made no progress")

    return asyncio.run(run())


def _frame_with(prefix_size: int, payload: bytes) -> bytes:
    return struct.pack(">i", prefix_size) + payload


pieces = st.one_of(
    # well-formed frames, small and past the scratch buffer
    st.binary(min_size=MIN_REQUEST_SIZE, max_size=300).map(lambda p: _frame_with(len(p), p)),
    st.integers(connection.SCRATCH_BYTES - 8, FUZZ_MAX).map(
        lambda n: _frame_with(n, bytes([n % 251]) * n)),
    # any length prefix at all (negative, tiny, oversized, longer than what follows)
    st.tuples(st.integers(-2**31, 2**31 - 1), st.binary(max_size=200)).map(
        lambda t: _frame_with(*t)),
    st.tuples(st.sampled_from([-1, 0, 7, FUZZ_MAX + 1, 2**31 - 1]), st.binary(max_size=20)).map(
        lambda t: _frame_with(*t)),
    # and plain garbage
    st.binary(min_size=1, max_size=64),
)


def boundaries(data: bytes) -> list[int]:
    """Stream positions around each length prefix and frame end, where a split is most
    likely to go wrong."""
    points, position = set(), 0
    while len(data) - position >= 4:
        (size,) = struct.unpack_from(">i", data, position)
        end = position + 4 + max(size, 0)
        points.update(range(position - 2, position + 7))
        points.update(range(end - 2, end + 3))
        if size < MIN_REQUEST_SIZE or end > len(data):
            break
        position = end
    return sorted(p for p in points if 0 < p < len(data)) or [0]


@settings(max_examples=400, deadline=None)
@given(stream=st.lists(pieces, max_size=8).map(b"".join), data=st.data())
def test_arbitrary_bytes_give_whole_frames_as_sent_or_a_frame_error(stream, data):
    cuts = data.draw(st.lists(st.sampled_from(boundaries(stream))
                              | st.integers(0, len(stream)), max_size=30))
    frames, refused = read_like_the_loop(stream, cuts, FUZZ_MAX)
    assert (frames, refused) == expected_frames(stream, FUZZ_MAX)


@settings(max_examples=200, deadline=None)
@given(stream=st.binary(max_size=2000), chunks=st.lists(st.integers(1, 64), max_size=200))
def test_unstructured_random_bytes_in_tiny_chunks(stream, chunks):
    frames, refused = read_like_the_loop(stream, itertools.accumulate(chunks), 1000)
    assert (frames, refused) == expected_frames(stream, 1000)
