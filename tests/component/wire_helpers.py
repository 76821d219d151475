"""Request builders shared by the wire-level component tests."""

import time
from datetime import timedelta

from kio.schema.create_topics.v7.request import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from kio.schema.list_offsets.v8.request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from brook.broker.protocol.codec import request_class
from brook.broker.protocol.entities import build
from brook.broker.records import Record, encode_batch


def create_topic(client, name, partitions=1, **configs):
    response = client.request(CreateTopicsRequest(
        topics=(CreatableTopic(name=name, num_partitions=partitions, replication_factor=1,
                               assignments=(), configs=tuple(
                                   CreatableTopicConfig(name=k.replace("_", "."), value=str(v))
                                   for k, v in configs.items())),),
        timeout=timedelta(seconds=5), validate_only=False))
    return response.topics[0]


def batch(values, producer_id=-1, epoch=-1, sequence=-1, key=b"k", compression=0):
    now = int(time.time() * 1000)
    return encode_batch([Record(i, now, key, v, []) for i, v in enumerate(values)],
                        producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence,
                        compression=compression)


def produce(client, topic, data, partition=0, acks=-1):
    response = client.request(ProduceRequest(
        transactional_id=None, acks=acks, timeout=timedelta(seconds=5),
        topic_data=(TopicProduceData(name=topic, partition_data=(
            PartitionProduceData(index=partition, records=data),)),)))
    return None if response is None else response.responses[0].partition_responses[0]


def fetch(client, topic, offset, partition=0, max_wait=0, min_bytes=1, max_bytes=50_000_000,
          partition_max_bytes=1_048_576, isolation_level=0, version=12):
    """Fetch `version` for one partition (fields a version lacks are left out)."""
    response = client.request(build(request_class(1, version), {
        "replica_id": -1, "max_wait": timedelta(milliseconds=max_wait), "min_bytes": min_bytes,
        "max_bytes": max_bytes, "isolation_level": isolation_level, "session_id": 0,
        "session_epoch": -1, "topics": [{"topic": topic, "partitions": [{
            "partition": partition, "fetch_offset": offset,
            "partition_max_bytes": partition_max_bytes, "current_leader_epoch": -1,
            "last_fetched_epoch": -1, "log_start_offset": -1}]}],
        "forgotten_topics_data": [], "rack_id": ""}))
    return response.responses[0].partitions[0]


def list_offsets(client, topic, timestamp, partition=0, isolation_level=0):
    """ListOffsets v8 for one partition: (error_code, offset, timestamp)."""
    response = client.request(ListOffsetsRequest(
        replica_id=-1, isolation_level=isolation_level,
        topics=(ListOffsetsTopic(name=topic, partitions=(ListOffsetsPartition(
            partition_index=partition, timestamp=timestamp),)),)))
    result = response.topics[0].partitions[0]
    return result.error_code, result.offset, result.timestamp
