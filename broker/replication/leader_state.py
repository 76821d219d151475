"""A partition leader's view of its followers: high watermark and ISR changes. Pure.

Kafka's rules: a follower is caught up when a fetch asks for an offset at or past the
leader's log end offset as it was at that fetch (or at the previous one). The high
watermark is the smallest log end offset over the "maximal" ISR — the committed ISR
plus members whose addition or removal is still in flight — so it never runs ahead of
a replica that could become leader. A follower joins the ISR once it has reached the
high watermark and the start of the current leader epoch; it leaves after
replica.lag.time.max.ms without catching up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class FollowerProgress:
    log_end_offset: int = -1
    last_caught_up_ms: int = 0
    last_fetch_ms: int = 0
    last_fetch_leader_leo: int = -1


@dataclass
class LeaderState:
    my_id: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader_epoch: int
    partition_epoch: int
    epoch_start_offset: int
    high_watermark: int
    now_ms: int
    pending_isr: tuple[int, ...] | None = None  # proposed to the controller, not yet applied
    followers: dict[int, FollowerProgress] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for broker in self.replicas:
            if broker != self.my_id:
                # Followers in the ISR start "caught up now", so a fresh leader does not
                # shrink the ISR before followers had a chance to fetch.
                self.followers.setdefault(broker, FollowerProgress(last_caught_up_ms=self.now_ms))

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        if self.pending_isr is None:
            return self.isr
        return tuple(dict.fromkeys(self.isr + self.pending_isr))

    def on_follower_fetch(self, broker_id: int, fetch_offset: int, leader_leo: int,
                          now_ms: int) -> None:
        progress = self.followers.setdefault(broker_id, FollowerProgress())
        if fetch_offset >= leader_leo:
            progress.last_caught_up_ms = now_ms
        elif fetch_offset >= progress.last_fetch_leader_leo >= 0:
            progress.last_caught_up_ms = max(progress.last_caught_up_ms,
                                             progress.last_fetch_ms)
        progress.log_end_offset = fetch_offset
        progress.last_fetch_ms = now_ms
        progress.last_fetch_leader_leo = leader_leo

    def advance_high_watermark(self, leader_leo: int) -> bool:
        """Recompute the high watermark; True when it moved (waiting produces may finish)."""
        offsets = [leader_leo]
        for broker in self.maximal_isr:
            if broker != self.my_id:
                offsets.append(self.followers.get(broker, FollowerProgress()).log_end_offset)
        new = min(offsets)
        if new > self.high_watermark:
            self.high_watermark = new
            return True
        return False

    def isr_candidates(self, now_ms: int, lag_max_ms: int,
                       eligible: Callable[[int], bool] = lambda broker: True) -> list[int]:
        """Followers outside the ISR that have caught up enough to join it. A follower
        that stopped fetching is no candidate, however far it got: with no new writes its
        old position still equals the high watermark, and taking it back would make
        acks=all writes wait on a dead replica. Nor is one the metadata shows fenced or
        shutting down (KIP-841): the controller would refuse it (INELIGIBLE_REPLICA)."""
        joined = []
        for broker in self.replicas:
            if broker == self.my_id or broker in self.maximal_isr or not eligible(broker):
                continue
            progress = self.followers.get(broker, FollowerProgress())
            leo = progress.log_end_offset
            if leo >= self.high_watermark and leo >= self.epoch_start_offset \
                    and now_ms - progress.last_caught_up_ms <= lag_max_ms:
                joined.append(broker)
        return joined

    def lagging_isr_members(self, now_ms: int, lag_max_ms: int) -> list[int]:
        return [b for b in self.isr if b != self.my_id
                and now_ms - self.followers.get(b, FollowerProgress()).last_caught_up_ms
                > lag_max_ms]

    def proposed_isr(self, now_ms: int, lag_max_ms: int,
                     eligible: Callable[[int], bool] = lambda broker: True,
                     ) -> tuple[int, ...] | None:
        """The ISR the leader should ask for now, or None if it is right as it is."""
        if self.pending_isr is not None:
            return None  # one change at a time, as Kafka does
        lagging = set(self.lagging_isr_members(now_ms, lag_max_ms))
        joining = self.isr_candidates(now_ms, lag_max_ms, eligible)
        if not lagging and not joining:
            return None
        wanted = [b for b in self.replicas if (b in self.isr and b not in lagging)
                  or b in joining]
        return tuple(wanted)
