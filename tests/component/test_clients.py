"""The six real Kafka clients against a Brook broker, with their default settings.

For each client (confluent-kafka, kafka-python, aiokafka, kcat, kafkajs, the Java
client): a 4-partition topic per codec, 10,000 keyed records with headers, read back
from the beginning with partition assignment; every record once, order per partition,
same key -> same partition, headers and timestamps intact, and batches stored on disk
with the codec the client chose. Then SIGKILL, restart, read everything again, and
keep producing with offsets continuing. Admin paths use each client's own admin API.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.clients import ALL_DRIVERS, COMPRESSIONS, KafkaClientError, Unsupported, get_driver
from tests.clients.workload import batch_codecs, check_roundtrip, make_records, wait_topic_ready
from tests.support.broker_process import BrokerProcess
from tools import paths

RECORDS = 10_000
PARTITIONS = 4

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module", params=ALL_DRIVERS)
def driver(request):
    problems = paths.check()
    if problems:
        pytest.fail("test tools missing (run `make tools`):\n" + "\n".join(problems))
    client = get_driver(request.param)
    reason = client.unavailable_reason()
    if reason:
        pytest.fail(f"{client.name} cannot run: {reason}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def client_broker(driver, tmp_path_factory):
    """One broker per client, so the crash test of one client cannot disturb another."""
    process = BrokerProcess(tmp_path_factory.mktemp(f"brook-{driver.name}") / "data").start()
    yield process
    process.kill()


def _create(driver, bootstrap, topic, partitions=PARTITIONS, config=None):
    if driver.supports_admin:
        driver.create_topic(bootstrap, topic, partitions, config or {})
    else:  # kcat has no admin API: create through librdkafka's
        get_driver("confluent-kafka").create_topic(bootstrap, topic, partitions, config or {})
    wait_topic_ready(bootstrap, topic, partitions)


def _offsets_by_partition(acks):
    result: dict[int, list[int]] = {}
    for partition, offset in acks:
        result.setdefault(partition, []).append(offset)
    return result


def test_every_codec_round_trips(driver, client_broker):
    bootstrap = client_broker.bootstrap
    failures = []
    for codec in COMPRESSIONS:
        if codec not in driver.compressions:
            failures.append(f"{codec}: client cannot use it here")
            continue
        topic = f"roundtrip-{driver.name}-{codec}"
        _create(driver, bootstrap, topic)
        records = make_records(driver, RECORDS, seed=hash(codec) & 0xFFFF)
        acks = driver.produce(bootstrap, topic, records, compression=codec)
        consumed = driver.consume(bootstrap, topic, list(range(PARTITIONS)), RECORDS, 60)
        check_roundtrip(driver, records, acks, consumed, PARTITIONS)
        stored = sum((batch_codecs(client_broker.data_dir / f"{topic}-{p}")
                      for p in range(PARTITIONS)), start=Counter())
        assert set(stored) == {codec}, f"{codec}: batches stored as {dict(stored)}"
    assert not failures, failures


def test_sigkill_restart_reads_everything_and_offsets_continue(driver, client_broker):
    bootstrap = client_broker.bootstrap
    topic = f"crash-{driver.name}"
    _create(driver, bootstrap, topic)
    first = make_records(driver, 2000, seed=1)
    acks = driver.produce(bootstrap, topic, first)
    client_broker.kill()
    client_broker.start()
    wait_topic_ready(bootstrap, topic, PARTITIONS)
    again = driver.consume(bootstrap, topic, list(range(PARTITIONS)), len(first), 60)
    check_roundtrip(driver, first, acks, again, PARTITIONS)

    more = make_records(driver, 1000, seed=2)
    for record, i in zip(more, range(2000, 3000), strict=True):
        record["value"] = b"%08d" % i + record["value"][8:]
    more_acks = driver.produce(bootstrap, topic, more)
    before, after = _offsets_by_partition(acks), _offsets_by_partition(more_acks)
    for partition, offsets in after.items():
        expected_next = max(before.get(partition, [-1])) + 1
        assert min(offsets) == expected_next, f"partition {partition} did not continue"
    everything = driver.consume(bootstrap, topic, list(range(PARTITIONS)), 3000, 60)
    assert len(everything) == 3000


def test_admin_paths(driver, client_broker):
    bootstrap = client_broker.bootstrap
    if not driver.supports_admin:
        assert driver.supports_list_topics
        _create(driver, bootstrap, f"listed-{driver.name}", 1)
        assert f"listed-{driver.name}" in driver.list_topics(bootstrap)
        with pytest.raises(Unsupported):
            driver.create_topic(bootstrap, "never", 1)
        return
    topic = f"admin-{driver.name}"
    if driver.supports_validate_only:
        driver.create_topic(bootstrap, topic, 3, {"retention.ms": "3600000"}, validate_only=True)
        assert topic not in driver.list_topics(bootstrap)
    driver.create_topic(bootstrap, topic, 3, {"retention.ms": "3600000"})
    assert topic in driver.list_topics(bootstrap)
    described = driver.describe_topic(bootstrap, topic)
    assert described.partitions == 3 and described.replication_factor == 1
    assert described.configs["retention.ms"] == "3600000"
    assert described.configs["cleanup.policy"] == "delete"

    driver.alter_topic_config(bootstrap, topic, {"retention.ms": "7200000",
                                                 "max.message.bytes": "2000000"})
    described = driver.describe_topic(bootstrap, topic)
    assert described.configs["retention.ms"] == "7200000"
    assert described.configs["max.message.bytes"] == "2000000"
    driver.alter_topic_config(bootstrap, topic, {"retention.ms": None})
    assert driver.describe_topic(bootstrap, topic).configs["retention.ms"] == str(604_800_000)

    driver.create_partitions(bootstrap, topic, 5)
    assert driver.describe_topic(bootstrap, topic).partitions == 5

    errors = {}
    for label, call in {
        "exists": lambda: driver.create_topic(bootstrap, topic, 1),
        "bad config": lambda: driver.create_topic(bootstrap, topic + "-x", 1,
                                                  {"cleanup.policy": "shred"}),
        "too many replicas": lambda: driver.create_topic(bootstrap, topic + "-y", 1,
                                                         replication_factor=3),
        "fewer partitions": lambda: driver.create_partitions(bootstrap, topic, 2),
    }.items():
        with pytest.raises(KafkaClientError) as info:
            call()
        errors[label] = info.value.name
    assert errors == {
        "exists": "TOPIC_ALREADY_EXISTS",
        "bad config": "INVALID_CONFIG",
        "too many replicas": "INVALID_REPLICATION_FACTOR",
        "fewer partitions": "INVALID_PARTITIONS",
    }

    driver.delete_topic(bootstrap, topic)
    assert topic not in driver.list_topics(bootstrap)
    with pytest.raises(KafkaClientError) as info:
        driver.delete_topic(bootstrap, topic)
    assert info.value.name == "UNKNOWN_TOPIC_OR_PARTITION"
