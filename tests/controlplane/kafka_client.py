"""A Kafka client run as if inside the cluster (by the pod runner's run_in_cluster).

    kafka_client.py BOOTSTRAP describe TOPIC         -> {"partitions", "replication", "configs"}
    kafka_client.py BOOTSTRAP create TOPIC N         -> {"created": true}
    kafka_client.py BOOTSTRAP produce TOPIC N        -> {"produced": N}
    kafka_client.py BOOTSTRAP consume TOPIC N        -> {"values": [...]}
    kafka_client.py BOOTSTRAP topics                 -> {"topics": [...]}
    kafka_client.py BOOTSTRAP broker-config ID KEY   -> {"value", "source"}
    kafka_client.py BOOTSTRAP topic-config TOPIC KEY -> {"value", "source"}
    kafka_client.py BOOTSTRAP replicas TOPIC         -> {"replicas": {partition: [...]}, "leaders": {...}}
    kafka_client.py BOOTSTRAP produce-until TOPIC STOPFILE TAG
        acks=all (idempotent) values TAG-SEQ, keys SEQ % 16, until STOPFILE exists, then flush
        -> {"acked": [[seq, partition, offset], ...], "failed": N, "worst_pause": seconds,
            "first_ack_after": seconds}   (the worst pause between two acknowledgments)
    kafka_client.py BOOTSTRAP consume-until TOPIC STOPFILE GROUP TAG [READYFILE]
        a member of consumer group GROUP (earliest, auto commit) reading until STOPFILE
        exists, then on up to the high watermarks taken then (at most 90 s); it creates
        READYFILE when it has its first assignment
        -> {"records": [[partition, offset, value], ...] (values TAG-*, in the order read),
            "rebalances": assignments seen, "assigned_at": [len(records) at each],
            "assigned_after": [seconds since start at each], "complete": bool,
            "worst_gap": seconds, "errors": N}
    kafka_client.py BOOTSTRAP produce-bulk TOPIC MIB
        acks=all, 100 KiB values of random bytes until MIB MiB are acknowledged
        -> {"bytes": acked bytes, "records": N, "failed": N, "seconds": seconds}
    kafka_client.py BOOTSTRAP dump TOPIC             -> {"records": [[partition, offset, value], ...]}
        everything up to the high watermarks, read through a consumer group

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
    elif command == "broker-config":
        broker, key = rest
        resource = ConfigResource(ResourceType.BROKER, broker)
        entry = admin.describe_configs([resource])[resource].result(10).get(key)
        out = {"value": entry.value if entry else None, "source": str(entry.source) if entry else None}
    elif command == "topic-config":
        name, key = rest
        resource = ConfigResource(ResourceType.TOPIC, name)
        entry = admin.describe_configs([resource])[resource].result(10).get(key)
        out = {"value": entry.value if entry else None, "source": str(entry.source) if entry else None}
    elif command == "replicas":
        (name,) = rest
        t = admin.list_topics(topic=name, timeout=10).topics[name]
        out = {"replicas": {p: list(m.replicas) for p, m in t.partitions.items()},
               "leaders": {p: m.leader for p, m in t.partitions.items()}}
    elif command == "produce-until":
        out = _produce_until(common, *rest)
    elif command == "consume-until":
        out = _consume_until(common, *rest)
    elif command == "produce-bulk":
        out = _produce_bulk(common, *rest)
    elif command == "dump":
        out = _dump(common, *rest)
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(out))
    return 0


def _produce_until(common: dict, name: str, stopfile: str, tag: str) -> dict:
    import os

    producer = Producer({**common, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
                         "message.timeout.ms": 180000})
    acked: list[list[int]] = []
    failed = 0
    started = time.monotonic()
    last: float | None = None  # the latest acknowledgment: pauses count from the first
    worst = 0.0
    first = None

    def delivered(err, msg) -> None:
        nonlocal failed, last, worst, first
        if err is not None:
            failed += 1
            return
        now = time.monotonic()
        if last is None:
            first = round(now - started, 3)
        else:
            worst = max(worst, now - last)
        last = now
        acked.append([int(msg.value().decode().rsplit("-", 1)[1]), msg.partition(), msg.offset()])

    seq = 0
    while not os.path.exists(stopfile):
        producer.produce(name, key=str(seq % 16).encode(), value=f"{tag}-{seq}".encode(), on_delivery=delivered)
        seq += 1
        producer.poll(0.02)  # ~40 records a second, delivery reports served
    remaining = producer.flush(120)
    return {"acked": acked, "failed": failed, "unflushed": remaining, "sent": seq,
            "worst_pause": round(worst, 3), "first_ack_after": first}


def _high_watermarks(consumer: Consumer, name: str, timeout: float = 30) -> dict[int, int]:
    """The high watermark of every partition of `name`, retried through leader moves."""
    from confluent_kafka import KafkaException, TopicPartition

    deadline = time.monotonic() + timeout
    while True:
        try:
            md = consumer.list_topics(name, timeout=10)
            return {pid: consumer.get_watermark_offsets(TopicPartition(name, pid), timeout=10)[1]
                    for pid in md.topics[name].partitions}
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _consume_until(common: dict, name: str, stopfile: str, group: str, tag: str, readyfile: str = "") -> dict:
    """One member of `group` reading `name` the whole time a scenario runs. Records are
    listed in the order they arrived (redeliveries included); `assigned_at` says where
    in that list each assignment (rebalance) happened. Joining takes a few seconds (the
    group's initial rebalance delay): `readyfile` tells the caller when it is in."""
    import os

    started = time.monotonic()
    consumer = Consumer({**common, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": True, "auto.commit.interval.ms": 1000,
                         "session.timeout.ms": 10000, "heartbeat.interval.ms": 2000})
    records: list[list] = []
    assigned_at: list[int] = []
    assigned_after: list[float] = []

    def on_assign(_consumer, _partitions) -> None:
        assigned_at.append(len(records))
        assigned_after.append(round(time.monotonic() - started, 3))
        if readyfile and len(assigned_at) == 1:
            with open(readyfile, "w") as handle:
                handle.write("assigned")

    consumer.subscribe([name], on_assign=on_assign)
    prefix = f"{tag}-"
    positions: dict[int, int] = {}
    errors: list[str] = []
    ends: dict[int, int] | None = None
    deadline = 0.0
    last: float | None = None
    worst = 0.0
    while True:
        if ends is None and os.path.exists(stopfile):
            ends = _high_watermarks(consumer, name)
            deadline = time.monotonic() + 90
        if ends is not None and (all(positions.get(p, 0) >= end for p, end in ends.items())
                                 or time.monotonic() > deadline):
            break
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            errors.append(str(msg.error()))
            continue
        partition, offset = msg.partition(), msg.offset()
        positions[partition] = max(positions.get(partition, 0), offset + 1)
        value = msg.value().decode(errors="replace")
        if not value.startswith(prefix):
            continue
        records.append([partition, offset, value])
        if ends is None:  # gaps while the scenario (and its producer) ran
            now = time.monotonic()
            if last is not None:
                worst = max(worst, now - last)
            last = now
    consumer.close()
    assert ends is not None
    return {"records": records, "rebalances": len(assigned_at), "assigned_at": assigned_at,
            "assigned_after": assigned_after,
            "complete": all(positions.get(p, 0) >= end for p, end in ends.items()),
            "worst_gap": round(worst, 3), "errors": len(errors), "first_errors": errors[:5]}


def _produce_bulk(common: dict, name: str, mib: str) -> dict:
    """acks=all, 100 KiB values, until `mib` MiB are acknowledged (a failed record is
    sent again in another), or ten minutes have passed."""
    import os

    size = 100 * 1024
    target = int(float(mib) * 1024 * 1024)
    producer = Producer({**common, "acks": "all", "linger.ms": 5, "message.timeout.ms": 300000})
    acked = failed = records = pending = 0

    def delivered(err, msg) -> None:
        nonlocal acked, failed, records, pending
        pending -= 1
        if err is not None:
            failed += 1
        else:
            acked += len(msg.value())
            records += 1

    started = time.monotonic()
    deadline = started + 600
    while acked < target and time.monotonic() < deadline:
        if acked + pending * size < target:
            try:
                producer.produce(name, value=os.urandom(size), on_delivery=delivered)
                pending += 1
            except BufferError:  # the local queue is full: wait for deliveries
                producer.poll(0.1)
                continue
            producer.poll(0)
        else:
            producer.poll(0.1)
    producer.flush(60)
    return {"bytes": acked, "records": records, "failed": failed,
            "seconds": round(time.monotonic() - started, 3)}


def _dump(common: dict, name: str) -> dict:
    from confluent_kafka import TopicPartition

    consumer = Consumer({**common, "group.id": f"verify-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": True})
    md = consumer.list_topics(name, timeout=10)
    ends = {}
    for pid in md.topics[name].partitions:
        ends[pid] = consumer.get_watermark_offsets(TopicPartition(name, pid), timeout=10)[1]
    consumer.subscribe([name])
    records: list[list] = []
    positions = {pid: 0 for pid in ends}
    deadline = time.monotonic() + 60
    while any(positions[p] < ends[p] for p in ends) and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        records.append([msg.partition(), msg.offset(), msg.value().decode()])
        positions[msg.partition()] = msg.offset() + 1
    consumer.close()
    return {"records": records, "complete": all(positions[p] >= ends[p] for p in ends)}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
