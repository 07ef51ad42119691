"""Finding push-to-talk transmissions in a recording's samples.

Two detectors:
  * "silero": the Silero VAD ONNX model that faster-whisper ships (no download), with
    settings fitted to radio audio (see SegmentOptions), run on the radio-cleaned signal;
  * "energy": pydub.silence.detect_nonsilent's rule (_nonsilent_ms). On PTT audio the
    receiver's squelch makes the gaps between transmissions near digital silence while a
    keyed channel always carries hiss, so an energy split finds the keyed intervals (key-up
    to squelch tail) reliably.
  * "auto": Silero, falling back to the energy split when Silero finds no speech at all
    but the channel was clearly keyed (Silero can miss very noisy or odd-sounding voices).

Whatever the detector, the result is post-processed the same way: neighbours closer than
merge_gap_s are merged, spans that hold no signal (below an absolute level floor) or only a
steady one (a tone, hum, DC or an unmodulated carrier: a level that does not move) are
dropped, transmissions longer than max_transmission_s (Whisper's 30 s window) are split at
their quietest internal pause, and times are clamped to the file.

Why the floor and the steadiness check: Silero runs on the peak-normalised signal, and a
"silent" 16-bit file is rarely all zeros (sox and most editors dither: +-1 step, about
-96 dBFS). Normalised, that dither became full-scale white noise in which Silero, at the
low threshold radio needs, heard speech: 10 minutes of it gave a dozen spans, and Whisper
wrote "I'm sorry..." in them. The energy split's threshold is relative to the file's own loud
level, so a constant tone, hum or DC offset (nothing but loud level) was one long keyed span.
Neither detector sees absolute level or steadiness; the post-processing does, for all three.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from intercept.audio import CleanupOptions, clean_radio
from intercept.types import Transmission

METHODS = ("silero", "energy", "auto")

Span = Tuple[float, float]  # (start, end) in seconds


@dataclass
class SegmentOptions:
    """How to cut a recording into transmissions.

    Silero defaults were fitted on the synthetic radio samples in audio_samples/
    (band-passed 300-3400 Hz, compressed, hiss at 10-17 dB SNR, squelch between
    transmissions). Measured there (15 transmissions, 4 files): faster-whisper's default
    VadOptions (threshold 0.5) missed one transmission and started up to 1.9 s late;
    Silero's speech probability on this audio is only ~0.45-0.7 on average, so the
    threshold is lowered to 0.15 with neg_threshold 0.1, which found 15/15 with no false
    transmission in the silences. Running VAD on the cleaned signal (200 Hz high-pass,
    peak normalised) found more than on the raw one (15/15 vs 14/15 at default settings).
    """

    method: str = "silero"  # "silero" | "energy" | "auto"
    # --- Silero (faster_whisper.vad.VadOptions) ---
    threshold: float = 0.15
    neg_threshold: float = 0.1
    min_speech_duration_ms: int = 250  # a one-word call ("received") is ~0.6-1 s
    # Pauses between sentences inside one transmission are shorter than this; the gaps
    # between transmissions (someone releasing and another answering) are longer.
    min_silence_duration_ms: int = 1000
    speech_pad_ms: int = 200
    vad_on_cleaned: bool = True
    # Fit Silero's spans to the keyed intervals the energy split finds: never outside them,
    # and a late start (Silero is often slow on the first word) moved back to the key-up
    # when that is at most snap_start_max_s earlier.
    snap_to_keying: bool = True
    snap_start_max_s: float = 1.0
    # --- energy (pydub.silence.detect_nonsilent) ---
    # Threshold relative to the file's loud level (99.5th percentile of 10 ms frame
    # levels), not absolute dBFS, so that recording gain does not matter.
    silence_thresh: float = -40.0
    min_silence_len: int = 500  # ms
    energy_seek_step: int = 10  # ms; 1 ms steps are 10x slower and no better for PTT
    # --- long recordings ---
    # Silero (through faster-whisper) and the energy split run on blocks of this length,
    # overlapping by block_overlap_s, and the spans found are united: Silero's memory
    # grows with the length it is given (~640 MB per 20 min), blocks keep a multi-hour
    # file's segmentation near one block's worth. The overlap is longer than any
    # transmission, so a transmission cut by one block's edge lies whole in the next.
    block_s: float = 300.0
    block_overlap_s: float = 40.0
    # Blocks segmented at once, in threads (each block alone, so the spans are the same for any
    # number). faster-whisper's Silero session runs on one core, so a recording of several
    # blocks otherwise leaves the others idle while the transcriber waits for its
    # transmissions (the 10-minute session's three blocks: 2.0 s alone). Each running block
    # holds its filtered copy and Silero's working memory (about 200 MB for 300 s).
    workers: int = 2
    # --- shared post-processing ---
    max_transmission_s: float = 28.0
    merge_gap_s: float = 0.3
    # A span is a transmission only if, through the 200 Hz high-pass (no DC, no mains hum), the
    # 90th percentile of its 10 ms frame levels reaches min_level_dbfs (16-bit dither is about
    # -96 dBFS; speech measured in audio_samples/ and ../shared/eval clips -6 to -32 dBFS) and
    # that level moves: the 90th minus the 10th percentile is at least min_level_spread_db
    # (speech rises and falls with its syllables: 11 to 70 dB measured there; a sine, DC or
    # hum ~0 dB, steady hiss ~1-2 dB). None turns a check off.
    min_level_dbfs: Optional[float] = -70.0
    min_level_spread_db: Optional[float] = 3.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"SegmentOptions.method must be one of {METHODS}, got {self.method!r}")
        if not self.max_transmission_s > 1.0:
            raise ValueError(f"SegmentOptions.max_transmission_s must be > 1 s, got {self.max_transmission_s}")
        if self.merge_gap_s < 0:
            raise ValueError(f"SegmentOptions.merge_gap_s must not be negative, got {self.merge_gap_s}")
        if self.workers < 1:
            raise ValueError(f"SegmentOptions.workers must be at least 1, got {self.workers}")
        if not 0 <= self.block_overlap_s < self.block_s:
            raise ValueError(f"SegmentOptions.block_overlap_s must be in [0, block_s={self.block_s}), "
                             f"got {self.block_overlap_s}")


def _filtered(samples: np.ndarray, sample_rate: int, lo: int, hi: int,
              block_s: float = 60.0, margin_s: float = 1.0) -> np.ndarray:
    """samples[lo:hi] through clean_radio's filters (no normalisation), 60 s at a time:
    scipy's filters work in float64, so a whole multi-hour file at once would need several
    float64 copies. The margins hide the filter's edge effects."""
    filter_only = CleanupOptions(normalize_peak=None)
    block = int(block_s * sample_rate)
    margin = int(margin_s * sample_rate)
    out = np.empty(hi - lo, dtype=np.float32)
    for first in range(lo, hi, block):
        last = min(hi, first + block)
        a, b = max(0, first - margin), min(samples.size, last + margin)
        piece = clean_radio(samples[a:b], sample_rate, filter_only)
        out[first - lo : last - lo] = piece[first - a : first - a + (last - first)]
    return out


