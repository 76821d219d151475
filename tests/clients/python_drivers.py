"""Drivers for the in-process Python clients: confluent-kafka, kafka-python, aiokafka."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

from .base import (
    COMPRESSIONS,
    ClientDriver,
    KafkaClientError,
    TopicDescription,
    Unsupported,
    user_topics,
)

# DescribeConfigs config_source value for a per-topic override (DYNAMIC_TOPIC_CONFIG)
_DYNAMIC_TOPIC_CONFIG = 1


def _headers_out(headers) -> list[tuple[str, bytes | None]]:
    return [(k, v) for k, v in (headers or [])]


def _error_from_broker_exc(e: Exception, client: str) -> KafkaClientError:
    """kafka-python and aiokafka share an error hierarchy: errno + message (the name)."""
    errno = getattr(e, "errno", None)
    name = getattr(e, "message", None)
    if errno is not None and isinstance(name, str):
        return KafkaClientError(name, errno, str(e), client)
    return KafkaClientError(type(e).__name__, None, str(e), client)


def _code_name(code: int) -> str:
    from kafka.errors import for_code
    return for_code(code).message


# ================================================================== confluent-kafka

class ConfluentKafkaDriver(ClientDriver):
    """confluent-kafka (librdkafka).

    consume(): librdkafka's consumer cannot be created without ``group.id`` even for
    manual assignment, so the driver sets a throw-away one and disables auto-commit: no
    offsets are committed and no group is joined (librdkafka may still look up the
    coordinator in the background; that needs FindCoordinator, nothing else).
    """

    name = "confluent-kafka"

    def _raise(self, err) -> None:
        code = err.code()
        raise KafkaClientError(err.name(), code if code >= 0 else None, err.str(), self.name)

    def produce(self, bootstrap, topic, records, compression="none"):
        from confluent_kafka import Producer

        self._check_compression(compression)
        conf = {"bootstrap.servers": bootstrap}
        if compression != "none":
            conf["compression.type"] = compression
        producer = Producer(conf)
        acks: list = [None] * len(records)
        errors: list = []

        def make_cb(i):
            def cb(err, msg):
                if err is not None:
                    errors.append(err)
                else:
                    acks[i] = (msg.partition(), msg.offset())
            return cb

        for i, rec in enumerate(records):
            kwargs = {"value": rec.get("value"), "key": rec.get("key"), "on_delivery": make_cb(i)}
            if rec.get("partition") is not None:
                kwargs["partition"] = rec["partition"]
            if rec.get("timestamp_ms") is not None:
                kwargs["timestamp"] = rec["timestamp_ms"]
            if rec.get("headers"):
                kwargs["headers"] = list(rec["headers"])
            while True:
                try:
                    producer.produce(topic, **kwargs)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        remaining = producer.flush(120)
        if errors:
            self._raise(errors[0])
        if remaining:
            raise KafkaClientError("_TIMED_OUT", None, f"{remaining} records not delivered", self.name)
        return acks

    def consume(self, bootstrap, topic, partitions=None, expected_count=0, timeout_s=30.0):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        deadline = time.monotonic() + timeout_s
        consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"brook-driver-{uuid.uuid4().hex}",  # mandatory in librdkafka
            "enable.auto.commit": False,
        })
        out: list[dict] = []
        try:
            if partitions is None:
                md = consumer.list_topics(topic, timeout=max(1.0, deadline - time.monotonic()))
                tmd = md.topics.get(topic)
                if tmd is None:
                    raise KafkaClientError("UNKNOWN_TOPIC_OR_PART", 3, topic, self.name)
                if tmd.error is not None:
                    self._raise(tmd.error)
                partitions = sorted(tmd.partitions)
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
            while len(out) < expected_count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                for msg in consumer.consume(num_messages=1000, timeout=min(0.5, left)):
                    if msg.error() is not None:
                        if msg.error().code() == -191:  # _PARTITION_EOF (not enabled by default)
                            continue
                        self._raise(msg.error())
                    out.append({
                        "partition": msg.partition(), "offset": msg.offset(),
                        "key": msg.key(), "value": msg.value(),
                        "headers": _headers_out(msg.headers()),
                        "timestamp_ms": msg.timestamp()[1],
                    })
        finally:
            consumer.close()
        return out

    # ---- admin
    def _admin(self, bootstrap):
        from confluent_kafka.admin import AdminClient
        return AdminClient({"bootstrap.servers": bootstrap})

    def _wait(self, futures):
        from confluent_kafka import KafkaException
        results = {}
        for key, fut in futures.items():
            try:
                results[key] = fut.result(timeout=60)
            except KafkaException as e:
                self._raise(e.args[0])
        return results

    def create_topic(self, bootstrap, name, partitions, config=None, validate_only=False,
                     replication_factor=None):
        from confluent_kafka.admin import NewTopic
        topic = NewTopic(name, num_partitions=partitions,
                         replication_factor=-1 if replication_factor is None else replication_factor,
                         config=dict(config or {}))
        admin = self._admin(bootstrap)  # keep the handle alive until the futures resolve
        self._wait(admin.create_topics([topic], validate_only=validate_only))

    def describe_topic(self, bootstrap, name):
        from confluent_kafka import TopicCollection
        from confluent_kafka.admin import ConfigResource, ResourceType
        admin = self._admin(bootstrap)
        desc = self._wait(admin.describe_topics(TopicCollection([name])))[name]
        res = ConfigResource(ResourceType.TOPIC, name)
        entries = self._wait(admin.describe_configs([res]))[res]
        return TopicDescription(
            name=name, partitions=len(desc.partitions),
            replication_factor=len(desc.partitions[0].replicas) if desc.partitions else 0,
            configs={k: e.value for k, e in entries.items()})

    def alter_topic_config(self, bootstrap, name, changes):
        from confluent_kafka.admin import (
            AlterConfigOpType,
            ConfigEntry,
            ConfigResource,
            ResourceType,
        )
        ops = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) if v is not None
               else ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE)
               for k, v in changes.items()]
        res = ConfigResource(ResourceType.TOPIC, name, incremental_configs=ops)
        admin = self._admin(bootstrap)
        self._wait(admin.incremental_alter_configs([res]))

    def create_partitions(self, bootstrap, name, total):
        from confluent_kafka.admin import NewPartitions
        admin = self._admin(bootstrap)
        self._wait(admin.create_partitions([NewPartitions(name, total)]))

    def delete_topic(self, bootstrap, name):
        admin = self._admin(bootstrap)
        self._wait(admin.delete_topics([name]))

    def list_topics(self, bootstrap):
        md = self._admin(bootstrap).list_topics(timeout=30)
        return user_topics(md.topics)


# ================================================================== kafka-python

class KafkaPythonDriver(ClientDriver):
    """kafka-python. alter_configs is called with raise_on_unknown=False so the broker,
    not the client, validates config names; it picks IncrementalAlterConfigs when the
    broker advertises it (else describe + AlterConfigs, done by kafka-python itself)."""

    name = "kafka-python"

    @property
    def compressions(self):  # snappy needs the python-snappy package (cramjam based)
        from kafka import codec
        have = {"none", "gzip"}
        if codec.has_snappy():
            have.add("snappy")
        if codec.has_lz4():
            have.add("lz4")
        if codec.has_zstd():
            have.add("zstd")
        return frozenset(c for c in COMPRESSIONS if c in have)

    def _check_compression(self, compression):
        if compression not in self.compressions:
            raise Unsupported(f"kafka-python cannot use {compression} here "
                              "(snappy: pip install python-snappy; lz4: lz4; zstd: zstandard)")

    def produce(self, bootstrap, topic, records, compression="none"):
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        self._check_compression(compression)
        producer = KafkaProducer(bootstrap_servers=bootstrap,
                                 compression_type=None if compression == "none" else compression)
        try:
            futures = [
                producer.send(topic, value=r.get("value"), key=r.get("key"),
                              headers=list(r.get("headers") or []) or None,
                              partition=r.get("partition"), timestamp_ms=r.get("timestamp_ms"))
                for r in records
            ]
            producer.flush(timeout=120)
            acks = []
            for f in futures:
                md = f.get(timeout=60)
                acks.append((md.partition, md.offset))
            return acks
        except KafkaError as e:
            raise _error_from_broker_exc(e, self.name) from e
        finally:
            producer.close(timeout=10)

    def consume(self, bootstrap, topic, partitions=None, expected_count=0, timeout_s=30.0):
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout_s
        consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        out: list[dict] = []
        try:
            if partitions is None:
                parts = consumer.partitions_for_topic(topic)
                if not parts:
                    raise KafkaClientError("UNKNOWN_TOPIC_OR_PART", 3, topic, self.name)
                partitions = sorted(parts)
            consumer.assign([TopicPartition(topic, p) for p in partitions])
            consumer.seek_to_beginning()
            while len(out) < expected_count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                batches = consumer.poll(timeout_ms=int(min(0.5, left) * 1000), max_records=10000)
                for tp_records in batches.values():
                    for r in tp_records:
                        out.append({
                            "partition": r.partition, "offset": r.offset, "key": r.key,
                            "value": r.value, "headers": _headers_out(r.headers),
                            "timestamp_ms": r.timestamp,
                        })
        except KafkaError as e:
            raise _error_from_broker_exc(e, self.name) from e
        finally:
            consumer.close()
        return out

    # ---- admin
    def _admin_call(self, bootstrap, fn):
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            return fn(admin)
        except KafkaError as e:
            raise _error_from_broker_exc(e, self.name) from e
        finally:
            admin.close()

    def create_topic(self, bootstrap, name, partitions, config=None, validate_only=False,
                     replication_factor=None):
        spec = {"num_partitions": partitions,
                "replication_factor": -1 if replication_factor is None else replication_factor,
                "configs": dict(config or {})}
        self._admin_call(bootstrap, lambda a: a.create_topics({name: spec}, validate_only=validate_only))

    def describe_topic(self, bootstrap, name):
        from kafka.admin import ConfigResource, ConfigResourceType

        def fn(admin):
            (t,) = admin.describe_topics([name])
            if t["error_code"]:
                raise KafkaClientError(_code_name(t["error_code"]), t["error_code"], name, self.name)
            cfg = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)],
                                         config_filter="all")
            configs = cfg["topic"][name]
            parts = t["partitions"]
            return TopicDescription(
                name=name, partitions=len(parts),
                replication_factor=len(parts[0]["replica_nodes"]) if parts else 0,
                configs={k: v["value"] for k, v in configs.items()})
        return self._admin_call(bootstrap, fn)

    def alter_topic_config(self, bootstrap, name, changes):
        from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType
        configs = {k: (AlterConfigOp.DELETE, None) if v is None else v for k, v in changes.items()}

        def fn(admin):
            res = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=configs)],
                                      raise_on_unknown=False)
            result = res["topic"][name]
            if result != "OK":  # "[Error 40] InvalidConfigurationError: ..."
                code = int(result.split("]", 1)[0].removeprefix("[Error "))
                raise KafkaClientError(_code_name(code), code, result, self.name)
        self._admin_call(bootstrap, fn)

    def create_partitions(self, bootstrap, name, total):
        self._admin_call(bootstrap, lambda a: a.create_partitions({name: total}))

    def delete_topic(self, bootstrap, name):
        self._admin_call(bootstrap, lambda a: a.delete_topics([name]))

    def list_topics(self, bootstrap):
        return user_topics(self._admin_call(bootstrap, lambda a: a.list_topics()))


# ================================================================== aiokafka

def _run_async(coro_fn):
    """Run coro_fn() to completion on a fresh event loop (in a thread when the caller is
    itself inside a running loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_fn())
    box: dict = {}

    def target():
        try:
            box["value"] = asyncio.run(coro_fn())
        except BaseException as e:  # noqa: BLE001 - re-raised below
            box["error"] = e
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class AiokafkaDriver(ClientDriver):
    """aiokafka. Its admin client speaks only AlterConfigs (not incremental): the driver
    emulates incremental alters by describe + AlterConfigs with the topic's current
    dynamic configs. Its CreateTopics (v0-v3) cannot ask for the broker's default
    replication factor, so replication_factor=None reads the broker's
    default.replication.factor with DescribeConfigs first."""

    name = "aiokafka"
    incremental_alter_configs = False

    def produce(self, bootstrap, topic, records, compression="none"):
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        self._check_compression(compression)

        async def run():
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap,
                compression_type=None if compression == "none" else compression)
            await producer.start()
            try:
                futures = []
                for r in records:
                    futures.append(await producer.send(
                        topic, value=r.get("value"), key=r.get("key"),
                        partition=r.get("partition"), timestamp_ms=r.get("timestamp_ms"),
                        headers=list(r.get("headers") or []) or None))
                metas = await asyncio.gather(*futures)
                return [(m.partition, m.offset) for m in metas]
            finally:
                await producer.stop()
        try:
            return _run_async(run)
        except KafkaError as e:
            raise _error_from_broker_exc(e, self.name) from e

    def consume(self, bootstrap, topic, partitions=None, expected_count=0, timeout_s=30.0):
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.errors import KafkaError

        async def run():
            deadline = time.monotonic() + timeout_s
            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
            await consumer.start()
            out: list[dict] = []
            try:
                parts = partitions
                if parts is None:
                    # what consumer.topics() does, keeping the partitions it fetched
                    cluster = await consumer._client.fetch_all_metadata()
                    found = cluster.partitions_for_topic(topic)
                    if not found:
                        raise KafkaClientError("UNKNOWN_TOPIC_OR_PART", 3, topic, self.name)
                    parts = sorted(found)
                tps = [TopicPartition(topic, p) for p in parts]
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                while len(out) < expected_count:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    batches = await consumer.getmany(timeout_ms=int(min(0.5, left) * 1000))
                    for recs in batches.values():
                        for r in recs:
                            out.append({
                                "partition": r.partition, "offset": r.offset, "key": r.key,
                                "value": r.value, "headers": _headers_out(r.headers),
                                "timestamp_ms": r.timestamp,
                            })
            finally:
                await consumer.stop()
            return out
        try:
            return _run_async(run)
        except KafkaError as e:
            raise _error_from_broker_exc(e, self.name) from e

    # ---- admin
    def _admin_call(self, bootstrap, fn):
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.errors import KafkaError

        async def run():
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
            await admin.start()
            try:
                return await fn(admin)
            finally:
                await admin.close()
        try:
            return _run_async(run)
        except KafkaError as e:
            raise _error_from_broker_exc(e, self.name) from e

    def _check(self, code, message=""):
        if code:
            from aiokafka.errors import for_code
            raise KafkaClientError(for_code(code).message, code, message or "", self.name)

    async def _default_replication_factor(self, admin) -> int:
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
        cluster = await admin.describe_cluster()
        broker_id = str(cluster["brokers"][0]["node_id"])
        (resp,) = await admin.describe_configs([ConfigResource(
            ConfigResourceType.BROKER, broker_id, configs={"default.replication.factor": None})])
        res = resp.to_object()["resources"][0]
        self._check(res["error_code"], res["error_message"])
        for e in res["config_entries"]:
            if e["config_names"] == "default.replication.factor":
                return int(e["config_value"])
        return 1

    def create_topic(self, bootstrap, name, partitions, config=None, validate_only=False,
                     replication_factor=None):
        from aiokafka.admin import NewTopic

        async def fn(admin):
            rf = replication_factor
            if rf is None:
                rf = await self._default_replication_factor(admin)
            resp = await admin.create_topics(
                [NewTopic(name, partitions, rf, topic_configs=dict(config or {}))],
                validate_only=validate_only)
            for t in resp.to_object()["topic_errors"]:
                self._check(t["error_code"], t.get("error_message"))
        self._admin_call(bootstrap, fn)

    async def _describe_configs(self, admin, name) -> list[dict]:
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
        (resp,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        res = resp.to_object()["resources"][0]
        self._check(res["error_code"], res["error_message"])
        return res["config_entries"]

    def describe_topic(self, bootstrap, name):
        async def fn(admin):
            (t,) = await admin.describe_topics([name])
            self._check(t["error_code"], name)
            entries = await self._describe_configs(admin, name)
            parts = t["partitions"]
            return TopicDescription(
                name=name, partitions=len(parts),
                replication_factor=len(parts[0]["replicas"]) if parts else 0,
                configs={e["config_names"]: e["config_value"] for e in entries})
        return self._admin_call(bootstrap, fn)

    def alter_topic_config(self, bootstrap, name, changes):
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        async def fn(admin):
            current = {e["config_names"]: e["config_value"]
                       for e in await self._describe_configs(admin, name)
                       if e.get("config_source") == _DYNAMIC_TOPIC_CONFIG}
            merged = {**current, **changes}
            merged = {k: v for k, v in merged.items() if v is not None}
            for resp in await admin.alter_configs(
                    [ConfigResource(ConfigResourceType.TOPIC, name, configs=merged)]):
                for res in resp.to_object()["resources"]:
                    self._check(res["error_code"], res["error_message"])
        self._admin_call(bootstrap, fn)

    def create_partitions(self, bootstrap, name, total):
        from aiokafka.admin import NewPartitions

        async def fn(admin):  # aiokafka raises on errors itself
            await admin.create_partitions({name: NewPartitions(total)})
        self._admin_call(bootstrap, fn)

    def delete_topic(self, bootstrap, name):
        async def fn(admin):
            resp = await admin.delete_topics([name])
            for t in resp.to_object()["topic_error_codes"]:
                self._check(t["error_code"], t.get("error_message") or name)
        self._admin_call(bootstrap, fn)

    def list_topics(self, bootstrap):
        async def fn(admin):
            return await admin.list_topics()
        return user_topics(self._admin_call(bootstrap, fn))
