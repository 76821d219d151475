"""Tool check: every client driver in tests/clients works against real Apache Kafka.

Starts the reference broker (tools/reference_kafka.py) once per session and runs each
of the six clients through the same produce/consume and admin scenarios that Brook's
compatibility tests use, so a failure there is Brook's and not the driver's.

Slow (JVM broker + JVM/Node helpers): run with
    pytest -m slow tests/component/test_client_drivers.py
"""

from __future__ import annotations

import sys
import time
import uuid
import zlib
from collections import Counter
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.clients import (  # noqa: E402
    ALL_DRIVERS,
    COMPRESSIONS,
    ConfluentKafkaDriver,
    KafkaClientError,
    KafkaPythonDriver,
    Unsupported,
    get_driver,
)
from tests.clients.workload import (  # noqa: E402
    batch_codecs,
    check_roundtrip,
    make_records,
    wait_topic_ready,
)
from tools import paths  # noqa: E402
from tools.reference_kafka import ReferenceKafka, reference_kafka_cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

RECORDS = 10_000
PARTITIONS = 4


def _require_tools() -> None:
    problems = paths.check()
    if problems:
        pytest.fail("test tools missing:\n" + "\n".join(problems))


@pytest.fixture(scope="session")
def kafka():
    _require_tools()
    with ReferenceKafka(port=0) as k:
        yield k


@pytest.fixture(scope="session")
def driver_pool():
    pool: dict = {}
    yield pool
    for d in pool.values():
        d.close()


@pytest.fixture(params=ALL_DRIVERS)
def driver(request, driver_pool):
    name = request.param
    if name not in driver_pool:
        d = get_driver(name)
        reason = d.unavailable_reason()
        if reason:
            pytest.fail(f"{name}: {reason}")
        driver_pool[name] = d
    return driver_pool[name]


def _topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _log_dir(kafka, topic: str, partition: int) -> Path:
    return kafka.nodes[0].directory / "data" / f"{topic}-{partition}"


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_produce_consume_roundtrip(kafka, driver, compression):
    if compression not in driver.compressions:  # kafka-python without python-snappy
        pytest.skip(f"{driver.name} has no {compression} codec installed here")
    topic = _topic(f"rt-{driver.name}-{compression}")
    ConfluentKafkaDriver().create_topic(kafka.bootstrap, topic, PARTITIONS)
    wait_topic_ready(kafka.bootstrap, topic, PARTITIONS)
    records = make_records(driver, RECORDS, seed=zlib.crc32(f"{driver.name}/{compression}".encode()))

    t0 = time.monotonic()
    acks = driver.produce(kafka.bootstrap, topic, records, compression)
    t1 = time.monotonic()
    consumed = driver.consume(kafka.bootstrap, topic, None, RECORDS, timeout_s=60)
    t2 = time.monotonic()
    print(f"{driver.name}/{compression}: produce {t1 - t0:.2f}s, consume {t2 - t1:.2f}s")

    check_roundtrip(driver, records, acks, consumed, PARTITIONS)
    # the broker keeps batches as produced (compression.type=producer): the codec on disk
    # is the one the client used
    codecs = Counter()
    for p in range(PARTITIONS):
        codecs.update(batch_codecs(_log_dir(kafka, topic, p)))
    assert set(codecs) == {compression}, f"batches on disk: {dict(codecs)}"


def test_consume_selected_partitions(kafka, driver):
    topic = _topic(f"sel-{driver.name}")
    ConfluentKafkaDriver().create_topic(kafka.bootstrap, topic, 3)
    wait_topic_ready(kafka.bootstrap, topic, 3)
    records = [{"key": None, "value": b"%08d" % i, "headers": [], "timestamp_ms": None,
                "partition": i % 3} for i in range(30)]
    acks = driver.produce(kafka.bootstrap, topic, records)
    assert [p for p, _ in acks] == [i % 3 for i in range(30)]
    got = driver.consume(kafka.bootstrap, topic, [0, 2], expected_count=20, timeout_s=30)
    assert sorted((r["partition"], r["offset"]) for r in got) == \
        sorted((p, o) for p, o in acks if p in (0, 2))


