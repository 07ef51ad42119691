"""Batched window decoding (issue 25): core.Decoder.decode_many with faster-whisper's
_Batching, which runs one unchanged faster-whisper decode loop per window and makes their
CTranslate2 calls together.

The fast tests drive _Batching with a stand-in CTranslate2 model (what is batched, what is made
alone, errors); the slow ones decode audio_samples/ both ways with the real model and compare
every line."""
from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from intercept.engines import TranscribeOptions
from intercept.engines import faster_whisper as fw
from intercept.engines.core import Decoded, Decoder, Segment, compression_ratio
from intercept.types import Transmission

SAMPLES = Path(__file__).resolve().parent.parent / "audio_samples"


class FakeModel:
    """encode(): the features' first value, repeated; generate(): for each row, `length`
    tokens, where length is what the row's encoder output says (its first value)."""

    device = "cpu"

    def __init__(self):
        self.encodes: list[int] = []
        self.generates: list[tuple[int, dict]] = []
        self.lock = threading.Lock()

    def encode(self, features, to_cpu=False):
        import ctranslate2

        array = np.asarray(features)
        with self.lock:
            self.encodes.append(array.shape[0])
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(array[:, :2, :4] * 1.0))

    def generate(self, encoded, prompts, **kwargs):
        array = np.asarray(encoded)
        with self.lock:
            self.generates.append((array.shape[0], dict(kwargs)))
        out = []
        for row, prompt in zip(array, prompts):
            length = int(row[0, 0])
            if "sampling_temperature" in kwargs:
                length = 1
            length = min(length, kwargs["max_length"] - len(prompt))
            out.append(SimpleNamespace(sequences_ids=[[7] * length], scores=[0.0]))
        return out


def _window_job(batching, value: float, max_length: int, sampled: bool = False):
    import ctranslate2

    def job():
        features = ctranslate2.StorageView.from_array(np.full((1, 80, 3000), value, dtype=np.float32))
        encoded = batching.encode(features, to_cpu=False)
        kwargs = dict(max_length=max_length, beam_size=5)
        if sampled:
            kwargs.update(sampling_temperature=0.5, beam_size=1)
        result = batching.generate(encoded, [[1, 2, 3]], **kwargs)[0]
        return len(result.sequences_ids[0])

    return job


def test_calls_of_several_loops_are_made_together_and_give_each_its_own_result():
    model = FakeModel()
    batching = fw._Batching(model)
    lengths = [5.0, 9.0, 2.0, 30.0]
    results = batching.run([_window_job(batching, v, 100) for v in lengths])
    assert results == [5, 9, 2, 30]
    assert model.encodes == [4]  # one encoder pass for the four windows
    assert [size for size, _ in model.generates] == [4]


def test_a_stacked_encoder_pass_holds_at_most_encode_frames():
    """TranscribeOptions.encode_batch_frames: a batch's encoder calls are stacked in passes of
    at most that many frames (asked at each pass), each window still given its own result;
    the beam search stays one."""
    cap = {"frames": 6000}
    model = FakeModel()
    batching = fw._Batching(model, keep=0, encode_frames=lambda: cap["frames"])
    assert batching.run([_window_job(batching, v, 100) for v in (5.0, 9.0, 2.0, 30.0, 4.0)]) == [5, 9, 2, 30, 4]
    assert model.encodes == [2, 2, 1]  # 30 s windows of 3,000 frames, two a pass
    assert [size for size, _ in model.generates] == [5]
    cap["frames"] = 0  # no cap: one pass
    model.encodes.clear()
    assert batching.run([_window_job(batching, v, 100) for v in (6.0, 7.0, 8.0)]) == [6, 7, 8]
    assert model.encodes == [3]
    cap["frames"] = 1000  # a window longer than the cap goes alone
    model.encodes.clear()
    assert batching.run([_window_job(batching, v, 100) for v in (6.0, 7.0)]) == [6, 7]
    assert model.encodes == [1, 1]


def test_the_engine_asks_its_current_options_for_the_encoder_pass(embedded_model_dir):
    engine = fw.FasterWhisperEngine(str(embedded_model_dir), "base", TranscribeOptions(compute_type="float32"))
    calls = [SimpleNamespace(args=(np.zeros((1, 80, 1000), np.float32),)) for _ in range(8)]
    assert [len(part) for part in engine._batching._encoder_passes(calls)] == [6, 2]
    engine.options = replace(engine.options, encode_batch_frames=4000)
    assert [len(part) for part in engine._batching._encoder_passes(calls)] == [4, 4]
    engine.options = replace(engine.options, encode_batch_frames=0)
    assert [len(part) for part in engine._batching._encoder_passes(calls)] == [8]


