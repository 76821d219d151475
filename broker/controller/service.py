"""The active controller: the one place cluster metadata changes.

Every node constructs one; it serves only while its node leads the metadata quorum.
Operations run one at a time under a lock, each deciding against the committed image
and returning once its records are committed and applied, so the next decision sees
them. Requests and results are plain dicts, so a local call and a forwarded RPC share
this code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from kio.schema.errors import ErrorCode

from ..metadata import records as r
from ..metadata.decisions import (
    AlterPartitionRequest,
    alter_partition,
    on_broker_fenced,
    on_broker_unfenced,
    preferred_leader_change,
    start_reassignment,
)
from ..metadata.image import BROKER_RESOURCE, MetadataImage
from ..replication.throttle import InvalidThrottle, validate_dynamic_broker_config
from .topic_requests import (
    RequestError,
    plan_config_change,
    plan_create_partitions,
    plan_create_topic,
)

log = logging.getLogger("brook.controller")

PRODUCER_ID_BLOCK = 1000


class NotController(Exception):
    """This node does not lead the quorum; `leader_id` is the one that does, if known."""

    def __init__(self, leader_id: int | None) -> None:
        super().__init__(f"not the active controller (leader: {leader_id})")
        self.leader_id = leader_id


def _err(error: ErrorCode, message: str | None = None) -> dict:
    return {"error_code": int(error), "error_message": message}


class Controller:
    def __init__(self, node_id: int, image: Callable[[], MetadataImage],
                 commit: Callable[[list], Awaitable[None]], is_leader: Callable[[], bool],
                 leader_id: Callable[[], int | None], config,
                 clock: Callable[[], float] = time.monotonic,
                 on_registered: Callable[[int, str], Awaitable[None]] | None = None,
                 quorum=None, leader_epoch: Callable[[], int] = lambda: 0) -> None:
        self.node_id = node_id
        self._image = image
        self._commit_records = commit
        self._is_leader = is_leader
        self._leader_id = leader_id
        self.config = config
        self.clock = clock
        self._lock = asyncio.Lock()
        self._heartbeats: dict[int, float] = {}
        self._shutting_down: set[int] = set()
        self.session_timeout_s = config.get_int("broker.session.timeout.ms") / 1000
        self._leader_epoch = leader_epoch
        self._term: int | None = None  # the quorum epoch whose sessions _heartbeats tracks
        self._on_registered = on_registered
        self._quorum = quorum  # the metadata quorum, for voter changes

    @property
    def image(self) -> MetadataImage:
        return self._image()

    def _unclean(self, topic: str) -> bool:
        value = self.image.topic_configs(topic).get(
            "unclean.leader.election.enable", self.config.get("unclean.leader.election.enable"))
        return str(value).lower() == "true"

    async def _commit(self, records: list) -> None:
        if records:
            await self._commit_records(records)

    async def call(self, op: str, request: dict) -> dict:
        """Run one operation (the RPC entry point)."""
        if not self._is_leader():
            raise NotController(self._known_leader())
        method = getattr(self, "op_" + op, None)
        if method is None:
            return _err(ErrorCode.invalid_request, f"unknown controller operation {op}")
        async with self._lock:
            if not self._is_leader():
                raise NotController(self._known_leader())
            return await method(request)

    def _known_leader(self) -> int | None:
        """The leader to send callers to. Never this node: while it steps down its last
        view may still name itself, and a caller sent back here would ask in circles."""
        leader = self._leader_id()
        return None if leader == self.node_id else leader

    # -- brokers -----------------------------------------------------------------------------
    async def op_register_broker(self, req: dict) -> dict:
        broker_id = req["broker_id"]
        if self.image.cluster_id is None:  # the first registration fixes the cluster's id
            await self._commit([r.ClusterIdRecord(req.get("cluster_id") or r.new_topic_id())])
        known = self.image.brokers.get(broker_id)
        if known is not None and known.incarnation_id == req["incarnation_id"]:
            return {"error_code": 0, "broker_epoch": known.epoch}  # a retried registration
        if known is not None and not known.fenced and \
                self.clock() - self._heartbeats.get(broker_id, 0) < self.session_timeout_s:
            return _err(ErrorCode.duplicate_broker_registration,
                        f"Another live broker is registered with node.id={broker_id}")
        await self._commit([r.RegisterBroker(broker_id, req["incarnation_id"], req["host"],
                                             req["port"], req["controller_port"],
                                             req.get("rack"))])
        self._heartbeats[broker_id] = self.clock()
        self._shutting_down.discard(broker_id)
        if self._on_registered is not None:  # brokers outside the voters follow the log too
            await self._on_registered(broker_id, f"{req['host']}:{req['controller_port']}")
        log.info("registered broker %d at %s:%d", broker_id, req["host"], req["port"])
        return {"error_code": 0, "broker_epoch": self.image.brokers[broker_id].epoch}

    async def op_heartbeat(self, req: dict) -> dict:
        broker_id = req["broker_id"]
        info = self.image.brokers.get(broker_id)
        if info is None or info.epoch != req["broker_epoch"]:
            return _err(ErrorCode.stale_broker_epoch, "register again")
        self._heartbeats[broker_id] = self.clock()
        if req.get("want_shutdown"):
            self._shutting_down.add(broker_id)
            if not info.fenced:
                await self._fence(broker_id, "controlled shutdown")
            leads = any(p.leader == broker_id for t in self.image.topics.values()
                        for p in t.partitions.values())
            return {"error_code": 0, "fenced": True, "shutdown_ready": not leads}
        if info.fenced and broker_id not in self._shutting_down \
                and req.get("metadata_offset", -1) >= info.epoch:
            records = [r.UnfenceBroker(broker_id)]
            await self._commit(records)
            await self._commit(on_broker_unfenced(self.image, broker_id, self._unclean))
            log.info("broker %d is caught up and unfenced", broker_id)
        return {"error_code": 0, "fenced": self.image.brokers[broker_id].fenced}

    async def _fence(self, broker_id: int, why: str) -> None:
        await self._commit([r.FenceBroker(broker_id)])
        await self._commit(on_broker_fenced(self.image, broker_id, self._unclean))
        log.warning("fenced broker %d (%s)", broker_id, why)

    async def check_sessions(self) -> None:
        """Fence brokers whose heartbeats stopped (called periodically on the leader)."""
        if not self._is_leader():
            self._term = None
            return
        now = self.clock()
        term = self._leader_epoch()
        if self._term != term:
            # A new term gives every broker one whole session to reach this controller:
            # heartbeats seen in an earlier term (this node may have led briefly before)
            # say nothing about who is alive now, and brokers were busy timing out on
            # the old controller.
            self._term = term
            self._heartbeats = {broker_id: now for broker_id in self.image.brokers}
        async with self._lock:
            for info in list(self.image.brokers.values()):
                last = self._heartbeats.setdefault(info.broker_id, now)
                if not info.fenced and now - last > self.session_timeout_s:
                    await self._fence(info.broker_id, "session timed out")

    async def rebalance_leaders(self) -> int:
        """auto.leader.rebalance.enable: hand leadership back to each partition's preferred
        (first) replica when it is alive and in sync, so leaders stay spread after
        failures. Returns how many partitions moved."""
        if not self._is_leader():
            return 0
        moved = 0
        async with self._lock:
            changes = []
            for topic in self.image.topics.values():
                for index, state in topic.partitions.items():
                    if state.reassigning or state.leader < 0:
                        continue
                    error, change = preferred_leader_change(topic.topic_id, index, state,
                                                            self.image.is_live)
                    if change is not None:
                        changes.append(change)
            if changes:
                await self._commit(changes)
                moved = len(changes)
                log.info("moved leadership of %d partitions back to their preferred replicas",
                         moved)
        return moved

    # -- topics -------------------------------------------------------------------------------
    async def op_create_topics(self, req: dict) -> dict:
        results = []
        batch: list = []
        reserved: set[str] = set()
        for item in req["topics"]:
            try:
                records, partitions, rf, overrides = plan_create_topic(
                    self.image, item, self.config.num_partitions,
                    self.config.default_replication_factor, reserved)
                reserved.add(item["name"])
                if not req.get("validate_only"):
                    batch += records
                results.append({"name": item["name"], "error_code": 0,
                                "topic_id": records[0].topic_id, "num_partitions": partitions,
                                "replication_factor": rf, "configs": overrides})
            except RequestError as exc:
                results.append({"name": item["name"], "error_code": int(exc.error),
                                "error_message": exc.message})
        await self._commit(batch)
        for result in results:
            if result["error_code"] == 0 and not req.get("validate_only"):
                result["topic_id"] = self.image.topics[result["name"]].topic_id
        return {"topics": results}

    async def op_delete_topics(self, req: dict) -> dict:
        results, batch = [], []
        for name in req["names"]:
            topic = self.image.topics.get(name)
            if topic is None:
                results.append({"name": name, **_err(ErrorCode.unknown_topic_or_partition,
                                                     "This server does not host this "
                                                     "topic-partition.")})
                continue
            batch.append(r.RemoveTopic(topic.topic_id))
            results.append({"name": name, "topic_id": topic.topic_id, "error_code": 0})
        await self._commit(batch)
        return {"topics": results}

    async def op_create_partitions(self, req: dict) -> dict:
        results, batch = [], []
        for item in req["topics"]:
            try:
                records = plan_create_partitions(self.image, item)
                if not req.get("validate_only"):
                    batch += records
                results.append({"name": item["name"], "error_code": 0})
            except RequestError as exc:
                results.append({"name": item["name"], "error_code": int(exc.error),
                                "error_message": exc.message})
        await self._commit(batch)
        return {"topics": results}

    async def op_set_topic_configs(self, req: dict) -> dict:
        try:
            records = plan_config_change(self.image, req["name"], req["configs"])
        except RequestError as exc:
            return _err(exc.error, exc.message)
        if not req.get("validate_only"):
            await self._commit(records)
        return {"error_code": 0}

    async def op_set_broker_configs(self, req: dict) -> dict:
        """Dynamic broker configs of one broker ("resource_name": its id) or the cluster
        default (""): `configs` is the whole new set."""
        name = req["resource_name"]
        try:
            wanted = {k: validate_dynamic_broker_config(k, v) for k, v in req["configs"].items()}
        except InvalidThrottle as exc:
            return _err(ErrorCode.invalid_config, str(exc))
        current = self.image.broker_configs.get(name, {})
        records = [r.ConfigRecord(BROKER_RESOURCE, name, k, None)
                   for k in current if k not in wanted]
        records += [r.ConfigRecord(BROKER_RESOURCE, name, k, v) for k, v in wanted.items()
                    if current.get(k) != v]
        if not req.get("validate_only"):
            await self._commit(records)
        return {"error_code": 0}

    # -- partitions -----------------------------------------------------------------------------
    async def op_alter_partition(self, req: dict) -> dict:
        request = AlterPartitionRequest(req["broker_id"], req["topic_id"], req["partition"],
                                        req["leader_epoch"], req["partition_epoch"],
                                        tuple(req["new_isr"]))
        error, records = alter_partition(self.image, request)
        if error == ErrorCode.none:
            await self._commit(records)
        return {"error_code": int(error)}

    async def op_alter_reassignments(self, req: dict) -> dict:
        results = []
        for item in req["partitions"]:
            topic = self.image.topics.get(item["topic"])
            state = topic.partitions.get(item["partition"]) if topic else None
            if state is None:
                results.append({**item, **_err(ErrorCode.unknown_topic_or_partition)})
                continue
            target = item.get("replicas")
            if target is None:  # cancel
                target = [b for b in state.replicas if b not in state.adding]
            live = {b.broker_id for b in self.image.live_brokers()}
            bad = [b for b in target if b not in live]
            if not target or len(set(target)) != len(target) or bad:
                results.append({**item, **_err(ErrorCode.invalid_replica_assignment,
                                               f"Invalid target replicas {target} (live brokers "
                                               f"{sorted(live)})")})
                continue
            change = start_reassignment(topic.topic_id, item["partition"], state, tuple(target),
                                        self.image.is_live)
            if change is None and item.get("replicas") is None:
                results.append({**item, **_err(ErrorCode.no_reassignment_in_progress)})
                continue
            await self._commit([change] if change else [])
            results.append({**item, "error_code": 0})
        return {"partitions": results}

    async def op_elect_leaders(self, req: dict) -> dict:
        results = []
        for item in req["partitions"]:
            topic = self.image.topics.get(item["topic"])
            state = topic.partitions.get(item["partition"]) if topic else None
            if state is None:
                results.append({**item, **_err(ErrorCode.unknown_topic_or_partition)})
                continue
            error, change = preferred_leader_change(topic.topic_id, item["partition"], state,
                                                    self.image.is_live)
            if change is not None:
                await self._commit([change])
            results.append({**item, "error_code": int(error)})
        return {"partitions": results}

    # -- the metadata quorum's voters ----------------------------------------------------
    async def op_describe_quorum(self, req: dict) -> dict:
        config = self._quorum.configuration
        return {"error_code": 0, "leader": self._leader_id(),
                "voters": sorted(config.voters), "learners": sorted(config.learners)}

    async def op_add_voter(self, req: dict) -> dict:
        """Promote a registered broker to voter (as a learner first, until caught up)."""
        info = self.image.brokers.get(req["broker_id"])
        if info is None or info.fenced:
            return _err(ErrorCode.broker_id_not_registered,
                        f"broker {req['broker_id']} is not a live, registered broker")
        await self._quorum.add_voter(info.broker_id, f"{info.host}:{info.controller_port}")
        log.info("broker %d is now a metadata quorum voter", info.broker_id)
        return await self.op_describe_quorum(req)

    async def op_remove_voter(self, req: dict) -> dict:
        config = self._quorum.configuration
        if req["broker_id"] not in config.voters:
            return _err(ErrorCode.voter_not_found, f"broker {req['broker_id']} is not a voter")
        if len(config.voters) == 1:
            return _err(ErrorCode.invalid_request, "cannot remove the last voter")
        await self._quorum.remove_voter(req["broker_id"])
        log.info("broker %d left the metadata quorum's voters", req["broker_id"])
        return {"error_code": 0}

    async def op_allocate_producer_ids(self, req: dict) -> dict:
        first = self.image.next_producer_id
        await self._commit([r.ProducerIdsBlock(req["broker_id"], first, PRODUCER_ID_BLOCK)])
        return {"error_code": 0, "first_id": first, "size": PRODUCER_ID_BLOCK}
