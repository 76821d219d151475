"""What a consumer-protocol member subscribes to (pure).

Members of groups with protocol type "consumer" send a ConsumerProtocolSubscription
as their protocol metadata: int16 version, then the subscribed topic names (later
versions add user data, owned partitions, generation and rack, which the broker
does not need). The coordinator reads the topics to decide which committed offsets
are still in use (offset expiry, OffsetDelete) - nothing else depends on them, so a
subscription that does not parse is reported as unknown rather than rejected.
"""

from __future__ import annotations

import struct

CONSUMER_PROTOCOL_TYPE = "consumer"

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


def subscribed_topics(metadata: bytes) -> frozenset[str] | None:
    """The topics in a ConsumerProtocolSubscription, or None if it does not parse."""
    try:
        (version,) = _I16.unpack_from(metadata, 0)
        if version < 0:
            return None
        (count,) = _I32.unpack_from(metadata, 2)
        if count < 0 or count > len(metadata):
            return None
        pos = 6
        topics = set()
        for _ in range(count):
            (length,) = _I16.unpack_from(metadata, pos)
            pos += 2
            if length < 0 or pos + length > len(metadata):
                return None
            topics.add(metadata[pos:pos + length].decode())
            pos += length
        return frozenset(topics)
    except (struct.error, UnicodeDecodeError):
        return None