def test_admin(kafka, driver):
    b = kafka.bootstrap
    name = _topic(f"adm-{driver.name}")
    if not driver.supports_admin:
        with pytest.raises(Unsupported):
            driver.create_topic(b, name, 1)
        ConfluentKafkaDriver().create_topic(b, name, 1)
        assert name in driver.list_topics(b)
        return

    driver.create_topic(b, name, 2, {"retention.ms": "3600000"})
    desc = driver.describe_topic(b, name)
    assert (desc.partitions, desc.replication_factor) == (2, 1)
    assert desc.configs["retention.ms"] == "3600000"
    assert name in driver.list_topics(b)

    with pytest.raises(KafkaClientError) as e:
        driver.create_topic(b, name, 2)
    assert (e.value.name, e.value.code) == ("TOPIC_ALREADY_EXISTS", 36)

    with pytest.raises(KafkaClientError) as e:
        driver.create_topic(b, _topic("bad"), 1, {"cleanup.policy": "no-such-policy"})
    assert (e.value.name, e.value.code) == ("INVALID_CONFIG", 40)

    if driver.supports_validate_only:
        ghost = _topic(f"ghost-{driver.name}")
        driver.create_topic(b, ghost, 3, validate_only=True)
        assert ghost not in driver.list_topics(b)

    # incremental: other dynamic configs survive (emulated where the client lacks it)
    driver.alter_topic_config(b, name, {"segment.ms": "100000", "cleanup.policy": "compact"})
    cfg = driver.describe_topic(b, name).configs
    assert (cfg["segment.ms"], cfg["cleanup.policy"], cfg["retention.ms"]) == \
        ("100000", "compact", "3600000")
    driver.alter_topic_config(b, name, {"retention.ms": None})
    cfg = driver.describe_topic(b, name).configs
    assert (cfg["retention.ms"], cfg["segment.ms"]) == ("604800000", "100000")
    with pytest.raises(KafkaClientError) as e:
        driver.alter_topic_config(b, name, {"retention.ms": "not-a-number"})
    assert (e.value.name, e.value.code) == ("INVALID_CONFIG", 40)

    driver.create_partitions(b, name, 5)
    assert driver.describe_topic(b, name).partitions == 5
    with pytest.raises(KafkaClientError) as e:
        driver.create_partitions(b, name, 3)
    assert (e.value.name, e.value.code) == ("INVALID_PARTITIONS", 37)

    driver.delete_topic(b, name)
    deadline = time.monotonic() + 15
    while name in driver.list_topics(b) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert name not in driver.list_topics(b)
    with pytest.raises(KafkaClientError) as e:
        driver.delete_topic(b, name)
    assert (e.value.name, e.value.code) == ("UNKNOWN_TOPIC_OR_PARTITION", 3)
    with pytest.raises(KafkaClientError) as e:
        driver.describe_topic(b, name)
    assert e.value.code == 3


def test_reference_cluster_three_nodes():
    """The 3-node reference (three combined KRaft nodes): replicated topic, data survives
    one node stopping, the node rejoins."""
    _require_tools()
    d = ConfluentKafkaDriver()
    with reference_kafka_cluster(3, port=0) as cluster:
        assert len(cluster.bootstrap.split(",")) == 3
        topic = _topic("rf3")
        d.create_topic(cluster.bootstrap, topic, 3, {"min.insync.replicas": "2"})
        wait_topic_ready(cluster.bootstrap, topic, 3)
        desc = d.describe_topic(cluster.bootstrap, topic)
        assert (desc.partitions, desc.replication_factor) == (3, 3)
        records = make_records(d, 1000)
        acks = d.produce(cluster.bootstrap, topic, records, "lz4")
        cluster.stop_node(2)
        others = ",".join(n.bootstrap for n in cluster.nodes[:2])
        # kafka-python: no consumer group, so no __consumer_offsets (50 partitions x RF 3)
        got = KafkaPythonDriver().consume(others, topic, None, 1000, timeout_s=60)
        check_roundtrip(d, records, acks, got, 3)
        cluster.start_node(2)
        assert cluster.nodes[2].is_running()
