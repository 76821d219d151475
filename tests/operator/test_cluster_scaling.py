from __future__ import annotations

from brook.operator.cluster_scaling import decide_scale


def test_growing_or_creating_is_always_applied():
    assert decide_scale(None, 3, None).replicas == 3
    assert decide_scale(1, 3, None).replicas == 3
    assert decide_scale(3, 3, None).refusal is None


def test_shrinking_when_departing_brokers_hold_nothing():
    decision = decide_scale(3, 2, {"orders-0": [0, 1], "orders-1": [1, 0]})
    assert decision.replicas == 2 and decision.refusal is None


def test_shrinking_refused_when_departing_brokers_hold_replicas():
    replicas = {f"t-{i}": [i % 4] for i in range(8)}
    decision = decide_scale(4, 2, replicas)
    assert decision.replicas == 4
    assert "brokers 2, 3 hold replicas of 4 partition(s)" in decision.refusal
    assert "t-2, t-3, t-6, t-7" in decision.refusal


def test_brokers_that_cannot_be_asked():
    # Volumes kept: scaling up again brings the replicas back, so it is allowed.
    assert decide_scale(3, 1, None).replicas == 1
    decision = decide_scale(3, 1, None, volumes_kept=False)
    assert decision.replicas == 3 and "could not be asked" in decision.refusal


def test_long_lists_are_cut():
    decision = decide_scale(2, 1, {f"t-{i}": [1] for i in range(20)})
    assert "and 15 more" in decision.refusal


def test_voters_cannot_leave():
    decision = decide_scale(3, 1, {}, voters=[0, 1, 2])
    assert decision.replicas == 3
    assert "brokers 1, 2 are metadata quorum voters" in decision.refusal
    assert decide_scale(5, 3, {}, voters=[0, 1, 2]).replicas == 3
