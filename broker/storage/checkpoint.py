"""Small files that must never be seen half-written: write to a temp file, fsync, rename."""

from __future__ import annotations

import os
from pathlib import Path

TEMP_SUFFIX = ".tmp"
_FORMAT_VERSION = "0"


def fsync_directory(directory: Path) -> None:
    """Make renames, creations and deletions inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    temp = path.with_name(path.name + TEMP_SUFFIX)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    fsync_directory(path.parent)


def encode_offset(offset: int) -> bytes:
    return f"{_FORMAT_VERSION}\n{offset}\n".encode()


def decode_offset(data: bytes) -> int | None:
    """The offset stored by encode_offset, or None for anything else."""
    lines = data.decode("ascii", errors="replace").split("\n")
    if len(lines) != 3 or lines[0] != _FORMAT_VERSION or lines[2] != "":
        return None
    try:
        offset = int(lines[1])
    except ValueError:
        return None
    return offset if offset >= 0 else None


def write_offset(path: Path, offset: int) -> None:
    write_atomically(path, encode_offset(offset))


def read_offset(path: Path) -> int | None:
    """The checkpointed offset, or None when the file is missing or unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return decode_offset(data)
