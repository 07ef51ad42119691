"""Tests for intercept.audio: decoding, hashing, clean-up and clips, on the committed samples."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from intercept.audio import (
    SAMPLE_RATE,
    AudioError,
    CleanupOptions,
    clean_radio,
    decode,
    extract_clip,
    sha256_file,
)

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "audio_samples"
MANIFEST = json.loads((SAMPLES_DIR / "manifest.json").read_text(encoding="utf-8"))
SAMPLE_NAMES = sorted(MANIFEST["recordings"])
EXPECTED_FORMAT = {".mp3": "mp3", ".ogg": "ogg opus", ".wav": "wav pcm_s16le"}


@pytest.fixture
def sample_copy(tmp_path):
    """A private copy of a committed sample, so tests can check it is never modified."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copyfile(SAMPLES_DIR / name, target)
        return target

    return copy


def read_wav(data: bytes):
    with wave.open(io.BytesIO(data), "rb") as reader:
        assert reader.getnchannels() == 1
        assert reader.getsampwidth() == 2
        rate = reader.getframerate()
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0, rate


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_decode_each_sample_format(name):
    info = MANIFEST["recordings"][name]
    audio = decode(str(SAMPLES_DIR / name))
    assert audio.format == EXPECTED_FORMAT[Path(name).suffix]
    assert audio.sample_rate == SAMPLE_RATE
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert np.abs(audio.samples).max() <= 1.0
    assert audio.duration == pytest.approx(audio.samples.size / SAMPLE_RATE)
    # Codec padding (mp3, opus) adds at most a few tens of ms.
    assert audio.duration == pytest.approx(info["duration"], abs=0.1)
    # Speech is where the manifest says: much louder than the squelched gaps.
    first = info["transmissions"][0]
    speech = audio.samples[int(first["start"] * SAMPLE_RATE): int(first["end"] * SAMPLE_RATE)]
    before = audio.samples[: int(max(0.0, first["start"] - 1.0) * SAMPLE_RATE)]
    assert np.sqrt(np.mean(speech ** 2)) > 100 * np.sqrt(np.mean(before ** 2))


def test_sha256_file_streams_the_whole_file(tmp_path):
    path = tmp_path / "data.bin"
    payload = os.urandom(3 * 1024 * 1024 + 17)  # spans several read blocks
    path.write_bytes(payload)
    assert sha256_file(str(path)) == hashlib.sha256(payload).hexdigest()
    assert sha256_file(str(path), block_bytes=1000) == hashlib.sha256(payload).hexdigest()


def test_sha256_missing_file_names_it(tmp_path):
    missing = tmp_path / "nowhere.mp3"
    with pytest.raises(AudioError, match="nowhere.mp3.*file not found"):
        sha256_file(str(missing))


@pytest.mark.parametrize("name", ["short_call.wav", "bird_or_fox.ogg", "session_long.mp3"])
def test_extract_clip_covers_exactly_the_range(name):
    path = str(SAMPLES_DIR / name)
    full = decode(path)
    start, end, context = 1.25, 2.5, 0.4
    clip, rate = read_wav(extract_clip(path, start, end, context=context))
    assert rate == SAMPLE_RATE
    assert clip.size == round((end - start + 2 * context) * SAMPLE_RATE)
    # Same audio as the decoded file over that range (lossy codecs decode slightly
    # differently after a seek, so compare by correlation, at zero lag).
    reference = full.samples[int((start - context) * SAMPLE_RATE):][: clip.size]
    correlation = np.corrcoef(clip, reference)[0, 1]
    assert correlation > 0.95


def test_extract_clip_clamps_context_to_the_file():
    path = str(SAMPLES_DIR / "short_call.wav")
    duration = decode(path).duration
    clip, _ = read_wav(extract_clip(path, 0.2, 1.0, context=1.0))
    assert clip.size == round(2.0 * SAMPLE_RATE)  # clamped at 0: [0, 2.0]
    clip, _ = read_wav(extract_clip(path, duration - 0.5, duration, context=2.0))
    assert clip.size == pytest.approx((2.5) * SAMPLE_RATE, abs=2)  # clamped at the end


@pytest.mark.parametrize(
    "start,end,reason",
    [(2.0, 2.0, "empty range"), (3.0, 1.0, "empty range"), (500.0, 501.0, "end of the recording")],
)
def test_extract_clip_rejects_empty_ranges(start, end, reason):
    path = str(SAMPLES_DIR / "short_call.wav")
    with pytest.raises(AudioError, match=reason) as raised:
        extract_clip(path, start, end)
    assert "short_call.wav" in str(raised.value)


def test_zero_byte_file_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    with pytest.raises(AudioError) as raised:
        decode(str(empty))
    message = str(raised.value)
    assert "empty.mp3" in message and "empty file" in message and "\n" not in message


