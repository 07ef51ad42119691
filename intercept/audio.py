"""Reading recordings: decoding to 16 kHz mono float32, hashing, radio clean-up, and
cutting clips for playback.

Source recordings are evidence: every function here opens them read-only and none writes
next to them. Decoding goes through ffmpeg (the same tool pydub drives), so anything ffmpeg
reads is accepted.
"""
from __future__ import annotations

import hashlib
import io
import math
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

SAMPLE_RATE = 16000

# ffmpeg writes 16-bit little-endian PCM to its stdout; we read it in blocks of this size.
_PIPE_BLOCK_BYTES = 1 << 20


class AudioError(Exception):
    """A recording could not be read. The message names the file and the reason in one line."""

    def __init__(self, path: str, reason: str, action: str = "decode recording"):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot {action} '{self.path}': {reason}")


@dataclass
class Audio:
    """A decoded recording."""

    path: str
    samples: np.ndarray  # float32, mono, sample_rate Hz, in [-1, 1]
    duration: float  # seconds
    format: str  # container and codec as ffprobe names them, e.g. "mp3", "wav pcm_s16le"
    sample_rate: int = SAMPLE_RATE
    # The container's and streams' tags (creation_time, date...), read by the same ffprobe
    # call, so that the recording time needs no second one (intercept.recorded_at).
    tags: dict = field(default_factory=dict)


def sha256_file(path: str, block_bytes: int = 1 << 20) -> str:
    """SHA-256 of a file, streamed so that multi-hour recordings are not held in memory."""
    _check_readable(path, action="hash recording")
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(block_bytes), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_readable(path: str, action: str = "decode recording") -> None:
    """Fail early, with a plain reason, before ffmpeg prints something cryptic."""
    if not os.path.exists(path):
        raise AudioError(path, "file not found", action)
    if os.path.isdir(path):
        raise AudioError(path, "is a directory, not a recording", action)
    if not os.access(path, os.R_OK):
        raise AudioError(path, "permission denied (file is not readable)", action)
    if os.path.getsize(path) == 0:
        raise AudioError(path, "empty file (0 bytes)", action)


def _require_tool(name: str, path: str, action: str) -> str:
    tool = shutil.which(name)
    if tool is None:
        raise AudioError(path, f"{name} is not installed (install ffmpeg)", action)
    return tool


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _probe(path: str) -> tuple[dict, list[dict]]:
    """ffprobe's information on a file and its audio streams, through pydub's wrapper
    (pydub.utils.mediainfo_json). Raises AudioError when it has no audio stream."""
    from pydub.utils import mediainfo_json

    _check_readable(path)
    _require_tool("ffprobe", path, "decode recording")
    try:
        info = mediainfo_json(path)
    except Exception as error:  # pydub raises bare Exceptions / JSON errors on garbage
        raise AudioError(path, f"truncated or not an audio file (ffprobe: {error})") from error
    audio_streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if not audio_streams:
        raise AudioError(path, "truncated or not an audio file (ffprobe found no audio stream)")
    return info, audio_streams


def probe_format(path: str) -> str:
    """Container and audio codec, e.g. "mp3", "ogg opus", "wav pcm_s16le"."""
    return _format_name(*_probe(path))


def container_tags(info: dict) -> dict:
    """Tags of an ffprobe answer: the container's, then each stream's where the container has
    none of that name."""
    tags = dict(info.get("format", {}).get("tags") or {})
    for stream in info.get("streams", []):
        for key, value in (stream.get("tags") or {}).items():
            tags.setdefault(key, value)
    return tags


def _format_name(info: dict, audio_streams: list[dict]) -> str:
    container = str(info.get("format", {}).get("format_name", "unknown"))
    codec = str(audio_streams[0].get("codec_name", "unknown"))
    return container if codec == container else f"{container} {codec}"


