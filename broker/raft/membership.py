"""Who is in the quorum: voters and learners, each with the address peers reach it at.

Changes are single-server (Raft thesis §4.1): each new configuration differs from
the previous one by one member, so any majority of the old voters overlaps any
majority of the new ones and no joint consensus is needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property


class InvalidConfigurationChange(ValueError):
    """The requested change is not a single-server change of the current configuration."""


@dataclass(frozen=True, slots=True)
class Member:
    node_id: int
    address: str = ""  # "host:port" of its gRPC listener; opaque to the Raft core
    voter: bool = True


@dataclass(frozen=True)
class Configuration:
    members: tuple[Member, ...] = ()

    def __post_init__(self) -> None:
        ids = [member.node_id for member in self.members]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate node ids in configuration: {sorted(ids)}")
        ordered = tuple(sorted(self.members, key=lambda member: member.node_id))
        object.__setattr__(self, "members", ordered)

    @classmethod
    def of_voters(cls, voters: Iterable[int | Member]) -> Configuration:
        return cls(tuple(v if isinstance(v, Member) else Member(v) for v in voters))

    @cached_property
    def voters(self) -> frozenset[int]:
        return frozenset(member.node_id for member in self.members if member.voter)

    @cached_property
    def learners(self) -> frozenset[int]:
        return frozenset(member.node_id for member in self.members if not member.voter)

    @cached_property
    def node_ids(self) -> frozenset[int]:
        return frozenset(member.node_id for member in self.members)

    @property
    def quorum(self) -> int:
        """Votes (or replicas) that make a majority of the voters."""
        return len(self.voters) // 2 + 1

    def member(self, node_id: int) -> Member | None:
        for member in self.members:
            if member.node_id == node_id:
                return member
        return None

    def address(self, node_id: int) -> str | None:
        member = self.member(node_id)
        return member.address if member else None

    def with_learner(self, member: Member) -> Configuration:
        if member.node_id in self.node_ids:
            raise InvalidConfigurationChange(f"node {member.node_id} is already a member")
        return Configuration((*self.members, Member(member.node_id, member.address, voter=False)))

    def with_promoted(self, node_id: int) -> Configuration:
        if node_id not in self.learners:
            raise InvalidConfigurationChange(f"node {node_id} is not a learner")
        return Configuration(tuple(
            Member(m.node_id, m.address, voter=True) if m.node_id == node_id else m
            for m in self.members))

    def without(self, node_id: int) -> Configuration:
        if node_id not in self.node_ids:
            raise InvalidConfigurationChange(f"node {node_id} is not a member")
        if self.voters == {node_id}:
            raise InvalidConfigurationChange("cannot remove the last voter")
        return Configuration(tuple(m for m in self.members if m.node_id != node_id))
