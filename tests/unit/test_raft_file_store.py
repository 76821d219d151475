"""The file store keeps what MemoryStore keeps, across reopenings, torn writes and crashes."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brook.broker.raft.entries import Entry, EntryKind, Snapshot
from brook.broker.raft.file_store import (
    LOG_FILE,
    CorruptStore,
    FileStore,
    _write_snapshot_file,
)
from brook.broker.raft.membership import Configuration
from brook.broker.raft.memory_store import MemoryStore
from brook.broker.raft.ready import AppendLog, SaveSnapshot, SaveTermAndVote, TruncateLog

VOTERS = Configuration.of_voters([1, 2, 3])


def entries(first: int, count: int, term: int) -> tuple[Entry, ...]:
    return tuple(Entry(term, i, EntryKind.COMMAND, b"e%d" % i) for i in range(first, first + count))


def random_operations(rng: random.Random, steps: int):
    """Operation batches of the shapes the core emits, against a MemoryStore model."""
    model = MemoryStore(VOTERS)
    term = 1
    for _ in range(steps):
        batch = []
        roll = rng.random()
        if roll < 0.15:
            term += 1
            batch.append(SaveTermAndVote(term, rng.choice((None, 1, 2))))
        elif roll < 0.3 and model.last_index > model.snapshot.last_index:
            cut = rng.randrange(model.snapshot.last_index + 1, model.last_index + 1)
            batch += [TruncateLog(cut), AppendLog(entries(cut, rng.randrange(1, 4), term))]
        elif roll < 0.4 and model.last_index > model.snapshot.last_index:
            index = rng.randrange(model.snapshot.last_index + 1, model.last_index + 1)
            held = next(e for e in model.entries if e.index == index)
            batch.append(SaveSnapshot(Snapshot(index, held.term, VOTERS, b"s%d" % index)))
        elif roll < 0.45:
            # A leader's snapshot that does not follow this log: install, then truncate.
            index = model.last_index + rng.randrange(0, 3)
            term += 1
            batch += [SaveTermAndVote(term, None),
                      SaveSnapshot(Snapshot(index, term, VOTERS, b"i%d" % index)),
                      TruncateLog(index + 1)]
        else:
            batch.append(AppendLog(entries(model.last_index + 1, rng.randrange(1, 5), term)))
        model.apply(batch)
        yield batch, model.load()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32))
def test_file_store_matches_the_memory_model_across_reopenings(seed):
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as directory:
        store = FileStore.open(Path(directory), VOTERS)
        for batch, expected in random_operations(rng, 25):
            store.apply(batch)
            assert store.load() == expected
            if rng.random() < 0.3:
                store.close()
                store = FileStore.open(Path(directory), Configuration.of_voters([9]))
                assert store.load() == expected
        store.close()


def test_bootstrap_configuration_is_written_once(tmp_path):
    store = FileStore.open(tmp_path, VOTERS)
    assert store.load().snapshot == Snapshot(0, 0, VOTERS)
    store.close()
    again = FileStore.open(tmp_path, Configuration.of_voters([7]))
    assert again.load().snapshot.configuration == VOTERS
    again.close()


def test_term_and_vote_survive_reopening(tmp_path):
    store = FileStore.open(tmp_path, VOTERS)
    store.apply([SaveTermAndVote(7, 3)])
    store.close()
    reopened = FileStore.open(tmp_path)
    assert (reopened.load().term, reopened.load().voted_for) == (7, 3)
    reopened.close()


@pytest.mark.parametrize("damage", ["cut", "flip", "garbage"])
def test_torn_or_damaged_tail_is_cut_back_to_the_last_whole_record(tmp_path, damage):
    store = FileStore.open(tmp_path, VOTERS)
    store.apply([AppendLog(entries(1, 5, 1))])
    store.close()
    path = tmp_path / LOG_FILE
    data = bytearray(path.read_bytes())
    if damage == "cut":
        data = data[:-3]
    elif damage == "flip":
        data[-2] ^= 0xFF
    else:
        data += b"\xff\xff\xff\xff\0\0\0\0torn"
    path.write_bytes(bytes(data))
    reopened = FileStore.open(tmp_path)
    expected = entries(1, 4 if damage != "garbage" else 5, 1)
    assert reopened.load().entries == expected
    reopened.apply([AppendLog(entries(len(expected) + 1, 2, 2))])
    reopened.close()
    assert [e.index for e in FileStore.open(tmp_path).load().entries] == \
        list(range(1, len(expected) + 3))


def test_crash_after_saving_an_installed_snapshot_drops_the_stale_tail(tmp_path):
    store = FileStore.open(tmp_path, VOTERS)
    store.apply([AppendLog(entries(1, 6, 1))])
    store.close()
    # The crash window: the leader's snapshot (index 4, term 2) is on disk, the log is not
    # yet truncated behind it; entries 5-6 follow (4, term 1), not the snapshot.
    _write_snapshot_file(tmp_path, Snapshot(4, 2, VOTERS, b"leader"))
    reopened = FileStore.open(tmp_path)
    assert reopened.load().snapshot.last_index == 4 and reopened.load().entries == ()
    reopened.close()


def test_crash_during_compaction_keeps_the_entries_that_follow_the_snapshot(tmp_path):
    store = FileStore.open(tmp_path, VOTERS)
    store.apply([AppendLog(entries(1, 6, 1))])
    store.close()
    _write_snapshot_file(tmp_path, Snapshot(4, 1, VOTERS, b"local"))  # log not yet rewritten
    reopened = FileStore.open(tmp_path)
    assert reopened.load().entries == entries(5, 2, 1)
    reopened.apply([AppendLog(entries(7, 1, 1))])
    reopened.close()
    assert FileStore.open(tmp_path).load().entries == entries(5, 3, 1)


def test_a_log_without_any_snapshot_is_refused(tmp_path):
    store = FileStore.open(tmp_path, VOTERS)
    store.apply([AppendLog(entries(1, 2, 1))])
    store.close()
    for snapshot in tmp_path.glob("*.checkpoint"):
        snapshot.unlink()
    with pytest.raises(CorruptStore):
        FileStore.open(tmp_path)
