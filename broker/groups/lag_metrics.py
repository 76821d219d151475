"""Consumer lag on /metrics: committed offset, log-end offset and lag per group/topic/partition.

Each broker reports the groups it coordinates, for every partition they committed:
the log-end offset (high watermark) is read here when this broker leads the partition,
otherwise it is what the leader answered last (`log_ends`, refreshed every few seconds).
Partitions the group consumes but never committed have no lag here (Kafka's tools show
"-" for them too).

A custom collector computed at scrape time, so the numbers are as fresh as the
scrape. prometheus-client calls `collect()` on its HTTP thread; it only takes
C-level copies of the coordinator's dicts (atomic under the GIL) and reads plain
attributes, never iterating a structure the event loop may be changing.
"""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily


class ConsumerLagCollector:
    def __init__(self, broker, coordinator) -> None:
        self.broker = broker
        self.coordinator = coordinator

    def describe(self):
        return []  # names are dynamic; nothing to pre-register

    def collect(self):
        labels = ["group", "topic", "partition"]
        committed = GaugeMetricFamily(
            "brook_consumer_group_committed_offset",
            "Offset the group last committed, per group, topic and partition", labels=labels)
        end = GaugeMetricFamily(
            "brook_consumer_group_log_end_offset",
            "Log-end offset (high watermark) of partitions the group commits to", labels=labels)
        lag = GaugeMetricFamily(
            "brook_consumer_group_lag",
            "Log-end offset minus committed offset, per group, topic and partition",
            labels=labels)
        topic_lag = GaugeMetricFamily(
            "brook_consumer_group_topic_lag", "Sum of the group's lag over a topic's partitions",
            labels=["group", "topic"])
        members = GaugeMetricFamily(
            "brook_consumer_group_members", "Members of each group", labels=["group", "state"])
        sums: dict[tuple[str, str], int] = {}
        remote = self.coordinator.log_ends.values
        for (group, topic, partition), offset in sorted(self.coordinator.offsets.snapshot()):
            values = [group, topic, str(partition)]
            committed.add_metric(values, offset)
            p = self.broker.partitions.get((topic, partition))
            if p is not None and p.is_leader:
                log_end = p.high_watermark
            elif (topic, partition) in remote:
                log_end = remote[(topic, partition)]
            else:
                continue  # leader unknown or unreachable: no lag rather than a wrong one
            behind = max(0, log_end - offset) if offset >= 0 else log_end
            end.add_metric(values, log_end)
            lag.add_metric(values, behind)
            sums[(group, topic)] = sums.get((group, topic), 0) + behind
        for (group, topic), total in sorted(sums.items()):
            topic_lag.add_metric([group, topic], total)
        for group in list(self.coordinator.groups.values()):
            members.add_metric([group.group_id, group.state.value], len(group.members))
        yield committed
        yield end
        yield lag
        yield topic_lag
        yield members


def register(broker, coordinator) -> ConsumerLagCollector:
    collector = ConsumerLagCollector(broker, coordinator)
    broker.metrics.registry.register(collector)
    return collector
