"""Checkpoint files: atomic replacement and a format that refuses garbage."""

from __future__ import annotations

from brook.broker.storage.checkpoint import (
    decode_offset,
    encode_offset,
    read_offset,
    write_atomically,
    write_offset,
)


def test_offsets_round_trip(tmp_path):
    path = tmp_path / "recovery-point"
    assert read_offset(path) is None
    write_offset(path, 42)
    write_offset(path, 4242)
    assert read_offset(path) == 4242
    assert path.read_text() == "0\n4242\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recovery-point"]


def test_garbage_reads_as_no_checkpoint():
    assert decode_offset(encode_offset(7)) == 7
    for data in (b"", b"0\n", b"1\n5\n", b"0\nfive\n", b"0\n-3\n", b"0\n5", b"\xff\xfe"):
        assert decode_offset(data) is None


def test_a_leftover_temp_file_does_not_disturb_the_next_write(tmp_path):
    path = tmp_path / "x"
    (tmp_path / "x.tmp").write_bytes(b"half")
    write_atomically(path, b"whole")
    assert path.read_bytes() == b"whole"
    assert not (tmp_path / "x.tmp").exists()
