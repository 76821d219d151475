"""One client connection: request frames received straight into their buffers.

asyncio's StreamReader cost a third of the broker's CPU under produce load: it wakes
the reading coroutine for every chunk the socket delivers, copies each chunk into
its buffer, pauses and resumes the socket every 128 KiB, then copies the frame out
and shifts the rest down. Here the socket reads (a BufferedProtocol) go into a
scratch buffer, or, for a frame that does not fit, into a buffer of the frame's own
size; the serving task is woken once per complete frame.
Frame sizes are checked as soon as the 4-byte prefix arrives (protocol/frames.py).
"""

from __future__ import annotations

import asyncio
import collections
import struct

from .protocol.frames import FrameError, check_frame_size

_SIZE = struct.Struct(">i")
SCRATCH_BYTES = 256 * 1024
# Pipelined requests held before the socket stops being read (requests of a
# connection are handled one at a time, as Kafka does).
MAX_QUEUED_FRAMES = 8
COMPACT_BELOW = 64 * 1024  # free bytes under which a partial frame moves to the front


class Connection(asyncio.BufferedProtocol):
    def __init__(self, max_request_bytes: int, on_open, on_lost=None) -> None:
        self._max_request_bytes = max_request_bytes
        self._on_open = on_open  # called with this connection once the socket is up
        self._on_lost = on_lost  # ... and once it is gone
        self.transport: asyncio.Transport | None = None
        self._scratch = bytearray(SCRATCH_BYTES)
        self._view = memoryview(self._scratch)
        self._start = self._end = 0  # unparsed bytes are _scratch[_start:_end]
        self._large: bytearray | None = None  # a frame too big for the scratch buffer
        self._large_filled = 0
        self._frames: collections.deque[bytes] = collections.deque()
        self._error: Exception | None = None
        self._closed = False
        self._reading_paused = False
        self._waiter: asyncio.Future | None = None
        self._writable: asyncio.Future | None = None
        self._writing_paused = False

    # -- protocol callbacks -------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self._on_open(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._large is not None:
            return memoryview(self._large)[self._large_filled:]
        if self._start == self._end:
            self._start = self._end = 0
        elif self._start and len(self._scratch) - self._end < COMPACT_BELOW:
            # little room left: move the partial frame to the front
            pending = self._end - self._start
            self._scratch[:pending] = self._scratch[self._start:self._end]
            self._start, self._end = 0, pending
        return self._view[self._end:]

    def buffer_updated(self, nbytes: int) -> None:
        if self._large is not None:
            self._large_filled += nbytes
            if self._large_filled == len(self._large):
                self._deliver(bytes(self._large))
                self._large = None
            return
        self._end += nbytes
        self._parse()

    def eof_received(self) -> bool:
        if self._large is not None or self._start != self._end:
            self._fail(FrameError("connection closed inside a request frame"))
        self._finish()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()
        if self._on_lost is not None:
            self._on_lost(self)
        if self._writable is not None and not self._writable.done():
            self._writable.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # -- frames -----------------------------------------------------------------------------
    def _parse(self) -> None:
        scratch = self._scratch
        while self._end - self._start >= 4:
            size = _SIZE.unpack_from(scratch, self._start)[0]
            try:
                check_frame_size(size, self._max_request_bytes)
            except FrameError as exc:
                self._fail(exc)
                return
            body = self._start + 4
            if self._end - body >= size:
                self._deliver(bytes(scratch[body:body + size]))
                self._start = body + size
                continue
            if size > len(scratch) - 4:  # never fits: give it a buffer of its own
                self._large = bytearray(size)
                have = self._end - body
                self._large[:have] = scratch[body:self._end]
                self._large_filled = have
                self._start = self._end = 0
            return

    def _deliver(self, frame: bytes) -> None:
        self._frames.append(frame)
        if len(self._frames) >= MAX_QUEUED_FRAMES and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def _fail(self, error: Exception) -> None:
        self._error = error
        self._closed = True
        self.transport.pause_reading()
        self._wake()

    def _finish(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next_frame(self, idle_timeout: float) -> bytes | None:
        """The next request frame; None at the end of the stream. Raises FrameError for
        input that is not Kafka and TimeoutError after idle_timeout seconds of nothing."""
        while not self._frames:
            if self._error is not None:
                raise self._error
            if self._closed:
                return None
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            timer = loop.call_later(idle_timeout, self._idle, self._waiter)
            try:
                await self._waiter
            finally:
                timer.cancel()
                self._waiter = None
        frame = self._frames.popleft()
        if self._reading_paused and len(self._frames) < MAX_QUEUED_FRAMES // 2:
            self._reading_paused = False
            self.transport.resume_reading()
        return frame

    @staticmethod
    def _idle(waiter: asyncio.Future) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError("connection idle"))

    # -- writing (the part of StreamWriter the response writer uses) ------------------------
    def write(self, data: bytes) -> None:
        if self.transport.is_closing():  # uvloop raises RuntimeError on a closed handle
            raise ConnectionResetError("connection closed")
        self.transport.write(data)

    async def drain(self) -> None:
        if self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        if self._writing_paused:
            self._writable = asyncio.get_running_loop().create_future()
            try:
                await self._writable
            finally:
                self._writable = None

    def close(self) -> None:
        self.transport.close()
