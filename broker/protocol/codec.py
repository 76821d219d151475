"""Request headers, request bodies and response frames.

Pure. Bodies are decoded and encoded by kio (generated from Kafka's message
definitions); the request header is read by hand because the broker must learn the
API key and version before it knows which schema to use, and must answer an
ApiVersions request of a version it does not know.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from functools import cache

from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer

API_VERSIONS_KEY = 18

_HEADER = struct.Struct(">hhi")
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


class InvalidRequestError(ValueError):
    """The bytes are not a request Brook can decode; Kafka closes the connection."""


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body_offset: int


def read_uvarint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise InvalidRequestError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 28:
            raise InvalidRequestError("varint too long")


def parse_request_header(frame: bytes, flexible: bool) -> RequestHeader:
    """Header v1 (or v2 with tagged fields when the request version is flexible)."""
    if len(frame) < _HEADER.size + 2:
        raise InvalidRequestError(f"request of {len(frame)} bytes is shorter than a header")
    api_key, api_version, correlation_id = _HEADER.unpack_from(frame, 0)
    pos = _HEADER.size
    (length,) = _INT16.unpack_from(frame, pos)
    pos += 2
    client_id = None
    if length >= 0:
        if pos + length > len(frame):
            raise InvalidRequestError("client_id runs past the end of the request")
        client_id = frame[pos : pos + length].decode("utf-8", "replace")
        pos += length
    elif length != -1:
        raise InvalidRequestError(f"client_id has negative length {length}")
    if flexible:
        count, pos = read_uvarint(frame, pos)
        for _ in range(count):
            _tag, pos = read_uvarint(frame, pos)
            size, pos = read_uvarint(frame, pos)
            pos += size
            if pos > len(frame):
                raise InvalidRequestError("tagged field runs past the end of the header")
    return RequestHeader(api_key, api_version, correlation_id, client_id, pos)


def peek_api(frame: bytes) -> tuple[int, int, int]:
    """api_key, api_version, correlation_id: enough to route or refuse a request."""
    if len(frame) < _HEADER.size:
        raise InvalidRequestError(f"request of {len(frame)} bytes is shorter than a header")
    return _HEADER.unpack_from(frame, 0)


@cache
def request_class(api_key: int, version: int) -> type:
    return load_request_schema(api_key, version)


@cache
def response_class(api_key: int, version: int) -> type:
    return load_response_schema(api_key, version)


@cache
def _reader(cls: type):
    return entity_reader(cls)


@cache
def _writer(cls: type):
    return entity_writer(cls)


def decode_request(api_key: int, version: int, frame: bytes, offset: int) -> object:
    cls = request_class(api_key, version)
    try:
        entity, _size = _reader(cls)(frame, offset)
    except Exception as exc:  # kio raises several types on malformed input
        raise InvalidRequestError(f"malformed {cls.__name__} v{version}: {exc}") from exc
    return entity


def encode_entity(entity: object) -> bytes:
    buffer = io.BytesIO()
    _writer(type(entity))(buffer, entity)
    return buffer.getvalue()


def response_frame(api_key: int, version: int, correlation_id: int, body: bytes) -> bytes:
    """Size prefix + response header (v1 when flexible, but ApiVersions is always v0)."""
    flexible = api_key != API_VERSIONS_KEY and response_class(api_key, version).__flexible__
    header = _INT32.pack(correlation_id) + (b"\x00" if flexible else b"")
    return _INT32.pack(len(header) + len(body)) + header + body


def encode_response(api_key: int, version: int, correlation_id: int, entity: object) -> bytes:
    return response_frame(api_key, version, correlation_id, encode_entity(entity))
