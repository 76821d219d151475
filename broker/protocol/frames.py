"""Size-prefixed request frames.

A frame is a 4-byte big-endian length followed by that many bytes. The length is
checked before anything is allocated: a negative, zero or oversized length
(`socket.request.max.bytes`) means the peer is not speaking Kafka, and the
connection is closed, as Kafka does.
"""

from __future__ import annotations

import asyncio
import struct

_SIZE = struct.Struct(">i")
MIN_REQUEST_SIZE = 8  # api key, version, correlation id


class FrameError(ValueError):
    """The peer sent a length Brook refuses; the connection must be closed."""


MIN_RESPONSE_SIZE = 4  # correlation id


def check_frame_size(size: int, max_bytes: int, min_bytes: int = MIN_REQUEST_SIZE) -> None:
    if size < min_bytes:
        raise FrameError(f"frame size {size} is smaller than a header ({min_bytes} bytes)")
    if size > max_bytes:
        raise FrameError(
            f"request size {size} exceeds socket.request.max.bytes={max_bytes}"
        )


def decode_size(prefix: bytes) -> int:
    return _SIZE.unpack(prefix)[0]


async def read_frame(reader: asyncio.StreamReader, max_bytes: int,
                     min_bytes: int = MIN_REQUEST_SIZE) -> bytes | None:
    """The next frame's payload, or None at a clean end of stream."""
    try:
        prefix = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise FrameError("connection closed inside a size prefix") from None
        return None
    size = decode_size(prefix)
    check_frame_size(size, max_bytes, min_bytes)
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise FrameError(f"connection closed after {size}-byte frame was announced") from None


async def read_frame_any(reader: asyncio.StreamReader, max_bytes: int) -> bytes | None:
    """A response frame (broker-to-broker client side): only the correlation id is required."""
    return await read_frame(reader, max_bytes, MIN_RESPONSE_SIZE)
