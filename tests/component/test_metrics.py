"""/metrics serves the broker's Prometheus metrics with real values."""

import time
import urllib.request

import confluent_kafka
from prometheus_client.parser import text_string_to_metric_families


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
