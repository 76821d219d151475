"""/metrics serves the broker's Prometheus metrics with real values."""

import time
import urllib.request
from datetime import timedelta

import confluent_kafka
from kio.schema.delete_topics.v6.request import DeleteTopicsRequest, DeleteTopicState
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from prometheus_client.parser import text_string_to_metric_families

from tests.component.wire_helpers import batch, create_topic, fetch, list_offsets, produce
from tests.support.kafka_wire import WireClient


def _scrape(broker) -> dict:
    text = urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics",
                                  timeout=5).read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_produce_and_fetch_show_up_in_metrics(broker, topic_name):
    producer = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap})
    for _i in range(50):
        producer.produce(topic_name, value=b"x" * 100)
    assert producer.flush(15) == 0
    consumer = confluent_kafka.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "m",
                                         "enable.auto.commit": False})
    consumer.assign([confluent_kafka.TopicPartition(topic_name, 0, 0)])
    got = 0
    deadline = time.monotonic() + 20
    while got < 50 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            got += 1
    consumer.close()
    assert got == 50
    samples = _scrape(broker)
    topic = (("topic", topic_name),)
    assert samples[("brook_topic_messages_in_total", topic)] == 50
    assert samples[("brook_topic_bytes_in_total", topic)] > 5000
    assert samples[("brook_topic_bytes_out_total", topic)] > 5000
    assert samples[("brook_requests_total", (("api", "Produce"),))] >= 1
    assert samples[("brook_request_latency_seconds_count", (("api", "Fetch"),))] >= 1
    assert ("brook_open_connections", ()) in samples
    partition = (("partition", "0"), ("topic", topic_name))
    deadline = time.monotonic() + 15  # partition gauges refresh every few seconds
    while _scrape(broker).get(("brook_log_end_offset", partition)) != 50:
        assert time.monotonic() < deadline, "log end offset gauge never reached 50"
        time.sleep(0.5)
    assert _scrape(broker)[("brook_log_size_bytes", partition)] > 5000


def _errors(samples, api: str) -> dict[str, float]:
    return {dict(labels)["error"]: value for (name, labels), value in samples.items()
            if name == "brook_request_errors_total" and dict(labels).get("api") == api}


def test_error_codes_of_every_api_are_counted_per_api_and_error(broker, topic_name):
    """Each error code a response carries counts once under its API and Kafka's name."""
    before = _scrape(broker)
    missing = topic_name + "-missing"
    with WireClient(broker.bootstrap) as c:
        assert create_topic(c, topic_name).error_code == ErrorCode.none
        assert create_topic(c, topic_name).error_code == ErrorCode.topic_already_exists
        assert create_topic(c, topic_name + "-bad", cleanup_policy="shred").error_code == \
            ErrorCode.invalid_config
        assert produce(c, topic_name, batch([b"v"]), partition=9).error_code == \
            ErrorCode.unknown_topic_or_partition
        assert fetch(c, topic_name, 99).error_code == ErrorCode.offset_out_of_range
        assert list_offsets(c, topic_name, -1, partition=9)[0] == \
            ErrorCode.unknown_topic_or_partition
        metadata = c.request(MetadataRequest(
            topics=(MetadataRequestTopic(topic_id=None, name=missing),),
            allow_auto_topic_creation=False, include_topic_authorized_operations=False))
        assert metadata.topics[0].error_code == ErrorCode.unknown_topic_or_partition
        deleted = c.request(DeleteTopicsRequest(
            topics=(DeleteTopicState(name=missing, topic_id=None),),
            timeout=timedelta(seconds=5)))
        assert deleted.responses[0].error_code == ErrorCode.unknown_topic_or_partition
    after = _scrape(broker)
    expected = {
        "CreateTopics": {"topic_already_exists": 1, "invalid_config": 1},
        "Produce": {"unknown_topic_or_partition": 1},
        "Fetch": {"offset_out_of_range": 1},
        "ListOffsets": {"unknown_topic_or_partition": 1},
        "Metadata": {"unknown_topic_or_partition": 1},
        "DeleteTopics": {"unknown_topic_or_partition": 1},
    }
    for api, errors in expected.items():
        old, new = _errors(before, api), _errors(after, api)
        grown = {e: new[e] - old.get(e, 0) for e in new if new[e] != old.get(e, 0)}
        assert grown == errors, f"{api}: {grown}"