def test_a_member_near_its_own_cap_is_decoded_again_alone_and_sampling_is_never_batched():
    model = FakeModel()
    batching = fw._Batching(model)
    # The group runs at the largest max_length (100); the second window's own is 12 (9 new
    # tokens after the 3-token prompt), and its 30 tokens run into it: made again alone.
    jobs = [_window_job(batching, 5.0, 100), _window_job(batching, 30.0, 12), _window_job(batching, 4.0, 100, True)]
    assert batching.run(jobs) == [5, 9, 1]
    sizes = [(size, kwargs["max_length"], "sampling_temperature" in kwargs) for size, kwargs in model.generates]
    assert (2, 100, False) in sizes and (1, 12, False) in sizes and (1, 100, True) in sizes
    assert len(sizes) == 3


def test_an_error_in_one_window_reaches_the_caller_and_the_others_finish():
    model = FakeModel()
    batching = fw._Batching(model)
    finished = []

    def bad():
        raise ValueError("broken window")

    def good():
        finished.append(_window_job(batching, 3.0, 100)())

    with pytest.raises(ValueError, match="broken window"):
        batching.run([good, bad, good])
    assert finished == [3, 3]
    # Outside run(): plain calls, one at a time.
    assert _window_job(batching, 6.0, 100)() == 6 and model.encodes[-1] == 1



def test_with_two_workers_a_batch_is_split_between_them_and_both_run_at_once():
    """TranscribeOptions.cpu_workers: each batched call is split in two, made at the same
    time (CTranslate2 runs them on two workers sharing the weights), each window still
    given its own result."""
    meeting = threading.Barrier(2, timeout=10)

    class Model(FakeModel):
        def generate(self, encoded, prompts, **kwargs):
            meeting.wait()  # both halves must be in here at once, or this times out
            return super().generate(encoded, prompts, **kwargs)

    model = Model()
    batching = fw._Batching(model, workers=2)
    assert batching.run([_window_job(batching, v, 100) for v in (5.0, 9.0, 2.0, 30.0, 4.0)]) == [5, 9, 2, 30, 4]
    assert sorted(model.encodes) == [2, 3]
    assert sorted(size for size, _ in model.generates) == [2, 3]
    one = FakeModel()
    batching = fw._Batching(one, workers=1)
    assert batching.run([_window_job(batching, v, 100) for v in (5.0, 9.0, 2.0)]) == [5, 9, 2]
    assert one.encodes == [3]


def test_calls_made_inside_using_go_to_that_model_and_are_never_batched_with_the_others():
    """_Batching.using: the translate task's own model (translate_compute_type). Its calls
    are batched among themselves, never stacked with the wrapped model's, and an encoder
    output kept for one model is not given back for the other."""
    wrapped, other = FakeModel(), FakeModel()
    batching = fw._Batching(wrapped, keep=4)

    def job(value, model):
        inner = _window_job(batching, value, 100)

        def run():
            with batching.using(model):
                return inner()
        return run

    assert batching.run([job(5.0, None), job(9.0, other), job(2.0, other), job(4.0, None)]) == [5, 9, 2, 4]
    assert wrapped.encodes == [2] and other.encodes == [2]
    assert [size for size, _ in wrapped.generates] == [2] and [size for size, _ in other.generates] == [2]
    # The same features again, on the other model: encoded again there, not taken from the cache.
    assert batching.run([job(5.0, other), job(9.0, None)]) == [5, 9]
    assert other.encodes == [2, 1] and wrapped.encodes == [2, 1]
    # Outside run() too, and back to the wrapped model after the block.
    assert job(6.0, other)() == 6 and other.encodes[-1] == 1 and len(other.encodes) == 3
    assert _window_job(batching, 7.0, 100)() == 7 and len(wrapped.encodes) == 3


