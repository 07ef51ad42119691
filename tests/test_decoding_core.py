"""The decoding core (intercept.engines.core) over a scripted window model: the policy every
engine shares (loop retry, token caps, packing, clamping) and how the recogniser's evidence
(words, N-best) is mapped onto lines. No model: the real engines are tested in
test_faster_whisper.py and test_engines.py."""
from __future__ import annotations

import math

import numpy as np
import pytest

from intercept.engines import TranscribeOptions
from intercept.engines.core import Candidate, Decoded, Decoder, Segment, compression_ratio
from intercept.types import Transmission, Word

LOOP = "که " * 40


class Scripted:
    """A WindowModel answering from a script; records each request."""

    token_room = 440
    packs = True

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []

    def decode(self, audio, task, max_new_tokens, loop_retry=False):
        self.requests.append({"seconds": len(audio) / 16000, "task": task, "max_new_tokens": max_new_tokens,
                              "loop_retry": loop_retry})
        answer = self.answers[len(self.requests) - 1]
        return answer(audio) if callable(answer) else answer


def _seg(text, start=0.0, end=2.0, **kw):
    return Segment(start, end, text, avg_logprob=-0.5, compression_ratio=compression_ratio(text), **kw)


def test_a_loop_is_retried_and_the_retry_kept_only_when_it_repeats_less():
    samples, txs = np.zeros(16000 * 3, np.float32), [Transmission(0, 0.0, 3.0)]
    model = Scripted([Decoded([_seg(LOOP)]), Decoded([_seg("دریافت شد")])])
    lines = Decoder(model, TranscribeOptions()).transcribe(samples, txs)
    assert [line.text for line in lines] == ["دریافت شد"]
    assert [r["loop_retry"] for r in model.requests] == [False, True]
    model = Scripted([Decoded([_seg(LOOP)]), Decoded([_seg(LOOP + LOOP)])])
    assert [line.text for line in Decoder(model, TranscribeOptions()).transcribe(samples, txs)] == [LOOP.strip()]
    model = Scripted([Decoded([_seg(LOOP)])])
    Decoder(model, TranscribeOptions(loop_retry_ngram=0)).transcribe(samples, txs)
    assert len(model.requests) == 1


class StopsEarly(Scripted):
    """A scripted model that takes stop_above, as faster-whisper's lazy decode loop does."""

    stops_early = True

    def decode(self, audio, task, max_new_tokens, loop_retry=False, stop_above=None):
        decoded = super().decode(audio, task, max_new_tokens, loop_retry)
        self.requests[-1]["stop_above"] = stop_above
        return decoded


def test_a_model_that_stops_at_the_loop_is_not_asked_for_the_rest_when_the_retry_is_better():
    samples, txs = np.zeros(16000 * 3, np.float32), [Transmission(0, 0.0, 3.0)]
    stopped = Decoded([_seg("دریافت شد"), _seg(LOOP, 2.0, 3.0)], complete=False)
    model = StopsEarly([stopped, Decoded([_seg("دریافت شد"), _seg("امشب", 2.0, 3.0)])])
    lines = Decoder(model, TranscribeOptions()).transcribe(samples, txs)
    assert [line.text for line in lines] == ["دریافت شد", "امشب"]
    threshold = TranscribeOptions().compression_ratio_threshold
    assert [(r["loop_retry"], r["stop_above"]) for r in model.requests] == [(False, threshold), (True, None)]
    # Clean text: one request, which was allowed to stop.
    model = StopsEarly([Decoded([_seg("دریافت شد")])])
    Decoder(model, TranscribeOptions()).transcribe(samples, txs)
    assert [(r["loop_retry"], r["stop_above"]) for r in model.requests] == [(False, threshold)]


def test_a_retry_no_better_than_the_stopped_part_is_weighed_against_the_whole_decode():
    """The result is the one without the early stop: the whole decode is made, and the retry
    kept only when it repeats less than that."""
    samples, txs = np.zeros(16000 * 3, np.float32), [Transmission(0, 0.0, 3.0)]
    stopped = Decoded([_seg(LOOP)], complete=False)
    whole = Decoded([_seg(LOOP), _seg(LOOP + LOOP, 2.0, 3.0)])
    worse_than_stopped = Decoded([_seg(LOOP + "که که")])
    model = StopsEarly([stopped, worse_than_stopped, whole])
    lines = Decoder(model, TranscribeOptions()).transcribe(samples, txs)
    assert [line.text for line in lines] == [LOOP.strip() + " که که"]  # repeats less than the whole
    assert [(r["loop_retry"], r["stop_above"]) for r in model.requests] == [
        (False, TranscribeOptions().compression_ratio_threshold), (True, None), (False, None)]
    model = StopsEarly([stopped, Decoded([_seg(LOOP * 3)]), whole])
    lines = Decoder(model, TranscribeOptions()).transcribe(samples, txs)
    assert [line.text for line in lines] == [LOOP.strip(), (LOOP + LOOP).strip()]
    # A complete decode that loops is not decoded a third time.
    model = StopsEarly([whole, Decoded([_seg(LOOP * 3)])])
    Decoder(model, TranscribeOptions()).transcribe(samples, txs)
    assert len(model.requests) == 2


