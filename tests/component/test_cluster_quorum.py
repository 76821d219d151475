"""Growing the metadata quorum of a running cluster, with `brook quorum`."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.cluster import BrokerCluster

pytestmark = pytest.mark.timeout(240)


def quorum(address: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "brook.broker", "quorum", *args,
                           "--controller", address], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_one_voter_grows_to_three_and_survives_losing_the_first(tmp_path):
    cluster = BrokerCluster(tmp_path, 3, voters=1).start()
    try:
        first = f"127.0.0.1:{cluster.brokers[0].controller_port}"
        assert quorum(first, "describe")["voters"] == [0]
        assert quorum(first, "describe")["learners"] == [1, 2]  # the others are observers
        for node in (1, 2):
            state = quorum(f"127.0.0.1:{cluster.brokers[2].controller_port}", "add-voter",
                           "--node-id", str(node))
        assert state["voters"] == [0, 1, 2] and state["learners"] == []
        failed = subprocess.run([sys.executable, "-m", "brook.broker", "quorum", "add-voter",
                                 "--node-id", "7", "--controller", first],
                                capture_output=True, text=True, timeout=60)
        assert failed.returncode == 1 and "not a live, registered broker" in failed.stderr

        cluster.brokers[0].kill()  # the original (and only first) voter
        survivor = f"127.0.0.1:{cluster.brokers[1].controller_port}"
        deadline = time.monotonic() + 30
        while True:
            state = quorum(survivor, "describe")
            if state["leader"] in (1, 2):
                break
            assert time.monotonic() < deadline, f"no new controller: {state}"
            time.sleep(0.5)
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic("after-growth", 2, 2)])["after-growth"].result(30)
        assert "after-growth" in admin.list_topics(timeout=10).topics
    finally:
        cluster.stop()
