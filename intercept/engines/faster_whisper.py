"""faster-whisper (CTranslate2) engine: the default, fastest on CPU.

Three ways to decode a recording's transmissions (TranscribeOptions):
  * packed (default, `pack=True`): several short transmissions share one 30 s window
    (intercept/packing.py), so one encoder pass serves all of them;
  * batched (`batch_size > 0`): faster-whisper's BatchedInferencePipeline, one padded
    30 s window per transmission, encoded and decoded in batches;
  * one by one (`pack=False`): each transmission in its own window.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from faster_whisper.transcribe import get_compression_ratio

from ..models import ModelError, error_line
from ..packing import Pack, PackOptions, assign_spans, pack_samples, plan_packs
from ..types import Line, Transmission
from . import TranscribeOptions, resolve_device

SAMPLE_RATE = 16000
# Whisper's decoder holds 448 tokens; the prompt takes a few, and faster-whisper counts
# max_new_tokens on top of them.
_MAX_NEW_TOKENS = 440
# Compute types the CPU probe compares. int8_float32 is what int8 means on CPU, so it is
# not timed twice.
_CPU_CANDIDATES = ("float32", "int8")
_PROBE_CACHE_FILE = "compute_type.json"


def _cpu_identity() -> str:
    """What makes one machine's timings differ from another's: CPU model and core count."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model} x{os.cpu_count()}"


def _probe_key(model_path: str, device: str, cpu_threads: int) -> str:
    import ctranslate2

    weights = Path(model_path) / "model.bin"
    size = weights.stat().st_size if weights.exists() else 0
    raw = f"{_cpu_identity()}|{device}|{cpu_threads}|ctranslate2 {ctranslate2.__version__}|{size}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _time_compute_types(model_path: str, compute_types: Sequence[str], cpu_threads: int,
                        rounds: int = 2) -> dict[str, float]:
    """Seconds, per compute type, for one encoder pass over a 30 s window plus a short beam-5
    decode: the two costs every window pays. Noise features stand in for speech (only speed
    matters). The types are timed in alternation and the best round kept, so that load from
    other processes during the probe hits every type alike."""
    import ctranslate2

    models = {}
    for compute_type in compute_types:
        try:
            models[compute_type] = ctranslate2.models.Whisper(
                str(model_path), device="cpu", compute_type=compute_type, intra_threads=cpu_threads
            )
        except (RuntimeError, ValueError):
            continue
    if not models:
        return {}
    n_mels = next(iter(models.values())).n_mels
    rng = np.random.default_rng(0)
    features = ctranslate2.StorageView.from_array(
        rng.standard_normal((1, n_mels, 3000)).astype(np.float32) * 0.5
    )
    # <|startoftranscript|><|fa|><|transcribe|><|notimestamps|> in the multilingual vocabulary.
    prompt = [[50258, 50300, 50359, 50363]]
    best = {compute_type: float("inf") for compute_type in models}
    for round_ in range(rounds + 1):
        for compute_type, model in models.items():
            started = time.perf_counter()
            model.encode(features)
            model.generate(features, prompt, beam_size=5, max_length=24)
            if round_:  # round 0 warms up allocations and caches
                best[compute_type] = min(best[compute_type], time.perf_counter() - started)
    return best


def choose_compute_type(model_path: str, device: str = "cpu", cpu_threads: int = 0,
                        cache_dir: Optional[Path] = None) -> str:
    """Resolve compute_type "auto".

    CUDA: int8_float16 (int8 weights, float16 activations: the usual fastest on NVIDIA GPUs,
    where the matrix units support both), float16 when the GPU lacks int8.
    CPU: whichever of float32 and int8 runs a 30 s window fastest here, timed once (a few
    seconds) and remembered per machine, thread count, CTranslate2 version and model in
    CACHE/compute_type.json. A rule such as "int8 where the CPU has AVX512-VNNI" does not
    hold: on this project's development machine (AVX2, no VNNI) int8 measured slower than
    float32 on whole runs (147 s vs 102 s on 36 clips) yet faster on short probes, so the
    probe measures on the machine instead of guessing from CPU flags.
    """
    import ctranslate2

    if device != "cpu":
        supported = ctranslate2.get_supported_compute_types(device)
        return "int8_float16" if "int8_float16" in supported else "float16"
    if cache_dir is None:
        from ..models import cache_dir as default_cache_dir

        cache_dir = default_cache_dir()
    cache_file = Path(cache_dir) / _PROBE_CACHE_FILE
    key = _probe_key(model_path, device, cpu_threads)
    try:
        known = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(key), dict) and known[key].get("compute_type") in _CPU_CANDIDATES:
        return known[key]["compute_type"]
    supported = ctranslate2.get_supported_compute_types("cpu")
    timings = _time_compute_types(model_path, [ct for ct in _CPU_CANDIDATES if ct in supported], cpu_threads)
    chosen = min(timings, key=timings.get) if timings else "float32"
    known = known if isinstance(known, dict) else {}
    known[key] = {"compute_type": chosen, "seconds": {k: round(v, 4) for k, v in timings.items()},
                  "cpu": _cpu_identity(), "threads": cpu_threads}
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(known, indent=1), encoding="utf-8")
        os.replace(temporary, cache_file)  # atomic: two processes probing at once cannot tear it
    except OSError:
        pass  # a read-only cache only costs a probe per process
    return chosen


