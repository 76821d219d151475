"""The Raft core's in-memory view of its log: a snapshot base plus the entries after it."""

from __future__ import annotations

from collections.abc import Iterable

from .entries import Entry, Snapshot


class RaftLog:
    def __init__(self, snapshot: Snapshot, entries: Iterable[Entry] = ()) -> None:
        self.snapshot_index = snapshot.last_index
        self.snapshot_term = snapshot.last_term
        self._entries: list[Entry] = []
        self.append(entries)

    @property
    def last_index(self) -> int:
        return self._entries[-1].index if self._entries else self.snapshot_index

    @property
    def last_term(self) -> int:
        return self._entries[-1].term if self._entries else self.snapshot_term

    def term_at(self, index: int) -> int | None:
        """The entry's term, or None when the index is before the snapshot or past the end."""
        if index == self.snapshot_index:
            return self.snapshot_term
        entry = self.entry(index)
        return entry.term if entry else None

    def entry(self, index: int) -> Entry | None:
        offset = index - self.snapshot_index - 1
        if 0 <= offset < len(self._entries):
            return self._entries[offset]
        return None

    def entries(self, first: int, last: int, max_bytes: int | None = None) -> tuple[Entry, ...]:
        """Entries first..last inclusive (clipped to what is held); at least one if any."""
        start = max(first - self.snapshot_index - 1, 0)
        stop = max(last - self.snapshot_index, 0)
        chosen = self._entries[start:stop]
        if max_bytes is not None:
            size = 0
            for count, entry in enumerate(chosen):
                size += len(entry.data) + 32
                if size > max_bytes and count > 0:
                    return tuple(chosen[:count])
        return tuple(chosen)

    def first_index_of_term(self, index: int) -> int:
        """The first held index whose term equals the term at `index` (for conflict hints)."""
        term = self.term_at(index)
        while index - 1 > self.snapshot_index and self.term_at(index - 1) == term:
            index -= 1
        return index

    def last_index_of_term(self, term: int) -> int | None:
        """The last held index with this term, scanning back from the end."""
        for entry in reversed(self._entries):
            if entry.term == term:
                return entry.index
            if entry.term < term:
                return None
        return self.snapshot_index if self.snapshot_term == term and self.snapshot_index else None

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Whether a log ending at (last_index, last_term) is at least as current as ours (§5.4.1)."""
        return (last_term, last_index) >= (self.last_term, self.last_index)

    def append(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            if entry.index != self.last_index + 1:
                raise ValueError(f"entry {entry.index} does not follow {self.last_index}")
            if entry.term < self.last_term:
                raise ValueError(f"entry {entry.index} has term {entry.term} < {self.last_term}")
            self._entries.append(entry)

    def truncate_from(self, index: int) -> None:
        """Drop entries at `index` and after."""
        if index <= self.snapshot_index:
            raise ValueError(f"cannot truncate at {index}: snapshot covers {self.snapshot_index}")
        del self._entries[max(index - self.snapshot_index - 1, 0):]

    def compact(self, snapshot: Snapshot) -> None:
        """Replace the prefix up to the snapshot; keep later entries only if they follow it."""
        if snapshot.last_index <= self.snapshot_index:
            return
        keep_tail = self.term_at(snapshot.last_index) == snapshot.last_term
        tail = self._entries[snapshot.last_index - self.snapshot_index:] if keep_tail else []
        self.snapshot_index = snapshot.last_index
        self.snapshot_term = snapshot.last_term
        self._entries = tail
