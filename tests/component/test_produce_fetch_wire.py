"""Produce and Fetch rules checked request by request over a raw socket."""

import threading
import time

from kio.schema.errors import ErrorCode

from brook.broker.records import decode_records, parse_batches
from tests.component.wire_helpers import batch, create_topic, fetch, list_offsets, produce
from tests.support.kafka_wire import WireClient


def _values(records: bytes) -> list[bytes]:
    values, position = [], 0
    for header in parse_batches(records):
        values += [r.value for r in decode_records(records[position:position + header.size])]
        position += header.size
    return values


def test_idempotent_retry_gets_original_offset_and_is_not_appended_twice(broker, topic_name):
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name)
        first = produce(c, topic_name, batch([b"a", b"b"], producer_id=5000, epoch=0, sequence=0))
        second = produce(c, topic_name, batch([b"c"], producer_id=5000, epoch=0, sequence=2))
        retry = produce(c, topic_name, batch([b"a", b"b"], producer_id=5000, epoch=0, sequence=0))
        assert (first.error_code, second.error_code, retry.error_code) == (ErrorCode.none,) * 3
        assert retry.base_offset == first.base_offset == 0
        gap = produce(c, topic_name, batch([b"x"], producer_id=5000, epoch=0, sequence=7))
        assert gap.error_code == ErrorCode.out_of_order_sequence_number
        data = fetch(c, topic_name, 0)
        assert data.high_watermark == 3
        assert _values(data.records) == [b"a", b"b", b"c"]


def test_idempotent_state_survives_a_crash(fresh_broker, topic_name):
    broker = fresh_broker()
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name)
        produce(c, topic_name, batch([b"a"], producer_id=77, epoch=0, sequence=0))
    broker.kill()
    broker.start()
    with WireClient(broker.bootstrap) as c:
        retry = produce(c, topic_name, batch([b"a"], producer_id=77, epoch=0, sequence=0))
        assert retry.error_code == ErrorCode.none and retry.base_offset == 0
        assert fetch(c, topic_name, 0).high_watermark == 1


def test_corrupt_crc_is_refused_and_nothing_is_written(broker, topic_name):
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name)
        data = bytearray(batch([b"payload"]))
        data[-1] ^= 0xFF
        result = produce(c, topic_name, bytes(data))
        assert result.error_code == ErrorCode.corrupt_message
        truncated = produce(c, topic_name, batch([b"payload"])[:-5])
        assert truncated.error_code == ErrorCode.corrupt_message
        assert fetch(c, topic_name, 0).high_watermark == 0


def test_message_max_bytes_and_record_list_too_large(broker, topic_name):
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name, max_message_bytes=1000, segment_bytes=5000)
        big = produce(c, topic_name, batch([b"x" * 2000]))
        assert big.error_code == ErrorCode.message_too_large
        many = produce(c, topic_name, b"".join(batch([b"y" * 500]) for _ in range(12)))
        assert many.error_code == ErrorCode.record_list_too_large
        assert fetch(c, topic_name, 0).high_watermark == 0


def test_acks_zero_gets_no_response_but_is_stored(broker, topic_name):
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name)
        assert produce(c, topic_name, batch([b"fire"]), acks=0) is None
        assert fetch(c, topic_name, 0, max_wait=2000).high_watermark == 1


def test_invalid_acks_value(broker, topic_name):
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name)
        assert produce(c, topic_name, batch([b"v"]), acks=2).error_code == \
            ErrorCode.invalid_required_acks


def test_acks_all_refused_when_min_insync_exceeds_the_isr(broker, topic_name):
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name, min_insync_replicas=2)
        assert produce(c, topic_name, batch([b"v"]), acks=-1).error_code == \
            ErrorCode.not_enough_replicas
        assert produce(c, topic_name, batch([b"v"]), acks=1).error_code == ErrorCode.none
        assert fetch(c, topic_name, 0).high_watermark == 1


def test_unknown_partition(broker, topic_name):
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name)
        assert produce(c, topic_name, batch([b"v"]), partition=3).error_code == \
            ErrorCode.unknown_topic_or_partition
        assert fetch(c, topic_name, 0, partition=3).error_code == \
            ErrorCode.unknown_topic_or_partition


