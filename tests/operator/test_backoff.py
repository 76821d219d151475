"""The handlers' retry delays (brook.operator.backoff)."""

from __future__ import annotations

import pytest

from brook.operator.backoff import MAX_DELAY, is_transient, retry_delay


def no_jitter() -> float:
    return 0.0


def test_delay_doubles_from_the_first_retry():
    assert [retry_delay(n, rand=no_jitter) for n in range(5)] == [2.0, 4.0, 8.0, 16.0, 32.0]


def test_delay_is_capped_even_for_huge_retry_counts():
    assert retry_delay(7, rand=no_jitter) == 256.0
    assert retry_delay(8, rand=no_jitter) == MAX_DELAY == 300.0
    assert retry_delay(10_000, rand=no_jitter) == MAX_DELAY
    assert retry_delay(3, cap=5, rand=no_jitter) == 5.0


def test_jitter_only_shortens_and_by_at_most_its_fraction():
    assert retry_delay(2, jitter=0.2, rand=lambda: 0.999999) == pytest.approx(8.0 * 0.8, rel=1e-5)
    assert retry_delay(20, jitter=0.2, rand=lambda: 0.5) == pytest.approx(MAX_DELAY * 0.9)
    for n in range(12):
        assert 0 < retry_delay(n) <= min(MAX_DELAY, 2.0 * 2**n)


def test_negative_retry_is_a_bug():
    with pytest.raises(ValueError):
        retry_delay(-1)


@pytest.mark.parametrize("reason,transient", [
    ("ClusterUnreachable", True), ("ClusterNotReady", True), ("ClusterNotFound", True),
    ("NotController", True), ("RequestTimedOut", True),
    ("InvalidPartitions", False), ("PolicyViolation", False), ("InvalidSpec", False),
    ("TopicAlreadyManaged", False), ("InvalidReplicationFactor", False),
])
def test_only_errors_that_can_fix_themselves_are_retried(reason, transient):
    assert is_transient(reason) is transient
