"""Runs a RaftCore under asyncio: timers, the file store, gRPC, and the state machine.

One pump task owns the Ready cycle (ready.py): it takes the core's Ready, makes its
storage operations durable (in a worker thread, so the event loop keeps serving),
and only then sends its messages, answers the gRPC requests that produced it,
restores/applies committed entries to the `StateMachine`, and resolves proposals.
Inputs (incoming requests, responses, ticks, proposals) touch the core directly
from the event loop and wake the pump; Readies are handled strictly in order, so
nothing leaves this node before the state it depends on is on disk.

Standalone:

    node = QuorumNode(1, Path("data/quorum"), machine, bootstrap=configuration)
    await node.start(listen="127.0.0.1:9093")
    index = await node.propose(b"record")

Inside the broker, register on its own gRPC server before that server starts,
then start without `listen`:

    node.add_to_server(server); await server.start(); await node.start()
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc

from .core import RaftCore
from .entries import Entry, EntryKind
from .errors import ConfigurationChangeInProgress, LearnerNotCaughtUp, NotLeader
from .file_store import FileStore
from .membership import Configuration, Member
from .messages import Request, Response
from .options import RaftOptions
from .transport import (
    CHANNEL_OPTIONS,
    NOT_SERVING,
    SERVICE,
    SERVING,
    PeerClients,
    WrongRecipient,
    add_health_service,
    quorum_service,
)

log = logging.getLogger("brook.raft")


class StateMachine(Protocol):
    """The application the quorum replicates (the broker's metadata image)."""

    def apply(self, entry: Entry) -> None:
        """Apply one committed COMMAND entry, in log order."""

    def snapshot(self) -> bytes:
        """The state as of the last applied entry (called between applies)."""

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot's (after a restart or from the leader)."""


class ProposalDropped(Exception):
    """The entry did not commit: another leader's entry took its index (or its fate is
    unknown because this node skipped that index by installing a snapshot)."""


class QuorumStopped(Exception):
    """The node stopped before the outcome was known."""


@dataclass(frozen=True, slots=True)
class LeaderAndEpoch:
    """The known leader (None while there is none) and the epoch (Raft term) it leads."""

    leader_id: int | None
    epoch: int


class QuorumNode:
    def __init__(self, node_id: int, directory: Path, state_machine: StateMachine, *,
                 bootstrap: Configuration | None = None, options: RaftOptions | None = None,
                 on_leader_change: Callable[[LeaderAndEpoch], None] | None = None,
                 seed: int | None = None) -> None:
        """`bootstrap` is the voter set of a brand-new quorum (from controller.quorum.voters);
        leave it None for a node that joins an existing quorum via `add_voter`. Once the
        directory holds state, the configuration comes from the log and `bootstrap` is unused.
        """
        self.node_id = node_id
        self.directory = Path(directory)
        self.options = options or RaftOptions()
        self._state_machine = state_machine
        self._bootstrap = bootstrap
        self._on_leader_change = on_leader_change
        self._seed = seed if seed is not None else int.from_bytes(os.urandom(4))
        self._store: FileStore | None = None
        self._core: RaftCore | None = None
        self._clients = PeerClients(timeout_s=self.options.election_timeout_ms / 1000)
        self._server: grpc.aio.Server | None = None
        self._owns_server = False
        self._health = None
        self._wake = asyncio.Event()
        self._timer_changed = asyncio.Event()
        self._replies: list[tuple[asyncio.Future, Response]] = []
        self._waiting: dict[int, list[tuple[int, asyncio.Future]]] = {}
        self._leader = LeaderAndEpoch(None, 0)
        self._leader_changed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._calls: set[asyncio.Task] = set()
        self._running = False
        self._stopped = False
        self._persisting: asyncio.Future | None = None  # the Ready being written, if any
        self.failure: BaseException | None = None
        self.port: int | None = None

    # --- lifecycle ------------------------------------------------------------------

    def add_to_server(self, server: grpc.aio.Server, *, health: bool = True) -> None:
        """Register the Quorum (and health) services on a server that is not started yet."""
        server.add_generic_rpc_handlers((quorum_service(self._handle_request),))
        if health:
            self._health = add_health_service(server)
        self._server = server

    async def start(self, listen: str | None = None) -> None:
        """Open the store, start serving (on `listen`, with an own server, if given) and run."""
        if listen is not None:
            server = grpc.aio.server(options=CHANNEL_OPTIONS)
            self.add_to_server(server)
            self.port = server.add_insecure_port(listen)
            await server.start()
            self._owns_server = True
        self._store = await asyncio.to_thread(FileStore.open, self.directory, self._bootstrap)
        self._core = RaftCore(self.node_id, self._store.load(), self.options, seed=self._seed,
                              now=self._now())
        self._running = True
        self._set_health(self._core.leader_id)
        self._tasks = [asyncio.create_task(self._pump(), name=f"raft-{self.node_id}-pump"),
                       asyncio.create_task(self._timer(), name=f"raft-{self.node_id}-timer")]
        self._wake.set()

    async def stop(self) -> None:
        """Stop serving and running; pending proposals fail with QuorumStopped."""
        if self._stopped:
            return
        self._stopped = True
        self._running = False
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        for task in [*self._tasks, *self._calls]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._calls, return_exceptions=True)
        if self._persisting is not None:  # a worker thread may still be writing: let it finish
            await asyncio.gather(self._persisting, return_exceptions=True)
        if self._owns_server and self._server is not None:
            await self._server.stop(grace=0.2)
        await self._clients.close()
        self._fail_waiters(QuorumStopped(f"quorum node {self.node_id} stopped"))
        for future, _ in self._replies:
            if not future.done():
                future.cancel()
        if self._store is not None:
            self._store.close()

    # --- what the broker calls ------------------------------------------------------

    @property
    def leader(self) -> LeaderAndEpoch:
        return self._leader

    @property
    def is_leader(self) -> bool:
        return self._running and self._core is not None and self._core.is_leader

    @property
    def configuration(self) -> Configuration:
        return self._require_core().configuration

    @property
    def commit_index(self) -> int:
        return self._require_core().commit_index

    async def wait_for_leader(self, timeout: float | None = None) -> LeaderAndEpoch:
        """Wait until some leader is known; returns it."""
        async def known() -> LeaderAndEpoch:
            while self._leader.leader_id is None:
                self._leader_changed.clear()
                await self._leader_changed.wait()
            return self._leader

        return await asyncio.wait_for(known(), timeout)

    async def propose(self, data: bytes) -> int:
        """Replicate `data`; returns its index once committed and applied here.

        Raises NotLeader (with the known leader) on a follower, ProposalDropped if another
        leader's entry took its place. It may wait indefinitely when this node is cut off:
        bound it with asyncio.wait_for.
        """
        if len(data) > self.options.max_bytes_per_append:
            raise ValueError(f"proposal of {len(data)} bytes exceeds max_bytes_per_append")
        core = self._require_core()
        index = core.propose(data)
        return await self._until_committed(index, core.term)

    async def add_voter(self, node_id: int, address: str, timeout: float = 30.0) -> None:
        """Grow the quorum by one voter: add it as a learner, wait until it has caught up,
        then promote it; returns once the promotion is committed. Leader only."""
        async def grow() -> None:
            await self.add_learner(node_id, address, timeout)
            if node_id in self.configuration.learners:
                await self._change(lambda core: core.promote_learner(node_id))

        await asyncio.wait_for(grow(), timeout)

    async def add_learner(self, node_id: int, address: str, timeout: float = 30.0) -> None:
        """Let a node follow the log without voting (a KRaft observer, e.g. a broker outside
        the voter set); returns once the change is committed. Leader only; a no-op for a
        node that is already a member."""
        async def add() -> None:
            if node_id not in self.configuration.node_ids:
                await self._change(lambda core: core.add_learner(Member(node_id, address)))

        await asyncio.wait_for(add(), timeout)

    async def remove_voter(self, node_id: int, timeout: float = 30.0) -> None:
        """Shrink the quorum by one member (voter or learner); returns once committed.
        A leader that removes itself steps down after the change commits."""
        await asyncio.wait_for(self._change(lambda core: core.remove_member(node_id)), timeout)

    # --- internals: requests in, messages out ---------------------------------------

    async def _handle_request(self, request: Request) -> Response:
        core = self._core
        if core is None or not self._running:
            raise WrongRecipient(f"quorum node {self.node_id} is not running")
        if request.recipient != self.node_id:
            raise WrongRecipient(f"this is node {self.node_id}, not {request.recipient}")
        response = core.receive(request, self._now())
        future = asyncio.get_running_loop().create_future()
        self._replies.append((future, response))
        self._wake.set()
        return await future  # answered once the pump has made the state durable

    def _send(self, request: Request) -> None:
        address = self._core.configuration.address(request.recipient)
        if not address:
            return
        task = asyncio.create_task(self._call(address, request))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _call(self, address: str, request: Request) -> None:
        response = await self._clients.call(address, request)
        if response is not None and self._running and response.recipient == self.node_id:
            self._core.receive(response, self._now())
            self._wake.set()

    # --- internals: the pump and the timer ------------------------------------------

    async def _pump(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self._handle_ready()
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # a failed disk write: stop rather than go on
            log.exception("quorum node %s failed", self.node_id)
            self.failure = error
            self._running = False
            self._fail_waiters(error)
            raise

    async def _handle_ready(self) -> None:
        core, store = self._core, self._store
        while True:
            ready = core.take_ready()
            replies, self._replies = self._replies, []
            if ready.storage:
                # Shielded: cancelling the pump (stop) must not abandon a half-done write.
                self._persisting = asyncio.ensure_future(asyncio.to_thread(store.apply,
                                                                           ready.storage))
                await asyncio.shield(self._persisting)
            for message in ready.messages:
                self._send(message)
            for future, response in replies:
                if not future.done():
                    future.set_result(response)
            if ready.restore is not None:
                self._state_machine.restore(ready.restore.data)
                self._drop_waiters_upto(ready.restore.last_index)
            for entry in ready.committed:
                if entry.kind is EntryKind.COMMAND:
                    self._state_machine.apply(entry)
                self._resolve_waiters(entry)
            if ready.snapshot_due and core.applied_index > core.snapshot.last_index:
                core.compact(core.applied_index, self._state_machine.snapshot())
                continue
            if not (ready or self._replies):
                break
        self._observe_leader()
        self._timer_changed.set()

    async def _timer(self) -> None:
        # No asyncio.wait_for here: on Python 3.11 it can swallow a cancellation that
        # coincides with the event firing, and stop() would then wait forever.
        loop = asyncio.get_running_loop()
        while self._running:
            self._timer_changed.clear()
            delay = max(self._core.next_deadline() - self._now(), 0) / 1000
            alarm = loop.call_later(delay, self._timer_changed.set)
            try:
                await self._timer_changed.wait()  # the deadline, or a Ready that may move it
            finally:
                alarm.cancel()
            if self._running and self._now() >= self._core.next_deadline():
                self._core.tick(self._now())
                self._wake.set()

    # --- internals: waiting for entries to commit -----------------------------------

    async def _until_committed(self, index: int, term: int) -> int:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(index, []).append((term, future))
        self._wake.set()
        return await future

    async def _change(self, make_change: Callable[[RaftCore], int]) -> None:
        """Append a configuration change when the leader allows one, and wait for its commit."""
        while True:
            core = self._require_core()
            try:
                index = make_change(core)
                break
            except (ConfigurationChangeInProgress, LearnerNotCaughtUp):
                await asyncio.sleep(self.options.heartbeat_interval_ms / 1000)
        await self._until_committed(index, core.term)

    def _resolve_waiters(self, entry: Entry) -> None:
        for term, future in self._waiting.pop(entry.index, ()):
            if future.done():
                continue
            if entry.term == term:
                future.set_result(entry.index)
            else:
                future.set_exception(ProposalDropped(
                    f"index {entry.index} committed term {entry.term}, not {term}"))

    def _drop_waiters_upto(self, index: int) -> None:
        for waiting_index in [i for i in self._waiting if i <= index]:
            for _, future in self._waiting.pop(waiting_index):
                if not future.done():
                    future.set_exception(ProposalDropped(
                        f"index {waiting_index} was covered by an installed snapshot"))

    def _fail_waiters(self, error: BaseException) -> None:
        for waiters in self._waiting.values():
            for _, future in waiters:
                if not future.done():
                    future.set_exception(error)
        self._waiting.clear()

    # --- internals: observation -----------------------------------------------------

    def _observe_leader(self) -> None:
        core = self._core
        current = LeaderAndEpoch(core.leader_id, core.term)
        if current == self._leader:
            return
        self._leader = current
        self._leader_changed.set()
        self._set_health(current.leader_id)
        # Forget channels to nodes that left the configuration.
        addresses = {m.address for m in core.configuration.members}
        for close in self._clients.forget(addresses):
            task = asyncio.create_task(close)
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
        if self._on_leader_change is not None:
            self._on_leader_change(current)

    def _set_health(self, leader_id: int | None) -> None:
        if self._health is None:
            return
        # The process serves ("") while running; the Quorum service is SERVING while a
        # leader is known, so readiness probes can wait for a working quorum.
        task = asyncio.create_task(self._health.set(
            SERVICE, SERVING if leader_id is not None else NOT_SERVING))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    def _require_core(self) -> RaftCore:
        if self._core is None or not self._running:
            raise QuorumStopped(f"quorum node {self.node_id} is not running")
        return self._core

    @staticmethod
    def _now() -> int:
        return int(asyncio.get_running_loop().time() * 1000)


__all__ = ["LeaderAndEpoch", "NotLeader", "ProposalDropped", "QuorumNode", "QuorumStopped",
           "StateMachine"]
