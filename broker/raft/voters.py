"""Kafka's `controller.quorum.voters` syntax: `1@host1:9093,2@host2:9093,3@[::1]:9093`."""

from __future__ import annotations

from dataclasses import dataclass

from .membership import Configuration, Member


@dataclass(frozen=True, slots=True)
class VoterEndpoint:
    node_id: int
    host: str
    port: int

    @property
    def address(self) -> str:
        """`host:port`, bracketing IPv6 literals as gRPC targets expect."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_quorum_voters(text: str) -> tuple[VoterEndpoint, ...]:
    """Parse the property; an empty value means "no static voters" (dynamic quorum)."""
    endpoints: list[VoterEndpoint] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            if text.strip():
                raise ValueError(f"empty entry in controller.quorum.voters {text!r}")
            continue
        endpoints.append(_parse_one(item))
    ids = [endpoint.node_id for endpoint in endpoints]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"controller.quorum.voters names node ids more than once: {duplicates}")
    return tuple(endpoints)


def configuration_from_voters(endpoints: tuple[VoterEndpoint, ...]) -> Configuration:
    return Configuration(tuple(Member(e.node_id, e.address) for e in endpoints))


def _parse_one(item: str) -> VoterEndpoint:
    node_text, at, host_port = item.partition("@")
    if not at:
        raise ValueError(f"voter {item!r} is not of the form id@host:port")
    try:
        node_id = int(node_text)
    except ValueError:
        raise ValueError(f"voter {item!r}: node id {node_text!r} is not an integer") from None
    if node_id < 0:
        raise ValueError(f"voter {item!r}: node id must not be negative")
    if host_port.startswith("["):
        host, bracket, rest = host_port[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"voter {item!r}: malformed IPv6 address")
        port_text = rest[1:]
    else:
        host, colon, port_text = host_port.rpartition(":")
        if not colon or ":" in host:
            raise ValueError(f"voter {item!r} is not of the form id@host:port")
    if not host:
        raise ValueError(f"voter {item!r}: missing host")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"voter {item!r}: port {port_text!r} is not in 1..65535")
    return VoterEndpoint(node_id, host, int(port_text))