def test_workers_and_threads_of_the_options(monkeypatch):
    options = TranscribeOptions(cpu_threads=2, cpu_workers=2)
    assert fw.workers_for(TranscribeOptions(cpu_threads=2), "cpu") == (1, 2)  # the default: one
    assert fw.workers_for(options, "cpu") == (2, 1)
    assert fw.workers_for(replace(options, cpu_workers=1), "cpu") == (1, 2)
    assert fw.workers_for(replace(options, cpu_threads=1), "cpu") == (1, 1)
    assert fw.workers_for(replace(options, cpu_threads=8), "cpu") == (2, 4)
    assert fw.workers_for(replace(options, cpu_threads=8, cpu_workers=4), "cpu") == (4, 2)
    assert fw.workers_for(replace(options, cpu_threads=2, cpu_workers=5), "cpu") == (2, 1)
    assert fw.workers_for(options, "cuda") == (1, 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert fw.workers_for(replace(options, cpu_threads=0), "cpu") == ((2, cores // 2) if cores >= 2 else (1, 0))
    # A Ray worker: OMP_NUM_THREADS is its share of the machine, as for CTranslate2's own default.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert fw.workers_for(replace(options, cpu_threads=0), "cpu") == (1, 0)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert fw.workers_for(replace(options, cpu_threads=0), "cpu") == (2, 2)


def test_the_translate_tasks_compute_type(monkeypatch):
    """translate_compute_type: "same" keeps the transcription's; "auto" takes the probe's
    choice on a CPU and the transcription's on a GPU; a named type is used as named."""
    monkeypatch.setattr(fw, "choose_compute_type", lambda path, device, threads: "int8")
    engine = object.__new__(fw.FasterWhisperEngine)
    engine.model_path, engine.compute_type, engine.device, engine._resolved = "m", "float32", "cpu", {}
    for wanted, expected in (("same", "float32"), ("auto", "int8"), ("int8", "int8"), ("float32", "float32")):
        engine.options = TranscribeOptions(translate_compute_type=wanted)
        assert engine.translate_compute_type() == expected, wanted
    engine.device, engine.compute_type = "cuda", "float16"
    engine.options = TranscribeOptions(translate_compute_type="auto")
    assert engine.translate_compute_type() == "float16"
    engine.options = TranscribeOptions(translate_compute_type="same")
    engine.device, engine.compute_type = "cpu", "float32"
    assert engine.translate_model() is None  # the transcription's own model


def test_a_translate_compute_type_the_device_cannot_run_stops_at_start(tmp_path):
    from intercept.models import ModelError

    with pytest.raises(ModelError, match=r"translate_compute_type 'float16': CTranslate2 cannot run it on cpu"):
        fw.FasterWhisperEngine(str(tmp_path), "base", TranscribeOptions(translate_compute_type="float16"))


def test_a_window_decoded_again_reuses_its_encoder_pass():
    """The loop guard decodes a looping window again: the same features, so _Batching gives
    back the encoder output it kept instead of encoding them again; other features, or more
    windows than it keeps, are encoded."""
    model = FakeModel()
    batching = fw._Batching(model, keep=2)
    assert batching.run([_window_job(batching, v, 100) for v in (5.0, 9.0)]) == [5, 9]
    assert batching.run([_window_job(batching, v, 100) for v in (9.0, 5.0)]) == [9, 5]
    assert model.encodes == [2]  # the second run encoded nothing
    # Which thread of a run reads the kept outputs first is up to the scheduler: used once
    # more one after the other, 9.0 is the least recently used.
    assert [_window_job(batching, v, 100)() for v in (9.0, 5.0)] == [9, 5] and model.encodes == [2]
    assert _window_job(batching, 7.0, 100)() == 7 and model.encodes == [2, 1]
    # keep=2: the least recently used (9.0) was dropped
    assert _window_job(batching, 5.0, 100)() == 5 and model.encodes == [2, 1]
    assert _window_job(batching, 9.0, 100)() == 9 and model.encodes == [2, 1, 1]
    nothing_kept = FakeModel()
    batching = fw._Batching(nothing_kept, keep=0)
    for _ in range(2):
        _window_job(batching, 5.0, 100)()
    assert nothing_kept.encodes == [1, 1]

class ScriptedModel:
    """A WindowModel that batches: decode_batch records the windows it was given together."""

    token_room = 440
    packs = True
    stops_early = True
    def window_batch(self, task):
        return 3

    def __init__(self, texts):
        self.texts = texts  # per window length (samples): the text decoded, retry text after "|"
        self.batches: list[int] = []
        self.alone: list[tuple[int, bool]] = []

    def _decoded(self, audio, loop_retry=False):
        text = self.texts[len(audio)]
        first, _, retry = text.partition("|")
        chosen = retry if loop_retry and retry else first
        return Decoded([Segment(0.0, len(audio) / 16000, chosen, compression_ratio=compression_ratio(chosen))])

    def decode(self, audio, task, max_new_tokens, loop_retry=False, stop_above=None):
        self.alone.append((len(audio), loop_retry))
        return self._decoded(audio, loop_retry)

    def decode_batch(self, windows, stop_above=None, loop_retry=False):
        self.batches.append((len(windows), loop_retry))
        return [self._decoded(audio, loop_retry) for audio, _task, _cap in windows]


def test_decode_many_batches_first_decodes_and_retries_a_looping_window_alone():
    loop = "که " * 40
    model = ScriptedModel({16000: "یک", 16001: loop + "|دو", 16002: "سه", 16003: "چهار"})
    decoder = Decoder(model, TranscribeOptions())
    windows = [(np.zeros(16000 + n, np.float32), "transcribe", None) for n in range(4)]
    decoded = decoder.decode_many(windows)
    assert [d.segments[0].text for d in decoded] == ["یک", "دو", "سه", "چهار"]
    assert model.batches == [(3, False)]  # window_batch 3: three together, the fourth alone
    assert model.alone == [(16001, True), (16003, False)]


def test_the_translate_task_has_its_own_batch():
    """window_batch(task): translate windows go in groups of the translate batch, transcribe
    windows in groups of the transcribe batch."""

    class Model(ScriptedModel):
        def window_batch(self, task):
            return {"transcribe": 2, "translate": 3}[task]

    texts = {16000 + n: "یک" for n in range(4)}
    spans = [Transmission(n, 2.0 * n, 2.0 * n + (16000 + n) / 16000) for n in range(4)]
    samples = np.zeros(16000 * 10, np.float32)
    model = Model({int(round(tx.end * 16000)) - int(round(tx.start * 16000)): "یک" for tx in spans} | texts)
    decoder = Decoder(model, TranscribeOptions(pack=False))
    assert decoder.translate_spans(samples, spans) == ["یک"] * 4
    assert model.batches == [(3, False)] and len(model.alone) == 1
    model.batches.clear(), model.alone.clear()
    decoder.transcribe(samples, spans)
    assert model.batches == [(2, False), (2, False)] and not model.alone


def test_batch_for_the_translate_task():
    from intercept.engines.base import batch_for

    options = TranscribeOptions(decode_batch=4, translate_batch=8)
    assert (batch_for(options, "transcribe"), batch_for(options, "translate")) == (4, 8)
    assert batch_for(replace(options, translate_batch=None), "translate") == 4
    # 30 s translate windows (packed, or not cut short) hold a transcribe window's state: decode_batch
    assert batch_for(replace(options, pack_translate=True), "translate") == 4
    assert batch_for(replace(options, translate_context_s=None), "translate") == 4
    assert batch_for(replace(options, translate_context_s=30.0), "translate") == 4


def test_the_loop_retries_of_a_batch_are_decoded_together():
    """Two of three windows loop: their retries are one batch, each kept where it repeats less
    (the third's retry loops too: its first decode stays)."""
    loop = "که " * 40
    model = ScriptedModel({16000: loop + "|یک", 16001: "دو", 16002: loop + "|" + "را " * 40})
    decoded = Decoder(model, TranscribeOptions()).decode_many(
        [(np.zeros(16000 + n, np.float32), "transcribe", None) for n in range(3)])
    assert model.batches == [(3, False), (2, True)]
    assert [d.segments[0].text for d in decoded] == ["یک", "دو", loop]
    assert model.alone == []


@pytest.fixture(scope="module")
def both_ways(embedded_model_dir):
    """Two recordings of audio_samples/ (one of real speech) joined with 2 s of silence
    between: several packed windows, so the batched engine has windows to batch; transcribed,
    and four transmissions translated, one window at a time and eight at a time, on one
    CTranslate2 worker and (eight at a time) on two."""
    from intercept.audio import decode
    from intercept.segment import find_transmissions

    parts = []
    for name in ("real_speech_work.ogg", "bird_or_fox.ogg"):
        parts += [decode(str(SAMPLES / name)).samples, np.zeros(32000, np.float32)]
    samples = np.concatenate(parts).astype(np.float32)
    transmissions = find_transmissions(samples, 16000)
    out = {}
    for batch, workers in ((1, 1), (8, 1), (8, 2)):
        engine = fw.FasterWhisperEngine(str(embedded_model_dir), "base",
                                        TranscribeOptions(compute_type="float32", decode_batch=batch,
                                                          translate_batch=batch, cpu_threads=2, cpu_workers=workers))
        sizes = []
        together = engine._batching._generate_together

        def spy(calls, together=together, sizes=sizes):
            sizes.append(len(calls))
            return together(calls)

        engine._batching._generate_together = spy
        out[batch, workers] = (engine.transcribe(samples, transmissions, 16000),
                      engine.translate_spans(samples, transmissions[:4], 16000), sizes)
    return out


def _line(line):
    return (line.start, line.end, line.transmission_idx, line.text,
            [(w.text, w.start, w.end) for w in line.words or []],
            [h.text for h in line.alternatives or []])


def test_batched_decoding_gives_the_sequential_lines_and_english(both_ways):
    sequential, batched = both_ways[1, 1], both_ways[8, 1]
    assert len(sequential[0]) >= 5
    assert max(batched[2]) > 1 and not sequential[2]  # windows were decoded together, and only there
    assert [_line(l) for l in batched[0]] == [_line(l) for l in sequential[0]]
    for a, b in zip(batched[0], sequential[0]):
        assert a.confidence == pytest.approx(b.confidence, abs=0.02)
    assert batched[1] == sequential[1] and all(batched[1])


def test_two_workers_give_the_lines_and_english_of_one(both_ways):
    one, two = both_ways[8, 1], both_ways[8, 2]
    # split between the workers: the largest beam search on two is about half of one's
    assert max(two[2]) < max(one[2])
    assert [_line(l) for l in two[0]] == [_line(l) for l in one[0]]
    assert [l.confidence for l in two[0]] == [l.confidence for l in one[0]]
    assert two[1] == one[1]


def test_the_translate_task_on_its_own_int8_model(embedded_model_dir):
    """translate_compute_type: a second model of the same files, loaded at the first translate
    call only; the transcription's model and text are untouched."""
    from intercept.audio import decode
    from intercept.segment import find_transmissions

    samples = decode(str(SAMPLES / "real_speech_work.ogg")).samples
    transmissions = find_transmissions(samples, 16000)
    lines = {}
    for wanted in ("same", "int8"):
        engine = fw.FasterWhisperEngine(str(embedded_model_dir), "base",
                                        TranscribeOptions(compute_type="float32", translate_compute_type=wanted))
        lines[wanted] = [_line(l) for l in engine.transcribe(samples, transmissions, 16000)]
        assert not engine._translate_models
        english = engine.translate_spans(samples, transmissions, 16000)
        assert all(english)
        if wanted == "int8":
            assert list(engine._translate_models) == ["int8"]
            model = engine._translate_models["int8"]
            assert engine.translate_model() is model  # loaded once
            assert model.compute_type == "int8_float32"
        else:
            assert not engine._translate_models
    assert lines["int8"] == lines["same"]


def test_translate_windows_encoded_shorter_are_batched_apart_by_shape():
    """_Batching.encoder_frames (TranscribeOptions.translate_context_s): a thread's encode() sees
    only the first frames of its features; only inputs of one shape are stacked, and only
    encoder outputs of one shape share a beam search."""
    import ctranslate2

    class Model(FakeModel):
        def __init__(self):
            super().__init__()
            self.frames: list[tuple[int, int]] = []

        def encode(self, features, to_cpu=False):
            array = np.asarray(features)
            with self.lock:
                self.frames.append(array.shape[0::2])
            # (batch, frames / 2, 2): the first value still says the row's length
            return ctranslate2.StorageView.from_array(np.ascontiguousarray(
                np.repeat(array[:, :1, ::2].transpose(0, 2, 1), 2, axis=2) * 1.0))

    model = Model()
    batching = fw._Batching(model)

    def job(value, frames):
        inner = _window_job(batching, value, 100)

        def run():
            if frames is None:
                return inner()
            with batching.encoder_frames(frames):
                return inner()
        return run

    assert batching.run([job(5.0, 1000), job(9.0, None), job(2.0, 1000)]) == [5, 9, 2]
    assert sorted(model.frames) == [(1, 3000), (2, 1000)]
    assert sorted(size for size, _ in model.generates) == [1, 2]
    # Outside the context: the whole window again.
    assert _window_job(batching, 6.0, 100)() == 6 and model.frames[-1] == (1, 3000)

# The first-pass n-gram ban's re-check (issue 25): a packed window whose ban was in force across
# two transmissions is decoded again without the ban.

TS = 50364  # <|0.00|> of the multilingual vocabulary


def test_ban_spans_says_where_a_repeated_n_minus_1_gram_made_the_ban_act():
    from intercept.engines.core import ban_spans

    t = lambda seconds: TS + int(round(seconds / 0.02))  # noqa: E731
    # two transmissions' segments, 0-2 s and 3.5-5 s, the second repeating 4 tokens of the first
    tokens = [t(0), 1, 2, 3, 4, 5, t(2), t(3.5), 9, 1, 2, 3, 4, t(5)]
    assert ban_spans(tokens, 6, TS) == []  # no repeated 5-gram: the 6-gram ban never acted
    # the repeated 4-gram 1 2 3 4: first in the segment 0-2 s, again in the one at 3.5-5 s
    assert ban_spans(tokens, 5, TS) == [((0.0, 2.0), (3.5, 5.0))]
    assert ban_spans(tokens, 3, TS) == [((0.0, 2.0), (3.5, 5.0))] * 3
    # a loop inside one segment: every occurrence lies in it
    loop = [t(1), 8, 1, 2, 1, 2, 1, 2, t(2.5)]
    assert ban_spans(loop, 3, TS) and set(ban_spans(loop, 3, TS)) == {((1.0, 2.5), (1.0, 2.5))}
    # no timestamps: the window's start and its duration
    assert ban_spans([1, 2, 1, 2], 3, TS, duration=7.0) == [((0.0, 7.0), (0.0, 7.0))]
    assert ban_spans([1, 2, 1, 2], 0, TS) == [] and ban_spans([1, 2], 3, TS) == []


class BanningModel:
    """A WindowModel with a first-pass ban: per window length (samples), its segments
    ((start, end, text) in window seconds) and Decoded.ban_spans."""

    token_room = 440
    packs = True
    stops_early = True
    first_pass_ngram = 12

    def __init__(self, windows):
        self.windows = windows
        self.decoded: list[int] = []

    def decode(self, audio, task, max_new_tokens, loop_retry=False, stop_above=None):
        self.decoded.append(len(audio))
        segments, spans = self.windows[len(audio)]
        return Decoded([Segment(s, e, t, compression_ratio=compression_ratio(t)) for s, e, t in segments],
                       ban_spans=list(spans))


def test_a_transmission_where_the_ban_acted_for_another_is_decoded_again_alone():
    """Three 2 s transmissions packed into one window (at 0, 3.5 and 7 s). The ban acted in the
    second because of words of the first (the radio repeats itself), and in the third because of
    its own words: only the second is decoded again, alone, and its line comes from there."""
    from intercept.types import Transmission

    rate = 16000
    samples = np.zeros(rate * 20, np.float32)
    txs = [Transmission(0, 1.0, 3.0), Transmission(1, 6.0, 8.0), Transmission(2, 11.0, 13.0)]
    packed = len(np.zeros(int(rate * 9.0)))  # 2 + 1.5 + 2 + 1.5 + 2 s
    model = BanningModel({
        packed: ([(0.0, 2.0, "پرنده پرنده اینجا"), (3.5, 5.5, "پرنده اینجا روباه"), (7.0, 9.0, "تمام تمام")],
                 [((0.0, 2.0), (3.5, 5.5)), ((7.0, 9.0), (7.0, 9.0))]),
        2 * rate: ([(0.0, 2.0, "پرنده پرنده اینجا روباه")], []),
    })
    lines = Decoder(model, TranscribeOptions(no_repeat_ngram=12)).transcribe(samples, txs)
    assert [(line.transmission_idx, line.text) for line in lines] == [
        (0, "پرنده پرنده اینجا"), (1, "پرنده پرنده اینجا روباه"), (2, "تمام تمام")]
    assert model.decoded == [packed, 2 * rate]
    # Without the ban in force across transmissions, nothing is decoded again.
    model.windows[packed] = (model.windows[packed][0], [((7.0, 9.0), (7.0, 9.0))])
    model.decoded.clear()
    lines = Decoder(model, TranscribeOptions(no_repeat_ngram=12)).transcribe(samples, txs)
    assert [line.text for line in lines][1] == "پرنده اینجا روباه" and model.decoded == [packed]


def test_the_batching_wrapper_gives_a_window_the_results_of_its_own_searches():
    """_Batching.watching(): each decode loop (thread) sees the results of its own generate calls,
    made together with the other loops'."""
    model = FakeModel()
    batching = fw._Batching(model)
    seen = {}

    def job(value):
        def run():
            with batching.watching() as results:
                length = _window_job(batching, value, 100)()
            seen[value] = [len(r.sequences_ids[0]) for r in results]
            return length
        return run

    assert batching.run([job(3.0), job(5.0)]) == [3, 5]
    assert seen == {3.0: [3], 5.0: [5]} and model.generates[0][0] == 2
