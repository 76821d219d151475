"""The broker's state and the operations the Kafka handlers call.

Composition root. Cluster metadata (brokers, topics, partitions, configs) lives in a
Raft-replicated log (broker/raft) whose committed records build the MetadataImage;
every change goes through the active controller (broker/controller), in-process when
this node leads the quorum and over gRPC otherwise. The broker reacts to each
metadata change by creating, leading, following or dropping its local partitions
(broker/replication). A single node is simply a quorum of one.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from pathlib import Path

import grpc
from kio.schema.errors import ErrorCode

from .compaction.cleaner import LogCleaner
from .config import BrokerConfig, Listener
from .controller.rpc import ControllerChannel, ControllerUnavailable, controller_service
from .controller.service import Controller
from .durable_file import write_atomically
from .groups import lag_metrics
from .groups.coordinator import GroupCoordinator
from .groups.placement import OFFSETS_TOPIC
from .metadata import records as r
from .metadata.image import Delta
from .metadata.state_machine import MetadataStateMachine
from .metrics import BrokerMetrics
from .partition import Partition
from .raft.driver import QuorumNode
from .raft.membership import Configuration, Member
from .raft.options import RaftOptions
from .raft.transport import CHANNEL_OPTIONS
from .raft.voters import parse_quorum_voters
from .replication.manager import ReplicaManager
from .storage import segment_swap
from .storage.log_manager import LogManager
from .topic_config import effective_configs, log_config_for
from .topics import TopicInfo, TopicsView

log = logging.getLogger("brook.broker")

META_PROPERTIES = "meta.properties"
METADATA_DIR = "__cluster_metadata"


class StartupError(RuntimeError):
    """The broker cannot start with this configuration and data; the message says why."""


class TopicOperationError(Exception):
    def __init__(self, error_code: int, message: str | None) -> None:
        super().__init__(message or f"error {error_code}")
        self.error_code = error_code
        self.message = message


def _read_meta(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.startswith("#")}


def _new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def controller_listener(config: BrokerConfig) -> Listener:
    """The gRPC listener: the one named in controller.listener.names, else the client
    listener's host at the next port (9092 -> 9093)."""
    names = {n.strip().upper() for n in str(config.get("controller.listener.names") or
                                             "CONTROLLER").split(",")}
    for listener in config.listeners:
        if listener.name in names:
            return listener
    client = config.client_listener
    return Listener("CONTROLLER", client.host, client.port + 1)


