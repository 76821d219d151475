"""Client operations the compatibility suite needs beyond tests/clients' driver interface:
ListOffsets by spec, DeleteRecords, DescribeConfigs with metadata, and consumer groups
(join + commit, describe, committed offsets, list, delete).

One class per client (confluent-kafka, kafka-python, the Java client through
JavaCompat.java). Every method returns plain, already-normalised data and raises
tests.clients.KafkaClientError with Kafka's canonical error name when the broker
refuses, so results from different clients and brokers compare directly.

Group descriptions are normalised to::

    {"state": "STABLE", "assignor": "range", "simple": False, "type": "CLASSIC",
     "coordinator": 1, "members": [{"client_id", "host", "member_id_set", "assignment"}]}
"""

from __future__ import annotations

import time
from pathlib import Path

from bench import REPO_ROOT  # noqa: F401
from tests.clients import KafkaClientError, Unsupported
from tests.clients.helper_process import HelperProcess
from tools import paths

JAVA_SOURCE = Path(__file__).resolve().parent / "JavaCompat.java"
SPECS = ("earliest", "latest", "max_timestamp", "timestamp")


def _state(value) -> str | None:
    """ConsumerGroupState.STABLE / GroupState.STABLE / "Stable" -> "STABLE"."""
    if value is None:
        return None
    text = getattr(value, "name", None) or str(value)
    return text.rsplit(".", 1)[-1].upper().replace("-", "_")


