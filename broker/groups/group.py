"""One classic consumer group: Kafka's rebalance state machine (pure, no I/O).

Follows Apache Kafka's group coordinator (`ClassicGroup`, `GroupMetadataManager`)
rule for rule, including its error codes, so clients see exactly what a Kafka
broker would tell them:

    Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
      ^                   ^      ^                                      |
      |                   |      +------ member joins/leaves/dies ------+ leader's SyncGroup
      +-- last member ----+                                              v
          gone                 <----------- member joins/leaves/dies -- Stable

The broker is assignment-agnostic: members' protocol metadata and the leader's
assignments are opaque bytes, so eager and cooperative ("cooperative-sticky")
clients both work; cooperative clients simply run a second rebalance.

Time never comes from a clock here: every method takes `now` (ms) and the group
exposes `next_deadline()`; the coordinator calls `tick(now)` when it is due.
Requests that must wait (JoinGroup until the rebalance completes, SyncGroup until
the leader's assignment arrives) are parked under a `token` the caller chooses;
their responses appear in `completions` as (token, response dict) once ready.
Response dicts use kio's field names. When `store_requested` is set, the caller
persists `to_value()` to `__consumer_offsets` before delivering the completions.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from .log_format import GroupValue, MemberValue
from .subscription import CONSUMER_PROTOCOL_TYPE, subscribed_topics

log = logging.getLogger("brook.groups")

# Kafka's group.coordinator new-member join timeout: a new member parked in a
# JoinGroup is dropped after this long even though it is "awaiting join".
NEW_MEMBER_JOIN_TIMEOUT_MS = 300_000
UNKNOWN_MEMBER_ID = ""


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True)
class GroupSettings:
    initial_rebalance_delay_ms: int = 3000
    max_size: int = 2**31 - 1


@dataclass(frozen=True)
class JoinRequest:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    # JoinGroup v4+: a new dynamic member is first given an id (MEMBER_ID_REQUIRED).
    require_known_member_id: bool = True
    # JoinGroup v9+ (KIP-814): a rejoining static leader may be told to skip assignment.
    supports_skip_assignment: bool = False


@dataclass
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    assignment: bytes = b""
    join_token: object | None = None
    sync_token: object | None = None
    heartbeat_deadline_ms: int = 0
    is_new: bool = False

    @property
    def awaiting_join(self) -> bool:
        return self.join_token is not None

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_token is not None

    def metadata_for(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def matches(self, protocols: tuple[tuple[str, bytes], ...]) -> bool:
        return tuple(self.protocols) == tuple(protocols)

    def vote(self, candidates: set[str]) -> str:
        return next(name for name in self.protocol_names() if name in candidates)

    def has_satisfied_heartbeat(self) -> bool:
        """Members parked in a rebalance need not heartbeat (new members excepted)."""
        if self.is_new:
            return False
        return self.awaiting_join or self.awaiting_sync


def join_error(member_id: str, error: ErrorCode) -> dict:
    return {"error_code": error, "generation_id": -1, "protocol_type": None,
            "protocol_name": None, "leader": "", "skip_assignment": False,
            "member_id": member_id, "members": []}


def sync_error(error: ErrorCode) -> dict:
    return {"error_code": error, "protocol_type": None, "protocol_name": None,
            "assignment": b""}


class ClassicGroup:
    def __init__(self, group_id: str, now_ms: int,
                 settings: GroupSettings | None = None) -> None:
        self.group_id = group_id
        self.settings = settings or GroupSettings()
        self.state = GroupState.EMPTY
        self.previous_state = GroupState.EMPTY
        self.state_timestamp_ms = now_ms
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.generation = 0
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        self.static_members: dict[str, str] = {}
        self.pending_members: dict[str, int] = {}  # member id -> expiry (MEMBER_ID_REQUIRED)
        self.pending_sync: set[str] = set()
        self.subscribed: frozenset[str] | None = None
        self.new_member_added = False
        self.join_deadline_ms: int | None = None
        self._initial_join: tuple[int, int] | None = None  # (delay, remaining) while delayed
        self.sync_deadline_ms: int | None = None
        self.completions: list[tuple[object, dict]] = []
        self.store_requested = False
        self.id_factory: Callable[[], str] = lambda: str(uuid.uuid4())

    # ------------------------------------------------------------------ queries

    def is_in(self, *states: GroupState) -> bool:
        return self.state in states

    @property
    def is_simple(self) -> bool:
        """A group that only ever received offset commits (no protocol type)."""
        return self.protocol_type is None or self.protocol_type == ""

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def has_all_members_joined(self) -> bool:
        return (all(m.awaiting_join for m in self.members.values())
                and not self.pending_members)

    def candidate_protocols(self) -> set[str]:
        names: set[str] | None = None
        for member in self.members.values():
            member_names = set(member.protocol_names())
            names = member_names if names is None else names & member_names
        return names or set()

    def supports_protocols(self, protocol_type: str, names: Iterable[str]) -> bool:
        names = set(names)
        if self.state == GroupState.EMPTY:
            return bool(protocol_type) and bool(names)
        return self.protocol_type == protocol_type and bool(names & self.candidate_protocols())

    def select_protocol(self) -> str:
        candidates = self.candidate_protocols()
        votes: dict[str, int] = {}
        for member in self.members.values():
            choice = member.vote(candidates)
            votes[choice] = votes.get(choice, 0) + 1
        return max(votes, key=lambda name: votes[name])  # ties: the first voted wins

    def is_subscribed_to(self, topic: str) -> bool:
        if self.subscribed is not None:
            return topic in self.subscribed
        return self.protocol_type == CONSUMER_PROTOCOL_TYPE

    def _compute_subscribed(self) -> frozenset[str] | None:
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return None
        if not self.members:
            return frozenset()
        if self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            found = subscribed_topics(member.metadata_for(self.protocol_name))
            if found is None:
                return None
            topics |= found
        return frozenset(topics)

    def _fenced(self, member_id: str, group_instance_id: str | None) -> ErrorCode:
        """Kafka's validateMember: static identity first, then the member id."""
        if group_instance_id is not None:
            existing = self.static_members.get(group_instance_id)
            if existing is None:
                return ErrorCode.unknown_member_id
            if existing != member_id:
                return ErrorCode.fenced_instance_id
        if member_id not in self.members:
            return ErrorCode.unknown_member_id
        return ErrorCode.none

    def current_members_for_leader(self) -> list[dict]:
        return [{"member_id": m.member_id, "group_instance_id": m.group_instance_id,
                 "metadata": m.metadata_for(self.protocol_name)} for m in self.members.values()]

    def _join_response(self, member: Member, leader: str | None = None,
                       with_members: bool | None = None, skip_assignment: bool = False) -> dict:
        is_leader = member.member_id == self.leader_id
        if with_members is None:
            with_members = is_leader
        return {"error_code": ErrorCode.none, "generation_id": self.generation,
                "protocol_type": self.protocol_type, "protocol_name": self.protocol_name,
                "leader": self.leader_id if leader is None else leader,
                "skip_assignment": skip_assignment, "member_id": member.member_id,
                "members": self.current_members_for_leader() if with_members else []}

    # ------------------------------------------------------------------ transitions

    def _transition(self, state: GroupState, now: int) -> None:
        log.debug("group %s: %s -> %s (generation %d, members %s)", self.group_id,
                  self.state.value, state.value, self.generation, list(self.members))
        self.previous_state = self.state
        self.state = state
        self.state_timestamp_ms = now

    def _complete(self, token: object | None, response: dict) -> None:
        if token is not None:
            self.completions.append((token, response))

    def _complete_join(self, member: Member, response: dict) -> bool:
        if member.join_token is None:
            return False
        self._complete(member.join_token, response)
        member.join_token = None
        return True

    def _complete_sync(self, member: Member, response: dict) -> bool:
        if member.sync_token is None:
            return False
        self._complete(member.sync_token, response)
        member.sync_token = None
        return True

    def _reschedule_heartbeat(self, member: Member, now: int, timeout_ms: int | None = None) -> None:
        member.heartbeat_deadline_ms = now + (member.session_timeout_ms if timeout_ms is None
                                              else timeout_ms)

    def _add(self, member: Member) -> None:
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.pending_members.pop(member.member_id, None)

    def _remove(self, member_id: str) -> None:
        member = self.members.pop(member_id, None)
        if member is not None and member.group_instance_id is not None:
            if self.static_members.get(member.group_instance_id) == member_id:
                del self.static_members[member.group_instance_id]
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        self.pending_members.pop(member_id, None)
        self.pending_sync.discard(member_id)

    def _can_rebalance(self) -> bool:
        return self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE,
                              GroupState.EMPTY)

    def _maybe_prepare_rebalance_or_complete_join(self, now: int) -> None:
        if self._can_rebalance():
            self._prepare_rebalance(now)
        else:
            self._maybe_complete_join_phase(now)

    def _prepare_rebalance(self, now: int) -> None:
        if self.state == GroupState.COMPLETING_REBALANCE:
            self._reset_and_propagate_assignment_error(ErrorCode.rebalance_in_progress, now)
        self.pending_sync.clear()
        self.sync_deadline_ms = None
        initial = self.state == GroupState.EMPTY
        self._transition(GroupState.PREPARING_REBALANCE, now)
        if initial:
            delay = self.settings.initial_rebalance_delay_ms
            remaining = max(self.rebalance_timeout_ms() - delay, 0)
            self._initial_join = (delay, remaining)
            self.join_deadline_ms = now + delay
            if delay <= 0:
                self._try_complete_initial_rebalance(now)
            return
        self._initial_join = None
        if self.has_all_members_joined():
            self._complete_join_phase(now)
        else:
            self.join_deadline_ms = now + self.rebalance_timeout_ms()

    def _try_complete_initial_rebalance(self, now: int) -> None:
        assert self._initial_join is not None
        delay, remaining = self._initial_join
        if self.new_member_added and remaining != 0:
            self.new_member_added = False
            new_delay = min(self.settings.initial_rebalance_delay_ms, remaining)
            self._initial_join = (new_delay, max(remaining - delay, 0))
            self.join_deadline_ms = now + new_delay
        else:
            self._complete_join_phase(now)

    def _maybe_complete_join_phase(self, now: int) -> None:
        if self.state != GroupState.PREPARING_REBALANCE:
            return
        if self.previous_state == GroupState.EMPTY:
            return  # the initial rebalance waits for its delay
        if self.has_all_members_joined():
            self._complete_join_phase(now)

    def _complete_join_phase(self, now: int) -> None:
        self.join_deadline_ms = None
        self._initial_join = None
        for member in list(self.members.values()):
            if not member.awaiting_join and member.group_instance_id is None:
                self._remove(member.member_id)
        if self.state == GroupState.DEAD:
            return
        if self.members and not self._elect_joined_leader():
            # Only static members that did not rejoin remain: wait for their sessions.
            self.join_deadline_ms = now + self.rebalance_timeout_ms()
            return
        self.generation += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.subscribed = self._compute_subscribed()
            self._transition(GroupState.COMPLETING_REBALANCE, now)
        else:
            self.protocol_name = None
            self.subscribed = self._compute_subscribed()
            self._transition(GroupState.EMPTY, now)
        self.pending_sync.clear()
        if self.state == GroupState.EMPTY:
            self.store_requested = True
            return
        for member in self.members.values():
            self._complete_join(member, self._join_response(member))
            self._reschedule_heartbeat(member, now)
            member.is_new = False
            self.pending_sync.add(member.member_id)
        self.sync_deadline_ms = now + self.rebalance_timeout_ms()

    def _elect_joined_leader(self) -> bool:
        if self.leader_id is None:
            return False
        leader = self.members.get(self.leader_id)
        if leader is not None and leader.awaiting_join:
            return True
        for member in self.members.values():
            if member.awaiting_join:
                self.leader_id = member.member_id
                return True
        return False

    def _reset_and_propagate_assignment_error(self, error: ErrorCode, now: int) -> None:
        for member in self.members.values():
            member.assignment = b""
        self._propagate_assignment(error, now)

    def _propagate_assignment(self, error: ErrorCode, now: int) -> None:
        ok = error == ErrorCode.none
        for member in self.members.values():
            response = {"error_code": error,
                        "protocol_type": self.protocol_type if ok else None,
                        "protocol_name": self.protocol_name if ok else None,
                        "assignment": member.assignment}
            if self._complete_sync(member, response):
                # Sessions restart once the member has its answer.
                self._reschedule_heartbeat(member, now)

    def _remove_member_and_update(self, member: Member, now: int) -> None:
        self._complete_join(member, join_error(UNKNOWN_MEMBER_ID, ErrorCode.unknown_member_id))
        self._complete_sync(member, sync_error(ErrorCode.unknown_member_id))
        self._remove(member.member_id)
        if self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance_or_complete_join(now)
        elif self.state == GroupState.PREPARING_REBALANCE and self.has_all_members_joined():
            self._complete_join_phase(now)

    # ------------------------------------------------------------------ JoinGroup

    def join(self, now: int, token: object, request: JoinRequest) -> dict | None:
        """Returns the response at once, or None if it will come through `completions`."""
        member_id = request.member_id
        if not self._accept_joining_member(member_id):
            self._remove(member_id)
            return join_error(UNKNOWN_MEMBER_ID, ErrorCode.group_max_size_reached)
        if member_id == UNKNOWN_MEMBER_ID:
            return self._join_new_member(now, token, request)
        return self._join_existing_member(now, token, request)

    def _accept_joining_member(self, member_id: str) -> bool:
        limit = self.settings.max_size
        if self.state in (GroupState.EMPTY, GroupState.DEAD):
            return True
        if self.state == GroupState.PREPARING_REBALANCE:
            member = self.members.get(member_id)
            awaiting = sum(1 for m in self.members.values() if m.awaiting_join)
            return (member is not None and member.awaiting_join) or awaiting < limit
        return member_id in self.members or len(self.members) < limit

    def _join_new_member(self, now: int, token: object, request: JoinRequest) -> dict | None:
        if self.state == GroupState.DEAD:
            return join_error(UNKNOWN_MEMBER_ID, ErrorCode.coordinator_not_available)
        names = [name for name, _ in request.protocols]
        if not self.supports_protocols(request.protocol_type, names):
            return join_error(UNKNOWN_MEMBER_ID, ErrorCode.inconsistent_group_protocol)
        prefix = request.group_instance_id if request.group_instance_id is not None \
            else request.client_id
        new_id = f"{prefix}-{self.id_factory()}"
        if request.group_instance_id is not None:
            existing = self.static_members.get(request.group_instance_id)
            if existing is not None:
                return self._update_static_member(now, token, request, existing, new_id)
            return self._add_member_and_rebalance(now, token, request, new_id)
        if request.require_known_member_id:
            self.pending_members[new_id] = now + request.session_timeout_ms
            return join_error(new_id, ErrorCode.member_id_required)
        return self._add_member_and_rebalance(now, token, request, new_id)

    def _join_existing_member(self, now: int, token: object,
                              request: JoinRequest) -> dict | None:
        member_id = request.member_id
        if self.state == GroupState.DEAD:
            return join_error(member_id, ErrorCode.coordinator_not_available)
        names = [name for name, _ in request.protocols]
        if not self.supports_protocols(request.protocol_type, names):
            return join_error(member_id, ErrorCode.inconsistent_group_protocol)
        if member_id in self.pending_members:
            return self._add_member_and_rebalance(now, token, request, member_id)
        error = self._fenced(member_id, request.group_instance_id)
        if error != ErrorCode.none:
            return join_error(member_id, error)
        member = self.members[member_id]
        if self.state == GroupState.PREPARING_REBALANCE:
            return self._update_member_and_rebalance(now, token, member, request)
        if self.state == GroupState.COMPLETING_REBALANCE:
            if member.matches(request.protocols):
                # It lost the JoinGroup response: give it the current generation again.
                return self._join_response(member)
            return self._update_member_and_rebalance(now, token, member, request)
        if self.state == GroupState.STABLE:
            if member_id == self.leader_id or not member.matches(request.protocols):
                return self._update_member_and_rebalance(now, token, member, request)
            return self._join_response(member, with_members=False)
        return join_error(member_id, ErrorCode.unknown_member_id)  # Empty: stale member

    def _add_member_and_rebalance(self, now: int, token: object, request: JoinRequest,
                                  member_id: str) -> None:
        member = Member(member_id, request.group_instance_id, request.client_id,
                        request.client_host, request.session_timeout_ms,
                        request.rebalance_timeout_ms, request.protocol_type,
                        tuple(request.protocols), join_token=token, is_new=True)
        if (self.state == GroupState.PREPARING_REBALANCE
                and self.previous_state == GroupState.EMPTY):
            self.new_member_added = True
        self._add(member)
        # New members cannot heartbeat yet; a parked JoinGroup times out after 5 minutes.
        self._reschedule_heartbeat(member, now, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance_or_complete_join(now)
        return None

    def _update_member(self, member: Member, request: JoinRequest, token: object | None) -> None:
        member.protocols = tuple(request.protocols)
        member.rebalance_timeout_ms = request.rebalance_timeout_ms
        member.session_timeout_ms = request.session_timeout_ms
        if member.join_token is not None and token is not None and member.join_token != token:
            # A second JoinGroup for the same member: the older request gives way.
            self._complete(member.join_token,
                           join_error(member.member_id, ErrorCode.rebalance_in_progress))
        member.join_token = token

    def _update_member_and_rebalance(self, now: int, token: object, member: Member,
                                     request: JoinRequest) -> None:
        self._update_member(member, request, token)
        self._maybe_prepare_rebalance_or_complete_join(now)
        return None

    def _replace_static_member(self, instance_id: str, old_id: str, new_id: str) -> Member:
        member = self.members.pop(old_id)
        # Fence a duplicate instance still waiting on the old id.
        self._complete_join(member, {**join_error(old_id, ErrorCode.fenced_instance_id),
                                     "generation_id": -1})
        self._complete_sync(member, sync_error(ErrorCode.fenced_instance_id))
        member.member_id = new_id
        self.members[new_id] = member
        if self.leader_id == old_id:
            self.leader_id = new_id
        self.static_members[instance_id] = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        return member

    def _update_static_member(self, now: int, token: object, request: JoinRequest,
                              old_id: str, new_id: str) -> dict | None:
        current_leader = self.leader_id
        member = self._replace_static_member(request.group_instance_id or "", old_id, new_id)
        self._reschedule_heartbeat(member, now)
        self._update_member(member, request, token)
        if self.state == GroupState.STABLE:
            if self.protocol_name == self.select_protocol():
                # Nothing the assignment depends on changed: no rebalance, just persist
                # the new member id and answer with the current generation.
                member.join_token = None
                self.store_requested = True
                if request.supports_skip_assignment:
                    is_leader = self.leader_id == new_id
                    return self._join_response(member, with_members=is_leader,
                                               skip_assignment=is_leader)
                # The old leader id: a rejoining static leader must not reassign a
                # Stable group (its assignment would never be propagated).
                return self._join_response(member, leader=current_leader or "",
                                           with_members=False)
            self._maybe_prepare_rebalance_or_complete_join(now)
            return None
        if self.state == GroupState.COMPLETING_REBALANCE:
            # The leader may be assigning to the old member id: start over.
            self._prepare_rebalance(now)
            return None
        self._maybe_complete_join_phase(now)
        return None

    # ------------------------------------------------------------------ SyncGroup

    def sync(self, now: int, token: object, member_id: str, group_instance_id: str | None,
             generation_id: int, protocol_type: str | None, protocol_name: str | None,
             assignments: dict[str, bytes]) -> dict | None:
        if self.state == GroupState.DEAD:
            return sync_error(ErrorCode.coordinator_not_available)
        if self.state == GroupState.EMPTY:
            return sync_error(ErrorCode.unknown_member_id)
        error = self._fenced(member_id, group_instance_id)
        if error != ErrorCode.none:
            return sync_error(error)
        if generation_id != self.generation:
            return sync_error(ErrorCode.illegal_generation)
        if ((protocol_type is not None and protocol_type != self.protocol_type)
                or (protocol_name is not None and protocol_name != self.protocol_name)):
            return sync_error(ErrorCode.inconsistent_group_protocol)
        if self.state == GroupState.PREPARING_REBALANCE:
            return sync_error(ErrorCode.rebalance_in_progress)
        member = self.members[member_id]
        if self.state == GroupState.COMPLETING_REBALANCE:
            if member.sync_token is not None and member.sync_token != token:
                self._complete(member.sync_token, sync_error(ErrorCode.rebalance_in_progress))
            member.sync_token = token
            self._remove_pending_sync(member_id)
            if member_id == self.leader_id:
                for m in self.members.values():
                    m.assignment = assignments.get(m.member_id, b"")
                self.store_requested = True
                self._propagate_assignment(ErrorCode.none, now)
                self._transition(GroupState.STABLE, now)
            return None
        # Stable: hand out the current assignment.
        self._remove_pending_sync(member_id)
        self._reschedule_heartbeat(member, now)
        return {"error_code": ErrorCode.none, "protocol_type": self.protocol_type,
                "protocol_name": self.protocol_name, "assignment": member.assignment}

    def _remove_pending_sync(self, member_id: str) -> None:
        self.pending_sync.discard(member_id)
        if not self.pending_sync:
            self.sync_deadline_ms = None

    def assignment_not_stored(self, now: int, error: ErrorCode) -> None:
        """The write of the leader's assignment failed: members must rejoin.

        Call before delivering `completions`; sync responses already queued are
        turned into `error`.
        """
        self.completions = [(token, sync_error(error) if "assignment" in response else response)
                            for token, response in self.completions]
        for member in self.members.values():
            member.assignment = b""
        if self.state == GroupState.STABLE:
            self._transition(GroupState.COMPLETING_REBALANCE, now)
        self._maybe_prepare_rebalance_or_complete_join(now)

    # ------------------------------------------------------------------ Heartbeat

    def heartbeat(self, now: int, member_id: str, group_instance_id: str | None,
                  generation_id: int) -> ErrorCode:
        if self.state == GroupState.DEAD:
            return ErrorCode.coordinator_not_available
        error = self._fenced(member_id, group_instance_id)
        if error != ErrorCode.none:
            return error
        if generation_id != self.generation:
            return ErrorCode.illegal_generation
        if self.state == GroupState.EMPTY:
            return ErrorCode.unknown_member_id
        self._reschedule_heartbeat(self.members[member_id], now)
        if self.state == GroupState.PREPARING_REBALANCE:
            return ErrorCode.rebalance_in_progress
        return ErrorCode.none

    # ------------------------------------------------------------------ LeaveGroup

    def leave(self, now: int, leaving: list[tuple[str, str | None]]) -> list[ErrorCode]:
        """Remove members (member id, group instance id); one error per member.

        The caller answers COORDINATOR_NOT_AVAILABLE for the whole request on a Dead group.
        """
        errors = []
        removed = False
        for member_id, instance_id in leaving:
            if member_id == UNKNOWN_MEMBER_ID:
                # Administrative removal by group.instance.id.
                existing = self.static_members.get(instance_id) if instance_id else None
                if existing is None:
                    errors.append(ErrorCode.unknown_member_id)
                    continue
                self._remove_current_member(self.members[existing])
                removed = True
                errors.append(ErrorCode.none)
            elif member_id in self.pending_members:
                self._remove(member_id)
                errors.append(ErrorCode.none)
            else:
                error = self._fenced(member_id, instance_id)
                if error == ErrorCode.none:
                    self._remove_current_member(self.members[member_id])
                    removed = True
                errors.append(error)
        if removed:
            if self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(now)
            elif self.state == GroupState.PREPARING_REBALANCE:
                self._maybe_complete_join_phase(now)
        return errors

    def _remove_current_member(self, member: Member) -> None:
        self._complete_join(member, join_error(UNKNOWN_MEMBER_ID, ErrorCode.unknown_member_id))
        self._complete_sync(member, sync_error(ErrorCode.unknown_member_id))
        self._remove(member.member_id)

    # ------------------------------------------------------------------ offsets

    def validate_offset_commit(self, now: int, member_id: str, group_instance_id: str | None,
                               generation_id: int) -> ErrorCode:
        if self.state == GroupState.DEAD:
            return ErrorCode.coordinator_not_available
        if generation_id < 0 and self.state == GroupState.EMPTY:
            return ErrorCode.none  # admin client or manual assignment: a simple commit
        if generation_id >= 0 or member_id or group_instance_id is not None:
            error = self._fenced(member_id, group_instance_id)
            if error != ErrorCode.none:
                return error
            if generation_id != self.generation:
                return ErrorCode.illegal_generation
        elif self.state != GroupState.EMPTY:
            return ErrorCode.unknown_member_id
        if self.state == GroupState.COMPLETING_REBALANCE:
            return ErrorCode.rebalance_in_progress
        if self.state in (GroupState.STABLE, GroupState.PREPARING_REBALANCE):
            member = self.members.get(member_id)
            if member is not None:
                self._reschedule_heartbeat(member, now)  # commits keep the session alive
        return ErrorCode.none

    # ------------------------------------------------------------------ timers

    def _heartbeat_expired(self, member: Member, now: int) -> bool:
        return now >= member.heartbeat_deadline_ms and not member.has_satisfied_heartbeat()

    def next_deadline(self) -> int | None:
        deadlines = list(self.pending_members.values())
        if self.join_deadline_ms is not None:
            deadlines.append(self.join_deadline_ms)
        if self.sync_deadline_ms is not None:
            deadlines.append(self.sync_deadline_ms)
        for member in self.members.values():
            if not member.has_satisfied_heartbeat():
                deadlines.append(member.heartbeat_deadline_ms)
        return min(deadlines, default=None)

    def tick(self, now: int) -> None:
        """Run every timer that is due at `now`."""
        if self.state == GroupState.DEAD:
            return
        for member_id, deadline in list(self.pending_members.items()):
            if now >= deadline and member_id in self.pending_members:
                self._remove(member_id)
                if (self.state == GroupState.PREPARING_REBALANCE
                        and self.has_all_members_joined()):
                    self._complete_join_phase(now)
        for member in list(self.members.values()):
            if member.member_id in self.members and self._heartbeat_expired(member, now):
                self._remove_member_and_update(member, now)
        if (self.state == GroupState.PREPARING_REBALANCE and self.join_deadline_ms is not None
                and now >= self.join_deadline_ms):
            if self._initial_join is not None:
                self._try_complete_initial_rebalance(now)
            else:
                self._complete_join_phase(now)
        if self.sync_deadline_ms is not None and now >= self.sync_deadline_ms:
            self.sync_deadline_ms = None
            if (self.state in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE)
                    and self.pending_sync):
                for member_id in list(self.pending_sync):
                    member = self.members.get(member_id)
                    if member is not None:
                        self._remove_current_member(member)
                self.pending_sync.clear()
                self._prepare_rebalance(now)

    # ------------------------------------------------------------------ admin

    def mark_dead(self, now: int,
                  error: ErrorCode = ErrorCode.coordinator_not_available) -> None:
        """The group is deleted (or served elsewhere now, NOT_COORDINATOR): every parked
        request learns the coordinator moved on."""
        for member in self.members.values():
            self._complete_join(member, join_error(member.member_id, error))
            self._complete_sync(member, sync_error(error))
        self._transition(GroupState.DEAD, now)

    def describe(self) -> dict:
        stable = self.state == GroupState.STABLE
        members = []
        for m in self.members.values():
            members.append({
                "member_id": m.member_id, "group_instance_id": m.group_instance_id,
                "client_id": m.client_id, "client_host": m.client_host,
                "member_metadata": m.metadata_for(self.protocol_name) if stable else b"",
                "member_assignment": m.assignment if stable else b"",
            })
        return {"error_code": ErrorCode.none, "group_id": self.group_id,
                "group_state": self.state.value, "protocol_type": self.protocol_type or "",
                "protocol_data": (self.protocol_name or "") if stable else "",
                "members": members}

    # ------------------------------------------------------------------ persistence

    def to_value(self) -> GroupValue:
        return GroupValue(
            protocol_type=self.protocol_type or "",
            generation=self.generation,
            protocol=self.protocol_name,
            leader=self.leader_id,
            current_state_timestamp=self.state_timestamp_ms,
            members=tuple(MemberValue(m.member_id, m.group_instance_id, m.client_id,
                                      m.client_host, m.rebalance_timeout_ms,
                                      m.session_timeout_ms, m.metadata_for(self.protocol_name),
                                      m.assignment) for m in self.members.values()),
        )

    @classmethod
    def from_value(cls, group_id: str, value: GroupValue, now_ms: int,
                   settings: GroupSettings | None = None) -> ClassicGroup:
        """A group as Kafka loads it: Stable if it has members (each gets a fresh session)."""
        group = cls(group_id, now_ms, settings)
        group.protocol_type = value.protocol_type or None
        group.generation = value.generation
        group.protocol_name = value.protocol
        group.leader_id = value.leader
        if value.current_state_timestamp >= 0:
            group.state_timestamp_ms = value.current_state_timestamp
        for m in value.members:
            member = Member(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                            m.session_timeout, m.rebalance_timeout, value.protocol_type,
                            ((value.protocol or "", m.subscription),), m.assignment)
            member.heartbeat_deadline_ms = now_ms + m.session_timeout
            group.members[m.member_id] = member
            if m.group_instance_id is not None:
                group.static_members[m.group_instance_id] = m.member_id
        if group.members:
            group.state = GroupState.STABLE
            if group.leader_id not in group.members:
                group.leader_id = next(iter(group.members))
        group.subscribed = group._compute_subscribed()
        return group
