"""The follower's truncation rule after OffsetForLeaderEpoch (KIP-279), on divergent logs.

Logs are modelled as the leader epoch of each offset; the leader answers from its own
epoch cache exactly as the OffsetForLeaderEpoch handler does, and the follower repeats
the exchange until the rule says it is done. The result must leave the follower holding
a prefix of the leader's log, and no shorter than the longest common prefix.
"""

from brook.broker.replication.truncation import Truncation, decide_truncation
from brook.broker.storage.leader_epochs import UNDEFINED, LeaderEpochCache


def cache(epochs_by_offset: list[int]) -> LeaderEpochCache:
    epochs = LeaderEpochCache()  # in memory
    for offset, epoch in enumerate(epochs_by_offset):
        epochs.assign(epoch, offset)
    return epochs


def converge(leader_log: list[int], follower_log: list[int], hw: int = 0) -> tuple[int, int]:
    """(offset the follower ends truncated to, OffsetForLeaderEpoch rounds it took)."""
    leader = cache(leader_log)
    log = list(follower_log)
    for rounds in range(1, 20):
        local = cache(log)
        epoch, end = leader.end_offset_for(local.latest_epoch, len(leader_log))
        decision = decide_truncation(epoch, end, local, len(log), min(hw, len(log)))
        del log[decision.offset:]
        if decision.completed:
            return len(log), rounds
    raise AssertionError("the follower never finished truncating")


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def check(leader_log, follower_log, hw=0):
    end, rounds = converge(leader_log, follower_log, hw)
    assert follower_log[:end] == leader_log[:end], "kept a divergent record"
    assert end == common_prefix(leader_log, follower_log), "cut a record both logs share"
    return end, rounds


def test_leader_answers_an_older_epoch_the_follower_lacks_so_it_asks_again():
    # offsets 8-9: the follower has epoch 0, the leader epoch 1; the follower never saw
    # epoch 1, wrote epoch 2 from 10 as a leader nobody followed
    leader_log = [0] * 8 + [1] * 4 + [3] * 8
    follower_log = [0] * 10 + [2] * 5
    # one step of the rule: the leader's end for epoch 1 (12) is past the divergence
    first = decide_truncation(1, 12, cache(follower_log), 15, 0)
    assert first == Truncation(10, completed=False)
    assert check(leader_log, follower_log) == (8, 2)


def test_same_epoch_cut_to_the_shorter_of_the_two_ends():
    leader_log = [0] * 5 + [1] * 3 + [2] * 4  # epoch 1 ends at 8 on the leader
    follower_log = [0] * 5 + [1] * 6  # wrote epoch 1 up to 11 (an old leader's tail)
    assert decide_truncation(1, 8, cache(follower_log), 11, 0) == Truncation(8, True)
    check(leader_log, follower_log)


def test_follower_behind_within_the_same_epoch_keeps_everything():
    leader_log = [0] * 5 + [1] * 4 + [2] * 3
    follower_log = [0] * 5 + [1] * 2
    assert decide_truncation(1, 9, cache(follower_log), 7, 0) == Truncation(7, True)
    assert check(leader_log, follower_log) == (7, 1)


def test_identical_logs_are_left_alone():
    log = [0] * 3 + [4] * 3 + [7] * 3
    assert check(log, list(log)) == (9, 1)


def test_several_epochs_of_divergence_take_several_rounds():
    # common prefix 4 (epoch 0), then the two sides alternate epochs nobody else saw
    leader_log = [0] * 4 + [2] * 3 + [4] * 3 + [6] * 2
    follower_log = [0] * 4 + [1] * 2 + [3] * 2 + [5] * 2
    end, rounds = check(leader_log, follower_log)
    assert end == 4 and rounds > 1


def test_leader_knows_no_epoch_that_old_cut_to_the_high_watermark():
    follower = cache([0] * 6)
    assert decide_truncation(UNDEFINED, UNDEFINED, follower, 6, 4) == Truncation(4, True)


def test_answer_without_an_epoch_uses_the_smaller_end_offset():
    follower = cache([0] * 6)
    assert decide_truncation(UNDEFINED, 3, follower, 6, 0) == Truncation(3, True)
    assert decide_truncation(UNDEFINED, 9, follower, 6, 0) == Truncation(6, True)


def test_follower_has_nothing_at_or_below_the_leaders_epoch():
    # as in Kafka, the follower's cache answers an epoch older than its first with that
    # epoch ending where its own first epoch starts: nothing is shared, cut everything
    follower = cache([5] * 4)
    assert decide_truncation(2, 10, follower, 4, 1) == Truncation(0, True)
    empty = cache([])
    assert decide_truncation(2, 10, empty, 0, 0) == Truncation(0, True)


def test_random_divergent_histories_end_on_the_common_prefix():
    import random
    for seed in range(300):
        rng = random.Random(seed)
        prefix = [e for e in sorted(rng.choices(range(4), k=rng.randint(0, 8)))]
        top = prefix[-1] if prefix else 0
        # the two sides take disjoint later epochs (one leader per epoch)
        later = list(range(top + 1, top + 12))
        rng.shuffle(later)
        mine, theirs = sorted(later[:5]), sorted(later[5:10])
        # optionally both continue the prefix's last epoch a little (same leader wrote it;
        # one copied more of it than the other)
        shared_tail = rng.randint(0, 3)
        leader_log = prefix + [top] * shared_tail
        follower_log = prefix + [top] * rng.randint(0, shared_tail)
        for epoch in theirs[:rng.randint(0, 5)]:
            leader_log += [epoch] * rng.randint(1, 3)
        for epoch in mine[:rng.randint(0, 5)]:
            follower_log += [epoch] * rng.randint(1, 3)
        check(leader_log, follower_log)


def test_truncating_below_the_log_start_restarts_the_log_and_forgets_its_epochs(tmp_path):
    """A follower whose whole log diverged (the answer lies below its log start, e.g.
    after DeleteRecords) restarts empty at that offset with no epochs, as Kafka does, so
    its next OffsetForLeaderEpoch round is its last instead of the same question again."""
    from brook.broker.partition import Partition
    from brook.broker.records import Record, assign_offsets, encode_batch, parse_batches
    from brook.broker.storage.log import PartitionLog
    from brook.broker.storage.log_config import LogConfig

    log = PartitionLog(tmp_path / "t-0", LogConfig())
    partition = Partition("t", 0, log, LogConfig())
    for epoch, first in ((2, 0), (4, 5)):
        data = bytearray(encode_batch([Record(i, 1_000, b"k", b"v", []) for i in range(5)]))
        headers = parse_batches(data)
        assign_offsets(data, headers, first, partition_leader_epoch=epoch)
        partition.append_as_follower(data, parse_batches(data))
    assert partition.epochs.entries == [(2, 0), (4, 5)]
    log.delete_records_before(7)

    partition.truncate_to(3)
    assert (log.log_start_offset, log.log_end_offset) == (3, 3)
    assert partition.epochs.entries == []
    decision = decide_truncation(1, 3, partition.epochs, 3, partition.follower_high_watermark)
    assert decision.completed
    log.close()