def _tp(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


class Extras:
    client = "?"

    def list_offsets(self, bootstrap, topic, partition, spec, timestamp=None) -> dict:
        raise Unsupported(self.client)

    def delete_records(self, bootstrap, topic, partition, before) -> int:
        raise Unsupported(self.client)

    def describe_config_entries(self, bootstrap, resource_type, name) -> dict:
        raise Unsupported(self.client)

    def group_run(self, bootstrap, topic, group, expected, commits, timeout_s=30.0) -> dict:
        raise Unsupported(self.client)

    def describe_group(self, bootstrap, group) -> dict:
        raise Unsupported(self.client)

    def group_offsets(self, bootstrap, group) -> dict:
        raise Unsupported(self.client)

    def list_groups(self, bootstrap) -> list[dict]:
        raise Unsupported(self.client)

    def delete_group(self, bootstrap, group) -> None:
        raise Unsupported(self.client)

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


# ================================================================== confluent-kafka

class ConfluentExtras(Extras):
    client = "confluent-kafka"

    def _raise(self, err):
        code = err.code()
        raise KafkaClientError(err.name(), code if code >= 0 else None, err.str(), self.client)

    def _result(self, future, timeout=60):
        from confluent_kafka import KafkaException
        try:
            return future.result(timeout=timeout)
        except KafkaException as e:
            self._raise(e.args[0])

    def _admin(self, bootstrap):
        from confluent_kafka.admin import AdminClient
        return AdminClient({"bootstrap.servers": bootstrap})

    def list_offsets(self, bootstrap, topic, partition, spec, timestamp=None):
        from confluent_kafka import TopicPartition
        from confluent_kafka.admin import OffsetSpec
        s = {"earliest": OffsetSpec.earliest, "latest": OffsetSpec.latest,
             "max_timestamp": OffsetSpec.max_timestamp}.get(spec)
        s = s() if s else OffsetSpec.for_timestamp(timestamp)
        admin = self._admin(bootstrap)
        tp = TopicPartition(topic, partition)
        info = self._result(admin.list_offsets({tp: s}, request_timeout=30)[tp])
        return {"offset": info.offset, "timestamp": info.timestamp}

    def delete_records(self, bootstrap, topic, partition, before):
        from confluent_kafka import TopicPartition
        admin = self._admin(bootstrap)
        futures = admin.delete_records([TopicPartition(topic, partition, before)])
        (fut,) = futures.values()
        return self._result(fut).low_watermark

    def describe_config_entries(self, bootstrap, resource_type, name):
        from confluent_kafka.admin import ConfigResource, ResourceType
        rtype = {"topic": ResourceType.TOPIC, "broker": ResourceType.BROKER}[resource_type]
        res = ConfigResource(rtype, name)
        admin = self._admin(bootstrap)
        entries = self._result(admin.describe_configs([res])[res])
        from confluent_kafka.admin import ConfigSource

        def source(v):
            try:
                return ConfigSource(v).name
            except ValueError:
                return _state(v)
        return {k: {"value": e.value, "source": source(e.source),
                    "read_only": bool(e.is_read_only), "sensitive": bool(e.is_sensitive)}
                for k, e in entries.items()}

    def _describe(self, admin, group):
        desc = self._result(admin.describe_consumer_groups([group])[group])
        return {
            "state": _state(desc.state),
            "assignor": desc.partition_assignor or None,
            "simple": bool(desc.is_simple_consumer_group),
            "type": _state(getattr(desc, "type", None)),
            "coordinator": desc.coordinator.id if desc.coordinator is not None else None,
            "members": sorted(({
                "client_id": m.client_id, "host": m.host, "member_id_set": bool(m.member_id),
                "assignment": sorted(_tp(tp.topic, tp.partition)
                                     for tp in (m.assignment.topic_partitions if m.assignment else [])),
            } for m in desc.members), key=lambda m: m["assignment"]),
        }

    def group_run(self, bootstrap, topic, group, expected, commits, timeout_s=30.0):
        from confluent_kafka import Consumer, KafkaException, TopicPartition
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                             "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        out: dict = {}
        try:
            consumer.subscribe([topic])
            n = 0
            deadline = time.monotonic() + timeout_s
            while n < expected and time.monotonic() < deadline:
                for msg in consumer.consume(num_messages=500, timeout=0.2):
                    if msg.error() is None:
                        n += 1
            out["consumed"] = n
            try:
                consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in commits.items()],
                                asynchronous=False)
            except KafkaException as e:
                self._raise(e.args[0])
            admin = self._admin(bootstrap)
            out["during"] = self._describe(admin, group)
            out["delete_while_active"] = _outcome(lambda: self._delete(admin, group))
        finally:
            consumer.close()
        return out

    def describe_group(self, bootstrap, group):
        return self._describe(self._admin(bootstrap), group)

    def group_offsets(self, bootstrap, group):
        from confluent_kafka import ConsumerGroupTopicPartitions
        admin = self._admin(bootstrap)
        futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
        res = self._result(futures[group])
        return {_tp(tp.topic, tp.partition): tp.offset for tp in sorted(
            res.topic_partitions, key=lambda t: (t.topic, t.partition))}

    def list_groups(self, bootstrap):
        admin = self._admin(bootstrap)
        res = self._result(admin.list_consumer_groups(request_timeout=30))
        return [{"group": g.group_id, "state": _state(g.state),
                 "type": _state(getattr(g, "type", None)), "simple": bool(g.is_simple_consumer_group)}
                for g in res.valid]

    def _delete(self, admin, group):
        self._result(admin.delete_consumer_groups([group], request_timeout=30)[group])

    def delete_group(self, bootstrap, group):
        self._delete(self._admin(bootstrap), group)


# ================================================================== kafka-python

def _kp_error(e, client):
    errno = getattr(e, "errno", None)
    name = getattr(e, "message", None)
    if errno is not None and isinstance(name, str):
        return KafkaClientError(name, errno, str(e), client)
    return KafkaClientError(type(e).__name__, None, str(e), client)