class ProducerIdPool:
    """Producer ids in blocks from the controller, so ids are unique across brokers."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._next = 0
        self._end = 0
        self._lock = asyncio.Lock()

    async def allocate(self) -> int:
        async with self._lock:
            if self._next >= self._end:
                block = await self.broker.controller_call(
                    "allocate_producer_ids", {"broker_id": self.broker.node_id})
                self._next, self._end = block["first_id"], block["first_id"] + block["size"]
            pid = self._next
            self._next += 1
            return pid


async def stop_step(name: str, awaitable, timeout: float = 10.0) -> None:
    """One step of stopping, given `timeout` seconds; a step that overruns is logged with
    its name and abandoned (cancelled) so the next ones still run."""
    started = time.monotonic()
    try:
        await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        log.warning("stopping: %s did not finish within %.0fs; going on without it", name,
                    timeout)
    except Exception:  # noqa: BLE001 - a failed step must not keep the logs from closing
        log.exception("stopping: %s failed; going on", name)
    else:
        if time.monotonic() - started > 1:
            log.info("stopping: %s took %.1fs", name, time.monotonic() - started)


class Broker:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        self.log_dirs = [d.resolve() for d in config.log_dirs]
        for directory in self.log_dirs:
            directory.mkdir(parents=True, exist_ok=True)
        self._local_cluster_id = self._load_identity()
        self.incarnation_id = uuid.uuid4().hex
        self.metrics = BrokerMetrics()
        self.logs = LogManager(self.log_dirs)
        segment_swap.recover_log_dirs(self.log_dirs)  # finish or undo cleaner swaps a crash cut short
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.metadata = MetadataStateMachine(self._on_metadata)
        # Logs found on disk wait here until the metadata says which partitions are ours.
        self._unclaimed = self.logs.load_existing(self._log_config_of)
        self.registry = TopicsView(lambda: self.metadata.image)
        self.controller_endpoint = controller_listener(config)
        self.quorum = self._make_quorum()
        self.controller = Controller(self.node_id, lambda: self.metadata.image,
                                     self._commit_records, lambda: self.quorum.is_leader,
                                     self.controller_id, config,
                                     on_registered=self._ensure_quorum_member,
                                     quorum=self.quorum,
                                     leader_epoch=lambda: self.quorum.leader.epoch)
        self.channel = ControllerChannel(self.controller, lambda: self.quorum.is_leader,
                                         self.controller_id, self._controller_address,
                                         voters=lambda: sorted(self.voter_ids),
                                         attempt_timeout=config.get_int(
                                             "controller.quorum.request.timeout.ms") / 1000)
        self.producer_ids = ProducerIdPool(self)
        self.replicas = ReplicaManager(self)
        self.metrics.watch_replication(
            lambda: [p for p in list(self.partitions.values()) if p.is_leader],
            lambda: self.quorum.is_leader,
            lambda: sum(s.leader < 0 for t in list(self.metadata.image.topics.values())
                        for s in list(t.partitions.values())))
        self.group_coordinator = GroupCoordinator(self)
        lag_metrics.register(self, self.group_coordinator)
        self.log_cleaner = LogCleaner(self)
        self.broker_epoch = -1
        self.fenced = True
        self._grpc_server: grpc.aio.Server | None = None
        self._background: list[asyncio.Task] = []
        self._unfenced = asyncio.Event()
        self._auto_creating: set[str] = set()

    # -- identity -------------------------------------------------------------------------
    def _load_identity(self) -> str:
        """meta.properties pins a log dir to one node and cluster, as in Kafka."""
        configured = self.config.get("cluster.id")
        cluster_id = None
        for directory in self.log_dirs:
            meta = _read_meta(directory / META_PROPERTIES)
            if not meta:
                continue
            if "node.id" in meta and int(meta["node.id"]) != self.node_id:
                raise StartupError(
                    f"{directory}/{META_PROPERTIES} belongs to node.id={meta['node.id']}, but this "
                    f"broker has node.id={self.node_id}: use that node.id or another log.dirs")
            if cluster_id and meta.get("cluster.id") != cluster_id:
                raise StartupError(f"log dirs disagree on cluster.id ({directory})")
            cluster_id = meta.get("cluster.id")
        if configured and cluster_id and configured != cluster_id:
            raise StartupError(f"cluster.id={configured} but {self.log_dirs[0]} holds cluster "
                               f"{cluster_id}: point log.dirs elsewhere or drop the override")
        cluster_id = cluster_id or str(configured or _new_cluster_id())
        text = f"version=1\ncluster.id={cluster_id}\nnode.id={self.node_id}\n"
        for directory in self.log_dirs:
            write_atomically(directory / META_PROPERTIES, text.encode())
        return cluster_id

    @property
    def cluster_id(self) -> str:
        """The cluster's id from the metadata (the first registered broker's), once known."""
        return self.metadata.image.cluster_id or self._local_cluster_id

    def _adopt_cluster_id(self) -> None:
        cluster_id = self.metadata.image.cluster_id
        if cluster_id and cluster_id != self._local_cluster_id:
            if self.config.get("cluster.id") and self.config.get("cluster.id") != cluster_id:
                log.error("cluster.id=%s, but the cluster's metadata says %s",
                          self.config.get("cluster.id"), cluster_id)
            self._local_cluster_id = cluster_id
            text = f"version=1\ncluster.id={cluster_id}\nnode.id={self.node_id}\n"
            for directory in self.log_dirs:
                write_atomically(directory / META_PROPERTIES, text.encode())

    # -- the metadata quorum ------------------------------------------------------------------
    def _make_quorum(self) -> QuorumNode:
        text = str(self.config.get("controller.quorum.voters") or "")
        try:
            voters = parse_quorum_voters(text)
        except ValueError as exc:
            raise StartupError(f"controller.quorum.voters={text!r}: {exc}") from None
        endpoint = self.controller_endpoint
        if not voters:  # a single node is a quorum of one
            voters = parse_quorum_voters(f"{self.node_id}@{endpoint.host}:{endpoint.port}")
        self.voter_ids = {v.node_id for v in voters}
        self.voter_addresses = {v.node_id: v.address for v in voters}
        bootstrap = None
        if self.node_id in self.voter_ids:
            bootstrap = Configuration(tuple(Member(v.node_id, v.address) for v in voters))
        # A sole voter has nobody to wait for: a short election timeout lets a single node
        # start in a fraction of a second instead of one to two.
        snapshot_threshold = self.config.get_int("brook.metadata.snapshot.records")
        timing = {"election_timeout_ms": 100, "heartbeat_interval_ms": 20} \
            if self.voter_ids == {self.node_id} else {}
        options = RaftOptions(snapshot_threshold=snapshot_threshold, **timing)
        return QuorumNode(self.node_id, self.log_dirs[0] / METADATA_DIR, self.metadata,
                          bootstrap=bootstrap, options=options)

    def controller_id(self) -> int | None:
        return self.quorum.leader.leader_id

    def advertised_controller_id(self) -> int:
        """The controller id for Metadata and DescribeCluster: the quorum leader while it
        is a live broker, else a live broker (this one if it can), which forwards admin
        requests to the controller. Clients (librdkafka) wait forever for a controller id
        that is missing from the broker list, as happens at startup and after the
        controller dies, until the quorum and the fencing catch up."""
        live = {b.broker_id for b in self.metadata.image.live_brokers()}
        leader = self.controller_id()
        if leader is not None and leader in live:
            return leader
        if self.node_id in live:
            return self.node_id
        return min(live, default=-1)

    def _controller_address(self, node_id: int) -> str | None:
        if node_id in self.voter_addresses:
            return self.voter_addresses[node_id]
        info = self.metadata.image.brokers.get(node_id)
        return f"{info.host}:{info.controller_port}" if info else None

    async def _ensure_quorum_member(self, broker_id: int, address: str) -> None:
        """A broker that is not a voter joins the quorum as a learner (an observer, in
        KRaft's terms) so the metadata log reaches it."""
        if broker_id in self.quorum.configuration.node_ids:
            return
        await asyncio.wait_for(self.quorum.add_learner(broker_id, address), 30)
        log.info("broker %d follows the metadata log as a learner", broker_id)

    async def _commit_records(self, records: list) -> None:
        await asyncio.wait_for(self.quorum.propose(r.encode_batch(records)), 30)

    async def controller_call(self, op: str, request: dict) -> dict:
        return await self.channel.call(op, request)

    # -- partitions -------------------------------------------------------------------------
    def _log_config_of(self, topic: str):
        return log_config_for(self.metadata.image.topic_configs(topic), self.config)

    def min_insync_replicas(self, topic: str) -> int:
        configs = self.metadata.image.topic_configs(topic)
        return int(configs.get("min.insync.replicas", self.config.get("min.insync.replicas")))

    def _apply_topic_settings(self, partition: Partition) -> None:
        """Settings a partition checks on every produce, from the topic's effective configs."""
        eff = effective_configs(self.metadata.image.topic_configs(partition.topic), self.config)
        partition.min_insync_replicas = int(eff["min.insync.replicas"])
        partition.timestamp_bounds = (int(eff["message.timestamp.before.max.ms"]),
                                      int(eff["message.timestamp.after.max.ms"]))

    def local_partition(self, topic: str, index: int) -> Partition:
        """The partition's local replica, opened or created on first use."""
        key = (topic, index)
        partition = self.partitions.get(key)
        if partition is None:
            config = self._log_config_of(topic)
            partition_log = self._unclaimed.pop(key, None) or \
                self.logs.create_log(topic, index, config)
            partition_log.update_config(config)
            partition = Partition(topic, index, partition_log, config,
                                  self.min_insync_replicas(topic))
            self._apply_topic_settings(partition)
            self.partitions[key] = partition
        return partition

    def drop_partition(self, topic: str, index: int) -> None:
        partition = self.partitions.pop((topic, index), None)
        if partition is not None:
            partition.close_waiters()
            self.logs.delete_log(topic, index)

    def partition(self, topic: str, index: int) -> Partition | None:
        """The partition if this broker leads it (what clients may produce to / fetch from)."""
        partition = self.partitions.get((topic, index))
        return partition if partition is not None and partition.is_leader else None

    def lookup(self, topic: str, index: int) -> tuple[Partition | None, ErrorCode]:
        """The led partition, or the error a client gets: not hosted, or not the leader."""
        partition = self.partitions.get((topic, index))
        if partition is not None and partition.is_leader:
            return partition, ErrorCode.none
        state = self.metadata.image.partition(topic, index)
        if state is None:
            return None, ErrorCode.unknown_topic_or_partition
        if state.leader < 0:
            return None, ErrorCode.leader_not_available
        return None, ErrorCode.not_leader_or_follower

    def group_coordinator_leadership(self, topic: str, index: int, leader: bool) -> None:
        # The coordinator loads the groups of a __consumer_offsets partition this broker
        # gained and drops those of one it lost; the others it leaves alone.
        if topic == OFFSETS_TOPIC and self._unfenced.is_set():
            self.group_coordinator.load()

    def _on_metadata(self, delta: Delta) -> None:
        image = self.metadata.image
        self._adopt_cluster_id()
        for name, topic in delta.removed_topics.items():
            for index in topic.partitions:
                self.replicas.stop_following(name, index)
                self.drop_partition(name, index)
            self.group_coordinator.on_topic_deleted(name)
            self.metrics.topic_deleted(name, len(topic.partitions))
            log.info("deleted topic %s", name)
        for name in delta.created_topics:
            self.metrics.topic_created(name)
        for name in delta.changed_configs:
            if name in image.topics:
                config = self._log_config_of(name)
                self.logs.update_config(name, config)
                for (topic, _), partition in self.partitions.items():
                    if topic == name:
                        partition.config = config
                        self._apply_topic_settings(partition)
        for topic, index in sorted(delta.changed_partitions):
            state = image.partition(topic, index)
            if state is None:
                continue
            self.replicas.apply_partition_state(topic, index, state)
        self.replicas.after_metadata_change(delta)

    # -- topic operations (through the controller) ------------------------------------------
    async def create_topic(self, name: str, partitions: int, configs: dict[str, str],
                           internal: bool = False, replication_factor: int = -1) -> TopicInfo:
        result = await self.controller_call("create_topics", {"topics": [{
            "name": name, "num_partitions": partitions, "replication_factor": replication_factor,
            "configs": configs, "internal": internal}]})
        item = result["topics"][0]
        if item["error_code"]:
            raise TopicOperationError(item["error_code"], item.get("error_message"))
        await self.wait_for_metadata(lambda image: name in image.topics)
        return self.registry.get(name)

    def auto_create(self, name: str) -> None:
        """Create a topic a client asked for (auto.create.topics.enable), in the background."""
        if name in self._auto_creating:
            return

        async def create() -> None:
            try:
                if name == OFFSETS_TOPIC:  # with its own settings, as Kafka does
                    await self.group_coordinator.create_offsets_topic()
                else:
                    await self.create_topic(name, -1, {})
            except TopicOperationError as exc:
                if exc.error_code != ErrorCode.topic_already_exists:
                    log.warning("auto-creating topic %s failed: %s", name, exc)
            except Exception as exc:
                log.warning("auto-creating topic %s failed: %s", name, exc)
            finally:
                self._auto_creating.discard(name)

        self._auto_creating.add(name)
        asyncio.create_task(create(), name=f"auto-create-{name}")

    async def wait_for_metadata(self, predicate, timeout: float = 10.0) -> bool:
        """Wait until this broker's image satisfies `predicate` (after a controller change)."""
        deadline = time.monotonic() + timeout
        while not predicate(self.metadata.image):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Join the metadata quorum, register, and wait until this broker is unfenced."""
        server = grpc.aio.server(options=CHANNEL_OPTIONS)
        self.quorum.add_to_server(server)
        server.add_generic_rpc_handlers((controller_service(self.controller, self.channel),))
        endpoint = self.controller_endpoint
        try:
            server.add_insecure_port(f"{endpoint.host}:{endpoint.port}")
        except RuntimeError as exc:
            raise StartupError(
                f"cannot listen on the controller port {endpoint.host}:{endpoint.port} "
                f"({exc}); choose it with --override listeners=...,CONTROLLER://HOST:PORT"
            ) from None
        await server.start()
        self._grpc_server = server
        await self.quorum.start()
        self._background.append(asyncio.create_task(self._heartbeats(), name="heartbeats"))
        self._background.append(asyncio.create_task(self._controller_duties(),
                                                    name="controller-duties"))
        started = time.monotonic()
        while not self._unfenced.is_set():
            try:
                await asyncio.wait_for(self._unfenced.wait(), 10)
            except TimeoutError:
                log.info("waiting to join the cluster for %.0fs (controller: %s, quorum "
                         "voters: %s)", time.monotonic() - started, self.controller_id(),
                         sorted(self.voter_ids))
        self.group_coordinator.load()

    async def _register(self) -> None:
        listener = self.config.advertised_client_listener
        result = await self.controller_call("register_broker", {
            "broker_id": self.node_id, "incarnation_id": self.incarnation_id,
            "host": listener.host, "port": listener.port,
            "controller_port": self.controller_endpoint.port,
            "rack": self.config.get("broker.rack"), "cluster_id": self._local_cluster_id})
        if result["error_code"]:
            raise ControllerUnavailable(result.get("error_message") or "registration refused")
        self.broker_epoch = result["broker_epoch"]

    async def _heartbeats(self) -> None:
        interval = self.config.get_int("broker.heartbeat.interval.ms") / 1000
        while True:
            try:
                if self.broker_epoch < 0:
                    await self._register()
                answer = await self.controller_call("heartbeat", {
                    "broker_id": self.node_id, "broker_epoch": self.broker_epoch,
                    "metadata_offset": self.metadata.image.offset})
                if answer["error_code"]:
                    self.broker_epoch = -1  # stale epoch: register again
                    continue
                self.fenced = answer["fenced"]
                if not self.fenced:
                    self._unfenced.set()
                await asyncio.sleep(interval if not self.fenced else 0.05)
            except (ControllerUnavailable, TimeoutError) as exc:
                log.warning("heartbeat: %s", exc)
                await asyncio.sleep(0.2)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat failed")
                await asyncio.sleep(1)

    async def _controller_duties(self) -> None:
        rebalance = bool(self.config.get("auto.leader.rebalance.enable"))
        interval = self.config.get_int("leader.imbalance.check.interval.seconds")
        next_rebalance = time.monotonic() + interval
        while True:
            await asyncio.sleep(0.5)
            try:
                await self.controller.check_sessions()
                if rebalance and time.monotonic() >= next_rebalance:
                    next_rebalance = time.monotonic() + interval
                    await self.controller.rebalance_leaders()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("controller session check failed")

    async def controlled_shutdown(self, timeout: float = 15.0) -> None:
        """Ask the controller to move leadership away before this broker stops."""
        if self.broker_epoch < 0:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                answer = await self.channel.call("heartbeat", {
                    "broker_id": self.node_id, "broker_epoch": self.broker_epoch,
                    "want_shutdown": True}, timeout=max(0.5, deadline - time.monotonic()))
            except (ControllerUnavailable, TimeoutError):
                return
            if answer.get("shutdown_ready"):
                return
            await asyncio.sleep(0.1)

    def start_background(self) -> None:
        retention_ms = self.config.get_int("log.retention.check.interval.ms")
        flush_ms = self.config.get_int("log.flush.scheduler.interval.ms")
        self._background += [
            asyncio.create_task(self.logs.run_retention(retention_ms), name="retention"),
            asyncio.create_task(self.logs.run_flusher(flush_ms), name="flusher"),
            asyncio.create_task(self._update_gauges(), name="gauges"),
        ]
        self.replicas.start()
        self.group_coordinator.start()
        self.log_cleaner.start()

    async def _update_gauges(self) -> None:
        while True:
            self.metrics.observe_partitions(self.partitions.values())
            await asyncio.sleep(5)

    async def stop_background(self) -> None:
        """Each step is bounded: a stuck step is logged by name and the stop goes on, so
        SIGTERM always ends in closed, flushed logs (the caller's next step)."""
        if any(b.broker_id != self.node_id for b in self.metadata.image.live_brokers()):
            # only useful when leadership can move
            await stop_step("controlled shutdown", self.controlled_shutdown(), 20)
        await stop_step("group coordinator", self.group_coordinator.stop())
        await stop_step("log cleaner", self.log_cleaner.stop())
        await stop_step("replica fetchers", self.replicas.stop())
        for task in self._background:
            task.cancel()
        await stop_step("background tasks",
                        asyncio.gather(*self._background, return_exceptions=True))
        await stop_step("metadata quorum", self.quorum.stop())
        await stop_step("controller channels", self.channel.close())
        if self._grpc_server is not None:
            await stop_step("controller listener", self._grpc_server.stop(grace=0.2))

    def close(self) -> None:
        """Flush and close every log; the next start needs no recovery scan."""
        for partition in self.partitions.values():
            partition.save_producer_state()
        self.logs.close_all()

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)