def test_text_file_renamed_wav_is_a_clear_error(tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is a note, not a recording\n" * 20)
    with pytest.raises(AudioError) as raised:
        decode(str(fake))
    message = str(raised.value)
    assert "notes.wav" in message and "not an audio file" in message and "\n" not in message
    with pytest.raises(AudioError, match="notes.wav"):
        extract_clip(str(fake), 0.0, 1.0)


def test_missing_file_and_directory_are_clear_errors(tmp_path):
    with pytest.raises(AudioError, match="absent.ogg.*file not found"):
        decode(str(tmp_path / "absent.ogg"))
    with pytest.raises(AudioError, match="is a directory"):
        decode(str(tmp_path))


def test_source_recording_is_never_modified(sample_copy):
    path = sample_copy("bird_or_fox.ogg")
    before_hash = sha256_file(str(path))
    before_stat = path.stat()
    decode(str(path))
    extract_clip(str(path), 1.0, 3.0, context=0.5)
    sha256_file(str(path))
    after_stat = path.stat()
    assert sha256_file(str(path)) == before_hash
    assert (after_stat.st_size, after_stat.st_mtime_ns) == (before_stat.st_size, before_stat.st_mtime_ns)
    assert sorted(p.name for p in path.parent.iterdir()) == ["bird_or_fox.ogg"]  # nothing written beside it


def _tone_level(signal: np.ndarray, frequency: float) -> float:
    time = np.arange(signal.size) / SAMPLE_RATE
    return abs(np.dot(signal, np.exp(-2j * np.pi * frequency * time))) * 2 / signal.size


def test_clean_radio_removes_hum_keeps_voice_band_and_normalises():
    time = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    voice = 0.2 * np.sin(2 * np.pi * 1000 * time)
    hum = 0.3 * np.sin(2 * np.pi * 50 * time)
    signal = (voice + hum + 0.05).astype(np.float32)  # plus a DC offset
    original = signal.copy()
    cleaned = clean_radio(signal, SAMPLE_RATE, CleanupOptions())
    np.testing.assert_array_equal(signal, original)  # input untouched
    assert cleaned.dtype == np.float32
    assert np.abs(cleaned).max() == pytest.approx(0.9, abs=1e-3)
    middle = slice(SAMPLE_RATE // 2, 3 * SAMPLE_RATE // 2)  # away from filter edges
    assert _tone_level(cleaned[middle], 50) < 0.01 * _tone_level(cleaned[middle], 1000)
    assert abs(np.mean(cleaned[middle])) < 0.01
    # The voice tone now carries the peak (with the hum left in, it could reach only
    # 0.9 * 0.2 / 0.55 = 0.33).
    assert _tone_level(cleaned[middle], 1000) > 0.7


def test_clean_radio_every_step_can_be_turned_off():
    rng = np.random.default_rng(1)
    signal = (0.1 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)
    off = CleanupOptions(highpass_hz=None, lowpass_hz=None, noise_reduction=False, normalize_peak=None)
    np.testing.assert_array_equal(clean_radio(signal, SAMPLE_RATE, off), signal)


def test_clean_radio_noise_reduction_lowers_hiss_between_words():
    rng = np.random.default_rng(2)
    time = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    words = np.sin(2 * np.pi * 700 * time) * ((time % 1.0) < 0.5) * 0.5
    hiss = 0.03 * rng.standard_normal(time.size)
    signal = (words + hiss).astype(np.float32)
    gaps = ((time % 1.0) > 0.6) & ((time % 1.0) < 0.9)
    speech = ((time % 1.0) > 0.1) & ((time % 1.0) < 0.4)
    # Default strength is gentle: hiss down by about a third.
    gentle = CleanupOptions(highpass_hz=None, noise_reduction=True, normalize_peak=None)
    cleaned = clean_radio(signal, SAMPLE_RATE, gentle)
    assert np.std(cleaned[gaps]) < 0.8 * np.std(signal[gaps])
    assert np.std(cleaned[speech]) > 0.95 * np.std(signal[speech])  # words kept
    # Full strength gates the hiss down to the floor gain (0.3).
    full = CleanupOptions(highpass_hz=None, noise_reduction=True, noise_reduction_strength=1.0,
                          normalize_peak=None)
    cleaned = clean_radio(signal, SAMPLE_RATE, full)
    assert np.std(cleaned[gaps]) < 0.45 * np.std(signal[gaps])
    assert np.std(cleaned[speech]) > 0.95 * np.std(signal[speech])


def test_decode_resamples_8khz_to_16khz(tmp_path):
    path = tmp_path / "tone8k.wav"
    rate = 8000
    time = np.arange(rate) / rate
    pcm = (0.5 * np.sin(2 * np.pi * 440 * time) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm.tobytes())
    audio = decode(str(path))
    assert audio.samples.size == SAMPLE_RATE
    assert audio.duration == pytest.approx(1.0)
    assert _tone_level(audio.samples, 440) == pytest.approx(0.5, abs=0.02)
