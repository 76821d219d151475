"""OffsetForLeaderEpoch (follower truncation), partition reassignment and leader
election (admin APIs that the active controller carries out)."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from .registry import api

OFFSET_FOR_LEADER_EPOCH, ELECT_LEADERS = 23, 43
ALTER_REASSIGNMENTS, LIST_REASSIGNMENTS = 45, 46
PREFERRED, UNCLEAN = 0, 1


@api(OFFSET_FOR_LEADER_EPOCH, "OffsetForLeaderEpoch", 2, 4)
async def handle_offset_for_leader_epoch(broker, ctx, request) -> dict:
    topics = []
    for topic in request.topics:
        partitions = []
        for item in topic.partitions:
            result = {"partition": item.partition, "error_code": ErrorCode.none,
                      "leader_epoch": -1, "end_offset": -1}
            partition, error = broker.lookup(topic.topic, item.partition)
            if partition is not None and item.current_leader_epoch >= 0:
                if item.current_leader_epoch < partition.leader_epoch:
                    error = ErrorCode.fenced_leader_epoch
                elif item.current_leader_epoch > partition.leader_epoch:
                    error = ErrorCode.unknown_leader_epoch
            if error != ErrorCode.none:
                result["error_code"] = error
            else:
                epoch, end = partition.epochs.end_offset_for(item.leader_epoch,
                                                             partition.log.log_end_offset)
                result.update(leader_epoch=epoch, end_offset=end)
            partitions.append(result)
        topics.append({"topic": topic.topic, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}


@api(ALTER_REASSIGNMENTS, "AlterPartitionReassignments", 0, 0)
async def handle_alter_reassignments(broker, ctx, request) -> dict:
    items = [{"topic": t.name, "partition": p.partition_index,
              "replicas": None if p.replicas is None else list(p.replicas)}
             for t in request.topics for p in t.partitions]
    answer = await broker.controller_call("alter_reassignments", {"partitions": items})
    by_topic: dict[str, list] = {}
    for res in answer["partitions"]:
        by_topic.setdefault(res["topic"], []).append({
            "partition_index": res["partition"], "error_code": res["error_code"],
            "error_message": res.get("error_message")})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "error_message": None,
            "responses": [{"name": name, "partitions": parts} for name, parts in by_topic.items()]}


@api(LIST_REASSIGNMENTS, "ListPartitionReassignments", 0, 0)
async def handle_list_reassignments(broker, ctx, request) -> dict:
    image = broker.metadata.image
    wanted = None if request.topics is None else {
        t.name: set(t.partition_indexes) for t in request.topics}
    topics = []
    for name, topic in image.topics.items():
        if wanted is not None and name not in wanted:
            continue
        parts = [{"partition_index": index, "replicas": state.replicas,
                  "adding_replicas": state.adding, "removing_replicas": state.removing}
                 for index, state in sorted(topic.partitions.items())
                 if state.reassigning and (wanted is None or index in wanted[name])]
        if parts:
            topics.append({"name": name, "partitions": parts})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "error_message": None,
            "topics": topics}


@api(ELECT_LEADERS, "ElectLeaders", 0, 2)
async def handle_elect_leaders(broker, ctx, request) -> dict:
    election = getattr(request, "election_type", PREFERRED)
    if request.topic_partitions is None:
        items = [{"topic": name, "partition": index}
                 for name, topic in broker.metadata.image.topics.items()
                 for index in topic.partitions]
    else:
        items = [{"topic": t.topic, "partition": p} for t in request.topic_partitions
                 for p in t.partitions]
    if election != PREFERRED:
        results = [{**i, "error_code": int(ErrorCode.invalid_request),
                    "error_message": "Brook supports preferred leader election only"}
                   for i in items]
    else:
        results = (await broker.controller_call("elect_leaders", {"partitions": items}))[
            "partitions"]
    by_topic: dict[str, list] = {}
    for res in results:
        by_topic.setdefault(res["topic"], []).append({
            "partition_id": res["partition"], "error_code": res["error_code"],
            "error_message": res.get("error_message")})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "replica_election_results": [
        {"topic": name, "partition_result": parts} for name, parts in by_topic.items()]}
