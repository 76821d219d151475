"""What the active controller decides, as metadata records. Pure.

Given the current MetadataImage and an event (a broker fenced or back, a leader
asking for an ISR change, a reassignment, a preferred-leader election), return the
records to append. Leaders are only ever chosen from the ISR unless unclean election
is allowed, so an acknowledged acks=all write is on every possible new leader.
"""

from __future__ import annotations

from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from . import records as r
from .image import MetadataImage, PartitionState

NO_LEADER = -1


def choose_leader(state: PartitionState, is_live, unclean: bool = False,
                  excluded: frozenset[int] = frozenset()) -> int:
    """The first live replica (in replica order) that is in the ISR; NO_LEADER if none."""
    for broker in state.target_replicas + tuple(b for b in state.replicas
                                                if b not in state.target_replicas):
        if broker in state.isr and broker not in excluded and is_live(broker):
            return broker
    if unclean:
        for broker in state.replicas:
            if broker not in excluded and is_live(broker):
                return broker
    return NO_LEADER


def _partitions(image: MetadataImage):
    for topic in image.topics.values():
        for index, state in topic.partitions.items():
            yield topic, index, state


def on_broker_fenced(image: MetadataImage, broker_id: int,
                     unclean_for=lambda topic: False) -> list:
    """Move leadership off a fenced broker and drop it from ISRs (never emptying one)."""
    changes = []

    def is_live(b):
        return b != broker_id and image.is_live(b)

    for topic, index, state in _partitions(image):
        if broker_id not in state.isr and state.leader != broker_id:
            continue
        isr = tuple(b for b in state.isr if b != broker_id) or state.isr
        leader = state.leader
        if state.leader == broker_id:
            probe = PartitionState(state.replicas, isr, NO_LEADER, state.leader_epoch,
                                   state.partition_epoch, state.adding, state.removing)
            leader = choose_leader(probe, is_live, unclean_for(topic.name))
            if leader != NO_LEADER and leader not in isr:  # unclean: the ISR restarts at it
                isr = (leader,)
        if isr != state.isr or leader != state.leader:
            changes.append(r.PartitionChange(topic.topic_id, index, isr=isr, leader=leader))
    return changes


def on_broker_unfenced(image: MetadataImage, broker_id: int,
                       unclean_for=lambda topic: False) -> list:
    """Give leaderless partitions a leader now that `broker_id` is back."""
    changes = []
    for topic, index, state in _partitions(image):
        if state.leader != NO_LEADER or broker_id not in state.replicas:
            continue
        leader = choose_leader(state, image.is_live, unclean_for(topic.name))
        if leader != NO_LEADER:
            isr = state.isr if leader in state.isr else (leader,)
            changes.append(r.PartitionChange(topic.topic_id, index, isr=isr, leader=leader))
    return changes


@dataclass(frozen=True)
class AlterPartitionRequest:
    broker_id: int
    topic_id: str
    partition: int
    leader_epoch: int
    partition_epoch: int
    new_isr: tuple[int, ...]


def alter_partition(image: MetadataImage, req: AlterPartitionRequest
                    ) -> tuple[ErrorCode, list]:
    """Validate a leader's ISR change (Kafka's AlterPartition rules) and record it."""
    topic = image.topic_by_id(req.topic_id)
    state = topic.partitions.get(req.partition) if topic else None
    if state is None:
        return ErrorCode.unknown_topic_or_partition, []
    if req.leader_epoch != state.leader_epoch:
        return ErrorCode.fenced_leader_epoch, []
    if req.broker_id != state.leader:
        return ErrorCode.not_leader_or_follower, []
    if req.partition_epoch != state.partition_epoch:
        return ErrorCode.invalid_update_version, []
    new_isr = tuple(sorted(set(req.new_isr), key=list(state.replicas).index)) \
        if set(req.new_isr) <= set(state.replicas) else None
    if new_isr is None or state.leader not in new_isr:
        return ErrorCode.invalid_request, []
    if any(b not in state.isr and not image.is_live(b) for b in new_isr):
        return ErrorCode.ineligible_replica, []
    proposed = PartitionState(state.replicas, new_isr, state.leader, state.leader_epoch,
                              state.partition_epoch, state.adding, state.removing)
    finish = complete_reassignment(topic.topic_id, req.partition, proposed, image.is_live)
    if finish is not None:
        return ErrorCode.none, [finish]
    return ErrorCode.none, [r.PartitionChange(topic.topic_id, req.partition, isr=new_isr)]


def start_reassignment(topic_id: str, partition: int, state: PartitionState,
                       target: tuple[int, ...], is_live) -> r.PartitionChange | None:
    """KIP-455: replicas become target + the old ones; the old ones leave once the new
    ones are all in the ISR. A target equal to the current replicas cancels."""
    original = tuple(b for b in state.replicas if b not in state.adding)
    if tuple(target) == original:
        return cancel_reassignment(topic_id, partition, state, is_live)
    adding = tuple(b for b in target if b not in original)
    removing = tuple(b for b in original if b not in target)
    replicas = tuple(target) + removing
    change = r.PartitionChange(topic_id, partition, replicas=replicas, adding=adding,
                               removing=removing)
    if not adding:  # nothing to copy: only a reorder or a shrink, finish at once
        proposed = PartitionState(replicas, state.isr, state.leader, state.leader_epoch,
                                  state.partition_epoch, adding, removing)
        return complete_reassignment(topic_id, partition, proposed, is_live) or change
    return change


def complete_reassignment(topic_id: str, partition: int, state: PartitionState,
                          is_live) -> r.PartitionChange | None:
    """The final switch, once every added replica has caught up (is in the ISR)."""
    if not state.reassigning or not set(state.adding) <= set(state.isr):
        return None
    target = state.target_replicas
    isr = tuple(b for b in state.isr if b in target)
    leader = state.leader
    if leader not in target or not isr:
        probe = PartitionState(target, isr or (target[0],), NO_LEADER, state.leader_epoch,
                               state.partition_epoch)
        leader = choose_leader(probe, is_live)
        isr = isr or ((leader,) if leader != NO_LEADER else ())
    return r.PartitionChange(topic_id, partition, replicas=target, isr=isr, leader=leader,
                             adding=(), removing=(), bump_leader_epoch=True)


def cancel_reassignment(topic_id: str, partition: int, state: PartitionState,
                        is_live) -> r.PartitionChange | None:
    if not state.reassigning:
        return None
    original = tuple(b for b in state.replicas if b not in state.adding)
    isr = tuple(b for b in state.isr if b in original) or state.isr
    leader = state.leader
    if leader not in original:
        probe = PartitionState(original, isr, NO_LEADER, state.leader_epoch,
                               state.partition_epoch)
        leader = choose_leader(probe, is_live)
    return r.PartitionChange(topic_id, partition, replicas=original, isr=isr, leader=leader,
                             adding=(), removing=(), bump_leader_epoch=True)


def preferred_leader_change(topic_id: str, partition: int, state: PartitionState,
                            is_live) -> tuple[ErrorCode, r.PartitionChange | None]:
    """ElectLeaders(PREFERRED): move leadership to the first replica if it can lead."""
    preferred = state.replicas[0]
    if state.leader == preferred:
        return ErrorCode.election_not_needed, None
    if preferred not in state.isr or not is_live(preferred):
        return ErrorCode.preferred_leader_not_available, None
    return ErrorCode.none, r.PartitionChange(topic_id, partition, leader=preferred)
