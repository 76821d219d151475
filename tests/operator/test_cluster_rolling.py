from __future__ import annotations

from brook.operator.cluster_rolling import (
    BrokerPod,
    PartitionState,
    blocking_partition,
    next_restart,
)

NEW = "rev-2"


def pods(*revisions, ready=True):
    return [BrokerPod(f"b-{i}", i, rev, ready) for i, rev in enumerate(revisions)]


def healthy(n=3, min_isr=2):
    return [PartitionState(f"t-{i}", tuple(range(n)), tuple(range(n)), min_isr) for i in range(4)]


def test_nothing_to_do():
    assert next_restart(pods(NEW, NEW, NEW), NEW, 0, healthy()).restart is None


def test_highest_ordinal_first_controller_last():
    assert next_restart(pods("r1", "r1", "r1"), NEW, 2, healthy()).restart == "b-1"
    assert next_restart(pods("r1", NEW, NEW), NEW, 2, healthy()).restart == "b-0"
    assert next_restart(pods(NEW, NEW, "r1"), NEW, 2, healthy()).restart == "b-2"  # last: the controller
    assert next_restart(pods("r1", "r1", "r1"), NEW, None, healthy()).restart == "b-2"


def test_one_at_a_time():
    decision = next_restart(pods("r1", "r1", NEW, ready=True)[:2] + [BrokerPod("b-2", 2, NEW, False)],
                            NEW, 0, healthy())
    assert decision.restart is None and "b-2" in decision.waiting and decision.outdated == 2
    stopping = pods("r1", "r1") + [BrokerPod("b-2", 2, "r1", True, terminating=True)]
    assert "b-2 to stop" in next_restart(stopping, NEW, 0, healthy()).waiting


def test_broken_outdated_brokers_go_first():
    # A broker crashing with the old configuration gets the new one at once,
    # whatever the ISRs say and even if it is the controller.
    crashing = [BrokerPod("b-0", 0, "r1", False), BrokerPod("b-1", 1, "r1", True)]
    assert next_restart(crashing, NEW, 0, None).restart == "b-0"


def test_min_isr_blocks():
    shrunk = [PartitionState("t-0", (0, 1, 2), (0, 1), 2)]  # broker 2 is out of sync
    assert blocking_partition(1, shrunk) == shrunk[0]
    assert blocking_partition(2, shrunk) is None


def test_waits_for_under_replicated_partitions():
    shrunk = [PartitionState("t-0", (0, 1, 2), (0, 1), 1)]  # broker 2 restarted, not caught up
    decision = next_restart(pods("r1", "r1", NEW), NEW, 2, shrunk)
    assert decision.restart is None and "under-replicated partitions to catch up: t-0" in decision.waiting
    # Once broker 2 is back in sync, broker 1 may go.
    assert next_restart(pods("r1", "r1", NEW), NEW, 2, healthy()).restart == "b-1"


def test_min_isr_reason_when_partitions_are_fully_in_sync_but_too_small():
    tight = [PartitionState("t-0", (0, 1, 2), (0, 1, 2), 3)]  # RF == min ISR: cannot survive anyway
    assert next_restart(pods("r1", "r1", NEW), NEW, 2, tight).restart == "b-1"


def test_partitions_that_cannot_survive_any_restart_do_not_block():
    single = [PartitionState("t-0", (1,), (1,), 1), PartitionState("t-1", (0, 1), (0, 1), 2)]
    assert next_restart(pods("r1", "r1"), NEW, 0, single).restart == "b-1"


def test_unknown_partition_state_waits():
    decision = next_restart(pods("r1", NEW), NEW, 0, None)
    assert decision.restart is None and "partition state" in decision.waiting


def test_a_restarted_broker_that_does_not_come_back_halts_the_roll():
    fresh = BrokerPod("b-2", 2, NEW, False, age=10)
    # Still within the halt timeout: waiting for it, nothing else restarts.
    decision = next_restart(pods("r1", "r1") + [fresh], NEW, 0, healthy(), halt_after=60)
    assert decision.restart is None and decision.halted is None and "b-2" in decision.waiting
    # Past it: halted, naming the broker, and still nothing else restarts.
    stuck = BrokerPod("b-2", 2, NEW, False, age=61)
    decision = next_restart(pods("r1", "r1") + [stuck], NEW, 0, healthy(), halt_after=60)
    assert decision.restart is None and decision.halted == "b-2"
    assert "roll halted: b-2 did not become ready within 60s" in decision.waiting
    # Without a timeout it only waits.
    assert next_restart(pods("r1", "r1") + [stuck], NEW, 0, healthy()).halted is None


def test_a_fixed_spec_restarts_the_stuck_broker_first():
    # The spec changed again: the stuck broker is out of date now, and not ready: it goes first.
    stuck = BrokerPod("b-2", 2, "rev-bad", False, age=600)
    decision = next_restart(pods("r1", "r1") + [stuck], "rev-fixed", 0, healthy(), halt_after=60)
    assert decision.restart == "b-2" and decision.halted is None


def test_settle_time_after_a_broker_became_ready():
    just_back = [BrokerPod("b-0", 0, "r1", True), BrokerPod("b-1", 1, "r1", True),
                 BrokerPod("b-2", 2, NEW, True, ready_for=5)]
    decision = next_restart(just_back, NEW, 0, healthy(), settle=30)
    assert decision.restart is None and "waiting 30s after b-2 became ready" in decision.waiting
    assert next_restart(just_back, NEW, 0, healthy(), settle=0).restart == "b-1"
