"""Quorum nodes on 127.0.0.1 over real gRPC: election, replication, leader loss, 1 -> 3 growth."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from brook.broker.raft import Configuration, Member, NotLeader, RaftOptions
from brook.broker.raft.driver import LeaderAndEpoch, QuorumNode
from brook.broker.raft.entries import Entry
from brook.broker.raft.transport import SERVICE
from tools.ports import free_ports

# Short timeouts keep the test quick; generous waits keep it steady on a busy machine.
OPTIONS = RaftOptions(election_timeout_ms=400, heartbeat_interval_ms=60, snapshot_threshold=8,
                      snapshot_chunk_bytes=64)
WAIT_S = 20.0


class Recorder:
    """A state machine that remembers every command it applied."""

    def __init__(self) -> None:
        self.commands: list[bytes] = []
        self.restores = 0

    def apply(self, entry: Entry) -> None:
        self.commands.append(entry.data)

    def snapshot(self) -> bytes:
        return json.dumps([c.decode() for c in self.commands]).encode()

    def restore(self, data: bytes) -> None:
        self.commands = [c.encode() for c in json.loads(data)]
        self.restores += 1


class LocalQuorum:
    def __init__(self, root: Path, ids: list[int]) -> None:
        self.root = root
        self.addresses = {i: f"127.0.0.1:{p}" for i, p in zip(ids, free_ports(len(ids)), strict=True)}
        self.nodes: dict[int, QuorumNode] = {}
        self.machines: dict[int, Recorder] = {}
        self.leader_changes: dict[int, list[LeaderAndEpoch]] = {i: [] for i in ids}

    async def start(self, node_id: int, bootstrap: Configuration | None) -> QuorumNode:
        machine = self.machines[node_id] = Recorder()
        node = QuorumNode(node_id, self.root / f"node{node_id}", machine, bootstrap=bootstrap,
                          options=OPTIONS, seed=node_id,
                          on_leader_change=self.leader_changes[node_id].append)
        await node.start(listen=self.addresses[node_id])
        self.nodes[node_id] = node
        return node

    def configuration(self, ids) -> Configuration:
        return Configuration(tuple(Member(i, self.addresses[i]) for i in ids))

    async def kill(self, node_id: int) -> None:
        node = self.nodes.pop(node_id)
        await node.stop()
        assert node.failure is None, node.failure

    async def leader(self, exclude: int | None = None) -> QuorumNode:
        async def find() -> QuorumNode:
            while True:
                leaders = [n for i, n in self.nodes.items() if n.is_leader and i != exclude]
                if len(leaders) == 1:
                    return leaders[0]
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(find(), WAIT_S)

    async def propose(self, data: bytes) -> int:
        """Propose through whoever leads, retrying across leader changes."""
        async def attempt() -> int:
            while True:
                leader = await self.leader()
                try:
                    return await asyncio.wait_for(leader.propose(data), 2.0)
                except (NotLeader, TimeoutError):
                    await asyncio.sleep(0.05)

        return await asyncio.wait_for(attempt(), WAIT_S)

    async def converged(self, expected: list[bytes], ids=None) -> None:
        async def wait() -> None:
            while any(self.machines[i].commands != expected for i in (ids or self.nodes)):
                await asyncio.sleep(0.05)

        try:
            await asyncio.wait_for(wait(), WAIT_S)
        except TimeoutError:
            state = {i: self.machines[i].commands for i in (ids or self.nodes)}
            raise AssertionError(f"state machines did not converge on {expected}: {state}") from None

    async def stop_all(self) -> None:
        for node_id in list(self.nodes):
            await self.kill(node_id)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 120))


def test_three_voters_elect_replicate_and_survive_losing_the_leader(tmp_path):
    async def scenario() -> None:
        quorum = LocalQuorum(tmp_path, [1, 2, 3])
        voters = quorum.configuration([1, 2, 3])
        try:
            for node_id in (1, 2, 3):
                await quorum.start(node_id, voters)
            first = await quorum.leader()
            expected = [b"c%d" % n for n in range(20)]
            indexes = [await quorum.propose(c) for c in expected]
            assert indexes == sorted(indexes)
            await quorum.converged(expected)
            follower = next(n for n in quorum.nodes.values() if n is not first)
            with pytest.raises(NotLeader) as refused:
                await follower.propose(b"not here")
            assert refused.value.leader_id == first.node_id
            assert follower.leader == LeaderAndEpoch(first.node_id, first.leader.epoch)

            old_id, old_epoch = first.node_id, first.leader.epoch
            await quorum.kill(old_id)
            second = await quorum.leader(exclude=old_id)
            assert second.leader.epoch > old_epoch
            expected += [b"after-%d" % n for n in range(5)]
            for command in expected[20:]:
                await quorum.propose(command)
            await quorum.converged(expected)

            # The old leader comes back from its directory: snapshot + log, then catches up.
            await quorum.start(old_id, bootstrap=None)
            await quorum.converged(expected)
            assert quorum.nodes[old_id].leader.leader_id == second.node_id
            assert quorum.leader_changes[old_id][-1].leader_id == second.node_id
        finally:
            await quorum.stop_all()

    run(scenario())


def test_quorum_grows_from_one_voter_to_three_and_shrinks_back(tmp_path):
    async def scenario() -> None:
        quorum = LocalQuorum(tmp_path, [1, 2, 3])
        try:
            seed = await quorum.start(1, quorum.configuration([1]))
            await quorum.leader()
            expected = [b"alone-%d" % n for n in range(12)]  # past snapshot_threshold
            for command in expected:
                await quorum.propose(command)
            for node_id in (2, 3):
                await quorum.start(node_id, bootstrap=None)  # joins; knows no voters yet
                await seed.add_voter(node_id, quorum.addresses[node_id])
            assert seed.configuration.voters == {1, 2, 3}
            await quorum.converged(expected)
            assert quorum.machines[2].restores + quorum.machines[3].restores >= 1  # via snapshot
            for node in quorum.nodes.values():
                assert node.configuration.voters == {1, 2, 3}

            # The new voters are real voters: without node 1 they elect a leader and commit.
            await quorum.kill(1)
            await quorum.leader(exclude=1)
            expected.append(b"without-1")
            await quorum.propose(b"without-1")
            await quorum.converged(expected)

            # Shrink: remove the dead voter, then another, down to one.
            leader = await quorum.leader()
            await leader.remove_voter(1)
            other = next(i for i in quorum.nodes if i != leader.node_id)
            await leader.remove_voter(other)
            assert leader.configuration.voters == {leader.node_id}
            await quorum.kill(other)
            expected.append(b"alone-again")
            await quorum.propose(b"alone-again")
            await quorum.converged(expected, ids=[leader.node_id])
        finally:
            await quorum.stop_all()

    run(scenario())


def test_learner_follows_the_log_but_never_leads(tmp_path):
    async def scenario() -> None:
        quorum = LocalQuorum(tmp_path, [1, 2])
        try:
            voter = await quorum.start(1, quorum.configuration([1]))
            await quorum.leader()
            learner = await quorum.start(2, bootstrap=None)
            await voter.add_learner(2, quorum.addresses[2])
            await voter.add_learner(2, quorum.addresses[2])  # already a member: nothing to do
            assert voter.configuration.learners == {2} and voter.configuration.voters == {1}
            await quorum.propose(b"observed")
            await quorum.converged([b"observed"])
            await quorum.kill(1)
            await asyncio.sleep(3 * OPTIONS.election_timeout_ms / 1000)
            assert not learner.is_leader and learner.leader.leader_id in (None, 1)
        finally:
            await quorum.stop_all()

    run(scenario())


def test_health_service_and_bad_requests(tmp_path):
    async def scenario() -> None:
        quorum = LocalQuorum(tmp_path, [1])
        try:
            await quorum.start(1, quorum.configuration([1]))
            await quorum.leader()
            async with grpc.aio.insecure_channel(quorum.addresses[1]) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                for service in ("", SERVICE):
                    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
                    assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
                garbage = channel.unary_unary(f"/{SERVICE}/Vote")
                with pytest.raises(grpc.aio.AioRpcError) as error:
                    await garbage(b"\x01\x02not a message")
                assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert await quorum.propose(b"still fine") > 0
        finally:
            await quorum.stop_all()

    run(scenario())
