"""The compatibility scenarios: what each client does against a broker, and what it saw.

Every scenario is a function ``scenario(run)`` that makes requests through one client
(``run.driver`` from tests/clients, ``run.extras`` for what the driver interface lacks)
and records Observations with ``run.attempt``/``run.record``. Set-up steps that are not
under test (creating a topic to produce into, writing records a group then reads) go
through ``run.setup`` (confluent-kafka's AdminClient/Producer), the same way on both
brokers. Topic and group names are deterministic so both brokers see identical requests.
"""

from __future__ import annotations

import gc
import time
import traceback
from collections import Counter
from collections.abc import Callable

from bench import REPO_ROOT  # noqa: F401
from bench.compat import cgtool
from bench.compat.model import UNSUPPORTED, Observation, norm, outcome, show_bytes
from tests.clients import COMPRESSIONS, ClientDriver
from tests.clients.workload import batch_codecs, check_roundtrip, make_records, wait_topic_ready

SHORT = {"wire": "wire", "confluent-kafka": "ck", "kafka-python": "kp", "aiokafka": "aio", "java": "java",
         "kafkajs": "kjs", "kcat": "kcat"}
BASE_TS = 1_700_000_000_000  # fixed record timestamps (Nov 2023) for ListOffsets by time


class Setup:
    """Steps that prepare a scenario, done with confluent-kafka whatever the client."""

    def __init__(self, bootstrap: str):
        from confluent_kafka.admin import AdminClient
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def create_topic(self, name: str, partitions: int = 1, config: dict | None = None) -> None:
        from confluent_kafka.admin import NewTopic
        fut = self.admin.create_topics([NewTopic(name, partitions, -1, config=dict(config or {}))])
        fut[name].result(timeout=60)
        wait_topic_ready(self.bootstrap, name, partitions)

    def produce(self, topic: str, per_partition: dict[int, int]) -> None:
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True})
        for part, n in per_partition.items():
            for i in range(n):
                p.produce(topic, key=b"k%d" % i, value=b"v-%d-%d" % (part, i), partition=part)
        if p.flush(60):
            raise TimeoutError("set-up produce not delivered")

    def end_offsets(self, topic: str, partitions: int) -> dict[int, int]:
        from confluent_kafka import TopicPartition
        from confluent_kafka.admin import OffsetSpec
        futs = self.admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest()
                                        for p in range(partitions)})
        return {tp.partition: f.result(timeout=30).offset for tp, f in futs.items()}

    def partitions(self, topic: str) -> int | None:
        md = self.admin.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None:
            return None
        return len(md.partitions)

    def listed(self, topic: str) -> bool:
        return topic in self.admin.list_topics(timeout=10).topics


class ClientRun:
    """One client against one broker: the context every scenario gets."""

    def __init__(self, broker, client: str, driver: ClientDriver, extras, setup: Setup):
        self.broker = broker
        self.bootstrap = broker.bootstrap
        self.client = client
        self.driver = driver
        self.extras = extras
        self.setup = setup
        self.observations: list[Observation] = []

    def topic(self, suffix: str) -> str:
        return f"c-{SHORT.get(self.client, self.client)}-{suffix}"

    def record(self, scenario: str, key: str, value, request: str = "") -> None:
        self.observations.append(Observation(self.client, scenario, key, norm(value), request))

    def attempt(self, scenario: str, key: str, request: str, fn: Callable,
                show: Callable = lambda _r: "ok"):
        """Run fn; record show(result) or the error outcome. Returns (ok, result)."""
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - every failure is an observation
            self.record(scenario, key, outcome(e), request)
            return False, None
        self.record(scenario, key, show(result), request)
        return True, result

    def codecs_on_disk(self, topic: str, partitions: int) -> list[str]:
        found: Counter = Counter()
        for p in range(partitions):
            d = self.broker.partition_dir(topic, p)
            if d.is_dir():
                found += batch_codecs(d)
        return sorted(found)


# ================================================================== produce / consume

