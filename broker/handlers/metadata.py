"""Metadata: brokers, controller and topic/partition leadership, with auto-creation."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from ..topic_names import topic_name_problem
from .registry import api

METADATA = 3


def broker_entry(broker) -> dict:
    listener = broker.config.advertised_client_listener
    return {"node_id": broker.node_id, "host": listener.host, "port": listener.port,
            "rack": broker.config.get("broker.rack")}


def topic_entry(broker, info) -> dict:
    partitions = []
    for index in range(info.partitions):
        partition = broker.partition(info.name, index)
        epoch = partition.leader_epoch if partition else 0
        partitions.append({
            "error_code": ErrorCode.none, "partition_index": index, "leader_id": broker.node_id,
            "leader_epoch": epoch, "replica_nodes": (broker.node_id,),
            "isr_nodes": (broker.node_id,), "offline_replicas": (),
        })
    return {"error_code": ErrorCode.none, "name": info.name, "topic_id": info.topic_id,
            "is_internal": info.internal, "partitions": partitions}


def missing_topic(name, topic_id, error) -> dict:
    return {"error_code": error, "name": name, "topic_id": topic_id, "partitions": ()}


@api(METADATA, "Metadata", 0, 12)
async def handle_metadata(broker, ctx, request) -> dict:
    requested = request.topics
    if requested is None or (ctx.api_version == 0 and not requested):
        topics = [topic_entry(broker, info) for info in broker.registry.topics.values()]
    else:
        allow_auto = getattr(request, "allow_auto_topic_creation", True)
        topics = [_lookup(broker, item, allow_auto) for item in requested]
    return {
        "throttle_time": 0,
        "brokers": [broker_entry(broker)],
        "cluster_id": broker.cluster_id,
        "controller_id": broker.node_id,
        "topics": topics,
    }


def _lookup(broker, item, allow_auto: bool) -> dict:
    name = getattr(item, "name", None)
    topic_id = getattr(item, "topic_id", None)
    if name is None and topic_id is not None:
        name = broker.registry.name_for_id(topic_id)
        if name is None:
            return missing_topic(None, topic_id, ErrorCode.unknown_topic_id)
    info = broker.registry.get(name)
    if info is not None:
        return topic_entry(broker, info)
    if topic_name_problem(name):
        return missing_topic(name, None, ErrorCode.invalid_topic_exception)
    if allow_auto and broker.config.auto_create_topics:
        info = broker.create_topic(name, broker.config.num_partitions, {})
        return topic_entry(broker, info)
    return missing_topic(name, None, ErrorCode.unknown_topic_or_partition)
