from brook.operator.reassign_throttle import brokers_to_unthrottle, topics_to_unthrottle

RATE = 10 * 1024 * 1024


def test_lifted_only_when_no_reassignment_is_in_progress():
    rates = {0: str(RATE), 1: str(RATE), 2: None}
    assert brokers_to_unthrottle(rates, RATE, reassigning=0) == [0, 1]
    assert brokers_to_unthrottle(rates, RATE, reassigning=3) == []


def test_a_throttle_set_by_hand_stays():
    assert brokers_to_unthrottle({0: "5000000", 1: str(RATE)}, RATE, 0) == [1]
    assert brokers_to_unthrottle({0: str(RATE)}, 0, 0) == []  # the operator does not throttle


def test_topics_listed_with_every_replica():
    configs = {"a": {"leader.replication.throttled.replicas": "*", "follower.replication.throttled.replicas": "*"},
               "b": {"leader.replication.throttled.replicas": "0:1,1:2"},
               "c": {"leader.replication.throttled.replicas": None, "follower.replication.throttled.replicas": ""},
               "d": {"follower.replication.throttled.replicas": "*"}}
    assert topics_to_unthrottle(configs) == ["a", "d"]
