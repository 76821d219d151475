"""Replication throttle rules and the byte-rate quota (pure)."""

import pytest

from brook.broker.replication.throttle import (
    InvalidThrottle,
    ReplicationQuota,
    throttled,
    validate_dynamic_broker_config,
)


def test_throttled_replica_lists_as_kafka_writes_them():
    assert throttled("*", 3, 7)
    assert throttled("0:1, 3:7", 3, 7)
    assert not throttled("0:1,3:6", 3, 7)
    assert not throttled("", 3, 7) and not throttled(None, 3, 7)


def test_only_the_throttle_rates_change_at_runtime_and_only_to_byte_rates():
    assert validate_dynamic_broker_config("leader.replication.throttled.rate", "1000") == "1000"
    assert validate_dynamic_broker_config("follower.replication.throttled.rate", None) is None
    with pytest.raises(InvalidThrottle, match="bytes per second"):
        validate_dynamic_broker_config("follower.replication.throttled.rate", "fast")
    with pytest.raises(InvalidThrottle, match="between 0"):
        validate_dynamic_broker_config("follower.replication.throttled.rate", "-1")
    with pytest.raises(InvalidThrottle, match="cannot be changed at runtime"):
        validate_dynamic_broker_config("log.retention.ms", "5")


def test_quota_allows_the_rate_and_refills_with_time():
    now = [0.0]
    quota = ReplicationQuota(clock=lambda: now[0])
    assert not quota.exceeded()  # unlimited by default
    quota.record(10**12)
    assert not quota.exceeded()
    quota.set_rate(1000)
    quota.record(600)
    assert not quota.exceeded()
    quota.record(600)  # 1,200 bytes within the first second
    assert quota.exceeded()
    now[0] = 0.5  # half a second refills 500
    assert not quota.exceeded()
    quota.set_rate(None)
    quota.record(10**9)
    assert not quota.exceeded()
