"""Brook's metadata quorum: Raft, as a pure core plus the I/O that runs it.

Pure (no I/O): `core.RaftCore` and the values it works with (entries, membership,
messages, ready, voters, codec), exported here. With I/O, imported from their
modules so that the pure part never pulls in grpc: `file_store.FileStore` (the
durable log), `transport` (gRPC) and `driver.QuorumNode` (asyncio), which is what
the broker uses.
"""

from .core import RaftCore, Role
from .entries import Entry, EntryKind, Snapshot
from .errors import (
    ConfigurationChangeInProgress,
    InvalidConfigurationChange,
    LearnerNotCaughtUp,
    NotLeader,
)
from .membership import Configuration, Member
from .options import RaftOptions
from .ready import PersistentState, Ready
from .voters import VoterEndpoint, configuration_from_voters, parse_quorum_voters

__all__ = [
    "Configuration", "ConfigurationChangeInProgress", "Entry", "EntryKind",
    "InvalidConfigurationChange", "LearnerNotCaughtUp", "Member", "NotLeader",
    "PersistentState", "RaftCore", "RaftOptions", "Ready", "Role", "Snapshot",
    "VoterEndpoint", "configuration_from_voters", "parse_quorum_voters",
]
