from kio.schema.errors import ErrorCode

from brook.broker.producer_state import BatchMetadata, ProducerStateTable, last_seq_of


def _record(table, pid, epoch, first, count, offset):
    table.record(pid, epoch, BatchMetadata(first, last_seq_of(first, count), offset,
                                           offset + count - 1, 0))


def test_first_batch_must_start_at_zero():
    table = ProducerStateTable()
    assert table.check(7, 0, 0, 4).error == ErrorCode.none
    assert table.check(7, 0, 5, 9).error == ErrorCode.unknown_producer_id


def test_retry_of_a_recent_batch_is_a_duplicate_with_its_original_offset():
    table = ProducerStateTable()
    _record(table, 7, 0, 0, 5, 100)
    _record(table, 7, 0, 5, 5, 105)
    verdict = table.check(7, 0, 0, 4)
    assert verdict.duplicate is not None and verdict.duplicate.base_offset == 100
    assert table.check(7, 0, 10, 14).error == ErrorCode.none


def test_gap_is_out_of_order():
    table = ProducerStateTable()
    _record(table, 7, 0, 0, 5, 0)
    assert table.check(7, 0, 6, 8).error == ErrorCode.out_of_order_sequence_number


def test_older_epoch_is_fenced_and_new_epoch_restarts_at_zero():
    table = ProducerStateTable()
    _record(table, 7, 3, 0, 5, 0)
    assert table.check(7, 2, 5, 5).error == ErrorCode.invalid_producer_epoch
    assert table.check(7, 4, 3, 3).error == ErrorCode.out_of_order_sequence_number
    assert table.check(7, 4, 0, 0).error == ErrorCode.none


def test_only_five_batches_are_remembered():
    table = ProducerStateTable()
    for i in range(7):
        _record(table, 1, 0, i, 1, i)
    assert table.check(1, 0, 0, 0).duplicate is None
    assert table.check(1, 0, 2, 2).duplicate is not None


def test_sequence_wraps_after_int32_max():
    table = ProducerStateTable()
    table.record(1, 0, BatchMetadata(2_147_483_640, 2_147_483_647, 0, 7, 0))
    assert table.check(1, 0, 0, 3).error == ErrorCode.none


def test_snapshot_round_trip_and_truncation():
    table = ProducerStateTable()
    _record(table, 1, 0, 0, 5, 0)
    _record(table, 1, 0, 5, 5, 5)
    copy = ProducerStateTable.from_snapshot(table.to_snapshot())
    assert copy.check(1, 0, 5, 9).duplicate.base_offset == 5
    copy.truncate_after(5)
    assert copy.check(1, 0, 5, 9).duplicate is None
