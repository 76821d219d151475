"""The metadata image as the quorum's replicated state machine.

Each quorum entry is one batch of metadata records that take effect together. After
applying a batch (or restoring a snapshot) the broker is told what changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..raft.entries import Entry, EntryKind
from . import records as r
from .image import Delta, MetadataImage


class MetadataStateMachine:
    def __init__(self, on_change: Callable[[Delta], None] | None = None) -> None:
        self.image = MetadataImage()
        self.on_change = on_change or (lambda delta: None)

    def apply(self, entry: Entry) -> None:
        if entry.kind != EntryKind.COMMAND:
            return
        delta = Delta()
        for record in r.decode_batch(entry.data):
            delta.merge(self.image.apply(record, entry.index))
        self.image.offset = entry.index
        self.on_change(delta)

    def snapshot(self) -> bytes:
        return json.dumps(self.image.to_snapshot(), separators=(",", ":")).encode()

    def restore(self, data: bytes) -> None:
        removed = {name: topic for name, topic in self.image.topics.items()}
        self.image = MetadataImage.from_snapshot(json.loads(data)) if data else MetadataImage()
        delta = self.image.everything()
        delta.removed_topics = {n: t for n, t in removed.items() if n not in self.image.topics}
        self.on_change(delta)
