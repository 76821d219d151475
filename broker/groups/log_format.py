"""Kafka's record formats in `__consumer_offsets` (pure).

Keys start with an int16 version: 0 and 1 are OffsetCommitKey (group, topic,
partition), 2 is GroupMetadataKey (group). Later key versions belong to the
KIP-848/share group records, which Brook neither writes nor needs, so reading skips
them. A null value is a tombstone. Values carry their own int16 version:

    OffsetCommitValue   v0 offset, metadata, commit_timestamp
                        v1 + expire_timestamp          (only when a retention was asked)
                        v2 offset, metadata, commit_timestamp
                        v3 offset, leader_epoch, metadata, commit_timestamp
                        v4 the same, flexible (compact strings, tagged fields)
    GroupMetadataValue  v0 protocol_type, generation, protocol?, leader?, members
                        v1 members gain rebalance_timeout
                        v2 + current_state_timestamp
                        v3 members gain group_instance_id?
                        v4 the same, flexible

Brook writes what Kafka 3.x writes (OffsetCommitValue v3, or v1 with an expire
timestamp; GroupMetadataValue v3) and reads every version, so a log written by
Apache Kafka loads too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

OFFSET_KEY_VERSION = 1
GROUP_KEY_VERSION = 2

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


class FormatError(ValueError):
    """Bytes that are not a record Brook understands."""


@dataclass(frozen=True, slots=True)
class OffsetKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupKey:
    group: str


@dataclass(frozen=True, slots=True)
class OffsetValue:
    offset: int
    metadata: str = ""
    commit_timestamp: int = -1
    leader_epoch: int = -1
    expire_timestamp: int = -1  # -1: the broker's offsets.retention.minutes applies


@dataclass(frozen=True, slots=True)
class MemberValue:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout: int
    session_timeout: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int = -1
    members: tuple[MemberValue, ...] = field(default_factory=tuple)


# ------------------------------------------------------------------ writer


class _Writer:
    def __init__(self, flexible: bool = False) -> None:
        self.out = bytearray()
        self.flexible = flexible

    def i16(self, v: int) -> None:
        self.out += _I16.pack(v)

    def i32(self, v: int) -> None:
        self.out += _I32.pack(v)

    def i64(self, v: int) -> None:
        self.out += _I64.pack(v)

    def uvarint(self, v: int) -> None:
        while v > 0x7F:
            self.out.append((v & 0x7F) | 0x80)
            v >>= 7
        self.out.append(v)

    def string(self, v: str | None) -> None:
        data = None if v is None else v.encode()
        if self.flexible:
            self.uvarint(0 if data is None else len(data) + 1)
        else:
            self.i16(-1 if data is None else len(data))
        if data is not None:
            self.out += data

    def bytes_(self, v: bytes | None) -> None:
        if self.flexible:
            self.uvarint(0 if v is None else len(v) + 1)
        else:
            self.i32(-1 if v is None else len(v))
        if v is not None:
            self.out += v

    def array_len(self, n: int) -> None:
        if self.flexible:
            self.uvarint(n + 1)
        else:
            self.i32(n)

    def tags(self) -> None:
        if self.flexible:
            self.uvarint(0)


def encode_offset_key(key: OffsetKey) -> bytes:
    w = _Writer()
    w.i16(OFFSET_KEY_VERSION)
    w.string(key.group)
    w.string(key.topic)
    w.i32(key.partition)
    return bytes(w.out)


def encode_group_key(key: GroupKey) -> bytes:
    w = _Writer()
    w.i16(GROUP_KEY_VERSION)
    w.string(key.group)
    return bytes(w.out)


def encode_offset_value(value: OffsetValue) -> bytes:
    w = _Writer()
    if value.expire_timestamp >= 0:
        w.i16(1)
        w.i64(value.offset)
        w.string(value.metadata)
        w.i64(value.commit_timestamp)
        w.i64(value.expire_timestamp)
    else:
        w.i16(3)
        w.i64(value.offset)
        w.i32(value.leader_epoch)
        w.string(value.metadata)
        w.i64(value.commit_timestamp)
    return bytes(w.out)


def encode_group_value(value: GroupValue, version: int = 3) -> bytes:
    if not 0 <= version <= 4:
        raise ValueError(f"GroupMetadataValue v{version} does not exist")
    w = _Writer(flexible=version >= 4)
    w.i16(version)
    w.string(value.protocol_type)
    w.i32(value.generation)
    w.string(value.protocol)
    w.string(value.leader)
    if version >= 2:
        w.i64(value.current_state_timestamp)
    w.array_len(len(value.members))
    for m in value.members:
        w.string(m.member_id)
        if version >= 3:
            w.string(m.group_instance_id)
        w.string(m.client_id)
        w.string(m.client_host)
        if version >= 1:
            w.i32(m.rebalance_timeout)
        w.i32(m.session_timeout)
        w.bytes_(m.subscription)
        w.bytes_(m.assignment)
        w.tags()
    w.tags()
    return bytes(w.out)


# ------------------------------------------------------------------ reader


class _Reader:
    def __init__(self, data: bytes, flexible: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.flexible = flexible

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError("record runs past its end")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def i16(self) -> int:
        return _I16.unpack(self._take(2))[0]

    def i32(self) -> int:
        return _I32.unpack(self._take(4))[0]

    def i64(self) -> int:
        return _I64.unpack(self._take(8))[0]

    def uvarint(self) -> int:
        result = shift = 0
        while True:
            byte = self._take(1)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 35:
                raise FormatError("varint too long")

    def string(self) -> str | None:
        n = self.uvarint() - 1 if self.flexible else self.i16()
        if n < 0:
            return None
        try:
            return self._take(n).decode()
        except UnicodeDecodeError as exc:
            raise FormatError("string is not UTF-8") from exc

    def bytes_(self) -> bytes | None:
        n = self.uvarint() - 1 if self.flexible else self.i32()
        return None if n < 0 else self._take(n)

    def array_len(self) -> int:
        n = self.uvarint() - 1 if self.flexible else self.i32()
        if n < 0 or n > len(self.data):
            raise FormatError(f"bad array length {n}")
        return n

    def skip_tags(self) -> None:
        if self.flexible:
            for _ in range(self.uvarint()):
                self.uvarint()
                self._take(self.uvarint())


def decode_key(data: bytes) -> OffsetKey | GroupKey | None:
    """The key, or None for key versions Brook does not use (KIP-848, share groups)."""
    r = _Reader(data)
    version = r.i16()
    if version in (0, 1):
        group, topic, partition = r.string(), r.string(), r.i32()
        if group is None or topic is None:
            raise FormatError("offset key with a null group or topic")
        return OffsetKey(group, topic, partition)
    if version == 2:
        group = r.string()
        if group is None:
            raise FormatError("group key with a null group")
        return GroupKey(group)
    if version < 0:
        raise FormatError(f"negative key version {version}")
    return None


def decode_offset_value(data: bytes) -> OffsetValue:
    version = _I16.unpack_from(data, 0)[0] if len(data) >= 2 else -1
    if not 0 <= version <= 4:
        raise FormatError(f"unknown OffsetCommitValue version {version}")
    r = _Reader(data, flexible=version >= 4)
    r.pos = 2
    offset = r.i64()
    leader_epoch = r.i32() if version >= 3 else -1
    metadata = r.string() or ""
    commit_timestamp = r.i64()
    expire_timestamp = r.i64() if version == 1 else -1
    r.skip_tags()
    return OffsetValue(offset, metadata, commit_timestamp, leader_epoch, expire_timestamp)


def decode_group_value(data: bytes) -> GroupValue:
    version = _I16.unpack_from(data, 0)[0] if len(data) >= 2 else -1
    if not 0 <= version <= 4:
        raise FormatError(f"unknown GroupMetadataValue version {version}")
    r = _Reader(data, flexible=version >= 4)
    r.pos = 2
    protocol_type = r.string() or ""
    generation = r.i32()
    protocol = r.string()
    leader = r.string()
    state_ts = r.i64() if version >= 2 else -1
    members = []
    for _ in range(r.array_len()):
        member_id = r.string() or ""
        instance = r.string() if version >= 3 else None
        client_id = r.string() or ""
        client_host = r.string() or ""
        session = rebalance = 0
        if version >= 1:
            rebalance = r.i32()
        session = r.i32()
        if version == 0:
            rebalance = session
        subscription = r.bytes_() or b""
        assignment = r.bytes_() or b""
        r.skip_tags()
        members.append(MemberValue(member_id, instance, client_id, client_host, rebalance,
                                   session, subscription, assignment))
    r.skip_tags()
    return GroupValue(protocol_type, generation, protocol, leader, state_ts, tuple(members))