def produce_consume(run: ClientRun, codec: str) -> None:
    d = run.driver
    scen = f"produce-consume/{codec}"
    req = (f"{d.name}: produce 300 keyed records (100 B values, per-record headers, "
           f"timestamps) with compression.type={codec} into a 3-partition topic, then consume "
           "them from the beginning (manual assignment)")
    if codec not in d.compressions:
        run.record(scen, "produce", UNSUPPORTED, req)
        return
    topic = run.topic(f"pc-{codec}")
    run.setup.create_topic(topic, 3)
    records = make_records(d, 300, keys=20, value_size=100, seed=7)
    ok, acks = run.attempt(scen, "produce", req, lambda: d.produce(run.bootstrap, topic, records, codec),
                           show=lambda a: f"ok, {len(a)} acks")
    if not ok:
        return
    ok, got = run.attempt(scen, "consume", req,
                          lambda: d.consume(run.bootstrap, topic, None, len(records), timeout_s=30),
                          show=lambda g: f"{len(g)} records")
    if not ok:
        return
    try:
        check_roundtrip(d, records, acks, got, partitions=3)
        verdict = "ok (keys, values, headers, timestamps, offsets, order)"
    except AssertionError as e:
        verdict = outcome(e)
    run.record(scen, "roundtrip", verdict, req)
    run.record(scen, "records per partition", dict(Counter(r["partition"] for r in got)), req)
    run.record(scen, "codecs of stored batches", run.codecs_on_disk(topic, 3), req)


def edge_records(run: ClientRun) -> None:
    d = run.driver
    scen = "produce-consume/edge-records"
    records = [
        {"key": None, "value": b"no key"},
        {"key": b"utf8-\xe2\x9c\x93", "value": "h\u00e9llo \u2713".encode()},
        {"key": b"big", "value": bytes(range(256)) * 2000},  # 512000 B, under every default limit
    ]
    if d.supports_null_vs_empty:
        records += [{"key": b"tombstone", "value": None}, {"key": b"", "value": b""}]
    if d.supports_per_record_headers:
        headers = [("empty", b""), ("dup", b"1"), ("dup", b"2")]
        if d.supports_null_vs_empty:
            headers.append(("null", None))
        records.append({"key": b"h", "value": b"with headers", "headers": headers})
    for r in records:
        r.setdefault("headers", [])
        r["partition"] = 0 if d.supports_explicit_partition else None
        r["timestamp_ms"] = None
    req = (f"{d.name}: produce to partition 0 of a 1-partition topic: " + "; ".join(
        f"key={show_bytes(r['key'])} value={show_bytes(r['value'])}"
        + (f" headers={norm(r['headers'])}" if r["headers"] else "") for r in records)
        + " -- then consume them")
    topic = run.topic("edge")
    run.setup.create_topic(topic, 1)
    ok, _ = run.attempt(scen, "produce", req, lambda: d.produce(run.bootstrap, topic, records))
    if not ok:
        return
    ok, got = run.attempt(scen, "consume", req,
                          lambda: d.consume(run.bootstrap, topic, [0], len(records), timeout_s=30),
                          show=lambda g: f"{len(g)} records")
    if ok:
        for r in sorted(got, key=lambda r: r["offset"]):
            run.record(scen, f"record at offset {r['offset']}",
                       {"key": show_bytes(r["key"]), "value": show_bytes(r["value"]),
                        "headers": [[k, show_bytes(v)] for k, v in r["headers"]]}, req)


def log_append_time(run: ClientRun) -> None:
    d = run.driver
    scen = "timestamps/log-append-time"
    topic = run.topic("lat")
    run.setup.create_topic(topic, 1, {"message.timestamp.type": "LogAppendTime"})
    sent = BASE_TS if d.supports_timestamps else None
    req = (f"{d.name}: produce 3 records with timestamp {sent} to a topic with "
           "message.timestamp.type=LogAppendTime, consume them")
    records = [{"key": b"k%d" % i, "value": b"v", "headers": [], "timestamp_ms": sent,
                "partition": None} for i in range(3)]
    ok, _ = run.attempt(scen, "produce", req, lambda: d.produce(run.bootstrap, topic, records))
    if not ok:
        return
    t0 = int(time.time() * 1000)
    ok, got = run.attempt(scen, "consume", req,
                          lambda: d.consume(run.bootstrap, topic, [0], 3, timeout_s=30),
                          show=lambda g: f"{len(g)} records")
    if ok:
        kinds = set()
        for r in got:
            ts = r["timestamp_ms"]
            if sent is not None and ts == sent:
                kinds.add("the producer's create time")
            elif ts is not None and abs(ts - t0) < 120_000:
                kinds.add("broker append time (now)")
            else:
                kinds.add(f"other ({ts})")
        run.record(scen, "consumed timestamps", sorted(kinds), req)


# ================================================================== ListOffsets

