"""Admin paths through confluent-kafka's AdminClient (librdkafka), with Kafka's errors."""

import time

import confluent_kafka
import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)


@pytest.fixture
def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def _error(future) -> KafkaError:
    with pytest.raises(KafkaException) as info:
        future.result(15)
    return info.value.args[0]


def test_create_describe_alter_delete(admin, topic_name):
    admin.create_topics([NewTopic(topic_name, 3, 1, config={"retention.ms": "60000"})])[
        topic_name].result(15)
    meta = admin.list_topics(topic_name, timeout=10)
    assert len(meta.topics[topic_name].partitions) == 3

    resource = ConfigResource("topic", topic_name)
    configs = admin.describe_configs([resource])[resource].result(15)
    assert configs["retention.ms"].value == "60000"
    assert configs["retention.ms"].source == confluent_kafka.admin.ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["cleanup.policy"].value == "delete"

    change = ConfigResource("topic", topic_name, incremental_configs=[
        ConfigEntry("retention.ms", "120000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.bytes", "1048576", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([change])[change].result(15)
    configs = admin.describe_configs([resource])[resource].result(15)
    assert (configs["retention.ms"].value, configs["segment.bytes"].value) == ("120000", "1048576")

    admin.create_partitions([NewPartitions(topic_name, 5)])[topic_name].result(15)
    assert len(admin.list_topics(topic_name, timeout=10).topics[topic_name].partitions) == 5

    admin.delete_topics([topic_name])[topic_name].result(15)
    assert topic_name not in admin.list_topics(timeout=10).topics


def test_validate_only_creates_nothing(admin, topic_name):
    admin.create_topics([NewTopic(topic_name, 2, 1)], validate_only=True)[topic_name].result(15)
    assert topic_name not in admin.list_topics(timeout=10).topics


def test_admin_errors_match_kafka(admin, topic_name):
    admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(15)
    assert _error(admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name]).code() == \
        KafkaError.TOPIC_ALREADY_EXISTS
    assert _error(admin.create_topics([NewTopic(topic_name + "-rf", 1, 3)])[
        topic_name + "-rf"]).code() == KafkaError.INVALID_REPLICATION_FACTOR
    assert _error(admin.create_topics([NewTopic(topic_name + "-cfg", 1, 1, config={
        "cleanup.policy": "shred"})])[topic_name + "-cfg"]).code() == KafkaError.INVALID_CONFIG
    decrease = _error(admin.create_partitions([NewPartitions(topic_name, 1)])[topic_name])
    assert decrease.code() == KafkaError.INVALID_PARTITIONS
    assert "higher than the requested 1" in decrease.str()
    missing = "no-such-topic-" + topic_name
    assert _error(admin.delete_topics([missing])[missing]).code() == \
        KafkaError.UNKNOWN_TOPIC_OR_PART
    bad = ConfigResource("topic", topic_name, incremental_configs=[
        ConfigEntry("retention.ms", "forever", incremental_operation=AlterConfigOpType.SET)])
    assert _error(admin.incremental_alter_configs([bad])[bad]).code() == KafkaError.INVALID_CONFIG
    unknown = ConfigResource("topic", topic_name, incremental_configs=[
        ConfigEntry("no.such.key", "1", incremental_operation=AlterConfigOpType.SET)])
    assert _error(admin.incremental_alter_configs([unknown])[unknown]).code() == \
        KafkaError.INVALID_CONFIG


def test_legacy_alter_configs_replaces_overrides(admin, topic_name):
    admin.create_topics([NewTopic(topic_name, 1, 1, config={"retention.ms": "5000"})])[
        topic_name].result(15)
    resource = ConfigResource("topic", topic_name, set_config={"segment.ms": "600000"})
    admin.alter_configs([resource])[resource].result(15)
    configs = admin.describe_configs([ConfigResource("topic", topic_name)])
    described = list(configs.values())[0].result(15)
    assert described["segment.ms"].value == "600000"
    assert described["retention.ms"].value == str(7 * 24 * 3_600_000)  # override gone


def test_broker_configs_are_described_and_refuse_changes(admin, broker):
    resource = ConfigResource("broker", "0")
    configs = admin.describe_configs([resource])[resource].result(15)
    assert configs["log.dirs"].value.endswith("data")
    assert configs["num.partitions"].value == "1"
    change = ConfigResource("broker", "0", incremental_configs=[
        ConfigEntry("num.partitions", "3", incremental_operation=AlterConfigOpType.SET)])
    error = _error(admin.incremental_alter_configs([change])[change])
    assert "server.properties" in error.str()


def test_describe_cluster(admin, broker):
    cluster = admin.describe_cluster().result(15)
    assert cluster.controller.id == 0
    assert [(n.host, n.port) for n in cluster.nodes] == [("127.0.0.1", broker.port)]
    assert cluster.cluster_id


def test_list_offsets_by_time_and_delete_records(admin, broker, topic_name):
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(15)
    producer = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    base = int(time.time() * 1000) - 100_000
    for i in range(10):
        producer.produce(topic_name, value=b"v%d" % i, timestamp=base + i * 1000)
        producer.flush(10)
    tp = TopicPartition(topic_name, 0)
    specs = {
        "earliest": OffsetSpec.earliest(), "latest": OffsetSpec.latest(),
        "max": OffsetSpec.max_timestamp(), "t": OffsetSpec.for_timestamp(base + 4500),
    }
    got = {name: admin.list_offsets({tp: spec})[tp].result(15) for name, spec in specs.items()}
    assert got["earliest"].offset == 0 and got["latest"].offset == 10
    assert got["max"].offset == 9 and got["max"].timestamp == base + 9000
    assert got["t"].offset == 5 and got["t"].timestamp == base + 5000

    result = admin.delete_records([TopicPartition(topic_name, 0, 4)])
    assert list(result.values())[0].result(15).low_watermark == 4
    assert admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result(15).offset == 4
