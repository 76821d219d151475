"""Level 5: the chart on kind, the examples applied, real clients in real pods."""

from __future__ import annotations

import textwrap

from .conftest import ROOT, kafka, kubectl, wait_ready

PRODUCE_CONSUME = textwrap.dedent("""
    import json, uuid
    from confluent_kafka import Consumer, Producer
    p = Producer({"bootstrap.servers": "%(bootstrap)s", "acks": "all"})
    for i in range(100):
        p.produce("%(topic)s", value=b"v%%d" %% i)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": "%(bootstrap)s", "group.id": uuid.uuid4().hex,
                  "auto.offset.reset": "earliest"})
    c.subscribe(["%(topic)s"])
    got = set()
    for _ in range(120):
        m = c.poll(1)
        if m is not None and not m.error():
            got.add(m.value())
        if len(got) == 100:
            break
    c.close()
    print(json.dumps({"consumed": len(got)}))
""")

DESCRIBE = textwrap.dedent("""
    import json
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": "%(bootstrap)s", "allow.auto.create.topics": False})
    md = a.list_topics(timeout=20)
    print(json.dumps({t: len(m.partitions) for t, m in md.topics.items() if not t.startswith("__")}))
""")


def test_dev_cluster_topic_produce_consume_and_delete(namespace):
    kubectl("-n", namespace, "apply", "-f", str(ROOT / "examples" / "dev-cluster.yaml"))
    cluster = wait_ready(namespace, "kafkacluster", "dev")
    assert cluster["status"]["readyReplicas"] == 1
    wait_ready(namespace, "topic", "dev-events", timeout="120s")
    args = {"bootstrap": "dev-bootstrap:9092", "topic": "dev-events"}
    assert kafka(namespace, PRODUCE_CONSUME % args) == {"consumed": 100}

    kubectl("-n", namespace, "patch", "topic", "dev-events", "--type=merge", "-p", '{"spec":{"partitions":6}}')
    kubectl("-n", namespace, "wait", "--for=jsonpath={.status.partitions}=6", "topic/dev-events", "--timeout=120s")
    assert kafka(namespace, DESCRIBE % args)["dev-events"] == 6

    kubectl("-n", namespace, "delete", "topic", "dev-events", "--timeout=120s")
    assert "dev-events" not in kafka(namespace, DESCRIBE % args)

    kubectl("-n", namespace, "delete", "kafkacluster", "dev", "--timeout=120s")
    kubectl("-n", namespace, "wait", "--for=delete", "statefulset/dev-broker", "--timeout=120s")


def test_design_examples(namespace):
    """The cluster and topic of DESIGN.md: three brokers, RF 3, min ISR 2."""
    kubectl("-n", namespace, "apply", "-f", str(ROOT / "examples" / "kafkacluster.yaml"),
            "-f", str(ROOT / "examples" / "topic.yaml"))
    cluster = wait_ready(namespace, "kafkacluster", "events", timeout="600s")
    assert cluster["status"]["readyReplicas"] == 3
    topic = wait_ready(namespace, "topic", "orders", timeout="180s")
    assert topic["status"]["partitions"] == 12 and topic["status"]["replicationFactor"] == 3
    args = {"bootstrap": "events-bootstrap:9092", "topic": "orders"}
    assert kafka(namespace, PRODUCE_CONSUME % args) == {"consumed": 100}
    nodes = {p.split()[1] for p in kubectl("-n", namespace, "get", "pods", "-l",
                                              "app.kubernetes.io/instance=events", "-o",
                                              "custom-columns=N:.metadata.name,NODE:.spec.nodeName",
                                              "--no-headers").splitlines()}
    assert len(nodes) == 3, f"brokers should spread over the three workers: {nodes}"
