"""Producer id allocation that never hands out the same id twice, even after a crash.

Ids are reserved in blocks: the end of the current block is persisted before any id
from it is used, so after a restart allocation resumes past everything handed out.
"""

from __future__ import annotations

from pathlib import Path

from .durable_file import read_json, write_json

BLOCK_SIZE = 1000
STATE_FILE = "brook-producer-ids.json"


class ProducerIdAllocator:
    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE_FILE
        state = read_json(self.path, {"next_block_start": 0})
        self._next = int(state["next_block_start"])  # type: ignore[index]
        self._block_end = self._next

    def allocate(self) -> int:
        if self._next >= self._block_end:
            self._block_end = self._next + BLOCK_SIZE
            write_json(self.path, {"next_block_start": self._block_end})
        pid = self._next
        self._next += 1
        return pid