# Record i gets timestamp BASE_TS + STEPS[i] * 1000: the largest timestamp is in the middle.
STEPS = [0, 1, 2, 3, 4, 9, 5, 6, 7, 8]


def list_offsets(run: ClientRun) -> None:
    d, x = run.driver, run.extras
    scen = "list-offsets"
    topic = run.topic("lo")
    run.setup.create_topic(topic, 1)
    if not d.supports_timestamps:
        return
    records = [{"key": b"k%d" % i, "value": b"v%d" % i, "headers": [],
                "timestamp_ms": BASE_TS + s * 1000, "partition": 0} for i, s in enumerate(STEPS)]
    produced = (f"10 records with timestamps T+{STEPS}s (T={BASE_TS}) produced by {d.name} "
                "to partition 0")
    ok, _ = run.attempt(scen, "produce", produced, lambda: d.produce(run.bootstrap, topic, records))
    if not ok:
        return

    def show(r):
        ts = r["timestamp"]
        if ts is not None and ts >= 0:
            ts = f"T{(ts - BASE_TS) / 1000:+g}s"
        return {"offset": r["offset"], "timestamp": ts}

    queries = [("earliest", None), ("latest", None), ("max_timestamp", None),
               ("timestamp", BASE_TS - 5000), ("timestamp", BASE_TS), ("timestamp", BASE_TS + 2500),
               ("timestamp", BASE_TS + 9000), ("timestamp", BASE_TS + 60_000)]
    for spec, ts in queries:
        label = spec if ts is None else f"timestamp T{(ts - BASE_TS) / 1000:+g}s"
        run.attempt(scen, label, f"{x.client}: ListOffsets {label} on partition 0 of: {produced}",
                    lambda spec=spec, ts=ts: x.list_offsets(run.bootstrap, topic, 0, spec, ts), show)
    req = f"{x.client}: DeleteRecords before offset 4 on partition 0, then ListOffsets earliest"
    ok, _ = run.attempt(scen, "delete-records before 4", req,
                        lambda: x.delete_records(run.bootstrap, topic, 0, 4),
                        show=lambda low: {"low_watermark": low})
    if ok:
        run.attempt(scen, "earliest after delete-records", req,
                    lambda: x.list_offsets(run.bootstrap, topic, 0, "earliest"), show)
    run.attempt(scen, "unknown topic", f"{x.client}: ListOffsets latest on missing topic",
                lambda: x.list_offsets(run.bootstrap, run.topic("no-such-topic"), 0, "latest"), show)


# ================================================================== admin

def topic_lifecycle(run: ClientRun) -> None:
    d = run.driver
    scen = "admin/topic-lifecycle"
    if not d.supports_admin:
        return
    bs = run.bootstrap
    topic = run.topic("life")
    cfg = {"retention.ms": "3600000", "cleanup.policy": "compact", "max.message.bytes": "2000000"}
    watched = ["retention.ms", "cleanup.policy", "max.message.bytes", "segment.ms"]

    def describe(key, request):
        ok, desc = run.attempt(scen, f"{key}: describe", request, lambda: d.describe_topic(bs, topic),
                               show=lambda t: {"partitions": t.partitions,
                                               "replication factor": t.replication_factor})
        if ok:
            run.record(scen, f"{key}: configs", {k: desc.configs.get(k, "<absent>") for k in watched},
                       request)

    req = f"{d.name}: CreateTopics {topic} partitions=3 replication=default configs={cfg}"
    run.attempt(scen, "1 create", req, lambda: d.create_topic(bs, topic, 3, cfg))
    describe("2 after create", req + "; DescribeTopics + DescribeConfigs")
    changes = {"retention.ms": "7200000", "segment.ms": "600000", "cleanup.policy": None}
    req = f"{d.name}: alter topic configs {changes} (None = delete the override)"
    run.attempt(scen, "3 alter configs", req, lambda: d.alter_topic_config(bs, topic, changes))
    describe("4 after alter", req + "; describe")
    req = f"{d.name}: CreatePartitions {topic} total=5"
    run.attempt(scen, "5 create partitions", req, lambda: d.create_partitions(bs, topic, 5))
    describe("6 after create partitions", req + "; describe")
    if d.supports_list_topics:
        run.attempt(scen, "7 listed", f"{d.name}: list topics", lambda: topic in d.list_topics(bs),
                    show=lambda x: x)
    if d.supports_validate_only:
        vtopic = run.topic("validate-only")
        req = f"{d.name}: CreateTopics {vtopic} partitions=2 validate_only=true; then list topics"
        run.attempt(scen, "8 validate-only create", req, lambda: d.create_topic(bs, vtopic, 2,
                                                                                validate_only=True))
        run.attempt(scen, "9 validate-only topic exists", req, lambda: run.setup.listed(vtopic),
                    show=lambda x: x)
    req = f"{d.name}: DeleteTopics {topic}; then list topics until it is gone (10 s)"
    ok, _ = run.attempt(scen, "10 delete", req, lambda: d.delete_topic(bs, topic))
    if ok:
        deadline = time.monotonic() + 10
        while run.setup.listed(topic) and time.monotonic() < deadline:
            time.sleep(0.2)
        run.record(scen, "11 listed after delete", run.setup.listed(topic), req)
        run.attempt(scen, "12 describe after delete", f"{d.name}: describe deleted topic {topic}",
                    lambda: d.describe_topic(bs, topic), show=lambda t: "described")


