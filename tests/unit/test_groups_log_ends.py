"""Which committed partitions' log-end offsets the coordinator asks other brokers for."""

from brook.broker.groups.log_ends import wanted_by_leader


def test_partitions_led_elsewhere_grouped_by_leader():
    leaders = {("t", 0): 0, ("t", 1): 1, ("t", 2): 2, ("u", 0): 1, ("u", 1): -1}
    committed = [("t", 0), ("t", 1), ("t", 2), ("u", 0), ("u", 1), ("t", 1), ("gone", 0)]
    wanted = wanted_by_leader(committed, lambda t, p: leaders.get((t, p), -1), node_id=0,
                              led_here=lambda t, p: (t, p) == ("t", 0))
    # led here: read locally; no leader (offline, deleted): nothing to ask; asked once each
    assert wanted == {1: [("t", 1), ("u", 0)], 2: [("t", 2)]}


def test_a_stale_local_view_never_asks_this_broker_itself():
    wanted = wanted_by_leader([("t", 0)], lambda t, p: 0, node_id=0, led_here=lambda t, p: False)
    assert wanted == {}
