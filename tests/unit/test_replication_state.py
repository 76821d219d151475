"""Leader-side follower tracking and the leader-epoch cache (pure logic)."""

from brook.broker.replication.leader_state import LeaderState
from brook.broker.storage.leader_epochs import LeaderEpochCache


def leader(isr=(0, 1, 2), hw=0, now=0):
    return LeaderState(my_id=0, replicas=(0, 1, 2), isr=isr, leader_epoch=3, partition_epoch=0,
                       epoch_start_offset=0, high_watermark=hw, now_ms=now)


def test_high_watermark_is_the_slowest_isr_member():
    state = leader()
    state.on_follower_fetch(1, 10, leader_leo=10, now_ms=1)
    state.on_follower_fetch(2, 7, leader_leo=10, now_ms=1)
    assert state.advance_high_watermark(10) and state.high_watermark == 7
    state.on_follower_fetch(2, 10, leader_leo=10, now_ms=2)
    state.advance_high_watermark(10)
    assert state.high_watermark == 10


def test_high_watermark_ignores_followers_outside_the_isr_and_never_moves_back():
    state = leader(isr=(0, 1), hw=5)
    state.on_follower_fetch(1, 9, leader_leo=9, now_ms=1)
    state.on_follower_fetch(2, 0, leader_leo=9, now_ms=1)
    state.advance_high_watermark(9)
    assert state.high_watermark == 9
    state.on_follower_fetch(1, 3, leader_leo=9, now_ms=2)
    assert not state.advance_high_watermark(9) and state.high_watermark == 9


def test_a_lagging_follower_is_proposed_out_and_a_caught_up_one_back_in():
    state = leader(now=0)
    state.on_follower_fetch(1, 10, leader_leo=10, now_ms=100)
    state.on_follower_fetch(2, 3, leader_leo=10, now_ms=100)  # behind since the start
    assert state.proposed_isr(now_ms=20_000, lag_max_ms=30_000) is None
    assert state.proposed_isr(now_ms=30_001, lag_max_ms=30_000) == (0, 1)
    state.isr = (0, 1)
    state.advance_high_watermark(10)
    state.on_follower_fetch(2, 10, leader_leo=10, now_ms=30_100)
    assert state.proposed_isr(now_ms=30_100, lag_max_ms=30_000) == (0, 1, 2)


def test_a_follower_that_stopped_fetching_is_not_taken_back_into_the_isr():
    state = leader(now=0)
    state.on_follower_fetch(1, 10, leader_leo=10, now_ms=100)
    state.on_follower_fetch(2, 10, leader_leo=10, now_ms=100)  # then broker 2 freezes
    state.advance_high_watermark(10)
    state.on_follower_fetch(1, 10, leader_leo=10, now_ms=3_500)
    assert state.proposed_isr(now_ms=3_500, lag_max_ms=3_000) == (0, 1)
    state.isr = (0, 1)
    # no writes since: its old position still equals the high watermark
    assert state.proposed_isr(now_ms=5_000, lag_max_ms=3_000) is None


def test_a_fenced_follower_is_not_proposed_back_however_caught_up():
    state = leader(isr=(0, 1))
    state.on_follower_fetch(1, 10, leader_leo=10, now_ms=100)
    state.on_follower_fetch(2, 10, leader_leo=10, now_ms=100)  # restarted, still fenced
    state.advance_high_watermark(10)
    fenced = {2}
    assert state.proposed_isr(100, 30_000, eligible=lambda b: b not in fenced) is None
    fenced.clear()  # unfenced: the next check takes it back
    assert state.proposed_isr(100, 30_000, eligible=lambda b: b not in fenced) == (0, 1, 2)


def test_one_isr_change_in_flight_at_a_time_and_maximal_isr_holds_the_watermark():
    state = leader(isr=(0, 1))
    state.pending_isr = (0, 1, 2)
    assert state.proposed_isr(now_ms=99_999, lag_max_ms=1) is None
    state.on_follower_fetch(1, 10, leader_leo=10, now_ms=1)
    state.on_follower_fetch(2, 4, leader_leo=10, now_ms=1)
    state.advance_high_watermark(10)
    assert state.high_watermark == 4


def test_leader_epoch_cache_answers_offset_for_leader_epoch(tmp_path):
    cache = LeaderEpochCache(tmp_path)
    cache.assign(0, 0)
    cache.assign(2, 50)
    cache.assign(5, 80)
    assert cache.end_offset_for(5, log_end_offset=100) == (5, 100)
    assert cache.end_offset_for(2, 100) == (2, 80)
    assert cache.end_offset_for(3, 100) == (2, 80)  # epoch 3 never led: end of epoch 2
    assert cache.end_offset_for(1, 100) == (0, 50)
    later = LeaderEpochCache()
    later.assign(3, 40)  # a log that starts in epoch 3 (older epochs deleted)
    assert later.end_offset_for(1, 100) == (1, 40)  # Kafka: the asker keeps [0, 40)
    assert LeaderEpochCache(tmp_path).entries == [(0, 0), (2, 50), (5, 80)]  # persisted
    cache.truncate_from_end(60)
    assert cache.entries == [(0, 0), (2, 50)]
    assert not cache.assign(1, 70)  # older epochs are never added after newer ones
