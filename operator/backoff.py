"""Retry delays of the operator's handlers. Pure.

Kopf's own `settings.execution.default_backoff` is a fixed delay; handlers raise
kopf.TemporaryError(delay=retry_delay(retry)) instead, so an error that fixes itself
(brokers restarting, a cluster not ready yet) is retried soon, and one that lasts
costs the API server and the brokers little.
"""

from __future__ import annotations

import random
from collections.abc import Callable

FIRST_DELAY = 2.0  # seconds before the first retry
MAX_DELAY = 300.0  # the cap: a lasting outage is retried every 5 minutes

# Kafka errors a later attempt can succeed at without any change of the spec (the
# condition reasons reason_from_error_name gives them); refusals are not retried.
TRANSIENT_REASONS = frozenset({
    "ClusterUnreachable", "ClusterNotReady", "ClusterNotFound", "NotController", "RequestTimedOut",
    "LeaderNotAvailable", "NotLeaderOrFollower", "BrokerNotAvailable", "CoordinatorNotAvailable",
    "CoordinatorLoadInProgress", "NetworkException", "KafkaStorageError", "NotEnoughReplicas",
    "ReassignmentInProgress", "ThrottlingQuotaExceeded", "UnknownTopicOrPart",
})


def retry_delay(retry: int, *, first: float = FIRST_DELAY, cap: float = MAX_DELAY,
                jitter: float = 0.2, rand: Callable[[], float] = random.random) -> float:
    """Seconds before the next attempt, `retry` being Kopf's count of earlier retries
    (0 after the first failure): first * 2**retry, capped, then shortened by up to
    `jitter` of itself so many resources failing together do not retry in lockstep."""
    if retry < 0:
        raise ValueError(f"retry must be >= 0, got {retry}")
    # min() before the power would overflow: 2**1100 is a float overflow.
    delay = cap if retry >= 64 else min(cap, first * 2.0 ** retry)
    return delay * (1.0 - jitter * rand())


def is_transient(reason: str) -> bool:
    """Whether a condition reason names an error worth retrying without a spec change."""
    return reason in TRANSIENT_REASONS