def test_token_cap_follows_the_audio_length():
    samples, txs = np.zeros(16000 * 3, np.float32), [Transmission(0, 0.0, 2.0)]
    model = Scripted([Decoded([_seg("دریافت شد")])])
    Decoder(model, TranscribeOptions(tokens_per_second=30.0)).transcribe(samples, txs)
    assert model.requests[0]["max_new_tokens"] == 30 * 2 + 20


def test_line_and_word_times_stay_inside_the_transmission():
    samples, txs = np.zeros(16000 * 10, np.float32), [Transmission(3, 4.0, 6.0)]
    words = [Word(" دریافت", -0.5, 1.0, 0.8), Word(" شد", 1.0, 2.9, 0.4)]
    model = Scripted([Decoded([_seg("دریافت شد", 0.0, 2.8, words=words)])])
    (line,) = Decoder(model, TranscribeOptions()).transcribe(samples, txs)
    assert (line.start, line.end, line.transmission_idx) == (4.0, 6.0, 3)
    assert [(w.text, w.start, w.end) for w in line.words] == [("دریافت", 4.0, 5.0), ("شد", 5.0, 6.0)]
    assert line.confidence == pytest.approx(0.6)


def test_confidence_without_words_is_the_token_probability_and_none_when_unknown():
    samples, txs = np.zeros(16000 * 3, np.float32), [Transmission(0, 0.0, 3.0)]
    model = Scripted([Decoded([_seg("دریافت شد")])])
    (line,) = Decoder(model, TranscribeOptions()).transcribe(samples, txs)
    assert line.words is None and line.alternatives is None
    assert line.confidence == pytest.approx(math.exp(-0.5), abs=1e-4)
    model = Scripted([Decoded([Segment(0.0, 2.0, "دریافت شد")])])
    (line,) = Decoder(model, TranscribeOptions()).transcribe(samples, txs)
    assert line.confidence is None


def _packed_window(nbest):
    """Two transmissions packed into one window (tx 0 at 0-2 s, tx 1 at 3.5-5.5 s in the
    window, with the default 1.5 s gap), one segment each."""
    txs = [Transmission(0, 1.0, 3.0), Transmission(1, 10.0, 12.0)]
    segments = [_seg("پرنده آمد", 0.0, 2.0, decode=0), _seg("روباه رفت", 3.5, 5.5, decode=0)]
    return txs, Scripted([Decoded(segments, nbest)])


def _one_segment_over_two(words):
    """Two transmissions packed into one window (0-2 s and 3.5-5.5 s), which the model writes
    as ONE segment over both (an adapted model trained on one segment per clip does); asked
    for a 2 s window alone, it answers each transmission's text."""
    txs = [Transmission(0, 1.0, 3.0), Transmission(1, 10.0, 12.0)]
    packed = Decoded([_seg("پرنده آمد روباه رفت", 0.0, 5.5, words=words, decode=0)],
                     [[Candidate(((0.0, 5.5, "پرنده آمد روباه رفت"),), -0.5, 12)]])
    alone = {0: Decoded([_seg("پرنده آمد")]), 1: Decoded([_seg("روباه رفت")])}
    asked = []

    def answer(n):
        def give(audio):
            asked.append(len(audio) / 16000)
            return packed if len(audio) > 16000 * 3 else alone[len(asked) - 2]
        return give

    return txs, Scripted([answer(n) for n in range(3)]), asked


def test_a_segment_over_two_packed_transmissions_is_cut_at_the_gap_by_its_words():
    words = [Word(" پرنده", 0.1, 0.9, 0.9), Word(" آمد", 0.9, 2.2, 0.8), Word(" روباه", 3.6, 4.4, 0.7),
             Word(" رفت", 4.4, 5.3, 0.6)]
    txs, model, asked = _one_segment_over_two(words)
    lines = Decoder(model, TranscribeOptions()).transcribe(np.zeros(16000 * 14, np.float32), txs)
    assert [(line.transmission_idx, line.text, line.start, line.end) for line in lines] == [
        (0, "پرنده آمد", 1.1, 3.0), (1, "روباه رفت", 10.1, 11.8)]
    assert [w.text for w in lines[1].words] == ["روباه", "رفت"]
    assert len(asked) == 1  # nothing decoded again alone
    # The N-best piece spans both transmissions: no alternatives rather than wrong ones.
    assert all(line.alternatives is None for line in lines)


