"""Consumer groups with the Java client (Kafka's own console consumer and
kafka-consumer-groups tool) and with kafkajs, using the cached test tools.

Skipped when the tools are not installed (`make tools` fetches them).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.groups import committed_offsets, wait_assigned
from tools import paths

pytestmark = pytest.mark.timeout(120)


def _tools_problem() -> str | None:
    try:
        paths.java_path()
        paths.kafka_home()
        paths.node_path()
        paths.kafkajs_dir()
    except Exception as exc:  # ToolMissing and friends: say why and skip
        return str(exc)
    return None


pytestmark = [pytestmark, pytest.mark.skipif(_tools_problem() is not None,
                                             reason=f"test tools missing: {_tools_problem()}")]


@pytest.fixture(scope="module")
def group_broker(tmp_path_factory):
    from tests.support.broker_process import BrokerProcess

    process = BrokerProcess(tmp_path_factory.mktemp("groups-clients") / "data",
                            {"group.initial.rebalance.delay.ms": "0",
                             "group.min.session.timeout.ms": "1000"}).start()
    yield process
    process.stop()


def create_and_fill(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(10)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(partitions * per_partition):
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=i % partitions)
    assert producer.flush(20) == 0


def describe_rows(bootstrap: str, group: str) -> list[dict[str, str]]:
    """kafka-consumer-groups --describe, parsed into one dict per partition row."""
    out = subprocess.run(paths.java_tool_command(
        "consumer-groups", "--bootstrap-server", bootstrap, "--describe", "--group", group),
        capture_output=True, text=True, timeout=60)
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    header = next((i for i, line in enumerate(lines) if line.startswith("GROUP")), None)
    if header is None:
        return []
    names = lines[header].split()
    return [dict(zip(names, re.split(r"\s+", line.strip()), strict=False))
            for line in lines[header + 1:] if line.startswith(group)]


def test_java_console_consumers_share_a_group_and_the_tool_reports_lag(group_broker,
                                                                         topic_name):
    bootstrap = group_broker.bootstrap
    create_and_fill(bootstrap, topic_name, 4, 100)
    group = f"java-{uuid.uuid4().hex[:8]}"

    def console_consumer():
        return subprocess.Popen(paths.java_tool_command(
            "console-consumer", "--bootstrap-server", bootstrap, "--topic", topic_name,
            "--group", group, "--from-beginning", "--timeout-ms", "20000",
            "--formatter-property", "print.partition=true",
            "--command-property", "session.timeout.ms=6000",
            "--command-property", "heartbeat.interval.ms=300",
            "--command-property", "auto.commit.interval.ms=200"),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    consumers = [console_consumer(), console_consumer()]
    try:
        deadline = time.monotonic() + 60
        rows: list[dict[str, str]] = []
        while time.monotonic() < deadline:
            rows = describe_rows(bootstrap, group)
            owners: dict[str, set[str]] = {}
            for row in rows:
                owners.setdefault(row.get("CONSUMER-ID", "-"), set()).add(row["PARTITION"])
            done = all(row.get("LAG") == "0" and row.get("CURRENT-OFFSET") == "100"
                       for row in rows)
            if len(rows) == 4 and "-" not in owners and sorted(
                    len(p) for p in owners.values()) == [2, 2] and done:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"group never showed 2+2 partitions with no lag: {rows}")
        assert {row["LOG-END-OFFSET"] for row in rows} == {"100"}
        assert {row["HOST"] for row in rows} == {"/127.0.0.1"}
    finally:
        outputs = []
        for consumer in consumers:
            consumer.terminate()  # SIGTERM: the consumer leaves the group cleanly
            outputs.append(consumer.communicate(timeout=30)[0])
    values = {line.split("\t")[-1] for out in outputs for line in out.splitlines()
              if line.startswith("Partition:")}
    assert values == {f"v{i}" for i in range(400)}
    assert committed_offsets(bootstrap, group, topic_name, 4) == {p: 100 for p in range(4)}


KAFKAJS_GROUP = r"""
const { Kafka, logLevel } = require('kafkajs')
const [bootstrap, topic, group, expected] = process.argv.slice(1)  // node -e: no script path
const kafka = new Kafka({ brokers: [bootstrap], clientId: 'kafkajs-group', logLevel: logLevel.NOTHING })
const seen = new Set()
const assignments = [[], []]

async function member(i) {
  // kafkajs heartbeats between fetches: a short fetch wait keeps rebalances quick.
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 300,
                                    rebalanceTimeout: 10000, maxWaitTimeInMs: 300 })
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    assignments[i] = (e.payload.memberAssignment[topic] || []).slice().sort()
  })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ eachMessage: async ({ partition, message }) => {
    seen.add(partition + ':' + message.offset)
  } })
  return consumer
}

