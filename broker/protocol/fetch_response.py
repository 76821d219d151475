"""Fetch responses (v4-v12) encoded by hand, with the records left in their files.

Pure. A Fetch response is mostly stored record batches. Encoding it through kio
would read every batch into a bytes object and copy it twice more (into the body,
then into the frame); here the response becomes a list of parts: short encoded byte
strings around `FileSlice`s that the connection sends straight from the segment
files (`os.sendfile`). The layout follows Kafka's FetchResponse schema; a unit test
checks it byte for byte against kio's encoder for every version served.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..storage.log import FileSlice

FETCH_MIN_VERSION, FETCH_MAX_VERSION = 4, 12
FLEXIBLE_FROM = 12

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_PARTITION_HEAD = struct.Struct(">ihqqq")  # index, error, hw, last stable, log start
_ABORTED = struct.Struct(">qq")  # producer id, first offset

Part = bytes | FileSlice


@dataclass(slots=True)
class PartitionData:
    partition_index: int
    error_code: int = 0
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    aborted_transactions: Sequence[tuple[int, int]] | None = None
    preferred_read_replica: int = -1
    slices: list[FileSlice] = field(default_factory=list)

    @property
    def records_size(self) -> int:
        return sum(s.length for s in self.slices)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _array_length(count: int, flexible: bool) -> bytes:
    return _uvarint(count + 1) if flexible else _I32.pack(count)


def _string(text: str, flexible: bool) -> bytes:
    raw = text.encode()
    return (_uvarint(len(raw) + 1) if flexible else _I16.pack(len(raw))) + raw


class _Builder:
    """Collects bytes until a file slice interrupts them."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self._pending = bytearray()
        self.size = 0

    def add(self, data: bytes) -> None:
        self._pending += data
        self.size += len(data)

    def add_slices(self, slices: Iterable[FileSlice]) -> None:
        for piece in slices:
            if self._pending:
                self.parts.append(bytes(self._pending))
                self._pending.clear()
            self.parts.append(piece)
            self.size += piece.length

    def finish(self) -> list[Part]:
        if self._pending:
            self.parts.append(bytes(self._pending))
        return self.parts


def encode_fetch_response(version: int, correlation_id: int, topics: Sequence[
        tuple[str, Sequence[PartitionData]]], *, error_code: int = 0, session_id: int = 0,
        throttle_time_ms: int = 0) -> list[Part]:
    """The whole response frame (size prefix included) as parts in send order."""
    if not FETCH_MIN_VERSION <= version <= FETCH_MAX_VERSION:
        raise ValueError(f"Fetch v{version} is not encoded here")
    flexible = version >= FLEXIBLE_FROM
    tags = b"\x00" if flexible else b""  # no tagged fields
    body = _Builder()
    body.add(_I32.pack(correlation_id) + tags)  # response header (v1 when flexible)
    body.add(_I32.pack(throttle_time_ms))
    if version >= 7:
        body.add(_I16.pack(error_code) + _I32.pack(session_id))
    body.add(_array_length(len(topics), flexible))
    for name, partitions in topics:
        body.add(_string(name, flexible) + _array_length(len(partitions), flexible))
        for p in partitions:
            head = _PARTITION_HEAD.pack(p.partition_index, p.error_code, p.high_watermark,
                                        p.last_stable_offset, p.log_start_offset)
            body.add(head if version >= 5 else head[:-8])
            aborted = p.aborted_transactions
            if aborted is None:
                body.add(b"\x00" if flexible else _I32.pack(-1))
            else:
                body.add(_array_length(len(aborted), flexible))
                for producer_id, first_offset in aborted:
                    body.add(_ABORTED.pack(producer_id, first_offset) + tags)
            if version >= 11:
                body.add(_I32.pack(p.preferred_read_replica))
            size = p.records_size
            body.add(_uvarint(size + 1) if flexible else _I32.pack(size))
            body.add_slices(p.slices)
            body.add(tags)
        body.add(tags)
    body.add(tags)
    parts = body.finish()
    prefix = _I32.pack(body.size)
    if parts and isinstance(parts[0], bytes):
        parts[0] = prefix + parts[0]
    else:
        parts.insert(0, prefix)
    return parts


def frame_size(parts: Iterable[Part]) -> int:
    return sum(len(p) if isinstance(p, bytes) else p.length for p in parts)
