"""Rolling restarts (issue #7, part 4) on the control-plane harness, with a real
acks=all producer running throughout and every acknowledged record read back exactly
once, in order. One three-broker cluster serves both scenarios (module scope): the
full roll first, then the halted one.

Durations and the producer's worst pause are printed (run with -s)."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from kubeapi import ApiError, wait_for

from .conftest import kafka_cluster, pod_uids, topic
from .traffic import Traffic

pytestmark = pytest.mark.timeout(420)

BOOTSTRAP = "events-bootstrap:9092"


@pytest.fixture(scope="module")
def three_brokers(harness):
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    harness.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": namespace}})
    path = harness.custom(namespace, "kafkaclusters", "events")
    harness.create(kafka_cluster("events", namespace, replicas=3,
                                 config={"default.replication.factor": "3", "min.insync.replicas": "2"}))
    harness.wait_condition(path, "True", timeout=150, namespace=namespace)
    harness.create(topic("orders", namespace, "events", partitions=6, replicationFactor=3, minInSyncReplicas=2))
    harness.wait_condition(harness.custom(namespace, "topics", "orders"), "True", namespace=namespace)
    yield namespace, path
    try:
        harness.api.delete(f"/api/v1/namespaces/{namespace}")
    except ApiError:
        pass




def test_rolling_restart_one_broker_at_a_time_controller_last(harness, three_brokers):
    """A config change restarts every broker through the operator (OnDelete), never two
    at once, never taking a partition below min.insync.replicas, the active controller
    last, while a producer writes at acks=all."""
    namespace, path = three_brokers
    api = harness.api
    traffic = Traffic(harness, namespace, BOOTSTRAP, "orders").start()
    result = None
    try:
        time.sleep(3)
        before = pod_uids(api, namespace)
        seen_events = {e["metadata"]["uid"] for e in api.items(f"/api/v1/namespaces/{namespace}/events")}
        started = time.monotonic()
        api.merge_patch(path, {"spec": {"config": {"log.retention.hours": "12"}}})

        def all_replaced() -> bool:
            now = pod_uids(api, namespace)
            return len(now) == 3 and all(now.get(name) not in (None, uid) for name, uid in before.items())

        try:
            wait_for(all_replaced, 240, "every broker restarted with the new configuration", interval=1)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{api.get(path).get('status')}\n{harness.diagnostics(namespace)}") \
                from None
        harness.wait_condition(path, "True", "BrokersReady", timeout=90, namespace=namespace)
        took = time.monotonic() - started
    finally:
        result = traffic.stop()
    result.report("rolling restart of 3 brokers", took)
    events = sorted((e for e in api.items(f"/api/v1/namespaces/{namespace}/events")
                     if e.get("reason") == "BrokerRestart" and e["metadata"]["uid"] not in seen_events),
                    key=lambda e: e.get("firstTimestamp") or "")
    messages = [e["message"] for e in events]
    assert len(messages) == 3, messages
    for message in messages:
        m = re.search(r"restarting events-broker-(\d) .*\((\d) to go; active controller: (\d+|None)\)", message)
        assert m, message
        ordinal, to_go, controller = m.groups()
        if to_go != "1":
            assert ordinal != controller, f"the active controller restarted before the others: {messages}"
    assert not result.problems, result.problems
    assert len(result.acked) > 50


def test_broker_that_does_not_come_back_halts_the_roll(harness, three_brokers):
    """A config the broker refuses at start: the first broker restarted does not come
    back, the roll stops there with a condition naming it, the others are untouched;
    reverting the config brings it back. Writes at acks=all continue throughout."""
    namespace, path = three_brokers
    api = harness.api
    harness.wait_condition(path, "True", "BrokersReady", timeout=120, namespace=namespace)
    traffic = Traffic(harness, namespace, BOOTSTRAP, "orders").start()
    try:
        time.sleep(3)
        before = pod_uids(api, namespace)
        started = time.monotonic()
        api.merge_patch(path, {"spec": {"config": {"num.partitions": "abc"}}})
        obj = harness.wait_condition(path, "False", "RollHalted", timeout=150, namespace=namespace)
        halted_after = time.monotonic() - started
        message = harness.condition(obj)["message"]
        stuck = re.search(r"roll halted: (events-broker-\d)", message)
        assert stuck, message
        now = pod_uids(api, namespace)
        replaced = sorted(name for name in before if now.get(name) != before[name])
        assert replaced == [stuck.group(1)], (replaced, message)  # exactly one broker was restarted
        assert "num.partitions" in harness.runner.pod_log(namespace, stuck.group(1), lines=20)
        events = [e for e in api.items(f"/api/v1/namespaces/{namespace}/events") if e.get("reason") == "RollHalted"]
        assert events and stuck.group(1) in events[0]["message"]
        time.sleep(5)  # halted means halted: still only that broker restarted
        assert sorted(n for n in before if pod_uids(api, namespace).get(n) != before[n]) == replaced

        fixed = time.monotonic()
        api.merge_patch(path, {"spec": {"config": {"num.partitions": None}}})
        harness.wait_condition(path, "True", "BrokersReady", timeout=150, namespace=namespace)
        recovered_after = time.monotonic() - fixed
    finally:
        result = traffic.stop()
    result.report(f"bad config: roll halted after {halted_after:.1f}s; revert back to ready", recovered_after)
    assert not result.problems, result.problems
    assert len(result.acked) > 50
