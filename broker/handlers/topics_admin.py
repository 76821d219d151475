"""CreateTopics, DeleteTopics and CreatePartitions: forwarded to the active controller,
which validates them against the cluster metadata (broker/controller/topic_requests.py)
and answers with Kafka's error codes and messages."""

from __future__ import annotations

import uuid
from collections import Counter

from kio.schema.errors import ErrorCode

from ..topic_names import INTERNAL_TOPICS
from .configs import topic_config_entries
from .registry import api

CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 19, 20, 37


def _creatable_config(entry: dict) -> dict:
    return {k: entry[k] for k in ("name", "value", "read_only", "config_source", "is_sensitive")}


async def _wait_visible(broker, names, present: bool) -> None:
    """Answer once this broker's own metadata shows the change, as Kafka's brokers do."""
    await broker.wait_for_metadata(
        lambda image: all((n in image.topics) == present for n in names))


@api(CREATE_TOPICS, "CreateTopics", 2, 7)
async def handle_create_topics(broker, ctx, request) -> dict:
    counts = Counter(item.name for item in request.topics)
    unique = [item for item in request.topics if counts[item.name] == 1]
    answer = {"topics": []}
    if unique:
        answer = await broker.controller_call("create_topics", {
            "validate_only": bool(request.validate_only),
            "topics": [{
                "name": item.name, "num_partitions": item.num_partitions,
                "replication_factor": item.replication_factor,
                "assignments": [{"partition_index": a.partition_index,
                                 "broker_ids": list(a.broker_ids)}
                                for a in (item.assignments or ())],
                "configs": {c.name: c.value for c in (item.configs or ())},
            } for item in unique]})
    by_name = {result["name"]: result for result in answer["topics"]}
    created = [n for n, res in by_name.items() if res["error_code"] == 0]
    if created and not request.validate_only:
        await _wait_visible(broker, created, True)
    results = []
    for item in request.topics:
        result = {"name": item.name, "topic_id": None, "error_code": ErrorCode.none,
                  "error_message": None, "num_partitions": -1, "replication_factor": -1,
                  "configs": ()}
        if counts[item.name] > 1:
            result.update(error_code=ErrorCode.invalid_request,
                          error_message=f"Create topics request from client `{ctx.client_id}` "
                          f"contains multiple entries for the topic {item.name}")
        else:
            res = by_name[item.name]
            if res["error_code"]:
                result.update(error_code=res["error_code"], error_message=res.get("error_message"))
            else:
                result.update(
                    topic_id=None if request.validate_only else uuid.UUID(res["topic_id"]),
                    num_partitions=res["num_partitions"],
                    replication_factor=res["replication_factor"],
                    configs=[_creatable_config(e)
                             for e in topic_config_entries(broker, res["configs"], False)])
        results.append(result)
    return {"throttle_time": 0, "topics": results}


@api(DELETE_TOPICS, "DeleteTopics", 1, 6)
async def handle_delete_topics(broker, ctx, request) -> dict:
    image = broker.metadata.image
    if ctx.api_version >= 6:
        wanted = [(t.name, t.topic_id) for t in request.topics]
    else:
        wanted = [(name, None) for name in request.topic_names]
    results, names = [], []
    for name, topic_id in wanted:
        result = {"name": name, "topic_id": topic_id, "error_code": ErrorCode.none,
                  "error_message": None}
        if name is None and topic_id is not None:
            name = image.topic_names.get(str(topic_id))
            if name is None:
                result["error_code"] = ErrorCode.unknown_topic_id
                results.append(result)
                continue
            result["name"] = name
        if not broker.config.get("delete.topic.enable"):
            result.update(error_code=ErrorCode.topic_deletion_disabled,
                          error_message="Topic deletion is disabled (delete.topic.enable=false)")
        elif name in INTERNAL_TOPICS:
            result.update(error_code=ErrorCode.invalid_request,
                          error_message=f"Internal topic {name} cannot be deleted")
        else:
            names.append(name)
        results.append(result)
    answer = await broker.controller_call("delete_topics", {"names": names}) if names \
        else {"topics": []}
    by_name = {res["name"]: res for res in answer["topics"]}
    for result in results:
        res = by_name.get(result["name"])
        if res is None:
            continue
        if res["error_code"]:
            result.update(error_code=res["error_code"], error_message=res.get("error_message"))
        else:
            result["topic_id"] = uuid.UUID(res["topic_id"])
    gone = [n for n, res in by_name.items() if res["error_code"] == 0]
    if gone:
        await _wait_visible(broker, gone, False)
    return {"throttle_time": 0, "responses": results}


@api(CREATE_PARTITIONS, "CreatePartitions", 0, 3)
async def handle_create_partitions(broker, ctx, request) -> dict:
    counts = Counter(t.name for t in request.topics)
    unique = [t for t in request.topics if counts[t.name] == 1]
    answer = {"topics": []}
    if unique:
        answer = await broker.controller_call("create_partitions", {
            "validate_only": bool(request.validate_only),
            "topics": [{"name": t.name, "count": t.count,
                        "assignments": [list(a.broker_ids) for a in (t.assignments or ())]}
                       for t in unique]})
    by_name = {res["name"]: res for res in answer["topics"]}
    grown = {t.name: t.count for t in unique if by_name[t.name]["error_code"] == 0}
    if grown and not request.validate_only:
        await broker.wait_for_metadata(lambda image: all(
            len(image.topics[n].partitions) >= c for n, c in grown.items() if n in image.topics))
    results = []
    for item in request.topics:
        result = {"name": item.name, "error_code": ErrorCode.none, "error_message": None}
        if counts[item.name] > 1:
            result.update(error_code=ErrorCode.invalid_request,
                          error_message=f"Duplicate topic {item.name} in the request")
        else:
            res = by_name[item.name]
            result.update(error_code=res["error_code"], error_message=res.get("error_message"))
        results.append(result)
    return {"throttle_time": 0, "results": results}