def test_a_segment_whose_words_cannot_cut_it_is_decoded_again_alone():
    words = [Word(" پرنده", 0.1, 0.9, 0.9), Word(" آمد", 2.5, 3.0, 0.8), Word(" روباه", 3.6, 4.4, 0.7),
             Word(" رفت", 4.4, 5.3, 0.6)]  # آمد sits mid-gap (2.75 s), 0.75 s from both
    txs, model, asked = _one_segment_over_two(words)
    lines = Decoder(model, TranscribeOptions()).transcribe(np.zeros(16000 * 14, np.float32), txs)
    assert [(line.transmission_idx, line.text) for line in lines] == [(0, "پرنده آمد"), (1, "روباه رفت")]
    assert len(asked) == 3
    # and with cutting turned off, even good word times are not used
    from intercept.packing import PackOptions

    good = [Word(" پرنده", 0.1, 0.9, 0.9), Word(" آمد", 0.9, 2.2, 0.8), Word(" روباه", 3.6, 4.4, 0.7)]
    txs, model, asked = _one_segment_over_two(good)
    Decoder(model, TranscribeOptions(), PackOptions(split_by_words=False)).transcribe(
        np.zeros(16000 * 14, np.float32), txs)
    assert len(asked) == 3


def test_packed_alternatives_land_on_their_own_transmission():
    nbest = [[
        Candidate(((0.0, 2.0, " پرنده آمد"), (3.5, 5.5, " روباه رفت")), -0.3, 12),
        Candidate(((0.0, 2.0, " پرنده آمد"), (3.6, 5.4, " روباه رفته")), -0.4, 12),
        Candidate(((0.1, 1.9, " پرند آمد"), (3.5, 5.5, " روباه رفت")), -0.5, 12),
    ]]
    txs, model = _packed_window(nbest)
    lines = Decoder(model, TranscribeOptions()).transcribe(np.zeros(16000 * 13, np.float32), txs)
    assert len(model.requests) == 1  # one window for both
    by_tx = {line.transmission_idx: line for line in lines}
    assert [h.text for h in by_tx[0].alternatives] == ["پرنده آمد", "پرنده آمد", "پرند آمد"]
    assert [h.text for h in by_tx[1].alternatives] == ["روباه رفت", "روباه رفته", "روباه رفت"]
    assert [h.avg_logprob for h in by_tx[1].alternatives] == [-0.3, -0.4, -0.5]
    assert by_tx[1].alternatives[1].logprob == pytest.approx(-0.4 * 12)


def test_a_hypothesis_piece_across_two_transmissions_leaves_their_alternatives_unknown():
    nbest = [[
        Candidate(((0.0, 2.0, " پرنده آمد"), (3.5, 5.5, " روباه رفت")), -0.3, 12),
        Candidate(((0.0, 5.5, " پرنده آمد روباه رفت"),), -0.4, 12),
    ]]
    txs, model = _packed_window(nbest)
    lines = Decoder(model, TranscribeOptions()).transcribe(np.zeros(16000 * 13, np.float32), txs)
    assert [line.alternatives for line in lines] == [None, None]
    assert [line.text for line in lines] == ["پرنده آمد", "روباه رفت"]


def test_alternatives_whose_first_is_not_the_line_are_not_kept():
    samples, txs = np.zeros(16000 * 3, np.float32), [Transmission(0, 0.0, 3.0)]
    nbest = [[Candidate(((0.0, 2.0, " چیز دیگری"),), -0.3, 6)]]
    model = Scripted([Decoded([_seg("دریافت شد", decode=0)], nbest)])
    (line,) = Decoder(model, TranscribeOptions()).transcribe(samples, txs)
    assert line.alternatives is None


def test_two_lines_of_one_transmission_each_get_their_part_of_each_hypothesis():
    samples, txs = np.zeros(16000 * 9, np.float32), [Transmission(0, 0.0, 8.0)]
    nbest = [[
        Candidate(((0.0, 3.0, " یک دو"), (3.0, 7.0, " سه چهار")), -0.2, 10),
        Candidate(((0.0, 2.8, " یک دو"), (2.8, 5.0, " سه"), (5.0, 7.0, " چهار پنج")), -0.6, 11),
    ]]
    segments = [_seg("یک دو", 0.0, 3.0, decode=0), _seg("سه چهار", 3.0, 7.0, decode=0)]
    model = Scripted([Decoded(segments, nbest)])
    first, second = Decoder(model, TranscribeOptions()).transcribe(samples, txs)
    assert [h.text for h in first.alternatives] == ["یک دو", "یک دو"]
    assert [h.text for h in second.alternatives] == ["سه چهار", "سه چهار پنج"]
