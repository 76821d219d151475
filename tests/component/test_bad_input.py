"""Input that is not valid Kafka gets Kafka's answer (an error code or a closed
connection) and never affects the broker or other connections."""

import struct
from datetime import timedelta

import pytest
from kio.schema.api_versions.v3 import ApiVersionsRequest
from kio.schema.create_topics.v7.request import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v12 import MetadataRequest
from kio.schema.metadata.v12.request import MetadataRequestTopic

from tests.support.kafka_wire import WireClient


def _still_serves(bootstrap):
    with WireClient(bootstrap) as client:
        response = client.request(ApiVersionsRequest(client_software_name="t",
                                                     client_software_version="1"))
        assert response.error_code == ErrorCode.none


@pytest.mark.parametrize("payload", [
    struct.pack(">i", -1),
    struct.pack(">i", 2**31 - 1),          # oversized: > socket.request.max.bytes
    struct.pack(">i", 3) + b"abc",         # shorter than a request header
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # not Kafka at all
])
def test_garbage_frames_close_only_that_connection(broker, payload):
    with WireClient(broker.bootstrap) as bystander, WireClient(broker.bootstrap) as client:
        client.send_raw(payload)
        assert client.closed_by_peer()
        # a connection opened before the garbage keeps working
        response = bystander.request(ApiVersionsRequest(client_software_name="t",
                                                        client_software_version="1"))
        assert response.error_code == ErrorCode.none
    _still_serves(broker.bootstrap)


def test_unknown_api_key_closes_the_connection(broker):
    with WireClient(broker.bootstrap) as client:
        client.send_frame(struct.pack(">hhih", 999, 0, 1, -1))
        assert client.closed_by_peer()
    _still_serves(broker.bootstrap)


def test_unsupported_version_of_a_known_api_closes_the_connection(broker):
    with WireClient(broker.bootstrap) as bystander, WireClient(broker.bootstrap) as client:
        client.send_frame(struct.pack(">hhih", 0, 2, 1, -1))  # Produce v2 is below Kafka 4's floor
        assert client.closed_by_peer()
        response = bystander.request(ApiVersionsRequest(client_software_name="t",
                                                        client_software_version="1"))
        assert response.error_code == ErrorCode.none
    _still_serves(broker.bootstrap)


def test_too_new_api_versions_gets_v0_answer_with_unsupported_version(broker):
    with WireClient(broker.bootstrap) as client:
        client.send_frame(struct.pack(">hhih", 18, 99, 7, -1) + b"\x00")
        payload = client.read_frame()
        correlation, error, count = struct.unpack_from(">ihi", payload, 0)
        assert correlation == 7
        assert error == ErrorCode.unsupported_version
        assert count > 10  # the list of APIs the client may use instead


def test_truncated_request_body_closes_the_connection(broker):
    with WireClient(broker.bootstrap) as client:
        client.send_frame(struct.pack(">hhih", 3, 12, 1, -1) + b"\x00\x05")
        assert client.closed_by_peer()
    _still_serves(broker.bootstrap)


def test_invalid_topic_names_are_refused(broker):
    bad = ["", ".", "..", "with space", "x" * 250, "ümlaut"]
    with WireClient(broker.bootstrap) as client:
        response = client.request(CreateTopicsRequest(
            topics=tuple(CreatableTopic(name=n, num_partitions=1, replication_factor=1,
                                        assignments=(), configs=()) for n in bad),
            timeout=timedelta(seconds=5), validate_only=False))
        for result in response.topics:
            assert result.error_code == ErrorCode.invalid_topic_exception, result
        meta = client.request(MetadataRequest(
            topics=(MetadataRequestTopic(topic_id=None, name="bad name!"),),
            allow_auto_topic_creation=True, include_topic_authorized_operations=False))
        assert meta.topics[0].error_code == ErrorCode.invalid_topic_exception


def test_invalid_topic_config_is_refused_and_nothing_is_created(broker, topic_name):
    with WireClient(broker.bootstrap) as client:
        response = client.request(CreateTopicsRequest(
            topics=(CreatableTopic(name=topic_name, num_partitions=1, replication_factor=1,
                                   assignments=(), configs=(
                                       CreatableTopicConfig(name="retention.ms", value="soon"),)),),
            timeout=timedelta(seconds=5), validate_only=False))
        assert response.topics[0].error_code == ErrorCode.invalid_config
        assert "retention.ms" in response.topics[0].error_message
        meta = client.request(MetadataRequest(
            topics=(MetadataRequestTopic(topic_id=None, name=topic_name),),
            allow_auto_topic_creation=False, include_topic_authorized_operations=False))
        assert meta.topics[0].error_code == ErrorCode.unknown_topic_or_partition