def test_fetch_out_of_range(broker, topic_name):
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name)
        produce(c, topic_name, batch([b"v"]))
        assert fetch(c, topic_name, 5).error_code == ErrorCode.offset_out_of_range


def test_fetch_long_poll_waits_for_data_and_wakes_on_produce(broker, topic_name):
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name)
    started = time.monotonic()
    empty = None
    with WireClient(broker.bootstrap) as c:
        empty = fetch(c, topic_name, 0, max_wait=400)
    assert empty.records in (b"", None) and time.monotonic() - started >= 0.35

    def later():
        time.sleep(0.3)
        with WireClient(broker.bootstrap) as p:
            produce(p, topic_name, batch([b"wake"]))

    threading.Thread(target=later).start()
    started = time.monotonic()
    with WireClient(broker.bootstrap) as c:
        woke = fetch(c, topic_name, 0, max_wait=10_000)
    assert len(woke.records) > 0
    assert time.monotonic() - started < 5  # woken by the produce, not by max_wait


def test_fetch_min_bytes_waits_for_enough_data(broker, topic_name):
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name)
        produce(c, topic_name, batch([b"small"]))
        started = time.monotonic()
        result = fetch(c, topic_name, 0, max_wait=500, min_bytes=10_000)
        assert time.monotonic() - started >= 0.45
        assert len(result.records) > 0  # returns what it has when max_wait expires


def test_fetch_byte_limits_and_kip74(broker, topic_name):
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name)
        for i in range(5):
            produce(c, topic_name, batch([bytes([65 + i]) * 1000]))
        limited = fetch(c, topic_name, 0, partition_max_bytes=2500)
        assert len(parse_batches(limited.records)) == 2
        tiny = fetch(c, topic_name, 0, max_bytes=10, partition_max_bytes=10)
        assert len(parse_batches(tiny.records)) == 1  # at least one whole batch (KIP-74)


def test_control_and_transactional_batches_from_clients_are_refused(broker, topic_name):
    import time as _time

    from brook.broker.records import Record, encode_batch

    now = int(_time.time() * 1000)
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name)
        control = encode_batch([Record(0, now, b"\x00\x00\x00\x00", b"", [])], is_control=True)
        assert produce(c, topic_name, control).error_code == ErrorCode.invalid_record
        txn = encode_batch([Record(0, now, b"k", b"v", [])], producer_id=9, producer_epoch=0,
                           base_sequence=0, is_transactional=True)
        assert produce(c, topic_name, txn).error_code == ErrorCode.invalid_txn_state
        assert fetch(c, topic_name, 0).high_watermark == 0


def test_timestamps_beyond_message_timestamp_after_max_ms_are_refused(broker, topic_name):
    import time as _time

    from brook.broker.records import Record, encode_batch

    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name, message_timestamp_after_max_ms=60_000)
        future = int(_time.time() * 1000) + 3_600_000
        late = encode_batch([Record(0, future, b"k", b"v", [])])
        assert produce(c, topic_name, late).error_code == ErrorCode.invalid_timestamp
        assert fetch(c, topic_name, 0).high_watermark == 0


def test_a_large_fetch_sends_the_stored_bytes_across_segments(broker, topic_name):
    """Past 64 KiB a fetch goes out with sendfile from the segment files: the records
    in the response are the log's bytes exactly, batch boundaries and all, though
    they span several segments and the frame is assembled around them."""
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name, segment_bytes=100_000)
        for i in range(40):
            assert produce(c, topic_name, batch([b"%03d" % i + b"v" * 9_000] * 5)).error_code == 0
        data = fetch(c, topic_name, 0, partition_max_bytes=50_000_000)
        directory = broker.data_dir / f"{topic_name}-0"
        segments = sorted(directory.glob("*.log"))
        assert len(segments) > 10
        assert data.records == b"".join(s.read_bytes() for s in segments)
        assert len(_values(data.records)) == 200
        # and a fetch from the middle starts at the batch holding the offset
        middle = fetch(c, topic_name, 102, partition_max_bytes=50_000_000)
        assert _values(middle.records)[0].startswith(b"020")


READ_UNCOMMITTED, READ_COMMITTED = 0, 1
LATEST, EARLIEST, MAX_TIMESTAMP = -1, -2, -3


