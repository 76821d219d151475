"""The checks of tests/controlplane/traffic.py on lists in memory (no control plane needed)."""

from __future__ import annotations

from .traffic import check_exactly_once_in_order, check_group_reads

TAG = "t1"


def _log(n: int, partitions: int = 2) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, str]]]:
    """n acknowledged records, keys seq % 16 spread over `partitions` partitions, and
    the log they make: (seq, partition, offset) and (partition, offset, value)."""
    acked, records, ends = [], [], [0] * partitions
    for seq in range(n):
        partition = (seq % 16) % partitions
        acked.append((seq, partition, ends[partition]))
        records.append((partition, ends[partition], f"{TAG}-{seq}"))
        ends[partition] += 1
    return acked, records


def test_every_record_read_once_in_order_is_fine():
    acked, records = _log(40)
    check = check_group_reads(acked, records, TAG, [0])
    assert check.problems == [] and check.consumed == 40 and check.redelivered == 0
    assert check_exactly_once_in_order(acked, records, TAG) == []


def test_records_of_other_runs_are_ignored():
    acked, records = _log(10)
    others = [(0, 100 + i, f"old-{i}") for i in range(5)]
    check = check_group_reads(acked, others + records, TAG, [0])
    assert check.problems == [] and check.consumed == 10


def test_a_redelivered_record_is_not_a_problem():
    acked, records = _log(30)
    # After a rebalance the member resumes at its last committed offset and reads the
    # records since then again, at the same offsets with the same values.
    reads = records[:20] + records[12:]
    check = check_group_reads(acked, reads, TAG, [0, 20])
    assert check.problems == [], check.problems
    assert check.consumed == 30 and check.redelivered == 8


def test_a_redelivery_without_a_rebalance_is_not_a_problem_either():
    acked, records = _log(30)
    check = check_group_reads(acked, records[:20] + records[12:], TAG, [0])
    assert check.problems == [] and check.redelivered == 8


def test_one_offset_read_with_two_values_is_reported():
    acked, records = _log(30)
    partition, offset, _ = records[25]
    reads = records[:26] + [(partition, offset, f"{TAG}-999")] + records[26:]
    problems = check_group_reads(acked, reads, TAG, [0, 26]).problems
    assert len(problems) == 1 and "two different values" in problems[0], problems
    assert f"partition {partition} offset {offset}" in problems[0]


def test_a_missing_acknowledged_record_is_reported():
    acked, records = _log(30)
    lost = records.pop(17)
    problems = check_group_reads(acked, records, TAG, [0]).problems
    assert problems == [f"1 acknowledged record(s) never read, e.g. [{lost[2].split('-')[1]}]"], problems


def test_a_record_at_two_offsets_is_reported():
    acked, records = _log(30)
    # The same record written twice (a retried produce the broker did not deduplicate).
    again = (records[-1][0], records[-1][1] + 1, records[3][2])
    problems = check_group_reads(acked, [*records, again], TAG, [0]).problems
    assert any("read more than once" in p for p in problems), problems


def test_records_of_a_key_out_of_produce_order_are_reported():
    acked, records = _log(40, partitions=1)
    # Two records of key 0 (seqs 0 and 16) swapped in the log.
    values = [v for _, _, v in records]
    values[0], values[16] = values[16], values[0]
    swapped = [(p, o, v) for (p, o, _), v in zip(records, values, strict=True)]
    problems = check_group_reads(acked, swapped, TAG, [0]).problems
    assert any("record 0 read after 16" in p for p in problems), problems
    assert check_exactly_once_in_order(acked, swapped, TAG) == problems


def test_reading_back_to_an_offset_not_read_before_is_reported_unless_a_rebalance_came():
    acked, records = _log(30, partitions=1)
    # Offsets 10-14 skipped, then read after the later ones.
    reads = records[:10] + records[15:] + records[10:15]
    problems = check_group_reads(acked, reads, TAG, [0]).problems
    assert len(problems) == 1 and "out of order without a rebalance" in problems[0], problems
    assert "offset 10 first read after 29" in problems[0]
    # The same with an assignment in between: the collapsed reads are complete.
    assert check_group_reads(acked, reads, TAG, [0, 25]).problems == []