def _ffmpeg_pcm16(
    path: str,
    sample_rate: int,
    action: str,
    start: Optional[float] = None,
    duration: Optional[float] = None,
    as_float32: bool = False,
) -> np.ndarray:
    """Run ffmpeg and return its mono 16-bit PCM output as int16 samples (or, with
    as_float32, as float32 in [-1, 1], converted block by block so that no full-length int16
    copy exists beside the float32 result: 230 MB less at the peak for a 2 h recording).

    Why a subprocess rather than pydub.AudioSegment: pydub keeps the whole file as raw bytes
    at its native rate and channel count, then copies on every conversion; a 2 h stereo
    44.1 kHz file would need several GB. ffmpeg resamples and downmixes while streaming,
    so we hold only the 16 kHz mono result (this is also what faster-whisper does).
    """
    ffmpeg = _require_tool("ffmpeg", path, action)
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    if start is not None and start > 0:
        command += ["-ss", f"{start:.6f}"]
    command += ["-i", path]
    if duration is not None:
        command += ["-t", f"{duration:.6f}"]
    command += ["-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "s16le", "-"]
    # stderr goes to a temporary file: a damaged file can make ffmpeg print one error per
    # frame, and a full stderr pipe would block it while we read stdout.
    with tempfile.TemporaryFile() as stderr_file:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr_file
        )
        blocks = []
        assert process.stdout is not None
        with process.stdout:
            for block in iter(lambda: process.stdout.read(_PIPE_BLOCK_BYTES), b""):
                blocks.append(block)
        returncode = process.wait()
        size = stderr_file.seek(0, os.SEEK_END)
        stderr_file.seek(max(0, size - 4096))
        stderr = stderr_file.read()
    if returncode != 0:
        raise AudioError(path, f"truncated or not an audio file (ffmpeg: {_last_line(stderr)})", action)
    total_bytes = sum(len(b) for b in blocks)
    pcm = np.empty(total_bytes // 2, dtype=np.float32 if as_float32 else np.int16)
    offset = 0
    # Fill one preallocated array block by block, releasing each block as we go, so peak
    # memory stays near the size of the pipe's bytes plus the result.
    blocks.reverse()  # pop() from the end: popping from the front of a long list is quadratic
    carry = b""
    while blocks:
        block = carry + blocks.pop()
        usable = len(block) - (len(block) % 2)
        carry = block[usable:]  # pipe reads may split a sample
        count = usable // 2
        values = np.frombuffer(block[:usable], dtype="<i2")
        if as_float32:
            np.multiply(values, 1.0 / 32768.0, out=pcm[offset : offset + count], casting="unsafe")
        else:
            pcm[offset : offset + count] = values
        offset += count
    return pcm[:offset]


def decode(path: str, sample_rate: int = SAMPLE_RATE) -> Audio:
    """Decode any recording ffmpeg can read into mono float32 samples at `sample_rate`.

    Raises AudioError (naming the file and the reason) for missing, unreadable, empty,
    undecodable or zero-length recordings.
    """
    path = os.fspath(path)
    info, audio_streams = _probe(path)
    samples = _ffmpeg_pcm16(path, sample_rate, action="decode recording", as_float32=True)
    if samples.size == 0:
        raise AudioError(path, "contains no audio samples (zero length)")
    return Audio(
        path=path,
        samples=samples,
        duration=samples.size / float(sample_rate),
        format=_format_name(info, audio_streams),
        sample_rate=sample_rate,
        tags=container_tags(info),
    )


@dataclass
class CleanupOptions:
    """Conservative clean-up of narrowband push-to-talk audio before VAD / recognition.

    Every step can be turned off by setting it to None/False.
    """

    # Radio voice lives in ~300-3400 Hz; below ~200 Hz there is only hum, DC and
    # handling thumps, which waste the recogniser's attention.
    highpass_hz: Optional[float] = 200.0
    highpass_order: int = 4
    # Off by default: a low-pass adds nothing to audio the radio already band-limited.
    lowpass_hz: Optional[float] = None
    # Spectral gating against steady hiss. Off by default because any noise reduction can
    # smear consonants; when on, it only attenuates (never below noise_floor_gain).
    noise_reduction: bool = False
    noise_reduction_strength: float = 0.5  # 0 = nothing, 1 = full gate down to the floor gain
    noise_floor_gain: float = 0.3  # the most a time-frequency bin is attenuated (linear gain)
    # Peak normalisation target (linear, <= 1.0); quiet recordings get louder, loud ones
    # are never amplified into clipping.
    normalize_peak: Optional[float] = 0.9


def _spectral_gate(samples: np.ndarray, sample_rate: int, options: CleanupOptions) -> np.ndarray:
    """Gentle stationary-noise spectral gate.

    Written here rather than using the noisereduce package because noisereduce pulls in
    matplotlib and numpy 2, which conflicts with the numpy pin hazm needs. The method is
    the same idea: estimate per-frequency noise from the quietest frames, then attenuate
    bins that do not rise clearly above it.
    """
    from scipy.signal import istft, stft

    nperseg = 512 if sample_rate >= 16000 else 256
    if samples.size < nperseg * 2:
        return samples
    _, _, spectrum = stft(samples, fs=sample_rate, nperseg=nperseg)
    magnitude = np.abs(spectrum)
    frame_energy = magnitude.mean(axis=0)
    # Noise profile: the 20% quietest frames while keyed (squelch silence is near zero and
    # would underestimate hiss, so frames that are essentially digital silence are skipped).
    audible = frame_energy > (frame_energy.max() * 1e-4 if frame_energy.max() > 0 else 0)
    if audible.sum() < 4:
        return samples
    candidate = magnitude[:, audible]
    order = np.argsort(candidate.mean(axis=0))
    quiet = candidate[:, order[: max(2, int(0.2 * order.size))]]
    noise_mean = quiet.mean(axis=1, keepdims=True)
    noise_std = quiet.std(axis=1, keepdims=True)
    threshold = noise_mean + 1.5 * noise_std
    mask = (magnitude > threshold).astype(np.float32)
    # Smooth the mask over time and frequency so the gate does not produce musical noise.
    from scipy.ndimage import uniform_filter

    mask = uniform_filter(mask, size=(3, 5))
    floor = options.noise_floor_gain
    gain = floor + (1.0 - floor) * mask
    strength = float(np.clip(options.noise_reduction_strength, 0.0, 1.0))
    gain = 1.0 - strength * (1.0 - gain)
    _, cleaned = istft(spectrum * gain, fs=sample_rate, nperseg=nperseg)
    cleaned = cleaned[: samples.size]
    if cleaned.size < samples.size:
        cleaned = np.pad(cleaned, (0, samples.size - cleaned.size))
    return cleaned.astype(np.float32)


def _filter_in_blocks(samples: np.ndarray, out: np.ndarray, sos_filters: list, block: int, margin: int) -> None:
    """out[:] = every sos filter applied forwards and backwards (sosfiltfilt) to samples,
    one block at a time with margins on both sides that hide the filters' edge effects.

    Why blocks: scipy filters in float64 and pads, so a whole 2 h recording at once needs
    several GB; a block needs a few MB. `out` may be `samples` itself: each block's input is
    read before the previous block's result is written back, and blocks are longer than
    the margins, so no block reads output in place of input."""
    from scipy.signal import sosfiltfilt

    pending = None  # (first, last, filtered) not yet written
    for first in range(0, samples.size, block):
        last = min(samples.size, first + block)
        lo, hi = max(0, first - margin), min(samples.size, last + margin)
        piece = np.asarray(samples[lo:hi], dtype=np.float64)
        for sos in sos_filters:
            piece = sosfiltfilt(sos, piece)
        if pending is not None:
            out[pending[0] : pending[1]] = pending[2]
        pending = (first, last, piece[first - lo : first - lo + (last - first)].astype(np.float32))
    if pending is not None:
        out[pending[0] : pending[1]] = pending[2]


def clean_radio(
    samples: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    options: Optional[CleanupOptions] = None,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Return a cleaned copy of `samples` (float32 mono); the input is not modified.

    out: where to write the result instead of a new array (float32, same length); pass the
    input itself to clean a long recording in place, without a second full-length copy.
    Filters run block by block (1 min), so memory stays near the size of the samples.
    """
    from scipy.signal import butter

    options = options or CleanupOptions()
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"clean_radio expects mono samples (1-D), got shape {samples.shape}")
    if out is None:
        cleaned = samples.astype(np.float32, copy=True)
    else:
        if out.dtype != np.float32 or out.shape != samples.shape:
            raise ValueError(f"clean_radio: out must be float32 of shape {samples.shape}, got {out.dtype} {out.shape}")
        cleaned = out
        if cleaned is not samples:
            cleaned[:] = samples
    if cleaned.size == 0:
        return cleaned
    nyquist = sample_rate / 2.0
    min_filter_samples = 64  # sosfiltfilt needs some signal to pad against
    filters = []
    if options.highpass_hz and 0 < options.highpass_hz < nyquist and cleaned.size > min_filter_samples:
        filters.append(butter(options.highpass_order, options.highpass_hz, btype="highpass", fs=sample_rate,
                              output="sos"))
    if options.lowpass_hz and 0 < options.lowpass_hz < nyquist and cleaned.size > min_filter_samples:
        filters.append(butter(4, options.lowpass_hz, btype="lowpass", fs=sample_rate, output="sos"))
    if filters:
        _filter_in_blocks(cleaned, cleaned, filters, block=60 * sample_rate, margin=sample_rate)
    if options.noise_reduction:
        # The spectral gate needs the whole file's noise profile: not block-wise (off by default).
        cleaned[:] = _spectral_gate(cleaned, sample_rate, options)
    if options.normalize_peak:
        # max and -min rather than max(abs(x)): no full-length temporary array.
        peak = max(float(cleaned.max()), -float(cleaned.min()))
        if peak > 1e-6:
            cleaned *= options.normalize_peak / peak
    np.clip(cleaned, -1.0, 1.0, out=cleaned)
    return cleaned


def wav_bytes(samples_int16: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM mono WAV file contents."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(np.asarray(samples_int16, dtype="<i2").tobytes())
    return buffer.getvalue()


def extract_clip(
    path: str, start: float, end: float, context: float = 0.0, sample_rate: int = SAMPLE_RATE
) -> bytes:
    """WAV bytes (16-bit PCM mono, `sample_rate` Hz) of [start - context, end + context],
    clamped to the recording, for playback in the review UI.

    Only that range is decoded (ffmpeg seeks), so clips from multi-hour files are quick.
    Raises AudioError for a bad file, a range that is empty, or one that lies past the end.
    """
    path = os.fspath(path)
    action = "extract clip from recording"
    for name, value in (("start", start), ("end", end), ("context", context)):
        if value is None or not math.isfinite(float(value)):
            raise AudioError(path, f"{name} must be a finite number of seconds, got {value!r}", action)
    if context < 0:
        raise AudioError(path, f"context must not be negative, got {context}", action)
    if end <= start:
        raise AudioError(path, f"empty range: end {end:.3f}s is not after start {start:.3f}s", action)
    _check_readable(path, action)
    clip_start = max(0.0, float(start) - float(context))
    clip_end = float(end) + float(context)
    if clip_end <= clip_start:
        raise AudioError(path, f"empty range: [{start:.3f}s, {end:.3f}s] ends before the recording starts", action)
    wanted = int(round((clip_end - clip_start) * sample_rate))
    # ffmpeg stops at the end of the file, which clamps the range to the recording.
    pcm = _ffmpeg_pcm16(path, sample_rate, action, start=clip_start, duration=clip_end - clip_start)
    if pcm.size == 0:
        raise AudioError(path, f"empty range: {clip_start:.3f}s lies at or after the end of the recording", action)
    return wav_bytes(pcm[:wanted], sample_rate)


def probe_sample_rate(path: str) -> int:
    """The sample rate of a recording's first audio stream."""
    _, audio_streams = _probe(path)
    if str(audio_streams[0].get("sample_rate", "")).isdigit():
        return int(audio_streams[0]["sample_rate"])
    raise AudioError(path, "truncated or not an audio file (ffprobe found no audio stream with a sample rate)")


def wav_samples(data: bytes) -> tuple[np.ndarray, int]:
    """(int16 mono samples, sample rate) of 16-bit PCM mono WAV bytes (as wav_bytes writes)."""
    with wave.open(io.BytesIO(data)) as reader:
        if reader.getsampwidth() != 2 or reader.getnchannels() != 1:
            raise ValueError("not a 16-bit mono WAV")
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2"), reader.getframerate()