class KafkaPythonExtras(Extras):
    client = "kafka-python"

    def _admin_call(self, bootstrap, fn):
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            return fn(admin)
        except KafkaError as e:
            raise _kp_error(e, self.client) from e
        finally:
            admin.close()

    def list_offsets(self, bootstrap, topic, partition, spec, timestamp=None):
        from kafka import TopicPartition
        from kafka.admin import OffsetSpec
        s = {"earliest": OffsetSpec.EARLIEST, "latest": OffsetSpec.LATEST,
             "max_timestamp": OffsetSpec.MAX_TIMESTAMP}.get(spec, timestamp)
        tp = TopicPartition(topic, partition)
        res = self._admin_call(bootstrap, lambda a: a.list_partition_offsets({tp: s}))
        info = res[tp]
        return {"offset": info.offset, "timestamp": info.timestamp}

    def delete_records(self, bootstrap, topic, partition, before):
        from kafka import TopicPartition
        tp = TopicPartition(topic, partition)
        res = self._admin_call(bootstrap, lambda a: a.delete_records({tp: before}))
        md = res[tp]
        return md["low_watermark"] if isinstance(md, dict) else getattr(md, "low_watermark", md)

    def _describe(self, admin, group):
        from kafka.errors import for_code
        raw = admin.describe_groups([group])
        d = raw[group] if isinstance(raw, dict) else raw[0]
        d = d if isinstance(d, dict) else d._asdict()
        code = d.get("error_code", 0)
        if code:
            raise KafkaClientError(for_code(code).message, code, group, self.client)
        _kp_raise_named(d.get("error"), group, self.client)
        members = []
        for m in d.get("members") or []:
            m = m if isinstance(m, dict) else m._asdict()
            assignment = m.get("member_assignment") or {}
            if not isinstance(assignment, dict):
                assignment = assignment._asdict() if hasattr(assignment, "_asdict") else {}
            tps = []
            for item in assignment.get("assignment") or assignment.get("assigned_partitions") or []:
                item = item if isinstance(item, dict | tuple | list) else item._asdict()
                if isinstance(item, dict):
                    t, parts = item.get("topic"), item.get("partitions")
                else:
                    t, parts = item
                tps += [_tp(t, p) for p in parts]
            members.append({"client_id": m.get("client_id"), "host": m.get("client_host"),
                            "member_id_set": bool(m.get("member_id")), "assignment": sorted(tps)})
        state = d.get("group_state") or d.get("state")
        return {"state": _state(state) if state else None,
                "assignor": d.get("protocol") or d.get("protocol_data") or None,
                "authorized_operations": sorted(d.get("authorized_operations") or []),
                "simple": (d.get("protocol_type") or "") == "",
                "type": None,
                "coordinator": None,
                "members": sorted(members, key=lambda m: m["assignment"])}

    def group_run(self, bootstrap, topic, group, expected, commits, timeout_s=30.0):
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata
        out: dict = {}
        try:
            consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                     enable_auto_commit=False, auto_offset_reset="earliest")
        except KafkaError as e:
            raise _kp_error(e, self.client) from e
        try:
            n = 0
            deadline = time.monotonic() + timeout_s
            while n < expected and time.monotonic() < deadline:
                for recs in consumer.poll(timeout_ms=200).values():
                    n += len(recs)
            out["consumed"] = n
            consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "", -1)
                             for p, o in commits.items()})
            out["during"] = self.describe_group(bootstrap, group)
            out["delete_while_active"] = _outcome(lambda: self.delete_group(bootstrap, group))
        except KafkaError as e:
            raise _kp_error(e, self.client) from e
        finally:
            consumer.close()
        return out

    def describe_group(self, bootstrap, group):
        return self._admin_call(bootstrap, lambda a: self._describe(a, group))

    def group_offsets(self, bootstrap, group):
        res = self._admin_call(bootstrap, lambda a: a.list_group_offsets({group: None}))
        offsets = res[group] if group in res else res
        return {_tp(tp.topic, tp.partition): om.offset
                for tp, om in sorted(offsets.items(), key=lambda kv: (kv[0].topic, kv[0].partition))}

    def list_groups(self, bootstrap):
        out = []
        for g in self._admin_call(bootstrap, lambda a: a.list_groups()):
            if isinstance(g, tuple | list):
                out.append({"group": g[0], "state": None, "type": None, "protocol_type": g[1]})
                continue
            out.append({"group": g.get("group_id"), "state": _state(g.get("group_state")) or None,
                        "type": _state(g.get("group_type")) or None,
                        "protocol_type": g.get("protocol_type")})
        return out

    def delete_group(self, bootstrap, group):
        def fn(admin):
            result = admin.delete_groups([group])
            _kp_raise_named(result.get(group) if isinstance(result, dict) else result, group,
                            self.client)
        self._admin_call(bootstrap, fn)


