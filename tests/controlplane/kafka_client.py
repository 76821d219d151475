"""A Kafka client run as if inside the cluster (by the pod runner's run_in_cluster).

    kafka_client.py BOOTSTRAP describe TOPIC         -> {"partitions", "replication", "configs"}
    kafka_client.py BOOTSTRAP create TOPIC N         -> {"created": true}
    kafka_client.py BOOTSTRAP produce TOPIC N        -> {"produced": N}
    kafka_client.py BOOTSTRAP consume TOPIC N        -> {"values": [...]}
    kafka_client.py BOOTSTRAP topics                 -> {"topics": [...]}

Prints one JSON line. Uses confluent-kafka, as application teams would.
"""

from __future__ import annotations

import json
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType


def main(argv: list[str]) -> int:
    bootstrap, command, *rest = argv
    common = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000}
    admin = AdminClient({**common, "allow.auto.create.topics": False})
    if command == "topics":
        md = admin.list_topics(timeout=10)
        out = {"topics": sorted(t for t in md.topics if not t.startswith("__"))}
    elif command == "describe":
        (name,) = rest
        md = admin.list_topics(topic=name, timeout=10)
        t = md.topics[name]
        if t.error is not None:
            out = {"error": t.error.name()}
        else:
            resource = ConfigResource(ResourceType.TOPIC, name)
            entries = admin.describe_configs([resource])[resource].result(10)
            out = {"partitions": len(t.partitions),
                   "replication": min(len(p.replicas) for p in t.partitions.values()),
                   "configs": {k: e.value for k, e in entries.items()}}
    elif command == "create":
        name, partitions = rest
        admin.create_topics([NewTopic(name, int(partitions), -1)])[name].result(10)
        out = {"created": True}
    elif command == "produce":
        name, count = rest
        producer = Producer({**common, "acks": "all"})
        for i in range(int(count)):
            producer.produce(name, key=str(i).encode(), value=f"value-{i}".encode())
        remaining = producer.flush(20)
        out = {"produced": int(count) - remaining}
    elif command == "consume":
        name, count = rest
        consumer = Consumer({**common, "group.id": f"test-{uuid.uuid4().hex[:6]}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([name])
        values: list[str] = []
        deadline = time.monotonic() + 30
        while len(values) < int(count) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            values.append(msg.value().decode())
        consumer.close()
        out = {"values": sorted(values)}
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