class FasterWhisperEngine:
    name = "faster-whisper"

    def __init__(self, model_path: str, model_name: str, options: TranscribeOptions):
        from faster_whisper import WhisperModel

        self.model_name = model_name
        self.options = options
        self.device = resolve_device(options.device, self.name, "ctranslate2")
        self.compute_type = options.compute_type
        if self.compute_type == "auto":
            self.compute_type = choose_compute_type(str(model_path), self.device, options.cpu_threads)
        try:
            self.model = WhisperModel(
                str(model_path),
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=options.cpu_threads,
            )
            if self.device == "cuda":
                # CTranslate2 opens cuBLAS only at its first matrix product: try one now, so
                # a missing library stops the batch at start with its name.
                list(self.model.transcribe(np.zeros(SAMPLE_RATE, np.float32), language="en",
                                           without_timestamps=True, max_new_tokens=1)[0])
        except (RuntimeError, OSError) as exc:
            if self.device != "cuda":
                raise
            raise ModelError(
                f"--device cuda: faster-whisper cannot run on this GPU ({error_line(exc)}); CTranslate2 "
                f"wheels need CUDA 12 libraries (pip install nvidia-cublas-cu12 'nvidia-cudnn-cu12==9.*', then "
                f"put their lib folders on LD_LIBRARY_PATH), or use --engine openai-whisper/transformers "
                f"with a CUDA build of torch"
            ) from None
        self.pack_options = PackOptions(gap_s=options.pack_gap_s)
        self._batched = None
        self._room: Optional[int] = None

    def _max_new_tokens(self, speech_s: float, pieces: int, task: str) -> int:
        opts = self.options
        rate = opts.tokens_per_second if task == "transcribe" else opts.translate_tokens_per_second
        return min(self._token_room, int(rate * speech_s) + 20 * pieces)

    @property
    def _token_room(self) -> int:
        """New tokens that fit beside the prompt: hotwords or an initial prompt take up to
        223 of Whisper's 448 (faster-whisper refuses a request that does not fit)."""
        if self._room is None:
            prompt_tokens = 0
            for text in (self.options.hotwords, self.options.initial_prompt):
                if text:
                    prompt_tokens += min(223, len(self.model.hf_tokenizer.encode(" " + text.strip()).ids) + 1)
            self._room = max(16, min(_MAX_NEW_TOKENS, 448 - 5 - prompt_tokens))
        return self._room

    def _decode(self, audio: np.ndarray, task: str, max_new_tokens: Optional[int] = None):
        opts = self.options
        if max_new_tokens is None:
            max_new_tokens = self._max_new_tokens(len(audio) / SAMPLE_RATE, 1, task)
        segments = self._generate(audio, task, max_new_tokens)
        threshold = opts.compression_ratio_threshold
        retry = opts.loop_retry_ngram > 0 or opts.loop_retry_penalty != 1.0
        if retry and threshold is not None and _worst_ratio(segments) > threshold:
            # Still a loop after the configured temperatures: once more, deterministically,
            # with repeats forbidden/penalised; kept only when it repeats less.
            again = self._generate(audio, task, max_new_tokens, temperature=[0.0],
                                   no_repeat_ngram_size=opts.loop_retry_ngram,
                                   repetition_penalty=opts.loop_retry_penalty)
            if _worst_ratio(again) < _worst_ratio(segments):
                segments = again
        return segments

    def _settings(self, task: str, max_new_tokens: int) -> dict:
        """faster-whisper's transcribe() arguments from TranscribeOptions."""
        opts = self.options
        return dict(
            language=opts.language,
            task=task,
            beam_size=opts.beam_size,
            temperature=list(opts.temperatures),
            compression_ratio_threshold=opts.compression_ratio_threshold,
            log_prob_threshold=opts.log_prob_threshold,
            no_speech_threshold=opts.no_speech_threshold,
            condition_on_previous_text=opts.condition_on_previous_text,
            initial_prompt=opts.initial_prompt,
            hotwords=opts.hotwords,
            max_new_tokens=max_new_tokens,
            vad_filter=False,  # transmissions are already cut by intercept.segment
        )

    def _generate(self, audio: np.ndarray, task: str, max_new_tokens: int, **overrides):
        settings = self._settings(task, max_new_tokens)
        settings.update(overrides)
        segments, _info = self.model.transcribe(audio, **settings)
        return list(segments)

    def transcribe(
        self, samples: np.ndarray, transmissions: Sequence[Transmission], sample_rate: int = 16000
    ) -> list[Line]:
        """Lines of all `transmissions` (pass them all at once: packing and batching only
        help across transmissions), in recording order."""
        if sample_rate != SAMPLE_RATE:
            raise ValueError("faster-whisper expects 16 kHz samples")
        transmissions = [tx for tx in transmissions if tx.end > tx.start]
        if self.options.batch_size > 0:
            lines = self._transcribe_batched(samples, transmissions)
        elif self.options.pack and self.options.language is not None and len(transmissions) > 1:
            lines = []
            for pack in plan_packs(transmissions, self.pack_options):
                lines.extend(self._transcribe_pack(samples, pack))
        else:
            lines = []
            for tx in transmissions:
                lines.extend(self._transcribe_one(samples, tx))
        lines.sort(key=lambda line: (line.start, line.transmission_idx))
        return lines

    def _transcribe_one(self, samples: np.ndarray, tx: Transmission) -> list[Line]:
        chunk = samples[int(round(tx.start * SAMPLE_RATE)) : int(round(tx.end * SAMPLE_RATE))]
        if len(chunk) == 0:
            return []
        lines = []
        for seg in self._decode(chunk, "transcribe"):
            # Whisper's timestamps can run past the audio it was given; keep every line
            # inside its transmission so playback and ordering stay right.
            start = min(max(tx.start + seg.start, tx.start), tx.end)
            end = min(max(tx.start + seg.end, start), tx.end)
            line = _line(seg, start, end, tx.idx)
            if line:
                lines.append(line)
        return lines

    def _transcribe_pack(self, samples: np.ndarray, pack: Pack) -> list[Line]:
        if len(pack.placements) == 1:
            return self._transcribe_one(samples, pack.placements[0].transmission)
        window = pack_samples(samples, pack, SAMPLE_RATE)
        segments = self._decode(window, "transcribe",
                                self._max_new_tokens(pack.speech_s, len(pack.placements), "transcribe"))
        owners = assign_spans(pack, [(seg.start, seg.end) for seg in segments], self.pack_options)
        # A segment across a gap holds text of two transmissions that cannot be split by
        # time: every transmission it touches is decoded again on its own.
        redo = set()
        for seg, owner in zip(segments, owners):
            if owner is None:
                redo.update(i for i, p in enumerate(pack.placements) if p.offset_s < seg.end and seg.start < p.end_s)
        lines: list[Line] = []
        for seg, owner in zip(segments, owners):
            if owner is None or owner in redo:
                continue
            placement = pack.placements[owner]
            start = placement.to_recording_time(seg.start)
            end = max(placement.to_recording_time(seg.end), start)
            line = _line(seg, start, end, placement.transmission.idx)
            if line:
                # Whisper scores a window, and this window holds several transmissions: one
                # looping transmission would mark all of them, so each line gets the ratio of
                # its own text. The no-speech probability cannot be had per line, and the
                # window's is no measure of any one transmission (0.78 on a pack whose
                # transmissions scored 0.18-0.39 alone, so all were marked "no speech"): unknown.
                line.compression_ratio = get_compression_ratio(line.text)
                line.no_speech_prob = None
                lines.append(line)
        for i in sorted(redo):
            lines.extend(self._transcribe_one(samples, pack.placements[i].transmission))
        return lines

    def _transcribe_batched(self, samples: np.ndarray, transmissions: Sequence[Transmission]) -> list[Line]:
        from faster_whisper import BatchedInferencePipeline

        if not transmissions:
            return []
        if self._batched is None:
            self._batched = BatchedInferencePipeline(self.model)
        opts = self.options
        longest = max(tx.duration for tx in transmissions)
        settings = self._settings("transcribe", self._max_new_tokens(longest, 1, "transcribe"))
        segments, _info = self._batched.transcribe(
            samples,
            clip_timestamps=[{"start": tx.start, "end": tx.end} for tx in transmissions],
            batch_size=opts.batch_size,
            **settings,
        )
        lines = []
        for seg in segments:
            # Each batch row is one transmission; its segment times are recording times.
            overlaps = [min(seg.end, tx.end) - max(seg.start, tx.start) for tx in transmissions]
            tx = transmissions[int(np.argmax(overlaps))]
            start = min(max(seg.start, tx.start), tx.end)
            line = _line(seg, start, min(max(seg.end, start), tx.end), tx.idx)
            if line:
                lines.append(line)
        return lines

    def translate_audio(self, samples: np.ndarray, start: float, end: float, sample_rate: int = 16000) -> str:
        chunk = samples[int(start * sample_rate) : int(end * sample_rate)]
        if len(chunk) == 0:
            return ""
        return " ".join(seg.text.strip() for seg in self._decode(chunk, "translate")).strip()


def _worst_ratio(segments) -> float:
    return max((seg.compression_ratio for seg in segments), default=0.0)


def _line(seg, start: float, end: float, transmission_idx: int) -> Optional[Line]:
    text = seg.text.strip()
    if not text:
        return None
    return Line(
        start=round(start, 3),
        end=round(end, 3),
        text=text,
        transmission_idx=transmission_idx,
        avg_logprob=seg.avg_logprob,
        no_speech_prob=seg.no_speech_prob,
        compression_ratio=seg.compression_ratio,
    )
