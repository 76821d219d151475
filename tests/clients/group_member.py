"""One consumer-group member (kafka-python or aiokafka) run as its own process.

    python tests/clients/group_member.py kafka-python|aiokafka '<json options>'

Options: bootstrap, group, topic, session_timeout_ms, strategy ("range",
"roundrobin", "sticky", "cooperative-sticky"), instance_id, commit (true: commit after
each processed batch), hold_after (stop before committing once that many records were
processed), max_poll_records, log_file (the client's debug log).

It prints one JSON line per event, the protocol the group tests read (the same for the
Node and Java members, group_member.js and GroupMember.java):
    {"event": "assigned", "partitions": [..]}   the whole assignment after a rebalance
    {"event": "revoked", "partitions": [..]}
    {"event": "records", "records": [[partition, offset], ..]}   one processed batch
    {"event": "committed"} / {"event": "commit_failed", "error": ".."}
    {"event": "holding"}   processed, not committed: the test kills the member now
    {"event": "closed"}    SIGTERM: the member left the group and exits
SIGTERM closes the consumer (a dynamic member leaves the group); SIGKILL stops it
without leaving, so the broker must notice through the session timeout.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import time


def emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def hold_forever() -> None:
    emit("holding")
    while True:
        time.sleep(3600)


def consumer_settings(opts: dict, assignors: dict) -> dict:
    """The settings kafka-python and aiokafka share (same names in both): manual
    commits from the earliest offset, heartbeats at a tenth of the session."""
    session = opts.get("session_timeout_ms", 6000)
    return dict(
        bootstrap_servers=opts["bootstrap"], group_id=opts["group"],
        group_instance_id=opts.get("instance_id"), auto_offset_reset="earliest",
        enable_auto_commit=False, session_timeout_ms=session,
        heartbeat_interval_ms=max(100, session // 10), max_poll_interval_ms=30000,
        max_poll_records=opts.get("max_poll_records", 50),
        partition_assignment_strategy=[assignors[opts.get("strategy", "range")]])


def run_kafka_python(opts: dict) -> None:
    from kafka import ConsumerRebalanceListener, KafkaConsumer
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

    assignors = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor,
                 "sticky": StickyPartitionAssignor,
                 "cooperative-sticky": CooperativeStickyAssignor}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consumer = KafkaConsumer(**consumer_settings(opts, assignors))

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit("revoked", partitions=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned):
            emit("assigned", partitions=sorted(tp.partition for tp in consumer.assignment()))

    consumer.subscribe([opts["topic"]], listener=Listener())
    # Have the topic's metadata before the first poll joins the group. Without it
    # kafka-python 3.0.12's leader assigns from an empty metadata snapshot and then
    # rebalances again at once, and that second rebalance now and then hangs the
    # client after its SyncGroup (it stops heartbeating; the broker answered both calls).
    deadline = time.monotonic() + 30
    while not consumer.partitions_for_topic(opts["topic"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    processed = 0
    while not stop.is_set():
        batch = consumer.poll(timeout_ms=100)
        records = [[r.partition, r.offset] for rs in batch.values() for r in rs]
        if not records:
            continue
        emit("records", records=records)
        processed += len(records)
        if opts.get("hold_after") is not None and processed >= opts["hold_after"]:
            hold_forever()
        if opts.get("commit", True):
            try:
                consumer.commit()  # the positions: exactly the records just processed
                emit("committed")
            except Exception as exc:  # a rebalance took the partitions: they come again
                emit("commit_failed", error=type(exc).__name__)
    consumer.close()
    emit("closed")


async def run_aiokafka(opts: dict) -> None:
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

    assignors = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor,
                 "sticky": StickyPartitionAssignor}  # aiokafka has no cooperative protocol
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    consumer = AIOKafkaConsumer(rebalance_timeout_ms=30000,
                                **consumer_settings(opts, assignors))

    class Listener(ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked):
            emit("revoked", partitions=sorted(tp.partition for tp in revoked))

        async def on_partitions_assigned(self, assigned):
            emit("assigned", partitions=sorted(tp.partition for tp in assigned))

    consumer.subscribe([opts["topic"]], listener=Listener())
    await consumer.start()
    processed = 0
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=100)
        records = [[r.partition, r.offset] for rs in batch.values() for r in rs]
        if not records:
            continue
        emit("records", records=records)
        processed += len(records)
        if opts.get("hold_after") is not None and processed >= opts["hold_after"]:
            await asyncio.to_thread(hold_forever)
        if opts.get("commit", True):
            try:
                await consumer.commit()
                emit("committed")
            except Exception as exc:
                emit("commit_failed", error=type(exc).__name__)
    await consumer.stop()
    emit("closed")


def main() -> None:
    client, opts = sys.argv[1], json.loads(sys.argv[2])
    if opts.get("log_file"):  # the client library's own debug log, to see what it did
        import logging
        logging.basicConfig(filename=opts["log_file"], level=logging.DEBUG,
                            format="%(asctime)s %(threadName)s %(name)s %(message)s")
    if client == "kafka-python":
        run_kafka_python(opts)
    elif client == "aiokafka":
        asyncio.run(run_aiokafka(opts))
    else:
        raise SystemExit(f"unknown client {client!r}")


if __name__ == "__main__":
    main()