def _blocks(total: int, sample_rate: int, options: SegmentOptions) -> List[Tuple[int, int]]:
    """[lo, hi) sample ranges of block_s, each overlapping the previous by block_overlap_s."""
    block = max(1, int(options.block_s * sample_rate))
    step = max(1, block - int(options.block_overlap_s * sample_rate))
    ranges, lo = [], 0
    while True:
        hi = min(total, lo + block)
        ranges.append((lo, hi))
        if hi >= total:
            return ranges
        lo += step


def _each_block(work, blocks: List[Tuple[int, int]], workers: int) -> list:
    """work(lo, hi) of each block, in block order, at most `workers` at a time. Threads, as
    scipy's filters and ONNX Runtime let go of the GIL while they compute."""
    if workers <= 1 or len(blocks) <= 1:
        return [work(lo, hi) for lo, hi in blocks]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(blocks)), thread_name_prefix="vad") as pool:
        return list(pool.map(lambda block: work(*block), blocks))


def load_detector(options: SegmentOptions) -> None:
    """Load the VAD model now (it is loaded once per process, on first use, and kept)."""
    if options.method in ("silero", "auto"):
        from faster_whisper.vad import get_vad_model

        get_vad_model()


def silero_spans(samples: np.ndarray, sample_rate: int, options: SegmentOptions) -> List[Span]:
    """Speech spans from Silero VAD (faster-whisper's bundled ONNX model), block by block."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps, get_vad_model

    if sample_rate != 16000:
        raise ValueError(f"Silero VAD here expects 16 kHz samples, got {sample_rate} Hz")
    vad_options = VadOptions(
        threshold=options.threshold,
        neg_threshold=options.neg_threshold,
        min_speech_duration_ms=options.min_speech_duration_ms,
        min_silence_duration_ms=options.min_silence_duration_ms,
        speech_pad_ms=options.speech_pad_ms,
    )
    blocks = _blocks(samples.size, sample_rate, options)
    gain = 1.0
    if options.vad_on_cleaned:
        # clean_radio's peak normalisation is over the whole file: one pass for the peak,
        # then each block is filtered again (cheap next to the VAD) rather than keeping a
        # cleaned copy of the whole recording in memory.
        peak = max(_each_block(lambda lo, hi: float(np.max(np.abs(_filtered(samples, sample_rate, lo, hi)))),
                               [(lo, hi) for lo, hi in blocks if hi > lo], options.workers), default=0.0)
        if options.min_level_dbfs is not None and peak < 10.0 ** (options.min_level_dbfs / 20.0):
            return []  # nothing in the file reaches the floor: normalising would only amplify dither
        target = CleanupOptions().normalize_peak
        gain = target / peak if peak > 1e-6 and target else 1.0

    def speech(lo: int, hi: int) -> List[Span]:
        if options.vad_on_cleaned:
            signal = _filtered(samples, sample_rate, lo, hi)
            signal *= gain
        else:
            signal = np.ascontiguousarray(samples[lo:hi], dtype=np.float32)
        return [((lo + chunk["start"]) / sample_rate, (lo + chunk["end"]) / sample_rate)
                for chunk in get_speech_timestamps(signal, vad_options, sample_rate)]

    get_vad_model()  # loaded once, before the threads share it
    spans = [span for found in _each_block(speech, blocks, options.workers) for span in found]
    # Blocks overlap: a transmission seen by two blocks (whole in one, cut in the other) is
    # united into one span.
    return _merge(spans, 0.0)


def _pcm16(samples: np.ndarray) -> np.ndarray:
    """The 16-bit samples pydub would hold for `samples`."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")


