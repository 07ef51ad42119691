"""Whisper's translate task packed like transcription (core.Decoder.translate_spans; the
option TranscribeOptions.pack_translate, off by default: docs/benchmarks.md says why): the
stretches of several lines, of one recording or of a pool of short recordings, share 30 s
windows; each line still gets exactly its own English, and a line that a window's segment
straddles with another, or that its window leaves without English, is decoded again alone.

The window model here hears tone bursts (separated by the packer's digital silence) and
answers each with a segment "<task> tone N" at the burst's times, so that an English line
proves which audio it came from; it can be told to merge two tones into one segment (a
straddler) or to stay silent on a tone when it shares a window.
"""
from __future__ import annotations

import numpy as np
import pytest

from intercept.engines import TranscribeOptions
from intercept.engines.core import Decoded, Decoder, Segment
from intercept.packing import PackOptions
from intercept.types import Line, Transmission

RATE = 16000


def tones(bursts: list[tuple[float, float, int]], seconds: float) -> np.ndarray:
    samples = np.zeros(int(seconds * RATE), dtype=np.float32)
    for start, end, tone in bursts:
        t = np.arange(int(start * RATE), int(end * RATE))
        samples[t] = 0.5 * np.sin(2 * np.pi * tone * 100 * t / RATE)
    return samples


def bursts_in(audio: np.ndarray) -> list[tuple[float, float, int]]:
    """(start s, end s, tone) of each burst: sound separated by at least 0.2 s of silence."""
    loud = np.flatnonzero(np.abs(audio) > 1e-4)
    if loud.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(loud) > 0.2 * RATE)
    found = []
    for first, last in zip(np.r_[loud[0], loud[breaks + 1]], np.r_[loud[breaks], loud[-1]]):
        chunk = audio[first: last + 1]
        tone = int(round(np.argmax(np.abs(np.fft.rfft(chunk))) * RATE / chunk.size / 100))
        found.append((first / RATE, (last + 1) / RATE, tone))
    return found


class ToneWindows:
    """core.WindowModel over tone bursts; records each decode as (task, tones heard)."""

    packs = True
    token_room = 440

    def __init__(self, merge: frozenset = frozenset(), mute_when_packed: frozenset = frozenset()):
        self.merge, self.mute = merge, mute_when_packed
        self.calls: list[tuple[str, tuple[int, ...]]] = []

    def decode(self, audio, task, max_new_tokens, loop_retry=False) -> Decoded:
        heard = bursts_in(audio)
        self.calls.append((task, tuple(tone for _, _, tone in heard)))
        segments = [Segment(round(s, 2), round(e, 2), f"{task} tone {tone}", avg_logprob=-0.2) for s, e, tone in heard
                    if not (len(heard) > 1 and tone in self.mute)]
        merged = [seg for seg, (_, _, tone) in zip(segments, heard) if tone in self.merge]
        if len(heard) > 1 and len(merged) == 2:  # one segment across the gap between two tones
            first, second = merged
            segments = [seg for seg in segments if seg not in merged]
            segments.append(Segment(first.start, second.end, f"{first.text} and {second.text}", avg_logprob=-0.2))
            segments.sort(key=lambda seg: seg.start)
        return Decoded(segments)


def decoder(model: ToneWindows, **options) -> Decoder:
    """A Decoder with translation packing on (TranscribeOptions.pack_translate) unless `options` say otherwise."""
    return Decoder(model, TranscribeOptions(**{"pack_translate": True, **options}), PackOptions(gap_s=1.5))


# Eight 3 s bursts, 4.5 s apart, tones 3..10: packed (1.5 s gaps), six share one window
# and two the next.
BURSTS = [(0.5 + 4.5 * i, 3.5 + 4.5 * i, 3 + i) for i in range(8)]
SECONDS = 36.0
SPANS = [Transmission(i, start, end) for i, (start, end, _) in enumerate(BURSTS)]


def test_each_span_gets_exactly_its_own_english_in_fewer_decodes():
    samples = tones(BURSTS, SECONDS)
    packed_model, alone_model = ToneWindows(), ToneWindows()
    packed = decoder(packed_model).translate_spans(samples, SPANS)
    alone = decoder(alone_model, pack_translate=False).translate_spans(samples, SPANS)

    assert alone == [f"translate tone {tone}" for _, _, tone in BURSTS]
    assert packed == alone
    assert len(alone_model.calls) == 8 and all(len(heard) == 1 for _, heard in alone_model.calls)
    assert len(packed_model.calls) == 2 and sorted(t for _, heard in packed_model.calls for t in heard) == list(range(3, 11))


def test_spans_come_back_in_the_order_given():
    samples = tones(BURSTS, SECONDS)
    shuffled = [SPANS[i] for i in (5, 0, 7, 2, 1, 6, 3, 4)]
    english = decoder(ToneWindows()).translate_spans(samples, shuffled)
    assert english == [f"translate tone {BURSTS[tx.idx][2]}" for tx in shuffled]


def test_a_straddler_is_decoded_again_alone_and_only_it():
    samples = tones(BURSTS, SECONDS)
    model = ToneWindows(merge=frozenset({4, 5}))
    english = decoder(model).translate_spans(samples, SPANS)

    assert english == [f"translate tone {tone}" for _, _, tone in BURSTS]
    assert not any("and" in text for text in english)
    alone_calls = [heard for _, heard in model.calls if len(heard) == 1]
    assert sorted(alone_calls) == [(4,), (5,)]  # the two it touched, nothing else


