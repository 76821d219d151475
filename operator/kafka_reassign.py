"""Partition reassignment through the Kafka protocol (side effects).

librdkafka (and so confluent-kafka) has no AlterPartitionReassignments or
ListPartitionReassignments; this sends them as kafka-reassign-partitions.sh does,
encoded with kio (Kafka's own message definitions), to any broker of the cluster
(brokers forward them to the active controller).
"""

from __future__ import annotations

import io
import socket
import struct
from collections.abc import Mapping
from datetime import timedelta

from kio.index import load_response_schema
from kio.schema.alter_partition_reassignments.v0 import request as alter
from kio.schema.errors import ErrorCode
from kio.schema.list_partition_reassignments.v0 import request as listing
from kio.schema.request_header.v2 import RequestHeader
from kio.schema.types import BrokerId, TopicName
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i32

from brook.operator.kafka_admin import AdminError, reason_from_error_name


def _encode(entity) -> bytes:
    buffer = io.BytesIO()
    entity_writer(type(entity))(buffer, entity)
    return buffer.getvalue()


class ReassignmentClient:
    def __init__(self, bootstrap_servers: str, timeout: float = 15.0):
        self.bootstrap_servers = bootstrap_servers
        self.timeout = timeout
        self._correlation = 0

    def _connect(self) -> socket.socket:
        errors = []
        for server in self.bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                return socket.create_connection((host, int(port)), timeout=self.timeout)
            except OSError as exc:
                errors.append(f"{server}: {exc}")
        raise AdminError("ClusterUnreachable", "; ".join(errors), unreachable=True)

    def _call(self, entity):
        self._correlation += 1
        header = RequestHeader(request_api_key=entity.__api_key__,
                               request_api_version=entity.__version__,
                               correlation_id=i32(self._correlation), client_id="brook-operator")
        payload = _encode(header) + _encode(entity)
        try:
            with self._connect() as sock:
                sock.sendall(struct.pack(">i", len(payload)) + payload)
                size = struct.unpack(">i", self._recv(sock, 4))[0]
                data = self._recv(sock, size)
        except OSError as exc:
            raise AdminError("ClusterUnreachable", f"{self.bootstrap_servers}: {exc}", unreachable=True) \
                from exc
        response_cls = load_response_schema(entity.__api_key__, entity.__version__)
        response, _ = entity_reader(response_cls)(data, 4 + 1)  # correlation id, tagged fields
        return response

    @staticmethod
    def _recv(sock: socket.socket, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            out += chunk
        return bytes(out)

    def ongoing_all(self) -> dict[str, dict[int, tuple[int, ...]]]:
        """Every partition being reassigned -> its target replicas, by topic."""
        request = listing.ListPartitionReassignmentsRequest(
            timeout=timedelta(seconds=self.timeout), topics=None)
        response = self._call(request)
        if response.error_code != ErrorCode.none:
            raise AdminError(reason_from_error_name(response.error_code.name.upper()),
                             f"list reassignments: {response.error_message or response.error_code.name}")
        out: dict[str, dict[int, tuple[int, ...]]] = {}
        for t in response.topics:
            for p in t.partitions:
                out.setdefault(str(t.name), {})[int(p.partition_index)] = tuple(int(r) for r in p.replicas)
        return out

    def count_ongoing(self) -> int:
        """How many partitions are being reassigned, over all topics."""
        return sum(len(p) for p in self.ongoing_all().values())

    def ongoing(self, topic: str) -> dict[int, tuple[int, ...]]:
        """Partitions of `topic` being reassigned -> their target replicas."""
        return self.ongoing_all().get(topic, {})

    def reassign(self, topic: str, plan: Mapping[int, tuple[int, ...]]) -> None:
        request = alter.AlterPartitionReassignmentsRequest(
            timeout=timedelta(seconds=self.timeout),
            topics=(alter.ReassignableTopic(
                name=TopicName(topic),
                partitions=tuple(alter.ReassignablePartition(
                    partition_index=i32(p), replicas=tuple(BrokerId(r) for r in replicas))
                    for p, replicas in sorted(plan.items()))),),
        )
        response = self._call(request)
        if response.error_code != ErrorCode.none:
            raise AdminError(reason_from_error_name(response.error_code.name.upper()),
                             f"reassign topic {topic!r}: {response.error_message or response.error_code.name}")
        for t in response.responses:
            for p in t.partitions:
                if p.error_code != ErrorCode.none:
                    raise AdminError(
                        reason_from_error_name(p.error_code.name.upper()),
                        f"reassign {topic}-{p.partition_index}: {p.error_message or p.error_code.name}")
