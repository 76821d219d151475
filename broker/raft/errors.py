"""Why the core refused a proposal or a membership change."""

from __future__ import annotations

from .membership import InvalidConfigurationChange


class NotLeader(Exception):
    """Only the leader accepts proposals; `leader_id` is the best known leader, if any."""

    def __init__(self, leader_id: int | None) -> None:
        super().__init__(f"not the leader (leader is {leader_id})")
        self.leader_id = leader_id


class ConfigurationChangeInProgress(Exception):
    """One change at a time, and only after the leader has committed in its own term."""


class LearnerNotCaughtUp(Exception):
    """A learner is promoted only once it holds everything committed."""


__all__ = ["NotLeader", "ConfigurationChangeInProgress", "LearnerNotCaughtUp",
           "InvalidConfigurationChange"]
