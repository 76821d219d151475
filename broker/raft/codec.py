"""Binary encoding of the quorum's values, shared by the log store and the transport.

Big-endian, length-prefixed, no optional fields: each message starts with a format
version byte and a type byte, so a peer running a newer format fails loudly
(CodecError) instead of misreading. Decoding checks every length against the
bytes actually present before slicing.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeVar

from .entries import Entry, EntryKind, Snapshot
from .membership import Configuration, Member
from .messages import (
    AppendRequest,
    AppendResponse,
    Message,
    SnapshotRequest,
    SnapshotResponse,
    VoteRequest,
    VoteResponse,
)

FORMAT_VERSION = 1
T = TypeVar("T")
MAX_ADDRESS_BYTES = 1024


class CodecError(ValueError):
    """The bytes are not a well-formed encoding."""


class _Writer:
    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, value: int) -> None:
        self._parts.append(struct.pack(">B", value))

    def i32(self, value: int) -> None:
        self._parts.append(struct.pack(">i", value))

    def u64(self, value: int) -> None:
        self._parts.append(struct.pack(">Q", value))

    def blob(self, value: bytes) -> None:
        self._parts.append(struct.pack(">I", len(value)))
        self._parts.append(value)

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._offset = 0

    def _take(self, size: int) -> memoryview:
        if size < 0 or self._offset + size > len(self._data):
            raise CodecError(f"truncated: need {size} bytes at offset {self._offset}")
        view = self._data[self._offset:self._offset + size]
        self._offset += size
        return view

    def u8(self) -> int:
        return self._take(1)[0]

    def flag(self) -> bool:
        value = self.u8()
        if value > 1:
            raise CodecError(f"boolean byte {value}")
        return bool(value)

    def i32(self) -> int:
        return struct.unpack(">i", self._take(4))[0]

    def u64(self) -> int:
        return struct.unpack(">Q", self._take(8))[0]

    def blob(self) -> bytes:
        (size,) = struct.unpack(">I", self._take(4))
        return bytes(self._take(size))

    def finish(self) -> None:
        if self._offset != len(self._data):
            raise CodecError(f"{len(self._data) - self._offset} trailing bytes")


# --- configurations, entries, snapshots -------------------------------------------------

def _write_configuration(out: _Writer, configuration: Configuration) -> None:
    out.i32(len(configuration.members))
    for member in configuration.members:
        out.i32(member.node_id)
        out.u8(member.voter)
        out.blob(member.address.encode())


def _read_configuration(src: _Reader) -> Configuration:
    count = src.i32()
    if count < 0:
        raise CodecError(f"negative member count {count}")
    members = []
    for _ in range(count):
        node_id, voter, address = src.i32(), src.flag(), src.blob()
        if len(address) > MAX_ADDRESS_BYTES:
            raise CodecError("member address too long")
        try:
            members.append(Member(node_id, address.decode(), voter))
        except UnicodeDecodeError as error:
            raise CodecError(f"member address is not UTF-8: {error}") from None
    try:
        return Configuration(tuple(members))
    except ValueError as error:
        raise CodecError(str(error)) from None


def _write_entry(out: _Writer, entry: Entry) -> None:
    out.u64(entry.term)
    out.u64(entry.index)
    out.u8(entry.kind)
    out.blob(entry.data)


def _read_entry(src: _Reader) -> Entry:
    term, index, kind = src.u64(), src.u64(), src.u8()
    try:
        entry_kind = EntryKind(kind)
    except ValueError:
        raise CodecError(f"unknown entry kind {kind}") from None
    return Entry(term, index, entry_kind, src.blob())


def _encoded(write: Callable[[_Writer, T], None], value: T) -> bytes:
    out = _Writer()
    write(out, value)
    return out.getvalue()


def _decoded(read: Callable[[_Reader], T], data: bytes) -> T:
    """Decode exactly one value: bytes left over mean corruption."""
    src = _Reader(data)
    value = read(src)
    src.finish()
    return value


def _write_snapshot(out: _Writer, snapshot: Snapshot) -> None:
    out.u64(snapshot.last_index)
    out.u64(snapshot.last_term)
    _write_configuration(out, snapshot.configuration)
    out.blob(snapshot.data)


def _read_snapshot(src: _Reader) -> Snapshot:
    return Snapshot(src.u64(), src.u64(), _read_configuration(src), src.blob())


def encode_configuration(configuration: Configuration) -> bytes:
    return _encoded(_write_configuration, configuration)


def decode_configuration(data: bytes) -> Configuration:
    return _decoded(_read_configuration, data)


def encode_entry(entry: Entry) -> bytes:
    return _encoded(_write_entry, entry)


def decode_entry(data: bytes) -> Entry:
    return _decoded(_read_entry, data)


def encode_snapshot(snapshot: Snapshot) -> bytes:
    return _encoded(_write_snapshot, snapshot)


def decode_snapshot(data: bytes) -> Snapshot:
    return _decoded(_read_snapshot, data)


# --- messages ---------------------------------------------------------------------------

_TYPE_CODES: dict[type, int] = {
    VoteRequest: 1, VoteResponse: 2, AppendRequest: 3, AppendResponse: 4,
    SnapshotRequest: 5, SnapshotResponse: 6,
}


def encode_message(message: Message) -> bytes:
    out = _Writer()
    out.u8(FORMAT_VERSION)
    out.u8(_TYPE_CODES[type(message)])
    out.i32(message.sender)
    out.i32(message.recipient)
    out.u64(message.term)
    match message:
        case VoteRequest():
            out.u64(message.last_log_index)
            out.u64(message.last_log_term)
            out.u8(message.pre_vote)
        case VoteResponse():
            out.u8(message.granted)
            out.u8(message.pre_vote)
        case AppendRequest():
            out.u64(message.prev_index)
            out.u64(message.prev_term)
            out.u64(message.leader_commit)
            out.i32(len(message.entries))
            for entry in message.entries:
                _write_entry(out, entry)
        case AppendResponse():
            out.u8(message.success)
            out.u64(message.match_index)
            out.u64(message.rejected_prev_index)
            out.u64(message.conflict_index)
            out.u64(message.conflict_term)
        case SnapshotRequest():
            out.u64(message.last_index)
            out.u64(message.last_term)
            _write_configuration(out, message.configuration)
            out.u64(message.offset)
            out.blob(message.data)
            out.u8(message.done)
        case SnapshotResponse():
            out.u64(message.last_index)
            out.u64(message.next_offset)
            out.u8(message.done)
    return out.getvalue()


def decode_message(data: bytes) -> Message:
    src = _Reader(data)
    version = src.u8()
    if version != FORMAT_VERSION:
        raise CodecError(f"unsupported message format version {version}")
    code = src.u8()
    sender, recipient, term = src.i32(), src.i32(), src.u64()
    message: Message
    if code == 1:
        message = VoteRequest(sender, recipient, term, src.u64(), src.u64(), src.flag())
    elif code == 2:
        message = VoteResponse(sender, recipient, term, src.flag(), src.flag())
    elif code == 3:
        prev_index, prev_term, commit, count = src.u64(), src.u64(), src.u64(), src.i32()
        if count < 0:
            raise CodecError(f"negative entry count {count}")
        entries = tuple(_read_entry(src) for _ in range(count))
        message = AppendRequest(sender, recipient, term, prev_index, prev_term, entries, commit)
    elif code == 4:
        message = AppendResponse(sender, recipient, term, src.flag(), src.u64(), src.u64(),
                                 src.u64(), src.u64())
    elif code == 5:
        last_index, last_term = src.u64(), src.u64()
        configuration = _read_configuration(src)
        message = SnapshotRequest(sender, recipient, term, last_index, last_term, configuration,
                                  src.u64(), src.blob(), src.flag())
    elif code == 6:
        message = SnapshotResponse(sender, recipient, term, src.u64(), src.u64(), src.flag())
    else:
        raise CodecError(f"unknown message type {code}")
    src.finish()
    return message