def _nonsilent_ms(pcm: np.ndarray, sample_rate: int, min_silence_len: int, silence_thresh_db: float,
                  seek_step: int) -> List[List[int]]:
    """pydub.silence.detect_nonsilent on 16-bit mono samples, the same ranges (tests compare
    the two), with every window's RMS taken from one running sum of squares. pydub slices
    each window and calls audioop.rms on it, one call per seek step: 60,000 windows of 0.5 s
    for 10 minutes at 10 ms steps, 1.0 of the 16 s intercept spent on the real-speech session."""
    per_ms = sample_rate / 1000.0
    length_ms = round(pcm.size / per_ms)  # AudioSegment.__len__
    if length_ms < min_silence_len:
        return [[0, length_ms]]  # detect_silence finds nothing that short
    # pydub: silent when the window's audioop.rms, floor(sqrt(mean square)), is at most this.
    threshold = 10.0 ** (silence_thresh_db / 20.0) * 32768.0
    last_start = length_ms - min_silence_len
    starts = np.arange(0, last_start + 1, seek_step, dtype=np.int64)
    if last_start % seek_step:
        starts = np.append(starts, last_start)
    lo = (starts * per_ms).astype(np.int64)  # AudioSegment._parse_position: int(ms * rate / 1000)
    hi = np.minimum(((starts + min_silence_len) * per_ms).astype(np.int64), pcm.size)
    squares = np.zeros(pcm.size + 1, dtype=np.int64)  # exact: at most 2**30 per sample
    np.cumsum(pcm.astype(np.int64) ** 2, out=squares[1:])
    counts = hi - lo
    rms = np.floor(np.sqrt((squares[hi] - squares[lo]) / np.maximum(counts, 1)))
    rms[counts == 0] = 0.0
    silent = starts[rms <= threshold]
    if silent.size == 0:
        return [[0, length_ms]]
    # detect_silence's joining: a start not one step on from the previous one, and past the
    # end of its window, begins a new silent range.
    steps = np.diff(silent)
    breaks = np.flatnonzero((steps != seek_step) & (steps > min_silence_len))
    silences = zip(silent[np.r_[0, breaks + 1]].tolist(), (silent[np.r_[breaks, silent.size - 1]] + min_silence_len).tolist())
    silences = [list(r) for r in silences]
    if silences[0] == [0, length_ms]:
        return []
    nonsilent, previous_end = [], 0
    for start, end in silences:
        nonsilent.append([previous_end, start])
        previous_end = end
    if silences[-1][1] != length_ms:
        nonsilent.append([previous_end, length_ms])
    if nonsilent[0] == [0, 0]:
        nonsilent.pop(0)
    return nonsilent


