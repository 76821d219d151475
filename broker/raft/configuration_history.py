"""Which configuration is in force at each log index.

A configuration takes effect when its entry is appended, not when it commits
(thesis §4.1), so truncating the log can bring an older one back; the history
keeps every configuration entry after the snapshot for that reason.
"""

from __future__ import annotations

from .membership import Configuration


class ConfigurationHistory:
    def __init__(self, base_index: int, base: Configuration) -> None:
        self._history: list[tuple[int, Configuration]] = [(base_index, base)]

    @property
    def latest(self) -> Configuration:
        return self._history[-1][1]

    @property
    def latest_index(self) -> int:
        return self._history[-1][0]

    @property
    def previous(self) -> Configuration | None:
        """The configuration the latest one replaced, if the log still records it."""
        return self._history[-2][1] if len(self._history) > 1 else None

    def at(self, index: int) -> Configuration:
        for entry_index, configuration in reversed(self._history):
            if entry_index <= index:
                return configuration
        return self._history[0][1]

    def append(self, index: int, configuration: Configuration) -> None:
        self._history.append((index, configuration))

    def truncate_from(self, index: int) -> None:
        while len(self._history) > 1 and self._history[-1][0] >= index:
            self._history.pop()

    def compact(self, index: int, configuration: Configuration, keep_later: bool) -> None:
        """The snapshot at `index` now holds `configuration`; forget what it supersedes."""
        later = [item for item in self._history if item[0] > index] if keep_later else []
        self._history = [(index, configuration), *later]
