"""The quorum's durable state in one directory: term/vote, the latest snapshot, the log.

    quorum-state.json                      {"term": .., "voted_for": ..}, replaced atomically
    snapshot-<index>-<term>.checkpoint     magic, CRC32C, encoded Snapshot; written atomically
    metadata.log                           append-only records, fsynced per batch

A log record is `length:u32 crc32c:u32 payload`, the payload being the term of the
previous entry followed by the encoded entry. Recovery keeps the longest prefix of
whole, CRC-valid records that chains on from the snapshot (index + 1, matching
previous term) and cuts the file there: a torn write at the tail disappears, and so
does a stale tail left by a crash between saving an installed snapshot and
truncating the log behind it. Operations mirror MemoryStore exactly.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable
from pathlib import Path

import crc32c

from brook.broker.durable_file import write_atomically

from .codec import CodecError, decode_entry, decode_snapshot, encode_entry, encode_snapshot
from .entries import Entry, Snapshot, bootstrap_snapshot
from .membership import Configuration
from .ready import AppendLog, PersistentState, SaveSnapshot, SaveTermAndVote, StorageOp, TruncateLog

STATE_FILE = "quorum-state.json"
LOG_FILE = "metadata.log"
SNAPSHOT_SUFFIX = ".checkpoint"
SNAPSHOT_MAGIC = b"BRKSNAP1"
MAX_RECORD_BYTES = 256 << 20
_HEADER = struct.Struct(">II")
_PREV_TERM = struct.Struct(">Q")


class CorruptStore(RuntimeError):
    """The directory holds state that cannot be trusted (not a torn tail)."""


class FileStore:
    def __init__(self, directory: Path) -> None:
        """Open (creating if needed) a store; use `FileStore.open` to bootstrap a new one."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.term, self.voted_for = self._read_state()
        self.snapshot = self._read_latest_snapshot()
        self._entries: list[Entry] = []
        self._offsets: list[int] = []  # file offset where each entry's record starts
        self._log = open(self.directory / LOG_FILE, "a+b")  # noqa: SIM115 - lives with the store
        self._recover_log()

    @classmethod
    def open(cls, directory: Path, bootstrap: Configuration | None = None) -> FileStore:
        """Open the store; a brand-new one starts from a snapshot holding `bootstrap`.

        On later starts `bootstrap` is ignored: the voters are whatever the log says.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if not any(directory.glob("*" + SNAPSHOT_SUFFIX)):
            log_path = directory / LOG_FILE
            if log_path.exists() and log_path.stat().st_size:
                raise CorruptStore(f"{directory} has a log but no snapshot")
            _write_snapshot_file(directory, bootstrap_snapshot(bootstrap or Configuration()))
        return cls(directory)

    # --- the storage contract ---------------------------------------------------------

    @property
    def last_index(self) -> int:
        return self._entries[-1].index if self._entries else self.snapshot.last_index

    def load(self) -> PersistentState:
        return PersistentState(self.term, self.voted_for, self.snapshot, tuple(self._entries))

    def apply(self, operations: Iterable[StorageOp]) -> None:
        """Carry out the operations in order; everything is durable when this returns."""
        appended = False
        for operation in operations:
            match operation:
                case SaveTermAndVote(term, voted_for):
                    self._flush(appended)
                    appended = False
                    write_atomically(self.directory / STATE_FILE,
                                     json.dumps({"term": term, "voted_for": voted_for}).encode())
                    self.term, self.voted_for = term, voted_for
                case SaveSnapshot(snapshot):
                    self._flush(appended)
                    appended = False
                    self._save_snapshot(snapshot)
                case TruncateLog(from_index):
                    self._truncate(from_index)
                case AppendLog(entries):
                    self._append(entries)
                    appended = appended or bool(entries)
        self._flush(appended)

    def close(self) -> None:
        self._log.close()

    # --- log ------------------------------------------------------------------------

    def _append(self, entries: tuple[Entry, ...]) -> None:
        if not entries:
            return
        if entries[0].index != self.last_index + 1:
            raise ValueError(f"append at {entries[0].index} after {self.last_index}")
        prev_term = self._entries[-1].term if self._entries else self.snapshot.last_term
        self._log.seek(0, os.SEEK_END)
        offset = self._log.tell()
        chunks = []
        for entry in entries:
            record = _encode_record(prev_term, entry)
            chunks.append(record)
            self._entries.append(entry)
            self._offsets.append(offset)
            offset += len(record)
            prev_term = entry.term
        self._log.write(b"".join(chunks))

    def _truncate(self, from_index: int) -> None:
        position = from_index - self.snapshot.last_index - 1
        if position < 0:
            raise ValueError(f"truncate at {from_index} inside the snapshot")
        if position >= len(self._entries):
            return
        self._log.flush()
        self._log.truncate(self._offsets[position])
        del self._entries[position:], self._offsets[position:]
        os.fsync(self._log.fileno())

    def _flush(self, appended: bool) -> None:
        if appended:
            self._log.flush()
            os.fsync(self._log.fileno())

    def _save_snapshot(self, snapshot: Snapshot) -> None:
        _write_snapshot_file(self.directory, snapshot)
        self.snapshot = snapshot
        keep = _entries_following(self._entries, snapshot)
        # Rewrite the log without the prefix the snapshot now covers (atomically, by rename).
        self._entries, self._offsets = [], []
        tmp = self.directory / (LOG_FILE + ".tmp")
        with open(tmp, "wb") as handle:
            prev_term, offset = snapshot.last_term, 0
            for entry in keep:
                record = _encode_record(prev_term, entry)
                handle.write(record)
                self._entries.append(entry)
                self._offsets.append(offset)
                offset += len(record)
                prev_term = entry.term
            handle.flush()
            os.fsync(handle.fileno())
        self._log.close()
        os.replace(tmp, self.directory / LOG_FILE)
        _fsync_directory(self.directory)
        self._log = open(self.directory / LOG_FILE, "a+b")  # noqa: SIM115
        for old in self.directory.glob("*" + SNAPSHOT_SUFFIX):
            if old.name != _snapshot_name(snapshot):
                old.unlink()

    def _recover_log(self) -> None:
        self._log.seek(0)
        data = self._log.read()
        offset, prev_index, prev_term = 0, self.snapshot.last_index, self.snapshot.last_term
        started = False
        while offset + _HEADER.size <= len(data):
            length, checksum = _HEADER.unpack_from(data, offset)
            end = offset + _HEADER.size + length
            if length > MAX_RECORD_BYTES or end > len(data):
                break
            payload = data[offset + _HEADER.size:end]
            if crc32c.crc32c(payload) != checksum or len(payload) < _PREV_TERM.size:
                break
            try:
                entry = decode_entry(payload[_PREV_TERM.size:])
            except CodecError:
                break
            (record_prev_term,) = _PREV_TERM.unpack_from(payload)
            if entry.index <= self.snapshot.last_index and not started:
                offset = end  # covered by the snapshot (compaction interrupted before rewrite)
                continue
            started = True
            if entry.index != prev_index + 1 or record_prev_term != prev_term:
                break  # does not continue the snapshot or the previous record
            self._entries.append(entry)
            self._offsets.append(offset)
            prev_index, prev_term = entry.index, entry.term
            offset = end
        if offset < len(data) or (self._offsets and self._offsets[0] > 0) or (
                not self._entries and data):
            self._rewrite_after_recovery(data)

    def _rewrite_after_recovery(self, data: bytes) -> None:
        """Drop the damaged tail (and any prefix the snapshot covers) from the file."""
        if not self._entries:
            self._log.truncate(0)
        else:
            start = self._offsets[0]
            last = len(self._entries) - 1
            (length, _) = _HEADER.unpack_from(data, self._offsets[last])
            end = self._offsets[last] + _HEADER.size + length
            if start == 0:
                self._log.truncate(end)
            else:
                kept = data[start:end]
                self._offsets = [o - start for o in self._offsets]
                tmp = self.directory / (LOG_FILE + ".tmp")
                with open(tmp, "wb") as handle:
                    handle.write(kept)
                    handle.flush()
                    os.fsync(handle.fileno())
                self._log.close()
                os.replace(tmp, self.directory / LOG_FILE)
                _fsync_directory(self.directory)
                self._log = open(self.directory / LOG_FILE, "a+b")  # noqa: SIM115
        self._log.flush()
        os.fsync(self._log.fileno())

    # --- term, vote and snapshot files ----------------------------------------------

    def _read_state(self) -> tuple[int, int | None]:
        try:
            state = json.loads((self.directory / STATE_FILE).read_text())
        except FileNotFoundError:
            return 0, None
        except ValueError as error:
            raise CorruptStore(f"{STATE_FILE}: {error}") from None
        return int(state["term"]), state["voted_for"]

    def _read_latest_snapshot(self) -> Snapshot:
        candidates = sorted(self.directory.glob("*" + SNAPSHOT_SUFFIX), reverse=True)
        for path in candidates:
            snapshot = _read_snapshot_file(path)
            if snapshot is not None:
                return snapshot
        raise CorruptStore(f"no readable snapshot in {self.directory}")


def _entries_following(entries: list[Entry], snapshot: Snapshot) -> list[Entry]:
    matches = any(e.index == snapshot.last_index and e.term == snapshot.last_term
                  for e in entries)
    return [e for e in entries if e.index > snapshot.last_index] if matches else []


def _encode_record(prev_term: int, entry: Entry) -> bytes:
    payload = _PREV_TERM.pack(prev_term) + encode_entry(entry)
    return _HEADER.pack(len(payload), crc32c.crc32c(payload)) + payload


def _snapshot_name(snapshot: Snapshot) -> str:
    return f"snapshot-{snapshot.last_index:020d}-{snapshot.last_term:020d}{SNAPSHOT_SUFFIX}"


def _write_snapshot_file(directory: Path, snapshot: Snapshot) -> None:
    payload = encode_snapshot(snapshot)
    header = SNAPSHOT_MAGIC + struct.pack(">I", crc32c.crc32c(payload))
    write_atomically(directory / _snapshot_name(snapshot), header + payload)


def _read_snapshot_file(path: Path) -> Snapshot | None:
    data = path.read_bytes()
    size = len(SNAPSHOT_MAGIC) + 4
    if len(data) < size or not data.startswith(SNAPSHOT_MAGIC):
        return None
    (checksum,) = struct.unpack_from(">I", data, len(SNAPSHOT_MAGIC))
    payload = data[size:]
    if crc32c.crc32c(payload) != checksum:
        return None
    try:
        return decode_snapshot(payload)
    except CodecError:
        return None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