def default_configs(run: ClientRun) -> None:
    d = run.driver
    scen = "admin/default-topic-configs"
    if not d.supports_admin:
        return
    topic = run.topic("defaults")
    run.setup.create_topic(topic, 1)
    req = f"{d.name}: DescribeConfigs of {topic}, a topic created without configs"
    ok, desc = run.attempt(scen, "describe", req, lambda: d.describe_topic(run.bootstrap, topic))
    if ok:
        for k, v in sorted(desc.configs.items()):
            run.record(scen, k, v, req)


BROKER_KEYS = [
    "node.id", "broker.id", "num.partitions", "default.replication.factor",
    "auto.create.topics.enable", "delete.topic.enable", "log.retention.hours", "log.retention.ms",
    "log.retention.bytes", "log.segment.bytes", "log.roll.hours", "message.max.bytes",
    "min.insync.replicas", "compression.type", "log.cleanup.policy", "log.message.timestamp.type",
    "offsets.topic.num.partitions", "offsets.topic.replication.factor", "offsets.retention.minutes",
    "group.initial.rebalance.delay.ms", "group.min.session.timeout.ms",
    "group.max.session.timeout.ms", "unclean.leader.election.enable", "socket.request.max.bytes",
    "log.dirs", "listeners", "advertised.listeners", "process.roles",
]


def config_metadata(run: ClientRun) -> None:
    """Sources and flags of topic and broker configs (clients with describe_config_entries)."""
    x = run.extras
    scen = "admin/config-metadata"
    topic = run.topic("cfgmeta")
    run.setup.create_topic(topic, 1, {"retention.ms": "3600000"})
    req = f"{x.client}: DescribeConfigs TOPIC {topic} (created with retention.ms=3600000)"
    ok, entries = run.attempt(scen, "topic describe", req,
                              lambda: x.describe_config_entries(run.bootstrap, "topic", topic))
    if not ok:
        return
    for k in ("retention.ms", "segment.bytes", "cleanup.policy", "max.message.bytes",
              "min.insync.replicas", "compression.type"):
        e = entries.get(k)
        run.record(scen, f"topic {k}", e and {kk: e[kk] for kk in ("source", "read_only",
                                                                    "sensitive")}, req)
    req = f"{x.client}: DescribeConfigs BROKER 1"
    ok, entries = run.attempt(scen, "broker describe", req,
                              lambda: x.describe_config_entries(run.bootstrap, "broker", "1"))
    if not ok:
        return
    run.record(scen, "broker config count", len(entries), req)
    for k in BROKER_KEYS:
        e = entries.get(k)
        if e is not None and k in ("log.dirs", "listeners", "advertised.listeners") and e["value"]:
            e = {**e, "value": "<set: path/listener of this run>"}
        run.record(scen, f"broker {k}", e if e is None else
                   {kk: e[kk] for kk in ("value", "source", "read_only")}, req)


# ================================================================== consumer groups

