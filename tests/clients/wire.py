"""Line format between the Python drivers and the Node/Java helper processes.

One request = one JSON line (``{"op": ..., ...}``), followed for ``produce`` by
``count`` record lines. One response = zero or more data lines, then one status line
``#{"ok": true, ...}`` or ``#{"ok": false, "error": {"name", "code", "message"}}``.
Data lines never start with ``#``.

Record line (tab-separated; bytes as standard base64, ``~`` for null, empty for b""):
    produce in:    partition  timestamp_ms  key  value  headers
    consume out:   partition  offset  timestamp_ms  key  value  headers
    produce out:   partition  offset                (one per input record, same order)
partition/timestamp are decimal or empty (= not set). headers: comma-separated
``b64(name utf-8):b64(value)`` pairs (value ``~`` for a null header value).
"""

from __future__ import annotations

import base64

NULL = "~"


def b64(data: bytes | None) -> str:
    if data is None:
        return NULL
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes | None:
    if text == NULL:
        return None
    return base64.b64decode(text)


def encode_headers(headers) -> str:
    return ",".join(f"{b64(name.encode())}:{b64(value)}" for name, value in (headers or ()))


def decode_headers(text: str) -> list[tuple[str, bytes | None]]:
    if not text:
        return []
    out = []
    for item in text.split(","):
        name, _, value = item.partition(":")
        out.append((unb64(name).decode(), unb64(value)))
    return out


def encode_produce_record(rec: dict) -> str:
    p = rec.get("partition")
    ts = rec.get("timestamp_ms")
    return "\t".join((
        "" if p is None else str(p),
        "" if ts is None else str(ts),
        b64(rec.get("key")),
        b64(rec.get("value")),
        encode_headers(rec.get("headers")),
    ))


def decode_consumed_record(line: str) -> dict:
    p, off, ts, key, value, headers = line.split("\t")
    return {
        "partition": int(p),
        "offset": int(off),
        "timestamp_ms": int(ts) if ts else None,
        "key": unb64(key),
        "value": unb64(value),
        "headers": decode_headers(headers),
    }


def decode_ack(line: str) -> tuple[int, int]:
    p, off = line.split("\t")
    return int(p), int(off)
