"""Where a follower cuts its log after asking the leader OffsetForLeaderEpoch (KIP-279).

Pure: the inputs are the leader's answer and the follower's own epoch cache, end offset
and high watermark; the output is the offset to truncate to and whether the follower is
done or must ask again. Kafka's rule (AbstractFetcherThread.getOffsetTruncationState):

- the leader (or the follower) has no epochs at all: cut to the high watermark;
- the leader answers with an epoch the follower also has: cut to the smaller of the
  two end offsets for that epoch (each side may hold a tail the other lacks);
- the leader answers with an epoch the follower never had: cut to where the follower's
  own largest epoch below it ends and ask again with that epoch, since the logs may
  already have diverged earlier.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..storage.leader_epochs import UNDEFINED, LeaderEpochCache


@dataclass(frozen=True)
class Truncation:
    offset: int  # truncate the log to this end offset (no-op when >= the log end offset)
    completed: bool  # False: ask OffsetForLeaderEpoch again with the new latest epoch


def decide_truncation(leader_epoch: int, leader_end_offset: int, local: LeaderEpochCache,
                      log_end_offset: int, high_watermark: int) -> Truncation:
    """leader_epoch / leader_end_offset: the OffsetForLeaderEpoch answer for the
    follower's latest epoch."""
    if leader_end_offset == UNDEFINED:
        return Truncation(min(high_watermark, log_end_offset), True)
    if leader_epoch == UNDEFINED:
        # an answer without an epoch (pre-epoch leader): its end offset is all we have
        return Truncation(min(leader_end_offset, log_end_offset), True)
    local_epoch, local_end = local.end_offset_for(leader_epoch, log_end_offset)
    if local_epoch == UNDEFINED:
        # no local epochs at all: only the committed part is known to be safe
        return Truncation(min(high_watermark, log_end_offset), True)
    if local_epoch == leader_epoch:
        return Truncation(min(local_end, leader_end_offset, log_end_offset), True)
    if local_end >= log_end_offset:
        # our own latest epoch is below the leader's answer, which a leader answering
        # with the largest epoch <= the one asked never does; do not ask forever
        return Truncation(min(leader_end_offset, log_end_offset), True)
    return Truncation(local_end, False)