def _kp_raise_named(value, what, client):
    """kafka-python 3 reports per-item errors as "OK" or an error class name."""
    if value in (None, "OK") or value == 0:
        return
    import kafka.errors as errors
    cls = getattr(errors, str(value), None)
    if cls is not None and getattr(cls, "errno", None) is not None:
        raise KafkaClientError(cls.message, cls.errno, what, client)
    raise KafkaClientError(str(value), None, what, client)


# ================================================================== Java client

class JavaExtras(Extras):
    client = "java"

    def __init__(self):
        self._helper: HelperProcess | None = None

    def _call(self, request, timeout=120.0) -> dict:
        if self._helper is None:
            argv = [paths.java_path(), "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                    f"-Dlog4j2.configurationFile={paths.log4j_config('tools')}",
                    "-cp", paths.kafka_classpath(), str(JAVA_SOURCE)]
            self._helper = HelperProcess(argv, name="java-compat")
        try:
            _, status = self._helper.call(request, None, timeout)
        except KafkaClientError as e:
            e.client = self.client
            raise
        return status

    def close(self):
        if self._helper is not None:
            self._helper.close()
            self._helper = None

    def list_offsets(self, bootstrap, topic, partition, spec, timestamp=None):
        st = self._call({"op": "list_offsets", "bootstrap": bootstrap, "topic": topic,
                         "partition": partition, "spec": spec, "timestamp": timestamp})
        return {"offset": st["offset"], "timestamp": st["timestamp"]}

    def delete_records(self, bootstrap, topic, partition, before):
        return self._call({"op": "delete_records", "bootstrap": bootstrap, "topic": topic,
                           "partition": partition, "before": before})["low_watermark"]

    @staticmethod
    def _norm(g: dict) -> dict:
        g = dict(g)
        g["state"] = _state(g.get("state"))
        g["type"] = _state(g.get("type"))
        g["assignor"] = g.get("assignor") or None
        g["members"] = sorted(g.get("members") or [], key=lambda m: m["assignment"])
        return g

    def group_run(self, bootstrap, topic, group, expected, commits, timeout_s=30.0):
        st = self._call({"op": "group_run", "bootstrap": bootstrap, "topic": topic, "group": group,
                         "expected": expected, "timeout_ms": int(timeout_s * 1000),
                         "commits": {str(p): o for p, o in commits.items()}},
                        timeout=timeout_s + 60)
        return {"consumed": st["consumed"], "during": self._norm(st["during"]),
                "delete_while_active": st["delete_while_active"]}

    def describe_group(self, bootstrap, group):
        return self._norm(self._call({"op": "describe_group", "bootstrap": bootstrap,
                                      "group": group})["group"])

    def group_offsets(self, bootstrap, group):
        return self._call({"op": "group_offsets", "bootstrap": bootstrap, "group": group})["offsets"]

    def list_groups(self, bootstrap):
        groups = self._call({"op": "list_groups", "bootstrap": bootstrap})["groups"]
        return [{**g, "state": _state(g.get("state")), "type": _state(g.get("type"))} for g in groups]

    def delete_group(self, bootstrap, group):
        self._call({"op": "delete_group", "bootstrap": bootstrap, "group": group})


def _outcome(fn) -> str:
    try:
        fn()
        return "ok"
    except KafkaClientError as e:
        return f"error {e.name}"


EXTRAS = {cls.client: cls for cls in (ConfluentExtras, KafkaPythonExtras, JavaExtras)}


def get_extras(client: str) -> Extras:
    cls = EXTRAS.get(client)
    return cls() if cls else Extras()