def consumer_groups(run: ClientRun) -> None:
    x = run.extras
    scen = "groups"
    bs = run.bootstrap
    topic = run.topic("grp")
    group = f"g-{SHORT.get(run.client, run.client)}"
    run.setup.create_topic(topic, 2)
    run.setup.produce(topic, {0: 20, 1: 20})
    commits = {0: 15, 1: 7}
    req = (f"{x.client}: consumer group.id={group} subscribes to {topic} (2 partitions x 20 "
           f"records), reads 40 records, commits {commits}, describes the group while a member")
    ok, res = run.attempt(scen, "1 join, consume, commit", req,
                          lambda: x.group_run(bs, topic, group, 40, commits),
                          show=lambda r: f"consumed {r['consumed']}")
    if ok:
        run.record(scen, "2 describe while member", res["during"], req)
        run.record(scen, "3 delete while member", res.get("delete_while_active"),
                   f"{x.client}: DeleteGroups {group} while its member is still in the group")
    req = f"{x.client}: DescribeGroups {group} after the consumer closed"
    run.attempt(scen, "4 describe after close", req, lambda: x.describe_group(bs, group),
                show=lambda g: g)
    req = f"{x.client}: OffsetFetch (list consumer group offsets) {group}; lag = end offset - committed"
    ok, offsets = run.attempt(scen, "5 committed offsets", req, lambda: x.group_offsets(bs, group),
                              show=lambda o: o)
    if ok:
        ends = run.setup.end_offsets(topic, 2)
        run.record(scen, "6 lag", {k: ends[int(k.rsplit(":", 1)[1])] - v for k, v in offsets.items()},
                   req)
    req = f"{x.client}: ListGroups"
    run.attempt(scen, "7 list groups", req, lambda: x.list_groups(bs),
                show=lambda gs: [g for g in gs if g["group"] == group] or "absent")
    req = f"kafka-consumer-groups --describe --group {group}"
    run.record(scen, "8 kafka-consumer-groups --describe",
               cgtool.run(bs, "--describe", "--group", group), req)
    req = f"kafka-consumer-groups --describe --group {group} --state"
    run.record(scen, "9 kafka-consumer-groups --describe --state",
               cgtool.run(bs, "--describe", "--group", group, "--state"), req)
    req = f"{x.client}: DeleteGroups {group} (empty group)"
    run.attempt(scen, "10 delete", req, lambda: x.delete_group(bs, group))
    req = f"{x.client}: DescribeGroups {group} after it was deleted"
    run.attempt(scen, "11 describe after delete", req, lambda: x.describe_group(bs, group),
                show=lambda g: g)
    run.attempt(scen, "12 offsets after delete", f"{x.client}: OffsetFetch {group} after delete",
                lambda: x.group_offsets(bs, group), show=lambda o: o)
    req = f"kafka-consumer-groups --describe --group {group} (deleted)"
    run.record(scen, "13 kafka-consumer-groups --describe deleted", cgtool.run(
        bs, "--describe", "--group", group), req)
    missing = f"g-missing-{SHORT.get(run.client, run.client)}"
    run.attempt(scen, "14 describe missing group", f"{x.client}: DescribeGroups {missing} (never existed)",
                lambda: x.describe_group(bs, missing), show=lambda g: g)
    run.attempt(scen, "15 delete missing group", f"{x.client}: DeleteGroups {missing} (never existed)",
                lambda: x.delete_group(bs, missing))


# ================================================================== errors

