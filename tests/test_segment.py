"""Tests for intercept.segment on the committed radio samples and on synthetic keyed audio."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from intercept.audio import SAMPLE_RATE, decode
from intercept.segment import SegmentOptions, find_transmissions, silero_spans

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "audio_samples"
MANIFEST = json.loads((SAMPLES_DIR / "manifest.json").read_text(encoding="utf-8"))
SAMPLE_NAMES = sorted(MANIFEST["recordings"])
# Found boundaries may differ from where the speech lies by this much: a transmission runs
# from key-up (0.2-0.4 s before the first word in the samples) to the squelch tail.
BOUNDARY_TOLERANCE_S = 0.5


@pytest.fixture(scope="module")
def decoded():
    return {name: decode(str(SAMPLES_DIR / name)) for name in SAMPLE_NAMES}


def check_well_formed(found, duration):
    assert [t.idx for t in found] == list(range(len(found)))
    for t in found:
        assert 0.0 <= t.start < t.end <= duration
    for before, after in zip(found, found[1:]):
        assert before.end <= after.start


@pytest.mark.parametrize("method", ["silero", "energy", "auto"])
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_finds_every_manifest_transmission(decoded, name, method):
    audio = decoded[name]
    expected = MANIFEST["recordings"][name]["transmissions"]
    found = find_transmissions(audio.samples, SAMPLE_RATE, SegmentOptions(method=method))
    check_well_formed(found, audio.duration)
    for want in expected:
        overlapping = [t for t in found if t.start < want["end"] and t.end > want["start"]]
        assert len(overlapping) == 1, f"{name} {want['start']}s: {overlapping}"
        got = overlapping[0]
        assert abs(got.start - want["start"]) <= BOUNDARY_TOLERANCE_S, (name, got, want)
        assert abs(got.end - want["end"]) <= BOUNDARY_TOLERANCE_S, (name, got, want)
    # Nothing in the silences between transmissions.
    stray = [t for t in found if not any(t.start < w["end"] and t.end > w["start"] for w in expected)]
    assert stray == []
    assert len(found) == len(expected)


def test_no_transmission_inside_long_silences(decoded):
    name = "session_long.mp3"
    expected = MANIFEST["recordings"][name]["transmissions"]
    found = find_transmissions(decoded[name].samples, SAMPLE_RATE)
    silences = [(a["end"] + 1.0, b["start"] - 1.0) for a, b in zip(expected, expected[1:])]
    assert min(end - start for start, end in silences) > 8.0  # they are long in this sample
    for start, end in silences:
        assert not [t for t in found if t.start < end and t.end > start]


def test_the_very_short_call_is_found(decoded):
    want = MANIFEST["recordings"]["short_call.wav"]["transmissions"][0]
    assert want["end"] - want["start"] < 1.2
    for method in ("silero", "energy"):
        found = find_transmissions(decoded["short_call.wav"].samples, SAMPLE_RATE, SegmentOptions(method=method))
        assert len(found) == 1
        assert found[0].start <= want["start"] and found[0].end >= want["end"] - 0.1


def test_silero_default_settings_are_fitted_not_faster_whisper_defaults():
    options = SegmentOptions()
    assert options.method == "silero"
    assert options.threshold < 0.5 and options.neg_threshold < options.threshold


def keyed_babble(seconds: float, rng: np.random.Generator, pause_at=None) -> np.ndarray:
    """A keyed channel: hiss all along, 'syllables' of band noise with 0.1 s dips, and an
    optional clear 0.6 s pause (hiss only) starting at pause_at seconds."""
    count = int(seconds * SAMPLE_RATE)
    time = np.arange(count) / SAMPLE_RATE
    hiss = 0.01 * rng.standard_normal(count)
    syllables = 0.3 * rng.standard_normal(count) * ((time % 0.4) < 0.3)
    if pause_at is not None:
        syllables[(time >= pause_at) & (time < pause_at + 0.6)] = 0.0
    return (hiss + syllables).astype(np.float32)


def test_long_transmission_is_split_at_its_quietest_pause():
    rng = np.random.default_rng(7)
    silence = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    signal = np.concatenate([silence, keyed_babble(40.0, rng, pause_at=20.0), silence])
    found = find_transmissions(signal, SAMPLE_RATE, SegmentOptions(method="energy"))
    check_well_formed(found, signal.size / SAMPLE_RATE)
    assert len(found) == 2
    assert all(t.duration <= 28.0 for t in found)
    # The pieces tile the keyed span and the cut lies in the pause (2 s lead-in + 20 s).
    assert found[0].end == found[1].start
    assert 22.0 <= found[0].end <= 22.6
    assert found[0].start == pytest.approx(2.0, abs=0.1)
    assert found[1].end == pytest.approx(42.0, abs=0.1)


def test_very_long_transmission_becomes_several_pieces_under_the_limit():
    rng = np.random.default_rng(8)
    signal = keyed_babble(70.0, rng)
    options = SegmentOptions(method="energy", max_transmission_s=20.0)
    found = find_transmissions(signal, SAMPLE_RATE, options)
    check_well_formed(found, signal.size / SAMPLE_RATE)
    assert len(found) >= 4
    assert all(t.duration <= 20.0 + 1e-6 for t in found)
    assert found[0].start == pytest.approx(0.0, abs=0.02)
    assert found[-1].end == pytest.approx(70.0, abs=0.02)


def test_auto_falls_back_to_energy_when_silero_hears_no_speech():
    # Keyed bursts of syllable-paced noise: a clearly keyed channel that is not speech to
    # Silero. (Bursts of steady hiss, a keyed carrier with nothing on it, are no transmission
    # at all: test_hostile_io.)
    rng = np.random.default_rng(9)
    silence = (1e-4 * rng.standard_normal(3 * SAMPLE_RATE)).astype(np.float32)
    signal = np.concatenate([silence, keyed_babble(2.0, rng), silence, keyed_babble(2.0, rng), silence])
    assert silero_spans(signal, SAMPLE_RATE, SegmentOptions()) == []
    assert find_transmissions(signal, SAMPLE_RATE, SegmentOptions(method="silero")) == []
    found = find_transmissions(signal, SAMPLE_RATE, SegmentOptions(method="auto"))
    assert [(t.start, t.end) for t in found] == [(pytest.approx(3.0, abs=0.02), pytest.approx(5.0, abs=0.15)),
                                                 (pytest.approx(8.0, abs=0.02), pytest.approx(10.0, abs=0.15))]


@pytest.mark.parametrize("method", ["silero", "energy", "auto"])
def test_empty_and_silent_input_have_no_transmissions(method):
    options = SegmentOptions(method=method)
    assert find_transmissions(np.zeros(0, dtype=np.float32), SAMPLE_RATE, options) == []
    assert find_transmissions(np.zeros(5 * SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE, options) == []


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="method"):
        SegmentOptions(method="magic")
    with pytest.raises(ValueError, match="max_transmission_s"):
        SegmentOptions(max_transmission_s=0.5)
    with pytest.raises(ValueError, match="mono"):
        find_transmissions(np.zeros((2, 100), dtype=np.float32))
    with pytest.raises(ValueError, match="workers"):
        SegmentOptions(workers=0)


def test_blocks_segmented_at_once_give_the_same_transmissions(decoded):
    """SegmentOptions.workers: the blocks of a long recording are segmented in threads, each
    alone, so the transmissions are the same as one block after another."""
    audio = decoded["session_long.mp3"]
    expected = MANIFEST["recordings"]["session_long.mp3"]["transmissions"]
    blocks = dict(block_s=25.0, block_overlap_s=10.0)
    one = find_transmissions(audio.samples, SAMPLE_RATE, SegmentOptions(workers=1, **blocks))
    assert audio.duration > 3 * 25.0 and len(one) == len(expected)
    assert find_transmissions(audio.samples, SAMPLE_RATE, SegmentOptions(workers=3, **blocks)) == one


def _bursts(rng, sample_rate, seconds):
    """Hiss, keyed bursts and squelched gaps of random lengths: windows near the threshold."""
    out = np.zeros(int(seconds * sample_rate), np.float32)
    at = 0
    while at < out.size:
        on = int(rng.uniform(0.05, 3.0) * sample_rate)
        out[at:at + on] = rng.normal(0, rng.choice([0.003, 0.01, 0.3]), out[at:at + on].size)
        at += on + int(rng.uniform(0.0, 1.5) * sample_rate)
    return out


@pytest.mark.parametrize("sample_rate", [16000, 8000, 44100])
def test_the_energy_split_gives_pydubs_ranges(sample_rate):
    """_nonsilent_ms is pydub.silence.detect_nonsilent computed with running sums: the same
    ranges, on signals and settings around every edge of pydub's rule."""
    from pydub import AudioSegment
    from pydub.silence import detect_nonsilent

    from intercept.segment import _nonsilent_ms, _pcm16

    rng = np.random.default_rng(sample_rate)
    signals = [_bursts(rng, sample_rate, rng.uniform(1, 10)) for _ in range(6)]
    signals += [np.zeros(sample_rate * 2, np.float32), rng.normal(0, 0.2, sample_rate * 2).astype(np.float32),
                rng.normal(0, 0.2, sample_rate // 5).astype(np.float32), np.zeros(0, np.float32)]
    checked = 0
    for signal in signals:
        pcm = _pcm16(signal)
        segment = AudioSegment(pcm.tobytes(), frame_rate=sample_rate, sample_width=2, channels=1)
        for min_silence_len, seek_step in [(500, 10), (300, 1), (500, 7), (100, 150)]:
            for thresh in (-60.0, -40.0, -35.5, -20.0):
                expected = detect_nonsilent(segment, min_silence_len=min_silence_len, silence_thresh=thresh,
                                            seek_step=seek_step)
                assert _nonsilent_ms(pcm, sample_rate, min_silence_len, thresh, seek_step) == expected
                checked += bool(expected) and expected != [[0, len(segment)]]
    assert checked > 20  # most cases split the signal, not all-or-nothing