def _frame_levels_db(samples: np.ndarray, sample_rate: int, frame_s: float = 0.01) -> np.ndarray:
    frame = max(1, int(frame_s * sample_rate))
    usable = samples[: (samples.size // frame) * frame]
    if usable.size == 0:
        return np.array([])
    frames = usable.reshape(-1, frame)
    rms = np.empty(frames.shape[0], dtype=np.float64)
    # float32 squares, float64 accumulation, a minute of frames at a time: a whole 2 h file
    # at once would make a 460 MB temporary array of squares.
    step = max(1, int(60.0 / frame_s))
    for first in range(0, frames.shape[0], step):
        rms[first : first + step] = np.mean(np.square(frames[first : first + step]), axis=1, dtype=np.float64)
    np.sqrt(rms, out=rms)
    return 20.0 * np.log10(np.maximum(rms, 1e-10))


def energy_spans(samples: np.ndarray, sample_rate: int, options: SegmentOptions) -> List[Span]:
    """Keyed intervals from an energy split (pydub.silence.detect_nonsilent's, _nonsilent_ms)."""
    levels = _frame_levels_db(samples, sample_rate)
    if levels.size == 0:
        return []
    reference_db = float(np.percentile(levels, 99.5))
    if reference_db <= -90.0:  # digital silence throughout
        return []
    threshold_db = reference_db + options.silence_thresh
    spans: List[Span] = []
    # Block by block (each block's 16-bit copy and running sums), united as in Silero.
    for lo, hi in _blocks(samples.size, sample_rate, options):
        ranges = _nonsilent_ms(_pcm16(samples[lo:hi]), sample_rate, options.min_silence_len, threshold_db,
                               options.energy_seek_step)
        spans.extend((lo / sample_rate + a / 1000.0, lo / sample_rate + b / 1000.0) for a, b in ranges)
    spans = _merge(spans, 0.0)
    min_len_s = options.min_speech_duration_ms / 1000.0
    # A lone key click (a few ms) is not a transmission.
    return [span for span in spans if span[1] - span[0] >= min_len_s]


def _snap_to_keying(speech: List[Span], keyed: List[Span], max_shift_s: float) -> List[Span]:
    """Fit Silero's spans to the keyed intervals: a transmission cannot start before the
    key-up or run on into the squelched silence after release (Silero's padding does), and
    Silero's late starts on a first word are moved back to the key-up when it is near."""
    snapped: List[Span] = []
    for start, end in speech:
        previous_end = snapped[-1][1] if snapped else 0.0
        overlapping = [span for span in keyed if span[0] < end and span[1] > start]
        if overlapping:
            keyed_start = overlapping[0][0]
            keyed_end = overlapping[-1][1]
            if keyed_start < start and start - keyed_start <= max_shift_s:
                # Two transmissions in one keyed interval: do not run back into the first.
                start = max(keyed_start, previous_end)
            elif keyed_start > start:
                start = keyed_start
            end = min(end, keyed_end)
        snapped.append((start, end))
    return snapped


def _merge(spans: List[Span], gap_s: float) -> List[Span]:
    merged: List[List[float]] = []
    for start, end in sorted(spans):
        if merged and start - merged[-1][1] <= gap_s:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def _split_long(span: Span, samples: np.ndarray, sample_rate: int, max_s: float) -> List[Span]:
    """Split a span longer than max_s at the quietest point (smoothed energy) that keeps
    the first piece within max_s and not shorter than a third of it, repeatedly."""
    pieces = []
    start, end = span
    smoothing_frames = 20  # 10 ms frames -> 200 ms window: a pause, not a plosive gap
    while end - start > max_s:
        low = start + max_s / 3.0
        high = start + max_s
        first = int(low * sample_rate)
        last = int(high * sample_rate)
        levels = _frame_levels_db(samples[first:last], sample_rate)
        if levels.size > smoothing_frames:
            smoothed = np.convolve(levels, np.ones(smoothing_frames) / smoothing_frames, mode="valid")
            cut = low + (int(np.argmin(smoothed)) + smoothing_frames / 2.0) * 0.01
        else:
            cut = high
        cut = min(max(cut, low), high)
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces


def span_level_db(samples: np.ndarray, sample_rate: int, span: Span) -> Optional[Tuple[float, float]]:
    """(loud level, spread) of a span in dB: the 90th percentile of its 10 ms frame levels
    through clean_radio's filters (dBFS), and that minus the 10th percentile. None when the
    span is shorter than two frames."""
    lo, hi = max(0, int(span[0] * sample_rate)), min(samples.size, int(span[1] * sample_rate))
    # A 0.25 s margin hides the high-pass's edge (its impulse response dies out in ~20 ms).
    levels = (_frame_levels_db(_filtered(samples, sample_rate, lo, hi, margin_s=0.25), sample_rate) if hi > lo
              else np.array([]))
    if levels.size < 2:
        return None
    loud, quiet = np.percentile(levels, [90, 10])
    return float(loud), float(loud - quiet)


def holds_signal(samples: np.ndarray, sample_rate: int, span: Span, options: SegmentOptions) -> bool:
    """False for a span of silence (below options.min_level_dbfs) or of a steady tone, hum or
    carrier (level spread below options.min_level_spread_db); see SegmentOptions."""
    if options.min_level_dbfs is None and options.min_level_spread_db is None:
        return True
    measured = span_level_db(samples, sample_rate, span)
    if measured is None:
        return True  # too short to judge; the detectors' own minimum length applies
    loud, spread = measured
    if options.min_level_dbfs is not None and loud < options.min_level_dbfs:
        return False
    return options.min_level_spread_db is None or spread >= options.min_level_spread_db


def find_transmissions(
    samples: np.ndarray, sample_rate: int = 16000, options: Optional[SegmentOptions] = None
) -> List[Transmission]:
    """Transmissions in `samples` (mono float32), as seconds from the start of `samples`:
    sorted, non-overlapping, inside [0, duration], numbered 0..n-1."""
    options = options or SegmentOptions()
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"find_transmissions expects mono samples (1-D), got shape {samples.shape}")
    duration = samples.size / float(sample_rate)
    if samples.size == 0:
        return []

    if options.method == "energy":
        spans = energy_spans(samples, sample_rate, options)
    else:
        spans = silero_spans(samples, sample_rate, options)
        if spans and options.snap_to_keying:
            keyed = energy_spans(samples, sample_rate, options)
            spans = _snap_to_keying(spans, keyed, options.snap_start_max_s)
        if not spans and options.method == "auto":
            spans = energy_spans(samples, sample_rate, options)

    spans = [(max(0.0, start), min(duration, end)) for start, end in spans]
    spans = _merge([span for span in spans if span[1] > span[0]], options.merge_gap_s)
    spans = [span for span in spans if holds_signal(samples, sample_rate, span, options)]
    result: List[Span] = []
    for span in spans:
        result.extend(_split_long(span, samples, sample_rate, options.max_transmission_s))
    return [
        Transmission(idx=index, start=round(start, 3), end=min(round(end, 3), duration))
        for index, (start, end) in enumerate(result)
    ]