def error_cases(run: ClientRun) -> None:
    d = run.driver
    bs = run.bootstrap
    scen = "errors"
    existing = run.topic("err-existing")
    run.setup.create_topic(existing, 3)
    missing = run.topic("err-missing")
    if d.supports_admin:
        cases = [
            ("create existing topic", f"CreateTopics {existing} (exists) partitions=1",
             lambda: d.create_topic(bs, existing, 1)),
            ("create invalid name 'bad name!'", "CreateTopics 'bad name!' partitions=1",
             lambda: d.create_topic(bs, "bad name!", 1)),
            ("create name of 250 chars", "CreateTopics 'aaa...a' (250 chars) partitions=1",
             lambda: d.create_topic(bs, "a" * 250, 1)),
            ("create name '..'", "CreateTopics '..' partitions=1", lambda: d.create_topic(bs, "..", 1)),
            ("create 0 partitions", f"CreateTopics {run.topic('err-zero')} partitions=0",
             lambda: d.create_topic(bs, run.topic("err-zero"), 0)),
            ("create replication factor 3 on 1 broker",
             f"CreateTopics {run.topic('err-rf3')} partitions=1 replication_factor=3",
             lambda: d.create_topic(bs, run.topic("err-rf3"), 1, replication_factor=3)),
            ("create cleanup.policy=bogus",
             f"CreateTopics {run.topic('err-cfg1')} configs={{cleanup.policy: bogus}}",
             lambda: d.create_topic(bs, run.topic("err-cfg1"), 1, {"cleanup.policy": "bogus"})),
            ("create retention.ms=abc",
             f"CreateTopics {run.topic('err-cfg2')} configs={{retention.ms: abc}}",
             lambda: d.create_topic(bs, run.topic("err-cfg2"), 1, {"retention.ms": "abc"})),
            ("create unknown config key",
             f"CreateTopics {run.topic('err-cfg3')} configs={{no.such.config: 1}}",
             lambda: d.create_topic(bs, run.topic("err-cfg3"), 1, {"no.such.config": "1"})),
            ("create compression.zstd.level=5",
             f"CreateTopics {run.topic('err-cfg5')} configs={{compression.type: zstd, "
             "compression.zstd.level: 5}",
             lambda: d.create_topic(bs, run.topic("err-cfg5"), 1, {
                 "compression.type": "zstd", "compression.zstd.level": "5"})),
            ("create remote.storage.enable=false",
             f"CreateTopics {run.topic('err-cfg6')} configs={{remote.storage.enable: false}}",
             lambda: d.create_topic(bs, run.topic("err-cfg6"), 1, {"remote.storage.enable": "false"})),
            ("create min.insync.replicas=2 > RF 1",
             f"CreateTopics {run.topic('err-cfg4')} configs={{min.insync.replicas: 2}}",
             lambda: d.create_topic(bs, run.topic("err-cfg4"), 1, {"min.insync.replicas": "2"})),
            ("alter retention.ms=abc", f"alter {existing} {{retention.ms: abc}}",
             lambda: d.alter_topic_config(bs, existing, {"retention.ms": "abc"})),
            ("alter unknown config key", f"alter {existing} {{no.such.config: 1}}",
             lambda: d.alter_topic_config(bs, existing, {"no.such.config": "1"})),
            ("alter missing topic", f"alter {missing} {{retention.ms: 1000}}",
             lambda: d.alter_topic_config(bs, missing, {"retention.ms": "1000"})),
            ("decrease partitions 3 -> 2", f"CreatePartitions {existing} total=2 (has 3)",
             lambda: d.create_partitions(bs, existing, 2)),
            ("same partition count 3 -> 3", f"CreatePartitions {existing} total=3 (has 3)",
             lambda: d.create_partitions(bs, existing, 3)),
            ("create partitions of missing topic", f"CreatePartitions {missing} total=4",
             lambda: d.create_partitions(bs, missing, 4)),
            ("delete missing topic", f"DeleteTopics {missing}", lambda: d.delete_topic(bs, missing)),
            ("describe missing topic", f"DescribeTopics {missing}",
             lambda: d.describe_topic(bs, missing)),
        ]
        for key, req, fn in cases:
            run.attempt(scen, key, f"{d.name}: {req}", fn)
        deadline = time.monotonic() + 3
        while not run.setup.listed(missing) and time.monotonic() < deadline:
            time.sleep(0.2)
        run.record(scen, "missing topic exists after the calls above", run.setup.listed(missing),
                   f"{d.name}: alter/create-partitions/delete/describe {missing}, then list "
                   "topics for up to 3 s")
        for name in ("bad name!", "a" * 250, ".."):
            run.record(scen, f"topic {show_bytes(name.encode())} exists afterwards",
                       run.setup.listed(name), f"{d.name}: list topics after the invalid creates")

    big = run.topic("err-big")
    run.setup.create_topic(big, 1, {"max.message.bytes": "1024"})
    rec = [{"key": b"k", "value": b"x" * 4096, "headers": [], "timestamp_ms": None, "partition": None}]
    run.attempt(scen, "produce 4 KiB to max.message.bytes=1024",
                f"{d.name}: produce one 4096-byte record (no compression) to {big} "
                "(topic max.message.bytes=1024)", lambda: d.produce(bs, big, rec))
    if d.supports_timestamps:
        future = run.topic("err-future")
        run.setup.create_topic(future, 1)
        rec = [{"key": b"k", "value": b"v", "headers": [], "partition": None,
                "timestamp_ms": int(time.time() * 1000) + 2 * 3600 * 1000}]
        run.attempt(scen, "produce timestamp 2 h in the future",
                    f"{d.name}: produce a record stamped now+2h to {future} "
                    "(message.timestamp.after.max.ms default 1 h)", lambda: d.produce(bs, future, rec))
    auto = run.topic("err-autocreate")
    rec = [{"key": b"k", "value": b"v", "headers": [], "partition": None, "timestamp_ms": None}]
    req = f"{d.name}: produce to {auto}, a topic that does not exist (auto.create.topics.enable=true)"
    run.attempt(scen, "produce to missing topic", req, lambda: d.produce(bs, auto, rec),
                show=lambda a: f"ok, acked at {a[0] if a else None}")
    run.record(scen, "partitions of auto-created topic", run.setup.partitions(auto), req)
    gone = run.topic("err-consume-missing")
    run.attempt(scen, "consume missing topic",
                f"{d.name}: consume {gone} (does not exist), wait up to 5 s for 1 record",
                lambda: d.consume(bs, gone, None, 1, timeout_s=5),
                show=lambda g: f"{len(g)} records")
    deadline = time.monotonic() + 3
    while not run.setup.listed(gone) and time.monotonic() < deadline:
        time.sleep(0.2)
    run.record(scen, "missing topic exists after consume", run.setup.listed(gone),
               f"{d.name}: consume {gone} (does not exist), then list topics for up to 3 s")


