"""Which `__consumer_offsets` partition (and so which coordinator) owns a group (pure).

Kafka: `Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions`, with Java's
String.hashCode over UTF-16 code units and Kafka's abs (Integer.MIN_VALUE -> 0).
Using the same function keeps a group on the same partition as in Apache Kafka.
"""

from __future__ import annotations

OFFSETS_TOPIC = "__consumer_offsets"

_INT_MIN = -(2**31)


def java_string_hash(text: str) -> int:
    """java.lang.String#hashCode: s[0]*31^(n-1) + ... + s[n-1], as a signed int32."""
    h = 0
    for unit in _utf16_units(text):
        h = (31 * h + unit) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def _utf16_units(text: str):
    for char in text:
        code = ord(char)
        if code >= 0x10000:
            code -= 0x10000
            yield 0xD800 + (code >> 10)
            yield 0xDC00 + (code & 0x3FF)
        else:
            yield code


def kafka_abs(n: int) -> int:
    """org.apache.kafka.common.utils.Utils.abs."""
    return 0 if n == _INT_MIN else abs(n)


def partition_for(group_id: str, partitions: int) -> int:
    return kafka_abs(java_string_hash(group_id)) % partitions