def test_read_committed_fetch_without_transactions_reads_up_to_the_high_watermark(
        broker, topic_name):
    """No transactions exist, so the last stable offset is the high watermark and a
    read_committed fetch returns every record, with an empty (not null) list of
    aborted transactions; read_uncommitted sends null there, as Kafka does."""
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name)
        for i in range(3):
            assert produce(c, topic_name, batch([b"r%d-%d" % (i, j) for j in range(4)])
                           ).error_code == ErrorCode.none
        everything = [b"r%d-%d" % (i, j) for i in range(3) for j in range(4)]
        for version in (12, 11, 4):  # flexible and non-flexible encodings
            committed = fetch(c, topic_name, 0, isolation_level=READ_COMMITTED, version=version)
            assert committed.error_code == ErrorCode.none
            assert committed.high_watermark == 12, version
            assert committed.last_stable_offset == committed.high_watermark, version
            assert committed.aborted_transactions == (), version
            assert _values(committed.records) == everything, version
            from_middle = fetch(c, topic_name, 5, isolation_level=READ_COMMITTED,
                                version=version)
            assert _values(from_middle.records)[-1] == everything[-1], version
            uncommitted = fetch(c, topic_name, 0, isolation_level=READ_UNCOMMITTED,
                                version=version)
            assert uncommitted.aborted_transactions is None, version
            assert uncommitted.last_stable_offset == 12, version


def test_read_committed_list_offsets_latest_is_the_high_watermark(broker, topic_name):
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name)
        assert list_offsets(c, topic_name, LATEST, isolation_level=READ_COMMITTED)[:2] == \
            (ErrorCode.none, 0)
        produce(c, topic_name, batch([b"a", b"b", b"c"]))
        produce(c, topic_name, batch([b"d", b"e"]))
        hw = fetch(c, topic_name, 0).high_watermark
        assert hw == 5
        for level in (READ_COMMITTED, READ_UNCOMMITTED):
            assert list_offsets(c, topic_name, LATEST, isolation_level=level)[:2] == \
                (ErrorCode.none, hw)
            assert list_offsets(c, topic_name, EARLIEST, isolation_level=level)[:2] == \
                (ErrorCode.none, 0)
            error, offset, _ = list_offsets(c, topic_name, MAX_TIMESTAMP, isolation_level=level)
            assert error == ErrorCode.none and 0 <= offset < hw


def test_confluent_kafka_read_committed_consumer_reads_everything(broker, topic_name):
    """A real client asking for read_committed (librdkafka's default, set explicitly)
    reads every record: nothing is held back as if a transaction were open."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name, partitions=2)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    sent = {b"v%04d" % i for i in range(500)}
    for value in sorted(sent):
        producer.produce(topic_name, value, key=value[-1:])
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic_name,
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic_name, p, OFFSET_BEGINNING) for p in (0, 1)])
        got = []
        deadline = time.monotonic() + 60
        while len(got) < len(sent) and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=1):
                assert message.error() is None, message.error()
                got.append(message.value())
        assert len(got) == len(sent) and set(got) == sent
        for p in (0, 1):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic_name, p), timeout=10)
            assert low == 0 and high > 0
    finally:
        consumer.close()


def test_broker_message_max_bytes_is_the_default_for_topics(fresh_broker, topic_name):
    """message.max.bytes of the broker applies to topics without max.message.bytes
    (MESSAGE_TOO_LARGE per batch); a topic's own max.message.bytes overrides it, and
    log.segment.bytes bounds a whole request (RECORD_LIST_TOO_LARGE), as in Kafka."""
    broker = fresh_broker(message_max_bytes=1500, log_segment_bytes=16384)
    with WireClient(broker.bootstrap) as c:
        create_topic(c, topic_name)
        create_topic(c, topic_name + "-own", max_message_bytes=5000)
        assert produce(c, topic_name, batch([b"x" * 2000])).error_code == \
            ErrorCode.message_too_large
        assert produce(c, topic_name, batch([b"x" * 1000])).error_code == ErrorCode.none
        assert produce(c, topic_name + "-own", batch([b"x" * 2000])).error_code == \
            ErrorCode.none
        many = b"".join(batch([b"y" * 1000]) for _ in range(20))  # each batch fits
        assert produce(c, topic_name, many).error_code == ErrorCode.record_list_too_large
        assert fetch(c, topic_name, 0).high_watermark == 1
