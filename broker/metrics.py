"""Prometheus metrics of one broker (own registry, so several brokers can share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                   30)


class BrokerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.bytes_in = Counter("brook_topic_bytes_in", "Bytes produced, per topic", ["topic"],
                                registry=r)
        self.bytes_out = Counter("brook_topic_bytes_out", "Bytes fetched by consumers, per topic",
                                 ["topic"], registry=r)
        self.messages_in = Counter("brook_topic_messages_in", "Records produced, per topic",
                                   ["topic"], registry=r)
        self.requests = Counter("brook_requests", "Requests handled, per API", ["api"], registry=r)
        self.request_errors = Counter("brook_request_errors",
                                      "Error codes returned, per API and error", ["api", "error"],
                                      registry=r)
        self.latency = Histogram("brook_request_latency_seconds",
                                 "Time from a request's arrival to its response, per API",
                                 ["api"], buckets=LATENCY_BUCKETS, registry=r)
        self.log_size = Gauge("brook_log_size_bytes", "Bytes on disk, per partition",
                              ["topic", "partition"], registry=r)
        self.log_end_offset = Gauge("brook_log_end_offset", "Log end offset, per partition",
                                    ["topic", "partition"], registry=r)
        self.log_start_offset = Gauge("brook_log_start_offset", "Log start offset, per partition",
                                      ["topic", "partition"], registry=r)
        self.connections = Gauge("brook_open_connections", "Open client connections", registry=r)
        self.connections_closed_for_errors = Counter(
            "brook_connections_closed_for_errors",
            "Connections closed because the peer sent something that is not Kafka", registry=r)

    def serve(self, host: str, port: int):
        """Start the /metrics endpoint on its own thread; returns (server, thread)."""
        return start_http_server(port, addr=host, registry=self.registry)

    def topic_created(self, topic: str) -> None:
        for counter in (self.bytes_in, self.bytes_out, self.messages_in):
            counter.labels(topic)  # expose zeros at once

    def topic_deleted(self, topic: str, partitions: int) -> None:
        for counter in (self.bytes_in, self.bytes_out, self.messages_in):
            try:
                counter.remove(topic)
            except KeyError:
                pass
        for index in range(partitions):
            for gauge in (self.log_size, self.log_end_offset, self.log_start_offset):
                try:
                    gauge.remove(topic, str(index))
                except KeyError:
                    pass

    def observe_partitions(self, partitions) -> None:
        for p in partitions:
            labels = (p.topic, str(p.index))
            self.log_size.labels(*labels).set(p.log.size_bytes)
            self.log_end_offset.labels(*labels).set(p.log.log_end_offset)
            self.log_start_offset.labels(*labels).set(p.log.log_start_offset)
