"""Metadata: live brokers, the active controller and each partition's leader,
replicas and ISR, from the cluster metadata image; topic auto-creation."""

from __future__ import annotations

import uuid

from kio.schema.errors import ErrorCode

from ..topic_names import topic_name_problem
from .registry import api

METADATA = 3


def broker_entries(broker) -> list[dict]:
    return [{"node_id": b.broker_id, "host": b.host, "port": b.port, "rack": b.rack}
            for b in broker.metadata.image.live_brokers()]


def topic_entry(broker, topic) -> dict:
    image = broker.metadata.image
    partitions = []
    for index, state in sorted(topic.partitions.items()):
        offline = tuple(b for b in state.replicas if not image.is_live(b))
        partitions.append({
            "error_code": ErrorCode.none if state.leader >= 0 else ErrorCode.leader_not_available,
            "partition_index": index, "leader_id": state.leader,
            "leader_epoch": state.leader_epoch, "replica_nodes": state.replicas,
            "isr_nodes": state.isr, "offline_replicas": offline,
        })
    return {"error_code": ErrorCode.none, "name": topic.name,
            "topic_id": uuid.UUID(topic.topic_id), "is_internal": topic.internal,
            "partitions": partitions}


def missing_topic(name, topic_id, error) -> dict:
    return {"error_code": error, "name": name, "topic_id": topic_id, "partitions": ()}


@api(METADATA, "Metadata", 0, 12)
async def handle_metadata(broker, ctx, request) -> dict:
    requested = request.topics
    image = broker.metadata.image
    if requested is None or (ctx.api_version == 0 and not requested):
        topics = [topic_entry(broker, t) for t in image.topics.values()]
    else:
        allow_auto = getattr(request, "allow_auto_topic_creation", True)
        topics = [await _lookup(broker, item, allow_auto) for item in requested]
    return {
        "throttle_time": 0,
        "brokers": broker_entries(broker),
        "cluster_id": broker.cluster_id,
        "controller_id": broker.advertised_controller_id(),
        "topics": topics,
    }


async def _lookup(broker, item, allow_auto: bool) -> dict:
    name = getattr(item, "name", None)
    topic_id = getattr(item, "topic_id", None)
    image = broker.metadata.image
    if name is None and topic_id is not None:
        name = image.topic_names.get(str(topic_id))
        if name is None:
            return missing_topic(None, topic_id, ErrorCode.unknown_topic_id)
    topic = image.topics.get(name)
    if topic is not None:
        return topic_entry(broker, topic)
    if topic_name_problem(name):
        return missing_topic(name, None, ErrorCode.invalid_topic_exception)
    if allow_auto and broker.config.auto_create_topics:
        # As Kafka 4 does: ask the controller to create it and answer "unknown" now; the
        # client's next Metadata request (it retries) finds the topic with its leaders.
        broker.auto_create(name)
    return missing_topic(name, None, ErrorCode.unknown_topic_or_partition)


def broker_entry(broker) -> dict:
    """This broker as clients reach it."""
    listener = broker.config.advertised_client_listener
    return {"node_id": broker.node_id, "host": listener.host, "port": listener.port,
            "rack": broker.config.get("broker.rack")}
