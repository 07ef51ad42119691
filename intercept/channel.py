"""The project's simulated radio channel: one keyed push-to-talk transmission.

Band-limited to the radio's audio band (300-3400 Hz), compressed and soft-clipped by the
transmitter, band-limited hiss at a signal-to-noise ratio with slow fading, a key-up and
key-down click and a squelch tail. scripts/make_samples.py builds audio_samples/ with it, and
`intercept adapt --augment-radio` (intercept/adapt.py) puts training speech through it so that
an adapted model learns the channel and not only the voices.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

SAMPLE_RATE = 16000
# The hiss levels of audio_samples/ (make_samples' utterances run from 10 to 26 dB).
SNR_RANGE_DB = (10.0, 26.0)


def band_noise(rng: np.random.Generator, count: int, low_hz=300.0, high_hz=3400.0,
               sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    sos = butter(4, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    noise = sosfilt(sos, rng.standard_normal(count))
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def click(rng: np.random.Generator, amplitude: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A key-up/key-down transient: a few ms of decaying broadband impulse."""
    length = int(0.006 * sample_rate)
    envelope = np.exp(-np.arange(length) / (0.0012 * sample_rate))
    return amplitude * envelope * np.sign(rng.standard_normal(length))


def radio_transmission(speech: np.ndarray, snr_db: float, rng: np.random.Generator,
                       sample_rate: int = SAMPLE_RATE):
    """One keyed transmission of `speech`. Returns (audio, speech_offset_in_audio, speech_length)."""
    from scipy.signal import butter, sosfilt

    speech_band = butter(4, [300.0, 3400.0], btype="bandpass", fs=sample_rate, output="sos")
    voiced = sosfilt(speech_band, speech)
    voiced = voiced / (np.max(np.abs(voiced)) + 1e-12) * 0.7
    # Transmitter compression and over-deviation clipping.
    drive = rng.uniform(2.0, 3.5)
    voiced = np.tanh(drive * voiced) / np.tanh(drive) * 0.7

    pre_roll = int(rng.uniform(0.2, 0.4) * sample_rate)  # keyed before the speaker starts
    post_roll = int(rng.uniform(0.1, 0.2) * sample_rate)  # keyed after the last word
    keyed_len = pre_roll + voiced.size + post_roll
    speech_rms = np.sqrt(np.mean(voiced ** 2))
    hiss_rms = speech_rms / (10 ** (snr_db / 20.0))
    keyed = band_noise(rng, keyed_len, sample_rate=sample_rate) * hiss_rms
    # Slow fading of the hiss level, as on a real link.
    fade = 1.0 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * np.arange(keyed_len) / sample_rate)
    keyed *= fade
    keyed[pre_roll: pre_roll + voiced.size] += voiced

    squelch_len = int(rng.uniform(0.1, 0.2) * sample_rate)
    # The squelch tail is wideband and louder than the keyed hiss, decaying quickly.
    squelch = rng.standard_normal(squelch_len) * hiss_rms * 3.0
    squelch *= np.linspace(1.0, 0.2, squelch_len)

    up = click(rng, 0.5, sample_rate)
    down = click(rng, 0.4, sample_rate)
    audio = np.concatenate([up, keyed, down, squelch])
    return audio, up.size + pre_roll, voiced.size


def through_radio(samples: np.ndarray, rng: np.random.Generator, snr_db: Optional[float] = None,
                  sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """`samples` (float, [-1, 1]) as received over the channel, float32; the hiss level is
    drawn from SNR_RANGE_DB when not given. Silent input comes back unchanged."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size == 0 or not np.any(samples):
        return samples.astype(np.float32)
    if snr_db is None:
        snr_db = float(rng.uniform(*SNR_RANGE_DB))
    audio, _, _ = radio_transmission(samples, snr_db, rng, sample_rate)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)
