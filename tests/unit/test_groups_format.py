"""__consumer_offsets placement and record formats (pure)."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brook.broker.groups.log_format import (
    FormatError,
    GroupKey,
    GroupValue,
    MemberValue,
    OffsetKey,
    OffsetValue,
    decode_group_value,
    decode_key,
    decode_offset_value,
    encode_group_key,
    encode_group_value,
    encode_offset_key,
    encode_offset_value,
)
from brook.broker.groups.placement import java_string_hash, kafka_abs, partition_for
from brook.broker.groups.subscription import subscribed_topics


@pytest.mark.parametrize("text, expected", [
    ("", 0), ("hello", 99162322), ("a", 97),
    ("polygenelubricants", -(2**31)),  # Java's famous Integer.MIN_VALUE hash
    ("\U0001F600", 55357 * 31 + 56832),  # surrogate pair: two UTF-16 units
])
def test_java_string_hash(text, expected):
    assert java_string_hash(text) == expected


def test_partition_uses_kafka_abs():
    assert kafka_abs(-(2**31)) == 0
    assert partition_for("polygenelubricants", 50) == 0
    assert partition_for("hello", 50) == 99162322 % 50
    assert 0 <= partition_for("some-group", 7) < 7


def test_offset_records_round_trip():
    key = OffsetKey("g", "orders", 3)
    assert decode_key(encode_offset_key(key)) == key
    value = OffsetValue(42, "meta", 1700000000000, leader_epoch=5)
    assert decode_offset_value(encode_offset_value(value)) == value
    expiring = OffsetValue(7, "", 1000, expire_timestamp=5000)
    data = encode_offset_value(expiring)
    assert struct.unpack_from(">h", data)[0] == 1  # v1 carries the expire timestamp
    assert decode_offset_value(data) == OffsetValue(7, "", 1000, -1, 5000)


def test_offset_value_v4_flexible_is_read():
    # version 4: offset, leader epoch, compact string, commit timestamp, tagged fields
    data = (struct.pack(">hqi", 4, 9, 2) + bytes([len(b"md") + 1]) + b"md"
            + struct.pack(">q", 123) + b"\x00")
    assert decode_offset_value(data) == OffsetValue(9, "md", 123, 2, -1)


def test_group_records_round_trip_all_versions():
    members = (MemberValue("m-1", "i-1", "client", "/127.0.0.1", 300000, 10000, b"sub", b"asg"),)
    value = GroupValue("consumer", 3, "range", "m-1", 1234, members)
    assert decode_key(encode_group_key(GroupKey("g"))) == GroupKey("g")
    assert decode_group_value(encode_group_value(value)) == value
    assert decode_group_value(encode_group_value(value, version=4)) == value
    v0 = decode_group_value(encode_group_value(value, version=0))
    assert v0.members[0].group_instance_id is None and v0.current_state_timestamp == -1
    assert v0.members[0].rebalance_timeout == 10000  # v0: the session timeout


def test_unknown_key_versions_are_skipped_and_garbage_rejected():
    assert decode_key(struct.pack(">h", 5) + b"whatever") is None
    with pytest.raises(FormatError):
        decode_key(struct.pack(">h", 1) + b"\x00")
    with pytest.raises(FormatError):
        decode_offset_value(struct.pack(">h", 9))


@given(st.text(max_size=30), st.text(max_size=30), st.integers(0, 2**31 - 1),
       st.integers(-1, 2**62), st.text(max_size=50))
def test_offset_round_trip_property(group, topic, partition, offset, metadata):
    key = OffsetKey(group, topic, partition)
    assert decode_key(encode_offset_key(key)) == key
    value = OffsetValue(offset, metadata, 1, 0)
    assert decode_offset_value(encode_offset_value(value)) == value


def test_subscription_topics():
    def subscription(topics, version=1):
        out = struct.pack(">hi", version, len(topics))
        for t in topics:
            out += struct.pack(">h", len(t)) + t.encode()
        return out + struct.pack(">i", -1) + struct.pack(">i", 0)  # user data, owned partitions

    assert subscribed_topics(subscription(["a", "b"])) == {"a", "b"}
    assert subscribed_topics(b"\x00") is None
    assert subscribed_topics(struct.pack(">hi", 0, 5)) is None
