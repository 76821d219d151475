"""DescribeCluster: the cluster id, the controller and the live brokers."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from .registry import api

DESCRIBE_CLUSTER = 60
BROKERS_ENDPOINT = 1


@api(DESCRIBE_CLUSTER, "DescribeCluster", 0, 1)
async def handle_describe_cluster(broker, ctx, request) -> dict:
    if getattr(request, "endpoint_type", BROKERS_ENDPOINT) != BROKERS_ENDPOINT:
        return {"throttle_time": 0, "error_code": ErrorCode.unsupported_endpoint_type,
                "error_message": "Brook serves the brokers endpoint type only",
                "cluster_id": broker.cluster_id, "brokers": ()}
    return {
        "throttle_time": 0,
        "error_code": ErrorCode.none,
        "endpoint_type": BROKERS_ENDPOINT,
        "cluster_id": broker.cluster_id,
        "controller_id": broker.advertised_controller_id(),
        "brokers": [{"broker_id": b.broker_id, "host": b.host, "port": b.port, "rack": b.rack}
                    for b in broker.metadata.image.live_brokers()],
    }