(async () => {
  const consumers = [await member(0), await member(1)]
  const deadline = Date.now() + 45000
  while (Date.now() < deadline) {
    if (seen.size >= Number(expected) && assignments[0].length === 2 && assignments[1].length === 2) break
    await new Promise((r) => setTimeout(r, 100))
  }
  await Promise.all(consumers.map((c) => c.disconnect()))
  console.log(JSON.stringify({ seen: seen.size, assignments }))
  process.exit(0)
})().catch((e) => { console.error(e); process.exit(1) })
"""


def test_kafkajs_group_splits_partitions_and_commits(group_broker, topic_name):
    bootstrap = group_broker.bootstrap
    create_and_fill(bootstrap, topic_name, 4, 50)
    group = f"js-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "NODE_PATH": str(paths.node_modules_dir())}
    out = subprocess.run([paths.node_path(), "-e", KAFKAJS_GROUP, bootstrap, topic_name, group,
                          "200"], capture_output=True, text=True, timeout=90, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["seen"] == 200
    first, second = (set(a) for a in result["assignments"])
    assert len(first) == len(second) == 2 and first | second == {0, 1, 2, 3}
    assert committed_offsets(bootstrap, group, topic_name, 4) == {p: 50 for p in range(4)}


def test_tool_describe_shows_lag_and_partitions_without_a_commit(group_broker, topic_name):
    """kafka-consumer-groups --describe as Kafka prints it: a member owns all four
    partitions, two have commits (lag = log end - commit), two none ("-" offset and lag);
    once the group is empty only the committed partitions remain, with no consumer."""
    from confluent_kafka import Consumer

    bootstrap = group_broker.bootstrap
    create_and_fill(bootstrap, topic_name, 4, 100)
    group = f"describe-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "client.id": "lagging", "enable.auto.commit": False,
                         "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    consumer.subscribe([topic_name])
    try:
        wait_assigned(consumer, 4)
        consumer.commit(offsets=[TopicPartition(topic_name, 0, 30),
                                 TopicPartition(topic_name, 1, 5)], asynchronous=False)
        rows = sorted(describe_rows(bootstrap, group), key=lambda row: row["PARTITION"])
        member_id = consumer.memberid()
    finally:
        consumer.close()
    table = [(r["TOPIC"], r["PARTITION"], r["CURRENT-OFFSET"], r["LOG-END-OFFSET"], r["LAG"],
              r["CONSUMER-ID"], r["HOST"], r["CLIENT-ID"]) for r in rows]
    assert table == [
        (topic_name, "0", "30", "100", "70", member_id, "/127.0.0.1", "lagging"),
        (topic_name, "1", "5", "100", "95", member_id, "/127.0.0.1", "lagging"),
        (topic_name, "2", "-", "100", "-", member_id, "/127.0.0.1", "lagging"),
        (topic_name, "3", "-", "100", "-", member_id, "/127.0.0.1", "lagging"),
    ]

    empty = sorted(describe_rows(bootstrap, group), key=lambda row: row["PARTITION"])
    assert [(r["PARTITION"], r["CURRENT-OFFSET"], r["LOG-END-OFFSET"], r["LAG"],
             r["CONSUMER-ID"], r["HOST"], r["CLIENT-ID"]) for r in empty] == [
        ("0", "30", "100", "70", "-", "-", "-"),
        ("1", "5", "100", "95", "-", "-", "-"),
    ]


def consumer_groups_tool(bootstrap: str, *args: str) -> str:
    out = subprocess.run(paths.java_tool_command(
        "consumer-groups", "--bootstrap-server", bootstrap, *args),
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_tool_deletes_offsets_resets_them_and_deletes_the_group(group_broker, topic_name):
    """kafka-consumer-groups --delete-offsets (OffsetDelete through Kafka's Admin),
    --reset-offsets --to-earliest --execute and --delete on an Empty consumer group."""
    from confluent_kafka import Consumer

    bootstrap = group_broker.bootstrap
    create_and_fill(bootstrap, topic_name, 4, 20)
    group = f"tool-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, "session.timeout.ms": 6000})
    consumer.subscribe([topic_name])
    try:
        wait_assigned(consumer, 4)
        consumer.commit(offsets=[TopicPartition(topic_name, p, 5 + p) for p in range(4)],
                        asynchronous=False)
    finally:
        consumer.close()  # the group is Empty now

    out = consumer_groups_tool(bootstrap, "--delete-offsets", "--group", group,
                               "--topic", f"{topic_name}:0,1")
    rows = {tuple(line.split()[:2]): line.split()[2] for line in out.splitlines()
            if line.startswith(topic_name)}
    assert rows == {(topic_name, "0"): "Successful", (topic_name, "1"): "Successful"}, out
    assert committed_offsets(bootstrap, group, topic_name, 4) == {0: -1001, 1: -1001, 2: 7, 3: 8}

    out = consumer_groups_tool(bootstrap, "--reset-offsets", "--group", group, "--topic",
                               topic_name, "--to-earliest", "--execute")
    assert committed_offsets(bootstrap, group, topic_name, 4) == dict.fromkeys(range(4), 0), out

    out = consumer_groups_tool(bootstrap, "--delete", "--group", group)
    assert f"'{group}'" in out and "successful" in out.lower(), out
    assert committed_offsets(bootstrap, group, topic_name, 4) == dict.fromkeys(range(4), -1001)
    listed = consumer_groups_tool(bootstrap, "--list").split()
    assert group not in listed
