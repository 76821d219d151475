"""Sparse per-segment indexes, in Kafka's file formats.

Offset index (`.index`): 8-byte entries, relative offset int32 BE + file position
int32 BE, one for the first batch after every index.interval.bytes of log.
Time index (`.timeindex`): 12-byte entries, timestamp int64 BE + relative offset
int32 BE, recording the segment's largest timestamp so far and the batch holding
it; timestamps strictly increase.

Entries live in memory (arrays, searched with bisect) and are appended to the file
as they are made. An index is a cache of the log: any doubt about it on load
means it is rebuilt from the log, never trusted.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from pathlib import Path

OFFSET_ENTRY = struct.Struct(">ii")
TIME_ENTRY = struct.Struct(">qi")


# ----------------------------------------------------------------- pure parts


def decode_offset_entries(data: bytes) -> tuple[array, array]:
    """File bytes -> (relative offsets, positions). Raises ValueError on a torn file."""
    if len(data) % OFFSET_ENTRY.size:
        raise ValueError(f"offset index size {len(data)} is not a multiple of 8")
    values = array("i")
    values.frombytes(data)
    if sys.byteorder == "little":
        values.byteswap()
    return values[0::2], values[1::2]


def decode_time_entries(data: bytes) -> tuple[array, array]:
    """File bytes -> (timestamps, relative offsets). Raises ValueError on a torn file."""
    if len(data) % TIME_ENTRY.size:
        raise ValueError(f"time index size {len(data)} is not a multiple of 12")
    timestamps = array("q")
    relative_offsets = array("i")
    for timestamp, relative_offset in TIME_ENTRY.iter_unpack(data):
        timestamps.append(timestamp)
        relative_offsets.append(relative_offset)
    return timestamps, relative_offsets


def _strictly_increasing(values: array) -> bool:
    return all(a < b for a, b in zip(values, values[1:], strict=False))


def offset_index_problem(relative_offsets: array, positions: array, log_size: int) -> str | None:
    """Why these offset-index entries cannot describe a log of `log_size` bytes, or None."""
    if not relative_offsets:
        return None
    if relative_offsets[0] < 0 or positions[0] < 0:
        return "negative entry"
    if not _strictly_increasing(relative_offsets) or not _strictly_increasing(positions):
        return "entries out of order"
    if positions[-1] >= log_size:
        return f"entry at position {positions[-1]} beyond the log's {log_size} bytes"
    return None


def time_index_problem(
    timestamps: array, relative_offsets: array, next_relative_offset: int
) -> str | None:
    """Why these time-index entries cannot belong to the segment, or None."""
    if not timestamps:
        return None
    if relative_offsets[0] < 0:
        return "negative offset"
    if not _strictly_increasing(timestamps):
        return "timestamps out of order"
    if any(a > b for a, b in zip(relative_offsets, relative_offsets[1:], strict=False)):
        return "offsets out of order"
    if relative_offsets[-1] >= next_relative_offset:
        return "entry beyond the segment's last offset"
    return None


# ------------------------------------------------------------------- files


class _IndexFile:
    """An index file opened for appending; entries are written straight to the kernel."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.existed = path.exists()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)

    def read_all(self) -> bytes:
        size = os.fstat(self._fd).st_size
        return os.pread(self._fd, size, 0) if size else b""

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)

    @property
    def fd(self) -> int:
        return self._fd

    def flush(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _SparseIndex:
    """What both index files share: the file handle and the entry count (one relative
    offset per entry in either kind)."""

    _file: _IndexFile
    _relative_offsets: array
    max_entries: int

    @property
    def path(self) -> Path:
        return self._file.path

    @property
    def fd(self) -> int:
        return self._file.fd

    def __len__(self) -> int:
        return len(self._relative_offsets)

    @property
    def is_full(self) -> bool:
        return len(self._relative_offsets) >= self.max_entries

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class OffsetIndex(_SparseIndex):
    """Maps offsets to the file position of a batch at or before them."""

    def __init__(self, path: Path, base_offset: int, max_entries: int) -> None:
        self.base_offset = base_offset
        self.max_entries = max_entries
        self._file = _IndexFile(path)
        self._relative_offsets = array("i")
        self._positions = array("i")
        self.load_problem: str | None = None if self._file.existed else "missing"
        if self._file.existed:
            try:
                self._relative_offsets, self._positions = decode_offset_entries(
                    self._file.read_all()
                )
            except ValueError as error:
                self.load_problem = str(error)

    def problem(self, log_size: int) -> str | None:
        return self.load_problem or offset_index_problem(
            self._relative_offsets, self._positions, log_size
        )

    def last_entry(self) -> tuple[int, int] | None:
        if not self._positions:
            return None
        return self.base_offset + self._relative_offsets[-1], self._positions[-1]

    def append(self, offset: int, position: int) -> None:
        relative_offset = offset - self.base_offset
        self._file.write(OFFSET_ENTRY.pack(relative_offset, position))
        self._relative_offsets.append(relative_offset)
        self._positions.append(position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """The last entry at or before `offset`, or (base_offset, 0)."""
        slot = bisect_right(self._relative_offsets, offset - self.base_offset) - 1
        if slot < 0:
            return self.base_offset, 0
        return self.base_offset + self._relative_offsets[slot], self._positions[slot]

    def floor_position(self, position: int) -> int:
        """The last indexed batch position at or before `position`, or 0."""
        slot = bisect_right(self._positions, position) - 1
        return self._positions[slot] if slot >= 0 else 0

    def truncate_to_position(self, position: int) -> None:
        """Forget entries for batches at or after `position`."""
        keep = bisect_left(self._positions, position)
        if keep < len(self._positions):
            del self._relative_offsets[keep:]
            del self._positions[keep:]
            self._file.truncate(keep * OFFSET_ENTRY.size)

    def replace_all(self, entries: list[tuple[int, int]]) -> None:
        """Replace every entry (absolute offset, position): used when rebuilding."""
        self._relative_offsets = array("i", (o - self.base_offset for o, _ in entries))
        self._positions = array("i", (p for _, p in entries))
        self._file.truncate(0)
        self._file.write(
            b"".join(
                OFFSET_ENTRY.pack(r, p)
                for r, p in zip(self._relative_offsets, self._positions, strict=True)
            )
        )
        self.load_problem = None

class TimeIndex(_SparseIndex):
    """Maps timestamps to the batch where the segment's largest timestamp so far appears."""

    def __init__(self, path: Path, base_offset: int, max_entries: int) -> None:
        self.base_offset = base_offset
        self.max_entries = max_entries
        self._file = _IndexFile(path)
        self._timestamps = array("q")
        self._relative_offsets = array("i")
        self.load_problem: str | None = None if self._file.existed else "missing"
        if self._file.existed:
            try:
                self._timestamps, self._relative_offsets = decode_time_entries(
                    self._file.read_all()
                )
            except ValueError as error:
                self.load_problem = str(error)

    def problem(self, next_offset: int) -> str | None:
        return self.load_problem or time_index_problem(
            self._timestamps, self._relative_offsets, next_offset - self.base_offset
        )

    def last_entry(self) -> tuple[int, int] | None:
        """(timestamp, offset) of the newest entry."""
        if not self._timestamps:
            return None
        return self._timestamps[-1], self.base_offset + self._relative_offsets[-1]

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Record a new largest timestamp; anything not larger than the last is ignored."""
        if self._timestamps and timestamp <= self._timestamps[-1]:
            return
        relative_offset = offset - self.base_offset
        self._file.write(TIME_ENTRY.pack(timestamp, relative_offset))
        self._timestamps.append(timestamp)
        self._relative_offsets.append(relative_offset)

    def lookup_before(self, timestamp: int) -> tuple[int, int] | None:
        """The last entry with a timestamp strictly below `timestamp`, as (timestamp, offset).

        Every batch up to that entry's offset has timestamps below `timestamp`, so a
        search for the first record at or after `timestamp` may start there.
        """
        slot = bisect_left(self._timestamps, timestamp) - 1
        if slot < 0:
            return None
        return self._timestamps[slot], self.base_offset + self._relative_offsets[slot]

    def truncate_to_offset(self, offset: int) -> None:
        """Forget entries pointing at `offset` or later."""
        relative_offset = offset - self.base_offset
        keep = bisect_left(self._relative_offsets, relative_offset)
        if keep < len(self._timestamps):
            del self._timestamps[keep:]
            del self._relative_offsets[keep:]
            self._file.truncate(keep * TIME_ENTRY.size)

    def replace_all(self, entries: list[tuple[int, int]]) -> None:
        """Replace every entry (timestamp, absolute offset): used when rebuilding."""
        self._timestamps = array("q", (t for t, _ in entries))
        self._relative_offsets = array("i", (o - self.base_offset for _, o in entries))
        self._file.truncate(0)
        self._file.write(
            b"".join(
                TIME_ENTRY.pack(t, r)
                for t, r in zip(self._timestamps, self._relative_offsets, strict=True)
            )
        )
        self.load_problem = None
