"""Connection's frame assembly under every way a socket may split the bytes.

The protocol callbacks are driven directly (as the event loop would), so chunk
boundaries, frames larger than the scratch buffer and pipelined frames are covered
exhaustively; the component tests drive the same code over real sockets.
"""

import asyncio
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brook.broker import connection
from brook.broker.connection import Connection
from brook.broker.protocol.frames import FrameError


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