def test_a_span_left_without_english_in_its_window_is_decoded_alone():
    samples = tones(BURSTS, SECONDS)
    model = ToneWindows(mute_when_packed=frozenset({8}))
    english = decoder(model).translate_spans(samples, SPANS)

    assert english[5] == "translate tone 8"
    assert [heard for _, heard in model.calls if len(heard) == 1] == [(8,)]


@pytest.mark.parametrize("options", [dict(pack=False), dict(pack_translate=False), dict(language=None)])
def test_packing_off_or_no_fixed_language_decodes_each_span_alone(options):
    samples = tones(BURSTS, SECONDS)
    model = ToneWindows()
    english = decoder(model, **options).translate_spans(samples, SPANS)
    assert english == [f"translate tone {tone}" for _, _, tone in BURSTS]
    assert len(model.calls) == 8


class ToneEngine:
    """An engine over ToneWindows through the shared Decoder, as the Whisper engines are."""

    name = "tones"
    model_name = "tones"

    def __init__(self, model: ToneWindows, **options):
        self.decoder = decoder(model, **options)
        self.spans_calls: list[int] = []

    def translate_audio(self, samples, start, end, sample_rate=16000):
        return self.decoder.translate(samples, start, end, sample_rate)

    def translate_spans(self, samples, spans, sample_rate=16000):
        self.spans_calls.append(len(spans))
        return self.decoder.translate_spans(samples, spans, sample_rate)


def recording_lines(first_tone: int, count: int) -> tuple[np.ndarray, list[Line]]:
    """A short recording of `count` bursts, and one line per burst (the second one 0.4 s
    long: the translator widens it to 1 s)."""
    bursts = [(0.4 + 2.5 * i, 1.5 + 2.5 * i if i != 1 else 0.4 + 2.5 * i + 0.4, first_tone + i) for i in range(count)]
    samples = tones(bursts, 2.5 * count + 0.5)
    return samples, [Line(start, end, f"fa {tone}", transmission_idx=i) for i, (start, end, tone) in enumerate(bursts)]


def test_the_translator_gives_each_line_of_each_recording_its_own_english():
    from intercept.translate import WhisperTranslator

    parts = [recording_lines(3 + 3 * n, 3 if n % 2 else 2) for n in range(5)]
    model = ToneWindows()
    engine = ToneEngine(model)
    WhisperTranslator(engine).translate_many([(lines, samples) for samples, lines in parts])

    assert engine.spans_calls == [sum(len(lines) for _, lines in parts)]  # one call for all five
    for samples, lines in parts:
        for line in lines:
            assert line.text_en == f"translate tone {line.text.split()[1]}"
    assert len(model.calls) < sum(len(lines) for _, lines in parts)

    # The same English, one decode per line, with packing off.
    alone = [recording_lines(3 + 3 * n, 3 if n % 2 else 2) for n in range(5)]
    WhisperTranslator(ToneEngine(ToneWindows(), pack_translate=False)).translate_many(
        [(lines, samples) for samples, lines in alone])
    assert [line.text_en for _, lines in alone for line in lines] == \
        [line.text_en for _, lines in parts for line in lines]


def test_an_engine_with_only_the_one_stretch_call_still_translates_every_line():
    from intercept.translate import WhisperTranslator

    class OneStretch:
        model_name = "one"

        def __init__(self):
            self.decoder = decoder(ToneWindows())

        def translate_audio(self, samples, start, end, sample_rate=16000):
            return self.decoder.translate(samples, start, end, sample_rate)

    samples, lines = recording_lines(3, 3)
    WhisperTranslator(OneStretch()).translate(lines, samples)
    assert [line.text_en for line in lines] == ["translate tone 3", "translate tone 4", "translate tone 5"]


class ToneRecogniser(ToneEngine):
    """ToneEngine that also transcribes (through the same Decoder), for the pipeline."""

    def transcribe(self, samples, transmissions, sample_rate=16000):
        return self.decoder.transcribe(samples, transmissions, sample_rate)


@pytest.mark.skipif(__import__("shutil").which("ffmpeg") is None, reason="recordings are decoded with ffmpeg")
def test_a_pool_of_short_recordings_is_translated_together_each_line_its_own_english(tmp_path, monkeypatch):
    from test_folders import short_folder, use_engine

    from intercept.config import RunOptions
    from intercept.pipeline import Pipeline

    paths = short_folder(tmp_path / "in", 6)
    engine = ToneRecogniser(ToneWindows())
    use_engine(monkeypatch, engine)
    pipeline = Pipeline(RunOptions(translator="whisper", segment_method="energy"))

    alone = {p.absolute(): pipeline.analyze(p) for p in paths}
    assert engine.spans_calls == [2] * 6  # alone: one call per recording
    engine.spans_calls.clear()
    pooled = {a.facts.path: a for a in pipeline.analyze_many((p, None) for p in paths)}

    assert len(engine.spans_calls) < 6 and sum(engine.spans_calls) == 12  # recordings translated together
    for path in paths:
        lines = pooled[str(path.absolute())].lines
        assert len(lines) == 2 and all(line.text_en == line.text.replace("transcribe", "translate") for line in lines)
        assert [(l.start, l.end, l.text, l.text_en) for l in lines] == \
            [(l.start, l.end, l.text, l.text_en) for l in alone[path.absolute()].lines]
