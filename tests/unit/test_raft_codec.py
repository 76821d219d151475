"""The quorum's binary encoding round-trips and rejects damaged input with CodecError only."""

from hypothesis import given
from hypothesis import strategies as st

from brook.broker.raft.codec import (
    CodecError,
    decode_entry,
    decode_message,
    decode_snapshot,
    encode_entry,
    encode_message,
    encode_snapshot,
)
from brook.broker.raft.entries import Entry, EntryKind, Snapshot
from brook.broker.raft.membership import Configuration, Member
from brook.broker.raft.messages import (
    AppendRequest,
    AppendResponse,
    SnapshotRequest,
    SnapshotResponse,
    VoteRequest,
    VoteResponse,
)

ids = st.integers(0, 2**31 - 1)
u64 = st.integers(0, 2**64 - 1)
entries = st.builds(Entry, u64, u64, st.sampled_from(EntryKind), st.binary(max_size=50))
members = st.builds(Member, ids, st.text(max_size=20), st.booleans())
configurations = st.lists(members, max_size=5, unique_by=lambda m: m.node_id).map(
    lambda ms: Configuration(tuple(ms)))
messages = st.one_of(
    st.builds(VoteRequest, ids, ids, u64, u64, u64, st.booleans()),
    st.builds(VoteResponse, ids, ids, u64, st.booleans(), st.booleans()),
    st.builds(AppendRequest, ids, ids, u64, u64, u64,
              st.lists(entries, max_size=4).map(tuple), u64),
    st.builds(AppendResponse, ids, ids, u64, st.booleans(), u64, u64, u64, u64),
    st.builds(SnapshotRequest, ids, ids, u64, u64, u64, configurations, u64,
              st.binary(max_size=50), st.booleans()),
    st.builds(SnapshotResponse, ids, ids, u64, u64, u64, st.booleans()),
)


@given(messages)
def test_messages_round_trip(message):
    assert decode_message(encode_message(message)) == message


@given(entries)
def test_entries_round_trip(entry):
    assert decode_entry(encode_entry(entry)) == entry


@given(u64, u64, configurations, st.binary(max_size=100))
def test_snapshots_round_trip(index, term, configuration, data):
    snapshot = Snapshot(index, term, configuration, data)
    assert decode_snapshot(encode_snapshot(snapshot)) == snapshot


@given(messages, st.data())
def test_truncated_or_extended_messages_are_rejected(message, data):
    encoded = encode_message(message)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    for damaged in (encoded[:cut], encoded + b"\0"):
        try:
            decode_message(damaged)
        except CodecError:
            continue
        raise AssertionError(f"accepted {damaged!r}")


@given(st.binary(max_size=200))
def test_garbage_raises_codec_error_only(garbage):
    try:
        decode_message(garbage)
    except CodecError:
        pass


def test_unknown_version_is_refused():
    encoded = bytearray(encode_message(VoteResponse(1, 2, 3, True)))
    encoded[0] = 99
    try:
        decode_message(bytes(encoded))
    except CodecError as error:
        assert "version" in str(error)
    else:
        raise AssertionError("accepted a future format")
