"""Tests for the faster-whisper engine: packed decoding with the real embedded model, and
the choice of compute type for "auto"."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from intercept.audio import decode
from intercept.engines import TranscribeOptions
from intercept.engines import faster_whisper as fw
from intercept.packing import PackOptions, plan_packs
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
    packs = plan_packs(transmissions, PackOptions(gap_s=TranscribeOptions().pack_gap_s))
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
