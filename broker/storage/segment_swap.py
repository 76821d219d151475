"""Replacing a run of closed segments with one rewritten segment, atomically and crash-safe.

Used by the log cleaner (brook.broker.compaction). Kept apart from the log itself
so the segment life cycle stays in PartitionLog; this module only needs the log's
segment list and its `_retire` / `_reindex` steps.

Protocol, inside the partition directory:

1. The new segment (log + both indexes) and `swap.json` (which base offsets it
   replaces) are written and fsynced in `.cleaning-<base>/`. A crash now leaves a
   staging directory that recovery simply deletes: the old segments are intact.
2. Commit point: `.cleaning-<base>` is renamed to `.swap-<base>` and the partition
   directory fsynced.
3. The old segments' files are unlinked, the new files moved in (indexes first, the
   log last), the directory fsynced and `.swap-<base>` removed. Recovery redoes
   step 3 for every `.swap-*` it finds before the log is opened, so a crash at any
   point after the commit completes the swap.

Offsets never change, so readers holding file slices of the old segments keep
reading them (descriptors stay open for `file.delete.delay.ms`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from brook.broker.storage.checkpoint import fsync_directory
from brook.broker.storage.log import PartitionLog
from brook.broker.storage.log_manager import parse_partition_dir_name
from brook.broker.storage.segment import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    LogSegment,
    segment_file_name,
)

log = logging.getLogger(__name__)

STAGING_PREFIX = ".cleaning-"
SWAP_PREFIX = ".swap-"
MANIFEST = "swap.json"
# The log goes last: while it is still staged, recovery knows the move is unfinished.
MOVE_ORDER = (INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX)


class SwapAborted(Exception):
    """The log changed while the new segment was being written; nothing was swapped."""


def staging_dir(partition_dir: Path, base_offset: int) -> Path:
    return partition_dir / f"{STAGING_PREFIX}{base_offset:020d}"


def segments_of(log: PartitionLog) -> list[LogSegment]:
    """The log's segments in offset order, the active one last (a copy of the list)."""
    return list(log._segments)


def write_manifest(staging: Path, base_offset: int, replaced: list[int]) -> None:
    path = staging / MANIFEST
    with open(path, "wb") as handle:
        handle.write(json.dumps({"base_offset": base_offset, "replaces": replaced}).encode())
        handle.flush()
        os.fsync(handle.fileno())
    fsync_directory(staging)


def commit(staging: Path) -> Path:
    """Step 2: make the swap happen (or be completed by recovery). Returns the swap dir."""
    base = staging.name[len(STAGING_PREFIX):]
    swap = staging.with_name(f"{SWAP_PREFIX}{base}")
    os.rename(staging, swap)
    fsync_directory(staging.parent)
    return swap


def apply(swap: Path) -> int:
    """Step 3, idempotent: old files out, new files in, swap dir gone. Returns the base."""
    partition_dir = swap.parent
    manifest = json.loads((swap / MANIFEST).read_text())
    base = int(manifest["base_offset"])
    for replaced in manifest["replaces"]:
        for suffix in MOVE_ORDER:
            name = segment_file_name(int(replaced), suffix)
            if int(replaced) == base and not (swap / name).exists():
                continue  # already moved in: it is the new file now
            (partition_dir / name).unlink(missing_ok=True)
    for suffix in MOVE_ORDER:
        name = segment_file_name(base, suffix)
        if (swap / name).exists():
            os.rename(swap / name, partition_dir / name)
    fsync_directory(partition_dir)
    shutil.rmtree(swap)
    fsync_directory(partition_dir)
    return base


def recover_partition_dir(partition_dir: Path) -> None:
    """Before a log is opened: drop unfinished staging, finish committed swaps."""
    for entry in sorted(partition_dir.iterdir()):
        if not entry.is_dir():
            continue
        if entry.name.startswith(STAGING_PREFIX):
            log.info("%s: discarding an unfinished cleaning (%s)", partition_dir, entry.name)
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(SWAP_PREFIX):
            try:
                base = apply(entry)
                log.info("%s: completed the swap of cleaned segment %d", partition_dir, base)
            except (OSError, ValueError, KeyError):
                log.exception("%s: cannot complete swap %s", partition_dir, entry.name)


def recover_log_dirs(log_dirs: list[Path]) -> None:
    for log_dir in log_dirs:
        if not log_dir.is_dir():
            continue
        for entry in sorted(log_dir.iterdir()):
            if entry.is_dir() and parse_partition_dir_name(entry.name) is not None:
                recover_partition_dir(entry)


def swap_into_log(log: PartitionLog, old: list[LogSegment], staging: Path,
                  base_offset: int, now_ms: int | None = None) -> LogSegment:
    """Replace `old` (consecutive closed segments of `log`) by the staged segment.

    Runs on the thread that owns the log. Raises SwapAborted (and removes the
    staging directory) if `old` is no longer exactly a run of closed segments.
    """
    current = log._segments
    start = next((i for i, s in enumerate(current) if s is old[0]), None)
    if (log._closed or start is None or start + len(old) >= len(current)
            or any(current[start + i] is not s for i, s in enumerate(old))
            or old[0].base_offset != base_offset):
        shutil.rmtree(staging, ignore_errors=True)
        raise SwapAborted(f"{log.directory}: segments changed while cleaning")
    swap = commit(staging)
    now = log._clock() if now_ms is None else now_ms
    for segment in old:
        log._retire(segment, now)
    apply(swap)
    new, _ = LogSegment.load(log.directory, base_offset, log.config, now, recover=False)
    current[start:start + len(old)] = [new]
    log._reindex()
    return new
