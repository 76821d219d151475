"""The leader-epoch cache of a partition: the first offset written in each epoch.

OffsetForLeaderEpoch answers from it, and a follower uses the answer to cut the
divergent tail it may have written under an old leader. Kept in the partition
directory in Kafka's `leader-epoch-checkpoint` text format, rewritten atomically.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path

from .checkpoint import write_atomically

CHECKPOINT_FILE = "leader-epoch-checkpoint"
UNDEFINED = -1


class LeaderEpochCache:
    def __init__(self, directory: Path | None = None) -> None:
        self.path = directory / CHECKPOINT_FILE if directory is not None else None
        self.entries: list[tuple[int, int]] = []  # (epoch, start offset), both increasing
        if self.path is not None and self.path.exists():
            self.entries = _parse(self.path.read_text())

    @property
    def latest_epoch(self) -> int:
        return self.entries[-1][0] if self.entries else UNDEFINED

    def assign(self, epoch: int, start_offset: int) -> bool:
        """Record that `epoch` starts at `start_offset` (no-op for a known epoch)."""
        if epoch < 0 or (self.entries and epoch <= self.entries[-1][0]):
            return False
        # a start at or before an existing one means those entries were truncated away
        self.entries = [(e, o) for e, o in self.entries if o < start_offset]
        self.entries.append((epoch, start_offset))
        self._save()
        return True

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(largest epoch <= requested, the offset where the next epoch starts or the LEO).
        An epoch older than every known one gets (itself, the first known start), as in
        Kafka: the asker keeps what precedes this log's first epoch instead of falling
        back to its high watermark."""
        if epoch < 0 or not self.entries:
            return UNDEFINED, UNDEFINED
        if epoch >= self.entries[-1][0]:
            return self.entries[-1][0], log_end_offset
        position = bisect_right([e for e, _ in self.entries], epoch)
        if position == 0:
            return epoch, self.entries[0][1]
        floor_epoch = self.entries[position - 1][0]
        return floor_epoch, self.entries[position][1]

    def epoch_for_offset(self, offset: int) -> int:
        epoch = UNDEFINED
        for e, start in self.entries:
            if start <= offset:
                epoch = e
        return epoch

    def truncate_from_end(self, end_offset: int) -> None:
        """The log was cut at `end_offset`: forget epochs that start at or after it."""
        kept = [(e, o) for e, o in self.entries if o < end_offset]
        if kept != self.entries:
            self.entries = kept
            self._save()

    def clear_and_flush(self) -> None:
        self.entries = []
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        lines = ["0", str(len(self.entries))] + [f"{e} {o}" for e, o in self.entries]
        write_atomically(self.path, ("\n".join(lines) + "\n").encode())


def _parse(text: str) -> list[tuple[int, int]]:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or lines[0].strip() != "0":
        return []
    entries = []
    for line in lines[2:]:
        epoch, offset = line.split()
        entries.append((int(epoch), int(offset)))
    return entries
