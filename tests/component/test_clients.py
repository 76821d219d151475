"""The six real Kafka clients against a Brook broker, with their default settings.

For each client (confluent-kafka, kafka-python, aiokafka, kcat, kafkajs, the Java
client): a 4-partition topic per codec, 10,000 keyed records with headers, read back
from the beginning with partition assignment; every record once, order per partition,
same key -> same partition, headers and timestamps intact, and batches stored on disk
with the codec the client chose. Then SIGKILL, restart, read all five topics again with
the same checks, and keep producing: offsets continue and each topic reads back with
every record exactly once. Admin paths use each client's own admin API.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass

import pytest

from tests.clients import ALL_DRIVERS, COMPRESSIONS, KafkaClientError, Unsupported, get_driver
from tests.clients.workload import (
    batch_codecs,
    check_roundtrip,
    make_records,
    produce_stamped,
    wait_topic_ready,
)
from tests.support.broker_process import BrokerProcess
from tools import paths

RECORDS = 10_000
MORE = 1_000  # produced after the restart
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
    """One broker per client, so the crash test of one client cannot disturb another.
    No initial rebalance delay, as in the server.properties Kafka ships for development:
    kafkajs reads through a fresh consumer group each time."""
    process = BrokerProcess(tmp_path_factory.mktemp(f"brook-{driver.name}") / "data",
                            {"group.initial.rebalance.delay.ms": "0"}).start()
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


@pytest.fixture(scope="module")
def codec_topics(client_broker) -> dict:
    """codec -> CodecTopic, produced once per client (on its own broker) by the first
    test that needs it."""
    return {}


@dataclass
class CodecTopic:
    topic: str
    seed: int
    records: list[dict]
    acks: list[tuple[int, int]]


def _seed(driver, codec: str) -> int:
    # stable across processes (hash() of a str is salted per process)
    return zlib.crc32(f"{driver.name}/{codec}".encode()) & 0xFFFF


def _codec_topic(driver, broker, codec_topics, codec) -> CodecTopic:
    if codec not in codec_topics:
        topic = f"roundtrip-{driver.name}-{codec}"
        _create(driver, broker.bootstrap, topic)
        seed = _seed(driver, codec)
        records = make_records(driver, RECORDS, seed=seed)
        acks = produce_stamped(driver, broker.bootstrap, topic, records, compression=codec)
        codec_topics[codec] = CodecTopic(topic, seed, records, acks)
    return codec_topics[codec]


def _check(label: str, seed: int, records, acks, consumed, driver) -> None:
    try:
        check_roundtrip(driver, records, acks, consumed, PARTITIONS)
    except AssertionError as e:
        raise AssertionError(f"{driver.name} {label} (make_records seed={seed}): {e}") from e


def _usable_codecs(driver) -> list[str]:
    missing = [codec for codec in COMPRESSIONS if codec not in driver.compressions]
    assert not missing, f"{driver.name} cannot use {missing} here"
    return list(COMPRESSIONS)


def test_every_codec_round_trips(driver, client_broker, codec_topics):
    bootstrap = client_broker.bootstrap
    for codec in _usable_codecs(driver):
        ct = _codec_topic(driver, client_broker, codec_topics, codec)
        consumed = driver.consume(bootstrap, ct.topic, list(range(PARTITIONS)), RECORDS, 60)
        _check(codec, ct.seed, ct.records, ct.acks, consumed, driver)
        stored = sum((batch_codecs(client_broker.data_dir / f"{ct.topic}-{p}")
                      for p in range(PARTITIONS)), start=Counter())
        assert set(stored) == {codec}, f"{codec}: batches stored as {dict(stored)}"


def test_sigkill_restart_reads_everything_and_offsets_continue(driver, client_broker,
                                                               codec_topics):
    """All five codec topics survive SIGKILL: read again in full with the same checks,
    then more records continue each partition's offsets and the whole topic reads back
    with every record exactly once."""
    bootstrap = client_broker.bootstrap
    topics = [_codec_topic(driver, client_broker, codec_topics, codec)
              for codec in _usable_codecs(driver)]
    client_broker.kill()
    client_broker.start()
    for ct in topics:
        wait_topic_ready(bootstrap, ct.topic, PARTITIONS)
        again = driver.consume(bootstrap, ct.topic, list(range(PARTITIONS)), RECORDS, 60)
        _check(f"{ct.topic} after SIGKILL", ct.seed, ct.records, ct.acks, again, driver)

    codec_of = {ct.topic: codec for codec, ct in codec_topics.items()}
    for ct in topics:
        more = make_records(driver, MORE, seed=ct.seed, first_index=RECORDS)
        more_acks = produce_stamped(driver, bootstrap, ct.topic, more,
                                    compression=codec_of[ct.topic])
        before, after = _offsets_by_partition(ct.acks), _offsets_by_partition(more_acks)
        for partition, offsets in after.items():
            expected_next = max(before.get(partition, [-1])) + 1
            assert min(offsets) == expected_next, \
                f"{ct.topic} partition {partition}: offsets {min(offsets)}.. after " \
                f"{expected_next - 1} (seed={ct.seed})"
        everything = driver.consume(bootstrap, ct.topic, list(range(PARTITIONS)),
                                    RECORDS + MORE, 60)
        _check(f"{ct.topic} after SIGKILL + {MORE} more", ct.seed, ct.records + more,
               ct.acks + more_acks, everything, driver)


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
