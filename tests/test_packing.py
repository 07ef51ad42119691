"""Tests for intercept.packing: the window planner, the packed audio, and the mapping of
recognised segments back to transmissions (pure Python, no model)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intercept.packing import PackOptions, Placement, assign_spans, pack_samples, plan_packs, split_by_words
from intercept.types import Transmission

RATE = 16000


def txs(*spans):
    return [Transmission(i, start, end) for i, (start, end) in enumerate(spans)]


def test_short_transmissions_share_a_window_with_gaps_between():
    packs = plan_packs(txs((10, 14), (20, 26), (40, 43)), PackOptions(window_s=29, gap_s=1.5))
    assert len(packs) == 1
    offsets = [p.offset_s for p in packs[0].placements]
    assert offsets == [0.0, 5.5, 13.0]  # 4 s + 1.5 gap, then 6 s + 1.5 gap
    assert packs[0].duration_s == pytest.approx(16.0)
    assert packs[0].speech_s == pytest.approx(13.0)


def test_a_transmission_that_does_not_fit_opens_the_next_window():
    packs = plan_packs(txs((0, 10), (20, 30), (40, 50)), PackOptions(window_s=29, gap_s=1.5))
    assert [[p.transmission.idx for p in pack.placements] for pack in packs] == [[0, 1], [2]]
    # 10 + 1.5 + 10 = 21.5 fits; adding 1.5 + 10 would be 33 > 29.
    assert packs[0].duration_s == pytest.approx(21.5)


def test_a_transmission_longer_than_the_window_gets_its_own():
    packs = plan_packs(txs((0, 3), (5, 45), (50, 52)), PackOptions(window_s=29))
    assert [[p.transmission.idx for p in pack.placements] for pack in packs] == [[0], [1], [2]]


def test_empty_and_zero_length_transmissions_are_skipped():
    assert plan_packs([]) == []
    packs = plan_packs(txs((1, 1), (2, 4)))
    assert [p.transmission.idx for p in packs[0].placements] == [1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.05, 40.0), st.floats(0.0, 20.0)), min_size=1, max_size=30),
       st.floats(0.0, 3.0))
def test_plan_keeps_order_never_overlaps_and_respects_the_window(pieces, gap):
    cursor, spans = 0.0, []
    for duration, silence in pieces:
        cursor += silence
        spans.append((cursor, cursor + duration))
        cursor += duration
    options = PackOptions(window_s=29.0, gap_s=gap)
    packs = plan_packs(txs(*spans), options)
    placed = [p.transmission.idx for pack in packs for p in pack.placements]
    assert placed == list(range(len(spans)))  # every transmission once, in recording order
    for pack in packs:
        assert pack.duration_s <= options.window_s + 1e-9 or len(pack.placements) == 1
        for before, after in zip(pack.placements, pack.placements[1:]):
            assert after.offset_s == pytest.approx(before.end_s + gap)


def test_packed_samples_hold_each_transmission_at_its_offset_and_silence_between():
    samples = (np.arange(60 * RATE) / (60 * RATE)).astype(np.float32)  # a ramp: positions are readable
    pack = plan_packs(txs((10, 12), (30, 33.5)), PackOptions(gap_s=1.0))[0]
    window = pack_samples(samples, pack, RATE)
    assert window.size == int(6.5 * RATE)
    np.testing.assert_array_equal(window[: 2 * RATE], samples[10 * RATE : 12 * RATE])
    assert not window[2 * RATE : 3 * RATE].any()
    np.testing.assert_array_equal(window[3 * RATE :], samples[30 * RATE : int(33.5 * RATE)])


def test_window_times_map_back_to_recording_times_inside_the_transmission():
    placement = Placement(Transmission(4, 100.0, 104.0), offset_s=7.5)
    assert placement.to_recording_time(8.0) == pytest.approx(100.5)
    assert placement.to_recording_time(7.0) == 100.0  # before the transmission: clamped
    assert placement.to_recording_time(13.0) == 104.0  # in the gap after: clamped


def test_segments_are_assigned_to_the_transmission_they_cover():
    pack = plan_packs(txs((10, 14), (20, 26), (40, 43)), PackOptions(gap_s=1.5))[0]
    # windows: [0, 4], [5.5, 11.5], [13, 16]
    spans = [(0.0, 4.3), (5.3, 8.0), (8.0, 11.8), (13.1, 16.0)]
    assert assign_spans(pack, spans) == [0, 1, 1, 2]


def test_a_segment_across_a_gap_is_not_assigned():
    pack = plan_packs(txs((10, 14), (20, 26)), PackOptions(gap_s=1.5))[0]
    # [0, 4] and [5.5, 11.5]: a segment from 2 s to 9 s holds words of both.
    assert assign_spans(pack, [(2.0, 9.0), (0.0, 3.0)]) == [None, 0]


def test_edge_drift_into_a_neighbour_does_not_count_as_straddling():
    pack = plan_packs(txs((10, 14), (20, 26)), PackOptions(gap_s=1.5, min_cover_s=0.4))[0]
    # Reaches 0.3 s into the second transmission: timestamp drift, not its words.
    assert assign_spans(pack, [(1.0, 5.8)]) == [0]


def test_a_segment_in_a_gap_goes_to_the_nearest_transmission():
    pack = plan_packs(txs((10, 14), (20, 26)), PackOptions(gap_s=3.0))[0]
    # [0, 4] and [7, 13]
    assert assign_spans(pack, [(4.2, 4.8), (6.0, 6.8)]) == [0, 1]


def test_a_one_word_transmission_is_covered_by_half_its_length():
    pack = plan_packs(txs((10, 14), (20, 20.5), (30, 34)), PackOptions(gap_s=1.5, min_cover_s=0.4))[0]
    # [0, 4], [5.5, 6.0], [7.5, 11.5]: a segment over all of the short call and into both
    # neighbours straddles.
    assert assign_spans(pack, [(3.0, 9.0)]) == [None]
    assert assign_spans(pack, [(5.4, 6.1)]) == [1]


def test_a_segment_across_a_gap_is_cut_there_by_its_words():
    pack = plan_packs(txs((10, 14), (20, 26), (40, 43)), PackOptions(gap_s=1.5))[0]
    # [0, 4], [5.5, 11.5], [13, 16]; a word drifting 0.3 s into the gap still goes to its own.
    words = [(0.2, 1.0), (1.0, 3.9), (4.0, 4.6), (5.6, 7.0), (7.0, 11.0), (13.2, 15.0)]
    assert split_by_words(pack, words) == [(0, [0, 1, 2]), (1, [3, 4]), (2, [5])]


def test_words_that_cannot_be_trusted_to_cut_a_segment_leave_it_whole():
    pack = plan_packs(txs((10, 14), (20, 26)), PackOptions(gap_s=1.5))[0]
    # a word in the middle of the gap, 0.75 s from both transmissions: beyond the 0.5 s slack
    assert split_by_words(pack, [(1.0, 2.0), (4.5, 5.0), (6.0, 7.0)]) is None
    assert split_by_words(pack, [(1.0, 2.0), (4.5, 5.0)], PackOptions(gap_s=1.5, word_slack_s=0.8)) == [
        (0, [0, 1])]
    # words going back in time across a gap (the alignment is off)
    assert split_by_words(pack, [(6.0, 7.0), (1.0, 2.0)]) is None
    assert split_by_words(pack, []) is None


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="gap_s"):
        PackOptions(gap_s=-1)
    with pytest.raises(ValueError, match="window_s"):
        PackOptions(window_s=0)
    with pytest.raises(ValueError, match="word_slack_s"):
        PackOptions(word_slack_s=-0.1)
