"""Writing responses to a client connection, records straight from the segment files.

A response is either bytes or a list of parts (bytes and `FileSlice`s, see
protocol/fetch_response.py). Large file slices go out with `os.sendfile`: the kernel
copies from the page cache to the socket and the bytes never enter Python. That needs
the transport's own buffer to be empty first (so nothing overtakes what it still
holds), and since neither uvloop nor the transport can wait on a socket they own, a
duplicate of the socket's descriptor is watched for writability instead.
Small responses are cheaper as one ordinary write.
"""

from __future__ import annotations

import asyncio
import os
from typing import Protocol

from .protocol.fetch_response import Part
from .storage.log import FileSlice

# Below this many file bytes a response is read and written as one buffer: one
# syscall instead of waiting for the transport to drain, then several.
SENDFILE_MIN_BYTES = 64 * 1024


class SegmentShrankError(ConnectionError):
    """A file slice ended early (its segment was truncated): the response cannot be
    completed and the connection must close; the client fetches again."""


class Writer(Protocol):
    """What a response is written to: an asyncio.StreamWriter or a connection.Connection."""

    transport: asyncio.Transport

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


def prepare(writer: Writer) -> None:
    """Make drain() wait until the transport's buffer is empty (needed before sendfile)."""
    writer.transport.set_write_buffer_limits(high=0)


async def write_response(writer: Writer, response: bytes | list[Part]) -> None:
    if isinstance(response, bytes):
        writer.write(response)
        await writer.drain()
        return
    file_bytes = sum(p.length for p in response if isinstance(p, FileSlice))
    if file_bytes < SENDFILE_MIN_BYTES:
        writer.write(b"".join(p if isinstance(p, bytes) else _pread(p) for p in response))
        await writer.drain()
        return
    # Own descriptors for the wait ahead: a slow client may hold this response past the
    # time a removed segment's descriptor stays open, after which its number could
    # name another file.
    parts = [FileSlice(os.dup(p.fd), p.position, p.length) if isinstance(p, FileSlice) else p
             for p in response]
    try:
        for part in parts:
            if isinstance(part, bytes):
                writer.write(part)
            else:
                await writer.drain()  # empty: the file bytes must follow what it holds
                await _sendfile(writer.transport, part)
        await writer.drain()
    finally:
        for part in parts:
            if isinstance(part, FileSlice):
                os.close(part.fd)


def _pread(piece: FileSlice) -> bytes:
    data = os.pread(piece.fd, piece.length, piece.position)
    if len(data) != piece.length:
        raise SegmentShrankError(f"segment ended {piece.length - len(data)} bytes early")
    return data


async def _sendfile(transport: asyncio.Transport, piece: FileSlice) -> None:
    if transport.is_closing():
        raise ConnectionResetError("connection closed")
    socket_fd = transport.get_extra_info("socket").fileno()
    position, end = piece.position, piece.position + piece.length
    while position < end:
        try:
            sent = os.sendfile(socket_fd, piece.fd, position, end - position)
        except BlockingIOError:
            await _writable(socket_fd)
            continue
        if sent == 0:
            raise SegmentShrankError(f"segment ended {end - position} bytes early")
        position += sent


async def _writable(socket_fd: int) -> None:
    loop = asyncio.get_running_loop()
    watched = os.dup(socket_fd)  # the loop refuses to watch a transport's own fd
    ready = loop.create_future()
    loop.add_writer(watched, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_writer(watched)
        os.close(watched)
