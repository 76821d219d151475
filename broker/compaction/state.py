"""What the cleaner remembers about one partition (pure, plus its JSON form).

`clean_offset` is Kafka's first dirty offset: everything below it has been
cleaned at least once. `rounds` is the tombstone clock: (upper, ms) pairs in
increasing order, meaning "offsets below `upper` not covered by an earlier pair
were first cleaned at `ms`". A tombstone may be dropped once it was first cleaned
at least `delete.retention.ms` ago, which gives consumers that long to see it, as
in Kafka. Losing this state is harmless: everything is cleaned again and
tombstones are kept for another `delete.retention.ms`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

MAX_ROUNDS = 64
STATE_FILE = "cleaner-state.json"


@dataclass(frozen=True)
class CleanerState:
    clean_offset: int = 0
    rounds: tuple[tuple[int, int], ...] = field(default_factory=tuple)
    # When the oldest tombstone still in the log was first cleaned (None: no tombstones).
    oldest_tombstone_cleaned_ms: int | None = None

    def first_cleaned_ms(self, offset: int) -> int | None:
        for upper, cleaned_ms in self.rounds:
            if offset < upper:
                return cleaned_ms
        return None

    def tombstone_expired(self, offset: int, now_ms: int, delete_retention_ms: int) -> bool:
        cleaned = self.first_cleaned_ms(offset)
        return cleaned is not None and now_ms - cleaned >= delete_retention_ms

    def after_round(self, clean_offset: int, now_ms: int, delete_retention_ms: int,
                    oldest_tombstone_cleaned_ms: int | None) -> CleanerState:
        rounds = list(self.rounds)
        if not rounds or clean_offset > rounds[-1][0]:
            rounds.append((clean_offset, now_ms))
        rounds = _compress(rounds, now_ms, delete_retention_ms)
        return replace(self, clean_offset=clean_offset, rounds=tuple(rounds),
                       oldest_tombstone_cleaned_ms=oldest_tombstone_cleaned_ms)

    def to_json(self) -> bytes:
        return json.dumps({"version": 1, "clean_offset": self.clean_offset,
                           "rounds": [list(r) for r in self.rounds],
                           "oldest_tombstone_cleaned_ms": self.oldest_tombstone_cleaned_ms}
                          ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> CleanerState:
        """The stored state, or a fresh one for anything unreadable."""
        try:
            doc = json.loads(data)
            rounds = tuple((int(u), int(t)) for u, t in doc["rounds"])
            oldest = doc.get("oldest_tombstone_cleaned_ms")
            if doc.get("version") != 1 or list(rounds) != sorted(rounds):
                return cls()
            return cls(int(doc["clean_offset"]), rounds, None if oldest is None else int(oldest))
        except (ValueError, KeyError, TypeError):
            return cls()


def _compress(rounds: list[tuple[int, int]], now_ms: int,
              delete_retention_ms: int) -> list[tuple[int, int]]:
    """Merge rounds without ever making a tombstone removable earlier than it should be."""
    expired = [r for r in rounds if now_ms - r[1] >= delete_retention_ms]
    live = [r for r in rounds if now_ms - r[1] < delete_retention_ms]
    merged = [(expired[-1][0], expired[-1][1])] if expired else []
    merged += live
    while len(merged) > MAX_ROUNDS:
        # Fold the two oldest live rounds together under the later time (conservative).
        (_, _), (upper2, t2) = merged[0], merged[1]
        merged[0:2] = [(upper2, t2)]
    return merged
