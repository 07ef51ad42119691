"""Tests for the faster-whisper engine: packed decoding with the real embedded model, and
the choice of compute type for "auto"."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from intercept.audio import decode
from intercept.engines import TranscribeOptions
from intercept.engines import faster_whisper as fw
from intercept.engines import pack_options_for
from intercept.packing import plan_packs
from intercept.segment import find_transmissions

SAMPLES = Path(__file__).resolve().parent.parent / "audio_samples"


@pytest.fixture(scope="module")
def packed_run(embedded_model_dir, manifest):
    """bird_or_fox.ogg (four short transmissions), transcribed with packing; records every
    window the model was given."""
    name = "bird_or_fox.ogg"
    audio = decode(str(SAMPLES / name))
    transmissions = find_transmissions(audio.samples, audio.sample_rate)
    engine = fw.FasterWhisperEngine(str(embedded_model_dir), "base",
                                    TranscribeOptions(compute_type="float32", pack=True))
    windows = []
    real_transcribe = engine.model.transcribe

    def spy(audio_window, **kwargs):
        windows.append(len(audio_window) / 16000)
        return real_transcribe(audio_window, **kwargs)

    engine.model.transcribe = spy
    lines = engine.transcribe(audio.samples, transmissions, audio.sample_rate)
    return lines, transmissions, windows, manifest["recordings"][name]["transmissions"]


def test_packing_puts_several_transmissions_in_one_window(packed_run):
    _lines, transmissions, windows, _expected = packed_run
    assert len(transmissions) >= 3
    packs = plan_packs(transmissions, pack_options_for(TranscribeOptions()))
    assert len(packs) < len(transmissions)
    # The first call is the packed window: longer than any one transmission.
    assert windows[0] > max(tx.duration for tx in transmissions) + 1.0


def test_packed_lines_land_inside_the_right_transmissions(packed_run):
    lines, transmissions, _windows, expected = packed_run
    assert lines, "the model recognised nothing"
    by_idx = {tx.idx: tx for tx in transmissions}
    for line in lines:
        tx = by_idx[line.transmission_idx]
        assert tx.start <= line.start <= line.end <= tx.end, (line, tx)
        # The manifest says where each transmission's speech lies: the line's middle lies
        # in the speech of the transmission it was given to, not in a neighbour's.
        middle = (line.start + line.end) / 2
        nearest = min(expected, key=lambda e: 0 if e["start"] <= middle <= e["end"]
                      else min(abs(middle - e["start"]), abs(middle - e["end"])))
        assert tx.start - 0.5 <= nearest["start"] and nearest["end"] <= tx.end + 0.5, (line, tx, nearest)
    assert [line.start for line in lines] == sorted(line.start for line in lines)
    # Every transmission of this exchange is speech; each gets at least one line.
    assert {line.transmission_idx for line in lines} == set(by_idx)


def test_auto_compute_type_is_probed_once_and_cached(tmp_path, monkeypatch, embedded_model_dir):
    calls = []

    def fake_probe(model_path, compute_types, cpu_threads, rounds=2):
        calls.append(list(compute_types))
        return {"float32": 2.0, "int8": 1.0}

    monkeypatch.setattr(fw, "_time_compute_types", fake_probe)
    assert fw.choose_compute_type(str(embedded_model_dir), "cpu", 0, cache_dir=tmp_path) == "int8"
    assert fw.choose_compute_type(str(embedded_model_dir), "cpu", 0, cache_dir=tmp_path) == "int8"
    assert len(calls) == 1
    cached = json.loads((tmp_path / "compute_type.json").read_text())
    (entry,) = cached.values()
    assert entry["compute_type"] == "int8" and entry["seconds"] == {"float32": 2.0, "int8": 1.0}
    # Another thread count is another measurement.
    monkeypatch.setattr(fw, "_time_compute_types", lambda *a, **k: {"float32": 1.0, "int8": 3.0})
    assert fw.choose_compute_type(str(embedded_model_dir), "cpu", 1, cache_dir=tmp_path) == "float32"


def test_auto_compute_type_survives_a_damaged_cache(tmp_path, monkeypatch, embedded_model_dir):
    (tmp_path / "compute_type.json").write_text("{not json")
    monkeypatch.setattr(fw, "_time_compute_types", lambda *a, **k: {"float32": 1.0, "int8": 3.0})
    assert fw.choose_compute_type(str(embedded_model_dir), "cpu", 0, cache_dir=tmp_path) == "float32"


def test_auto_compute_type_on_cuda_is_a_rule_not_a_probe(monkeypatch):
    import ctranslate2

    monkeypatch.setattr(fw, "_time_compute_types", lambda *a, **k: pytest.fail("no probe on CUDA"))
    monkeypatch.setattr(ctranslate2, "get_supported_compute_types",
                        lambda device: {"float32", "float16", "int8_float16", "int8"})
    assert fw.choose_compute_type("unused", "cuda") == "int8_float16"
    monkeypatch.setattr(ctranslate2, "get_supported_compute_types", lambda device: {"float32", "float16"})
    assert fw.choose_compute_type("unused", "cuda") == "float16"


def test_real_probe_times_both_types(embedded_model_dir):
    timings = fw._time_compute_types(str(embedded_model_dir), ["float32", "int8"], cpu_threads=0, rounds=1)
    assert set(timings) == {"float32", "int8"}
    assert all(0 < seconds < 120 for seconds in timings.values())


class _Segment:
    def __init__(self, text: str, start: float = 0.0, end: float = 2.0, tokens: int = 5):
        from faster_whisper.transcribe import get_compression_ratio

        self.text, self.start, self.end = text, start, end
        self.tokens = [50365] + [1000] * (tokens - 1)  # what the decode call gave this segment
        self.avg_logprob, self.no_speech_prob = -0.5, 0.1
        self.compression_ratio = get_compression_ratio(text)


def _scripted_engine(answers, options: TranscribeOptions):
    """A FasterWhisperEngine whose model answers from a script and records each request."""
    engine = object.__new__(fw.FasterWhisperEngine)
    engine.options, engine.compute_type, engine._room, engine._batched = options, "float32", None, None
    engine.pack_options = pack_options_for(options)
    requests = []

    class Model:
        def transcribe(self, audio, **kwargs):
            requests.append(kwargs)
            return [_Segment(text) for text in answers[len(requests) - 1]], None

    engine.model = Model()
    engine._batching = fw._Batching(engine.model)  # (its encoder_frames: translate_context_s)
    return engine, requests


def _one_transmission():
    import numpy as np

    from intercept.types import Transmission

    return np.zeros(16000 * 3, dtype=np.float32), [Transmission(0, 0.0, 3.0)]


LOOP = "که " * 40


def _reaches_transcribe_decodes_only(field: str, setting: str, value, off, default="off") -> None:
    """TranscribeOptions.<field> is `default` (`off` unless given) by default and reaches the
    transcribe decode as faster-whisper's <setting>; the translate task's decode gets `off`
    whatever it is."""
    default = off if default == "off" else default
    samples, txs = _one_transmission()
    engine, requests = _scripted_engine([["دریافت شد"]], TranscribeOptions())
    engine.transcribe(samples, txs)
    assert requests[0][setting] == getattr(TranscribeOptions(), field) == default
    engine, requests = _scripted_engine([["دریافت شد"]], TranscribeOptions(**{field: value}))
    engine.transcribe(samples, txs)
    assert requests[0][setting] == value
    engine, requests = _scripted_engine([["received"]], TranscribeOptions(**{field: value}))
    assert engine.translate_audio(samples, 0.0, 3.0) == "received"
    assert requests[0][setting] == off


def test_a_loop_is_decoded_again_deterministically_and_the_retry_kept():
    samples, txs = _one_transmission()
    # (with no_repeat_ngram 0: by default every transcribe decode already bans what the retry bans)
    engine, requests = _scripted_engine([[LOOP], ["امشب برویم ببینیم پرنده است یا روباه"]],
                                        TranscribeOptions(no_repeat_ngram=0))
    lines = engine.transcribe(samples, txs)
    assert [line.text for line in lines] == ["امشب برویم ببینیم پرنده است یا روباه"]
    assert len(requests) == 2
    assert requests[0]["temperature"] == [0.0]  # the default never samples
    retry = requests[1]
    assert retry["temperature"] == [0.0]
    assert retry["no_repeat_ngram_size"] == TranscribeOptions().loop_retry_ngram > 0
    assert retry["repetition_penalty"] == TranscribeOptions().loop_retry_penalty


def test_every_transcribe_decode_forbids_repeated_ngrams_and_a_retry_that_adds_nothing_is_not_made():
    """TranscribeOptions.no_repeat_ngram (8 by default): the first decode of a window already
    forbids repeated n-grams (issue 25: Whisper base's loops ran on and were then decoded again);
    the English of the translate task is not banned from repeating. A loop retry that would
    forbid nothing more (its n-gram no shorter, no penalty) is not made."""
    samples, txs = _one_transmission()
    _reaches_transcribe_decodes_only("no_repeat_ngram", "no_repeat_ngram_size", 6, off=0, default=8)
    options = TranscribeOptions(no_repeat_ngram=3, loop_retry_ngram=3)
    engine, requests = _scripted_engine([[LOOP]], options)
    assert [line.text for line in engine.transcribe(samples, txs)] == [LOOP.strip()]
    assert len(requests) == 1 and requests[0]["no_repeat_ngram_size"] == 3
    # A shorter n-gram, or a penalty, still retries.
    for options in (TranscribeOptions(no_repeat_ngram=4, loop_retry_ngram=3),
                    TranscribeOptions(no_repeat_ngram=3, loop_retry_ngram=3, loop_retry_penalty=1.2)):
        engine, requests = _scripted_engine([[LOOP], ["دریافت شد"]], options)
        assert [line.text for line in engine.transcribe(samples, txs)] == ["دریافت شد"]
        assert len(requests) == 2
    # The English still gets its loop retry.
    engine, requests = _scripted_engine([[LOOP], ["received"]], TranscribeOptions(no_repeat_ngram=3, loop_retry_ngram=3))
    assert engine.translate_audio(samples, 0.0, 3.0) == "received" and len(requests) == 2


def test_a_first_pass_repetition_penalty_reaches_transcribe_decodes_only():
    """TranscribeOptions.repetition_penalty (off by default, measured in issue 25) goes to every
    transcribe decode; the English of the translate task is decoded without it."""
    _reaches_transcribe_decodes_only("repetition_penalty", "repetition_penalty", 1.1, off=1.0)


def test_a_first_call_token_cap_reaches_first_transcribe_decodes_only():
    """TranscribeOptions.first_call_tokens (off by default, measured in issue 25): the first
    decode of a transcribe window asks for at most that many tokens per call; a call that ends
    inside its first segment without looping is not kept cut: the window is decoded again with
    its own cap; a loop seen within the cap goes to the loop retry, which keeps the window's cap."""
    samples, txs = _one_transmission()
    window_cap = 30 * 3 + 20  # tokens_per_second * 3 s + 20 for the one transmission
    engine, requests = _scripted_engine([["دریافت شد"]], TranscribeOptions())
    engine.transcribe(samples, txs)
    assert TranscribeOptions().first_call_tokens is None
    assert [r["max_new_tokens"] for r in requests] == [window_cap]

    engine, requests = _scripted_engine([], TranscribeOptions(first_call_tokens=48))
    answers = [[("دریافت شد", 6)], [("امشب برویم ببینیم پرنده", 48)], [("امشب برویم ببینیم پرنده است یا روباه", 20)],
               [(LOOP, 48)], [("امشب برویم", 8)]]

    class Model:
        def transcribe(self, audio, **kwargs):
            requests.append(kwargs)
            return [_Segment(text, tokens=n) for text, n in answers[len(requests) - 1]], None

    engine.model = Model()
    # 1: ends within the cap: kept as it is, one call
    assert [line.text for line in engine.transcribe(samples, txs)] == ["دریافت شد"]
    assert [r["max_new_tokens"] for r in requests] == [48]
    # 2: cut inside its first segment, no loop: decoded again with the window's cap
    assert [line.text for line in engine.transcribe(samples, txs)] == ["امشب برویم ببینیم پرنده است یا روباه"]
    assert [r["max_new_tokens"] for r in requests[1:]] == [48, window_cap]
    # 3: a loop within the cap: the loop retry, with the window's cap and its ban
    assert [line.text for line in engine.transcribe(samples, txs)] == ["امشب برویم"]
    assert [r["max_new_tokens"] for r in requests[3:]] == [48, window_cap]
    assert requests[4]["no_repeat_ngram_size"] == TranscribeOptions().loop_retry_ngram
    # the translate task is never capped so
    engine, requests = _scripted_engine([["received"]], TranscribeOptions(first_call_tokens=16))
    assert engine.translate_audio(samples, 0.0, 3.0) == "received"
    assert requests[0]["max_new_tokens"] == 8 * 3 + 20  # translate_tokens_per_second * 3 s + 20


def test_a_retry_that_repeats_as_much_is_not_kept_and_clean_text_is_not_retried():
    samples, txs = _one_transmission()
    # The first decode stops at the loop; the retry repeats more, so the whole window is
    # decoded again to be weighed against it (here the whole is the loop alone).
    engine, requests = _scripted_engine([[LOOP], [LOOP + LOOP], [LOOP]], TranscribeOptions(no_repeat_ngram=0))
    assert [line.text for line in engine.transcribe(samples, txs)] == [LOOP.strip()]
    assert len(requests) == 3
    engine, requests = _scripted_engine([["دریافت شد"]], TranscribeOptions(no_repeat_ngram=0))
    engine.transcribe(samples, txs)
    assert len(requests) == 1
    # Turned off: no retry even on a loop.
    engine, requests = _scripted_engine([[LOOP]], TranscribeOptions(loop_retry_ngram=0, loop_retry_penalty=1.0))
    engine.transcribe(samples, txs)
    assert len(requests) == 1


def test_decoding_stops_at_the_first_looping_segment_and_closes_the_generator():
    """faster-whisper decodes lazily: segments not pulled are never decoded."""
    samples, txs = _one_transmission()
    pulled, closed = [], []
    engine, requests = _scripted_engine([], TranscribeOptions(no_repeat_ngram=0))

    def lazy(texts):
        try:
            for text in texts:
                pulled.append(text)
                yield _Segment(text)
        finally:
            closed.append(True)

    scripts = [["دریافت شد", LOOP, "نباید رمزگشایی شود"], ["دریافت شد", "امشب"], ["یک", LOOP, "دو"]]

    class Model:
        def transcribe(self, audio, **kwargs):
            requests.append(kwargs)
            return lazy(scripts[len(requests) - 1]), None

    engine.model = Model()
    lines = engine.transcribe(samples, txs)
    assert [line.text for line in lines] == ["دریافت شد", "امشب"]
    assert pulled == ["دریافت شد", LOOP, "دریافت شد", "امشب"]
    assert closed == [True, True]
    decoded = engine.decode(samples, "transcribe", 100)  # no stop_above: every segment
    assert decoded.complete and [seg.text for seg in decoded.segments] == ["یک", LOOP, "دو"]


def test_no_window_is_dropped_as_silence_by_default():
    """The VAD already found speech: Whisper's no-speech rule must not drop the window."""
    samples, txs = _one_transmission()
    engine, requests = _scripted_engine([["دریافت شد"]], TranscribeOptions())
    engine.transcribe(samples, txs)
    assert requests[0]["no_speech_threshold"] is None


def test_default_decoding_is_reproducible(embedded_model_dir, manifest):
    """The same audio gives the same text twice, also after other audio was decoded in
    between (a temperature ladder samples, and CTranslate2's sampler cannot be re-seeded)."""
    audio = decode(str(SAMPLES / "plain_traffic.wav"))
    transmissions = find_transmissions(audio.samples, audio.sample_rate)[:2]
    engine = fw.FasterWhisperEngine(str(embedded_model_dir), "base", TranscribeOptions(compute_type="float32"))
    first = [line.text for line in engine.transcribe(audio.samples, transmissions)]
    engine.transcribe(audio.samples, transmissions[1:])
    assert [line.text for line in engine.transcribe(audio.samples, transmissions)] == first


def test_packed_lines_carry_their_own_compression_ratio(packed_run):
    """Whisper scores compression and no-speech per window; a packed window spans several
    transmissions, so each line gets the ratio of its own text (one loop must not mark its
    neighbours) and no window-level no-speech probability."""
    from faster_whisper.transcribe import get_compression_ratio

    lines = packed_run[0]
    assert len({line.transmission_idx for line in lines}) > 1
    own = [line.compression_ratio == pytest.approx(get_compression_ratio(line.text)) for line in lines]
    assert sum(own) >= 2, [(line.text, line.compression_ratio) for line in lines]
    # The window's no-speech probability says nothing about one transmission: not stored.
    assert sum(line.no_speech_prob is None for line in lines) >= 2


def _cer(a: str, b: str) -> float:
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(a, b) / max(len(a), len(b), 1)


def test_packed_lines_carry_words_and_their_own_alternatives(packed_run):
    """Defaults (beam 5, evidence on): every line has its words, and its N-best cut out of
    the packed window's hypotheses lands on its own transmission: each alternative is
    closer to its own line than to any other transmission's line."""
    lines, transmissions, _windows, _expected = packed_run
    by_idx = {tx.idx: tx for tx in transmissions}
    for line in lines:
        assert line.words, line
        for word in line.words:
            assert 0.0 <= word.probability <= 1.0 and line.start <= word.start <= word.end <= line.end, (word, line)
        tx = by_idx[line.transmission_idx]
        assert tx.start <= line.start <= line.end <= tx.end
        assert line.confidence == pytest.approx(sum(w.probability for w in line.words) / len(line.words), abs=1e-3)
    with_alternatives = [line for line in lines if line.alternatives is not None]
    assert len({line.transmission_idx for line in with_alternatives}) >= 2, [l.alternatives for l in lines]
    for line in with_alternatives:
        assert line.alternatives[0].text == line.text
        assert len(line.alternatives) == TranscribeOptions().beam_size
        others = [other.text for other in lines if other.transmission_idx != line.transmission_idx]
        for hypothesis in line.alternatives:
            if hypothesis.text:
                own = _cer(hypothesis.text, line.text)
                assert all(own < _cer(hypothesis.text, other) for other in others), (hypothesis, line.text, others)


def test_evidence_does_not_change_what_is_heard(packed_run, embedded_model_dir):
    """The N-best and the word alignment are watched beside faster-whisper's own decode: the
    same windows give the same lines with the evidence off."""
    lines, transmissions, _windows, _expected = packed_run
    audio = decode(str(SAMPLES / "bird_or_fox.ogg"))
    engine = fw.FasterWhisperEngine(str(embedded_model_dir), "base",
                                    TranscribeOptions(compute_type="float32", alternatives=0, word_evidence=False))
    bare = engine.transcribe(audio.samples, transmissions, audio.sample_rate)
    assert [(l.start, l.end, l.text) for l in bare] == [(l.start, l.end, l.text) for l in lines]
    assert all(l.words is None and l.alternatives is None for l in bare)


def test_the_translate_task_has_its_own_beam_and_decodes_no_timestamps():
    """TranscribeOptions.translate_beam_size and translate_timestamps (issue 25): the English of a
    line needs neither timestamps nor the recogniser's beam; transcription keeps both."""
    samples, txs = _one_transmission()
    options = TranscribeOptions(beam_size=5, translate_beam_size=2, translate_timestamps=False)
    engine, requests = _scripted_engine([["دریافت شد"], ["received"]], options)
    engine.transcribe(samples, txs)
    assert engine.translate_audio(samples, 0.0, 3.0) == "received"
    transcribe, translate = requests
    assert transcribe["beam_size"] == 5 and not transcribe["without_timestamps"]
    assert translate["beam_size"] == 2 and translate["without_timestamps"]
    # Packed translation splits a window's English by its timestamps: they stay.
    engine, requests = _scripted_engine([["received"]], replace(options, pack_translate=True))
    engine.translate_audio(samples, 0.0, 3.0)
    assert not requests[0]["without_timestamps"]
    # None: the recogniser's beam.
    engine, requests = _scripted_engine([["received"]], TranscribeOptions(beam_size=4, translate_beam_size=None))
    engine.translate_audio(samples, 0.0, 3.0)
    assert requests[0]["beam_size"] == 4
    # TranscribeOptions.transcribe_timestamps=False: transcription without them too.
    engine, requests = _scripted_engine([["دریافت شد"]], TranscribeOptions(transcribe_timestamps=False))
    assert [line.text for line in engine.transcribe(samples, txs)] == ["دریافت شد"]
    assert requests[0]["task"] == "transcribe" and requests[0]["without_timestamps"]


def test_a_translate_window_is_encoded_as_long_as_its_context():
    """TranscribeOptions.translate_context_s: the encoder of a translate window sees its audio
    padded to that many seconds (its own length plus 1 s when longer), never more than
    Whisper's 30 s; transcription always sees 30 s."""
    engine = object.__new__(fw.FasterWhisperEngine)
    engine.options = TranscribeOptions(translate_context_s=10.0)
    second = np.zeros(16000, np.float32)
    assert engine._encoder_frames(second * 3, "translate") == 1000
    assert engine._encoder_frames(np.zeros(16000 * 12 + 320, np.float32), "translate") == 1302
    assert engine._encoder_frames(np.zeros(16000 * 29 + 8000, np.float32), "translate") is None
    assert engine._encoder_frames(second, "transcribe") is None
    engine.options = TranscribeOptions(translate_context_s=None)
    assert engine._encoder_frames(second, "translate") is None
    engine.options = TranscribeOptions(translate_context_s=10.0, pack_translate=True)
    assert engine._encoder_frames(second, "translate") is None


def test_the_window_length_and_gap_come_from_the_transcribe_options():
    """TranscribeOptions.pack_window_s and pack_gap_s decide how many transmissions share a
    window, for the engine and for every other place that packs (engines.pack_options_for)."""
    from intercept.engines.core import Decoder
    from intercept.packing import PackOptions
    from intercept.types import Transmission

    samples = np.zeros(30 * 16000, dtype=np.float32)
    three = [Transmission(i, 10.0 * i, 10.0 * i + 4.0) for i in range(3)]
    windows = {}
    for window_s in (29.0, 10.0):
        options = TranscribeOptions(pack_window_s=window_s, pack_gap_s=0.5, word_evidence=False, alternatives=0)
        assert pack_options_for(options) == PackOptions(window_s=window_s, gap_s=0.5)
        assert Decoder(object(), options).pack_options == pack_options_for(options)
        engine, requests = _scripted_engine([["دریافت شد"]] * 6, options)
        engine.transcribe(samples, three, 16000)
        windows[window_s] = len(requests)
    # 4 + 0.5 + 4 + 0.5 + 4 fits 29 s; in 10 s windows the third transmission spills over.
    assert windows == {29.0: 1, 10.0: 2}