# ================================================================== raw wire probes

def wire_metadata(run: ClientRun) -> None:
    """Exact Metadata requests for a missing topic, with and without auto-creation."""
    from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
    from kio.schema.types import TopicName

    from tests.support.kafka_wire import WireClient
    scen = "wire/metadata"
    for allow in (True, False):
        topic = run.topic(f"md-{'auto' if allow else 'noauto'}")
        req = (f"Metadata v12 topics=[{topic}] (does not exist) allow_auto_topic_creation={allow} "
               "(broker auto.create.topics.enable=true); then list topics for up to 3 s")
        request = MetadataRequest(
            topics=(MetadataRequestTopic(topic_id=None, name=TopicName(topic)),),
            allow_auto_topic_creation=allow, include_topic_authorized_operations=False)
        with WireClient(run.bootstrap) as w:
            resp = w.request(request)
        t = resp.topics[0]
        run.record(scen, f"allow_auto={allow}: response", {
            "error_code": t.error_code.name.upper(), "partitions": len(t.partitions)}, req)
        deadline = time.monotonic() + 3
        while allow and not run.setup.listed(topic) and time.monotonic() < deadline:
            time.sleep(0.2)
        run.record(scen, f"allow_auto={allow}: topic exists afterwards", run.setup.listed(topic), req)


# ================================================================== the suite

def scenarios_for(driver: ClientDriver, extras) -> list[tuple[str, Callable]]:
    """(name, fn(run)) in run order, chosen by what the client can do."""
    from bench.compat.extras import Extras
    if driver is None:  # the raw wire pseudo-client
        return [("wire/metadata", wire_metadata)]
    out: list[tuple[str, Callable]] = [
        (f"produce-consume/{c}", lambda run, c=c: produce_consume(run, c)) for c in COMPRESSIONS]
    out += [("produce-consume/edge-records", edge_records),
            ("timestamps/log-append-time", log_append_time)]
    if driver.supports_admin:
        out += [("admin/topic-lifecycle", topic_lifecycle),
                ("admin/default-topic-configs", default_configs)]
    has = type(extras) is not Extras
    if has:
        out.append(("list-offsets", list_offsets))
        if type(extras).describe_config_entries is not Extras.describe_config_entries:
            out.append(("admin/config-metadata", config_metadata))
        out.append(("groups", consumer_groups))
    out.append(("errors", error_cases))
    return out


def run_client(broker, client: str, driver, extras, only: set[str] | None = None,
               progress: Callable[[str], None] = print) -> list[Observation]:
    setup = Setup(broker.bootstrap)
    run = ClientRun(broker, client, driver, extras, setup)
    observations = run.observations
    for name, fn in scenarios_for(driver, extras):
        if only and not any(name.startswith(o) for o in only):
            continue
        t0 = time.monotonic()
        try:
            fn(run)
        except Exception as e:  # noqa: BLE001 - a broken scenario is itself a result
            tb = traceback.format_exc().strip().splitlines()[-1]
            run.record(name, "scenario aborted", f"{type(e).__name__}: {tb}", "set-up or harness")
        progress(f"  {broker.label:5} {client:15} {name:32} {time.monotonic() - t0:5.1f}s")
    del run, setup
    gc.collect()  # librdkafka handles left in cycles would keep reconnecting to a stopped broker
    return observations
