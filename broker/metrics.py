"""Prometheus metrics of one broker (own registry, so several brokers can share a process)."""

from __future__ import annotations

from kio.schema.errors import ErrorCode
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

        # Replication health, as Kafka's ReplicaManager and controller metrics.
        self.under_replicated = Gauge(
            "brook_under_replicated_partitions",
            "Partitions this broker leads whose ISR is smaller than their replica set",
            registry=r)
        self.under_min_isr = Gauge(
            "brook_under_min_isr_partitions",
            "Partitions this broker leads whose ISR is smaller than min.insync.replicas",
            registry=r)
        self.offline = Gauge(
            "brook_offline_partitions",
            "Partitions without a leader (reported by the active controller; 0 elsewhere)",
            registry=r)
        self.active_controller = Gauge(
            "brook_active_controller", "1 on the broker that leads the metadata quorum",
            registry=r)
        self.leader_count = Gauge("brook_leader_count", "Partitions this broker leads",
                                  registry=r)
        self.isr_shrinks = Counter("brook_isr_shrinks",
                                   "ISR shrinks of partitions this broker leads", registry=r)
        self.isr_expands = Counter("brook_isr_expands",
                                   "ISR expansions of partitions this broker leads", registry=r)

    def watch_replication(self, led_partitions, is_controller, offline_count) -> None:
        """Compute the replication gauges at scrape time from the broker's own state:
        led_partitions() yields the partitions led here, is_controller() says whether
        this broker is the active controller, offline_count() counts leaderless ones."""
        self.under_replicated.set_function(
            lambda: sum(len(p.isr) < len(p.replicas) for p in led_partitions()))
        self.under_min_isr.set_function(
            lambda: sum(len(p.isr) < p.min_insync_replicas for p in led_partitions()))
        self.leader_count.set_function(lambda: sum(1 for _ in led_partitions()))
        self.active_controller.set_function(lambda: 1 if is_controller() else 0)
        self.offline.set_function(lambda: offline_count() if is_controller() else 0)

    def count_errors(self, api: str, body) -> None:
        """Count each non-zero error_code of a response body (nested dicts and lists, as
        handlers return them), per API and error name."""
        stack = [body]
        while stack:
            item = stack.pop()
            code = item.get("error_code")
            if code:
                self.count_error(api, code)
            for value in item.values():
                if isinstance(value, dict):
                    stack.append(value)
                elif isinstance(value, list | tuple) and value and isinstance(value[0], dict):
                    stack.extend(value)  # lists of entries; lists of plain values are skipped

    def count_error(self, api: str, code: int) -> None:
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = str(int(code))
        self.request_errors.labels(api, name).inc()

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
