"""faster-whisper (CTranslate2) engine: the default, fastest on CPU.

The decoding policy (token caps, loop retry, packing, clamping, evidence) is
intercept.engines.core's; this module adapts faster-whisper's calls to it. Three ways to decode a recording's transmissions (TranscribeOptions):
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
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Optional, Sequence

from contextlib import contextmanager

import numpy as np

from ..models import ModelError, error_line
from ..types import Line, Transmission, Word
from .base import TranscribeOptions, batch_for, beam_for, pack_options_for, resolve_device
from .core import (MAX_NEW_TOKENS, SAMPLE_RATE, Candidate, Decoded, Decoder, DecoderMethods, Segment, ban_spans,
                   wants_alternatives)
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


def workers_for(options: TranscribeOptions, device: str) -> tuple[int, int]:
    """(CTranslate2 workers, threads each) of these options (cpu_workers): with two or more,
    the threads are split between them and _Batching splits each batched call between them (a
    worker shares the model's weights, not a copy). One by default: on 2 cores two workers made
    the real-speech session 0.95x as long but a recording of one window (or the acoustic check,
    or a loop retried alone) runs on half the threads, 1.25x as long on 40 short clips
    (docs/benchmarks.md, issue 25)."""
    if device != "cpu" or options.cpu_workers <= 1:
        return 1, options.cpu_threads
    threads = options.cpu_threads
    if threads <= 0:  # CTranslate2's default: OMP_NUM_THREADS (a Ray worker's CPUs), else every core
        try:
            threads = int(os.environ.get("OMP_NUM_THREADS", ""))
        except ValueError:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, min(options.cpu_workers, threads))
    if workers == 1:
        return 1, options.cpu_threads
    return workers, max(1, threads // workers)


def _check_translate_compute_type(wanted: str, device: str) -> None:
    """A translate_compute_type this device cannot run stops the batch at start, not at its
    first translate call (the second model is loaded there)."""
    if wanted in ("same", "auto"):
        return
    import ctranslate2

    supported = ctranslate2.get_supported_compute_types(device)
    if wanted not in supported:
        raise ModelError(f"translate_compute_type {wanted!r}: CTranslate2 cannot run it on {device} "
                         f"(it can run {', '.join(sorted(supported))}; or same, auto)")


class FasterWhisperEngine(DecoderMethods):
    name = "faster-whisper"
    packs = True  # core.WindowModel
    stops_early = True  # core.WindowModel: transcribe() yields its segments lazily

    def __init__(self, model_path: str, model_name: str, options: TranscribeOptions):
        from faster_whisper import WhisperModel

        self.model_name = model_name
        self.options = options
        self.device = resolve_device(options.device, self.name, "ctranslate2")
        self.compute_type = options.compute_type
        if self.compute_type == "auto":
            self.compute_type = choose_compute_type(str(model_path), self.device, options.cpu_threads)
        self.model_path = str(model_path)
        _check_translate_compute_type(options.translate_compute_type, self.device)
        self.workers, self.threads = workers_for(options, self.device)
        self._translate_models: dict = {}  # compute type -> CTranslate2 model (translate_model)
        self._loading = threading.Lock()
        self._resolved: dict = {}  # translate_compute_type "auto" -> the probe's choice
        try:
            self.model = WhisperModel(
                str(model_path),
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=self.threads,
                num_workers=self.workers,
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
        self.pack_options = pack_options_for(options)
        self._batched = None
        self._room: Optional[int] = None
        self._batching = _Batching(self.model.model, keep=max(batch_for(options, "transcribe"),
                                                               batch_for(options, "translate")),
                                   workers=self.workers,
                                   encode_frames=lambda: self.options.encode_batch_frames)
        self.model.model = self._batching
        self._evidence = _Evidence.attach(self.model)

    @property
    def token_room(self) -> int:
        """New tokens that fit beside the prompt: hotwords or an initial prompt take up to
        223 of Whisper's 448 (faster-whisper refuses a request that does not fit)."""
        if self._room is None:
            prompt_tokens = 0
            for text in (self.options.hotwords, self.options.initial_prompt):
                if text:
                    prompt_tokens += min(223, len(self.model.hf_tokenizer.encode(" " + text.strip()).ids) + 1)
            self._room = max(16, min(MAX_NEW_TOKENS, 448 - 5 - prompt_tokens))
        return self._room

    def _settings(self, task: str, max_new_tokens: int) -> dict:
        """faster-whisper's transcribe() arguments from TranscribeOptions."""
        opts = self.options
        return dict(
            language=opts.language,
            task=task,
            beam_size=beam_for(opts, task),
            temperature=list(opts.temperatures),
            compression_ratio_threshold=opts.compression_ratio_threshold,
            log_prob_threshold=opts.log_prob_threshold,
            no_speech_threshold=opts.no_speech_threshold,
            condition_on_previous_text=opts.condition_on_previous_text,
            initial_prompt=opts.initial_prompt,
            hotwords=opts.hotwords,
            max_new_tokens=max_new_tokens,
            vad_filter=False,  # transmissions are already cut by intercept.segment
            # English is not banned from repeating: its loops are retried (core.Decoder._guard)
            no_repeat_ngram_size=opts.no_repeat_ngram if task == "transcribe" else 0,
            repetition_penalty=opts.repetition_penalty if task == "transcribe" else 1.0,
            without_timestamps=(task == "translate" and not opts.translate_timestamps and not opts.pack_translate)
            or (task == "transcribe" and not opts.transcribe_timestamps),
        )

    def decode(self, audio: np.ndarray, task: str, max_new_tokens: int, loop_retry: bool = False,
               stop_above: Optional[float] = None) -> Decoded:
        """core.WindowModel: faster-whisper's own decode loop over one window, with the
        N-best and word probabilities of each of its decode calls when _Evidence is attached.
        With stop_above, the loop is left at the first segment whose compression ratio is
        above it (its segments come lazily, one decode call at a time). With the first-pass
        ban (options.no_repeat_ngram), Decoded.ban_spans says where it was in force, from
        every hypothesis of every beam search of the window."""
        frames = self._encoder_frames(audio, task)
        model = self.translate_model() if task == "translate" else None
        with self._batching.encoder_frames(frames), self._batching.using(model):
            return self._decode_window(audio, task, max_new_tokens, loop_retry, stop_above)

    def translate_compute_type(self) -> str:
        """The compute type of the translate task (options.translate_compute_type): "same" is
        the transcription's; "auto" is int8 where choose_compute_type finds it faster on this
        CPU (a GPU keeps the transcription's type)."""
        wanted = self.options.translate_compute_type
        if wanted in ("same", self.compute_type) or (wanted == "auto" and self.device != "cpu"):
            return self.compute_type
        if wanted == "auto":  # the probe's answer, read once (it is a file read per call)
            if "auto" not in self._resolved:
                self._resolved["auto"] = choose_compute_type(self.model_path, self.device, self.options.cpu_threads)
            return self._resolved["auto"]
        return wanted

    def translate_model(self):
        """The CTranslate2 model of the translate task: None where it is the transcription's;
        else a second model of the same files, loaded at the first translate call."""
        compute_type = self.translate_compute_type()
        if compute_type == self.compute_type:
            return None
        with self._loading:  # decode_batch's threads ask at once: one model, not one each
            if compute_type not in self._translate_models:
                import ctranslate2

                self._translate_models[compute_type] = ctranslate2.models.Whisper(
                    self.model_path, device=self.device, compute_type=compute_type,
                    intra_threads=self.threads, inter_threads=self.workers)
            return self._translate_models[compute_type]

    def _encoder_frames(self, audio: np.ndarray, task: str) -> Optional[int]:
        """How many feature frames of a window the encoder sees (None: all 3,000, 30 s)."""
        if task != "translate" or self.options.pack_translate:
            return None
        return _context_frames(self.options.translate_context_s, len(audio))

    def _decode_window(self, audio: np.ndarray, task: str, max_new_tokens: int, loop_retry: bool,
                       stop_above: Optional[float]) -> Decoded:
        first_call = self.options.first_call_tokens
        if first_call and task == "transcribe" and not loop_retry and first_call < max_new_tokens:
            decoded = self._decode_capped(audio, task, int(first_call), loop_retry, stop_above, cut_at=int(first_call))
            if decoded is not None:
                return decoded
            # A call ended inside its first segment without looping: faster-whisper would keep
            # that half segment and skip the rest of the window, so the window is decoded
            # again with its own cap.
        return self._decode_capped(audio, task, max_new_tokens, loop_retry, stop_above)

    def _decode_capped(self, audio: np.ndarray, task: str, max_new_tokens: int, loop_retry: bool,
                       stop_above: Optional[float], cut_at: Optional[int] = None) -> Optional[Decoded]:
        settings = self._settings(task, max_new_tokens)
        if loop_retry:
            settings.update(temperature=[0.0], no_repeat_ngram_size=self.options.loop_retry_ngram,
                            repetition_penalty=self.options.loop_retry_penalty)
        ngram = settings["no_repeat_ngram_size"] if not loop_retry else 0
        batching = getattr(self, "_batching", None)
        if ngram <= 0 or batching is None:
            return self._decode(audio, task, settings, stop_above, cut_at)
        with batching.watching() as results:
            decoded = self._decode(audio, task, settings, stop_above, cut_at)
        if decoded is not None:
            decoded.ban_spans = self._ban_spans(results, ngram, len(audio) / SAMPLE_RATE)
        return decoded

    def _decode(self, audio: np.ndarray, task: str, settings: dict, stop_above: Optional[float],
                cut_at: Optional[int] = None) -> Optional[Decoded]:
        evidence = getattr(self, "_evidence", None)
        wanted = wants_alternatives(self.options) or self.options.word_evidence
        if evidence is None or task != "transcribe" or not wanted:
            segments, complete = _until(self.model.transcribe(audio, **settings)[0], stop_above, cut_at)
            return None if segments is None else Decoded([_segment(seg) for seg in segments], complete=complete)
        with evidence.recording(self.options) as record:
            segments, complete = _until(self.model.transcribe(audio, **settings)[0], stop_above, cut_at)
        if segments is None:
            return None
        decoded = record.decoded(segments)
        decoded.complete = complete
        return decoded

    def _ban_spans(self, results: list, ngram: int, duration: float) -> list:
        """Decoded.ban_spans from the beam searches of one window. Only the first search's
        timestamps are window times (a later one continues at a seek this wrapper does not
        see): a repeat in a later search is placed anywhere in the window."""
        if not results:  # no beam search reached CTranslate2 (a test's scripted model)
            return []
        begin = self.model.hf_tokenizer.token_to_id("<|notimestamps|>") + 1  # as faster-whisper's Tokenizer
        spans: list = []
        for n, result in enumerate(results):
            for ids in result.sequences_ids:
                found = ban_spans(ids, ngram, begin, duration=duration)
                spans.extend(found if n == 0 else [((0.0, duration), (0.0, duration))] * bool(found))
        return spans

    @property
    def first_pass_ngram(self) -> int:
        """core.WindowModel: every transcribe decode forbids repeated n-grams of this size (0: none)."""
        return max(0, self.options.no_repeat_ngram)

    def window_batch(self, task: str) -> int:
        """core.WindowModel: windows of a task decoded together (options.decode_batch, or
        options.translate_batch for the translate task: see batch_for)."""
        return batch_for(self.options, task)

    def decode_batch(self, windows: Sequence[tuple[np.ndarray, str, int]],
                     stop_above: Optional[float] = None, loop_retry: bool = False) -> list[Decoded]:
        """core.WindowModel: decode() of each (audio, task, max_new_tokens) window, each in its
        own faster-whisper decode loop (a thread), their CTranslate2 calls gathered and run
        together by _Batching. So every window keeps faster-whisper's fallback, seek and
        evidence exactly as alone; only the encoder and beam-search passes are shared."""
        return self._batching.run([
            (lambda audio=audio, task=task, cap=cap: self.decode(audio, task, cap, loop_retry=loop_retry,
                                                                 stop_above=stop_above))
            for audio, task, cap in windows])

    def transcribe(
        self, samples: np.ndarray, transmissions: Sequence[Transmission], sample_rate: int = 16000
    ) -> list[Line]:
        """Lines of all `transmissions` (pass them all at once: packing and batching only
        help across transmissions), in recording order."""
        if self.options.batch_size > 0:
            if sample_rate != SAMPLE_RATE:
                raise ValueError("faster-whisper expects 16 kHz samples")
            lines = self._transcribe_batched(samples, [tx for tx in transmissions if tx.end > tx.start])
            lines.sort(key=lambda line: (line.start, line.transmission_idx))
            return lines
        return Decoder(self, self.options, self.pack_options).transcribe(samples, transmissions, sample_rate)

    def _transcribe_batched(self, samples: np.ndarray, transmissions: Sequence[Transmission]) -> list[Line]:
        """BatchedInferencePipeline: one line per segment, no evidence (its batched decode
        keeps neither N-best nor, here, word probabilities)."""
        from faster_whisper import BatchedInferencePipeline

        if not transmissions:
            return []
        if self._batched is None:
            self._batched = BatchedInferencePipeline(self.model)
        opts = self.options
        longest = max(tx.duration for tx in transmissions)
        decoder = Decoder(self, opts, self.pack_options)
        settings = self._settings("transcribe", decoder.max_new_tokens(longest, 1, "transcribe"))
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
            lines.extend(decoder.lines_in(Decoded([_segment(seg)]), tx, offset_s=tx.start))
        return lines

    def score_window(self, audio: np.ndarray, texts: Sequence[str]) -> list[Optional[tuple[float, int]]]:
        """core.WindowModel: the window encoded once, then every text teacher-forced in one
        batch through CTranslate2's align(), whose text_token_probs are the model's
        probabilities of the given tokens (the alignment itself is not used)."""
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        whisper = self.model
        tokenizer = Tokenizer(whisper.hf_tokenizer, whisper.model.is_multilingual, task="transcribe",
                              language=self.options.language or "fa")
        features = whisper.feature_extractor(audio)[:, : whisper.feature_extractor.nb_max_frames]
        frames = features.shape[-1]
        width = _context_frames(self.options.score_context_s, len(audio)) or whisper.feature_extractor.nb_max_frames
        features = np.pad(features[:, :width], ((0, 0), (0, max(0, width - frames))))
        # On the CPU: the batch below repeats it per text (align takes one encoding per text).
        encoded = np.asarray(whisper.model.encode(ctranslate2.StorageView.from_array(features[None]), to_cpu=True))
        # Text tokens only: align() gives the end-of-text token no probability.
        ids = [tokenizer.encode(" " + text.strip()) if text.strip() else [] for text in texts]
        scored = [n for n, i in enumerate(ids) if i]
        out: list[Optional[tuple[float, int]]] = [None] * len(ids)
        if not scored:
            return out
        batch = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.repeat(encoded, len(scored), axis=0)))
        prompt = list(tokenizer.sot_sequence) + [tokenizer.no_timestamps]
        results = whisper.model.align(batch, prompt, [ids[n] for n in scored], [frames] * len(scored))
        for n, result in zip(scored, results):
            out[n] = (float(np.sum(np.log(np.maximum(np.asarray(result.text_token_probs, dtype=np.float64), 1e-30)))),
                      len(ids[n]))
        return out


def _context_frames(context_s: Optional[float], samples: int) -> Optional[int]:
    """The feature frames the encoder sees of `samples` of audio when it is cut to a context of
    context_s seconds: the audio plus 1 s when longer, an even number (the encoder's
    convolution halves the frames); None: all 3,000 (30 s), as Whisper pads every window."""
    if context_s is None:
        return None
    frames = max(int(round(context_s * 100)), samples // 160 + 100)
    frames += frames % 2
    return frames if frames < 3000 else None


def _until(segments, stop_above: Optional[float], cut_at: Optional[int] = None) -> tuple[Optional[list], bool]:
    """The segments of faster-whisper's generator, up to and with the first one with text
    whose compression ratio is above stop_above (None: all); and whether that was all.
    With cut_at, (None, False) when a segment that is not over stop_above has cut_at tokens or
    more: a decode call that reached its cap inside its first segment (faster-whisper keeps it
    cut and skips to the window's end)."""
    out = []
    for seg in segments:
        out.append(seg)
        looping = stop_above is not None and seg.text.strip() and (seg.compression_ratio or 0.0) > stop_above
        cut = cut_at is not None and not looping and len(seg.tokens) >= cut_at
        if looping or cut:
            close = getattr(segments, "close", None)
            if close is not None:  # a generator: no further decode calls
                close()
            return (None, False) if cut else (out, False)
    return out, True


def _segment(seg, words: Optional[list[Word]] = None, decode: Optional[int] = None) -> Segment:
    return Segment(start=seg.start, end=seg.end, text=seg.text, avg_logprob=seg.avg_logprob,
                   no_speech_prob=seg.no_speech_prob, compression_ratio=seg.compression_ratio,
                   words=words, decode=decode)


class _Evidence:
    """The N-best and word probabilities of faster-whisper's own decode loop.

    WhisperModel.transcribe() returns only the best hypothesis and, with word_timestamps,
    moves its seek to the last word (which can change the text of a window that needs a
    second decode call). So the loop is left as it is and watched instead: the CTranslate2
    model is wrapped so that each beam search also returns its num_hypotheses best with
    their scores (the beam holds them anyway; the best is unchanged), and the method that
    cuts a decoded window at its timestamp tokens is wrapped to cut every hypothesis the
    same way and to align the best one's words (WhisperModel.add_word_timestamps on a copy,
    with the encoder output of that call: one extra decoder pass, no second encoder pass).
    Written against faster-whisper 1.2.1 (constraints.txt); when a later version lacks the
    methods, evidence is simply not collected (None), the text is unaffected."""

    def __init__(self, whisper_model):
        import inspect

        self.whisper_model = whisper_model
        self.hypotheses = 0  # per recording(), from the options of that call
        self.words = False
        defaults = inspect.signature(type(whisper_model).transcribe).parameters
        self.length_penalty = defaults["length_penalty"].default
        self.prepend = defaults["prepend_punctuations"].default
        self.append = defaults["append_punctuations"].default
        self.split = whisper_model._split_segments_by_timestamps  # the bound original
        self.model = whisper_model.model
        # One record per thread: _Batching runs several windows' decode loops at once.
        self._local = threading.local()
        whisper_model.model = _GenerateWatch(self.model, self)
        whisper_model._split_segments_by_timestamps = self._split

    @property
    def current(self) -> Optional["_Record"]:
        return getattr(self._local, "record", None)

    @current.setter
    def current(self, record: Optional["_Record"]) -> None:
        self._local.record = record

    @classmethod
    def attach(cls, whisper_model) -> Optional["_Evidence"]:
        if not hasattr(whisper_model, "_split_segments_by_timestamps") or not hasattr(whisper_model, "add_word_timestamps"):
            return None
        return cls(whisper_model)

    @contextmanager
    def recording(self, options: TranscribeOptions):
        self.hypotheses = wants_alternatives(options)
        self.words = options.word_evidence
        self.current = _Record(self)
        try:
            yield self.current
        finally:
            self.current = None

    def _split(self, tokenizer, tokens, time_offset, segment_size, segment_duration, seek):
        out = self.split(tokenizer, tokens, time_offset, segment_size, segment_duration, seek)
        if self.current is not None:
            try:
                self.current.window(tokenizer, list(tokens), time_offset, segment_size, segment_duration, seek, out[0])
            except Exception:  # evidence is extra: never let it break decoding
                self.current.failed = True
        return out


class _Call:
    def __init__(self, kind: str, args: tuple, kwargs: dict, order: int, model):
        self.kind, self.args, self.kwargs, self.order, self.model = kind, args, kwargs, order, model
        self.done = False
        self.result = None
        self.error: Optional[BaseException] = None


class _Batching:
    """The CTranslate2 Whisper model, with the encode() and generate() calls of several
    decode loops run together.

    faster-whisper's loop (transcribe -> generate_segments -> generate_with_fallback) decodes
    one window per call; its batched pipeline re-implements that loop without intercept's
    guards and evidence. Instead, run() runs one unchanged loop per window, each in a thread,
    and this wrapper holds each thread's model call until every running loop has made one (or
    finished), then makes the held calls as one batch: one encoder pass, and one beam search
    per group of calls with the same options. Threads wait almost all the time, so the GIL
    costs nothing; which calls meet in a batch depends only on the windows, never on timing,
    so results are reproducible. Calls that would not decode as they do alone are made
    alone: sampling (a temperature fallback draws random numbers in call order) and a batch
    member whose own max_length could have cut it (the group runs at the largest).

    The encoder outputs of the last `keep` windows are kept: the loop guard decodes a looping
    window again (core.Decoder.decode_many), and the same audio gives the same features, so
    its encoder pass would be made twice (two of the four windows of the 10-minute
    real-speech session: 1.4 of its 16 s)."""

    def __init__(self, model, keep: int = 4, workers: int = 1,
                 encode_frames: Optional[Callable[[], int]] = None):
        self._model = model
        self._workers = max(1, workers)
        # Asked at each stacked encode: the engine's options can change between batches.
        self._encode_frames = encode_frames or (lambda: 0)
        self._cond = threading.Condition()
        self._local = threading.local()
        self._active = 0
        self._pending: list[_Call] = []
        self._keep = max(0, keep)
        self._encoded: OrderedDict = OrderedDict()  # features' digest -> encoder output

    def __getattr__(self, name):
        return getattr(self._model, name)

    def run(self, jobs: Sequence) -> list:
        """Each job's result, its model calls batched with the other jobs'."""
        if len(jobs) <= 1:
            return [job() for job in jobs]
        results: list = [None] * len(jobs)
        errors: list[Optional[BaseException]] = [None] * len(jobs)

        def work(n: int) -> None:
            self._local.order = n
            try:
                results[n] = jobs[n]()
            except BaseException as exc:  # given back to the caller below
                errors[n] = exc
            finally:
                self._local.order = None
                with self._cond:
                    self._active -= 1
                    self._flush_if_ready()

        with self._cond:
            if self._active:
                raise RuntimeError("one batched decode at a time per engine")
            self._active = len(jobs)
        threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(len(jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for error in errors:
            if error is not None:
                raise error
        return results

    @contextmanager
    def _thread_setting(self, name: str, value):
        before = getattr(self._local, name, None)
        setattr(self._local, name, value)
        try:
            yield
        finally:
            setattr(self._local, name, before)

    def encoder_frames(self, frames: Optional[int]):
        """This thread's encode() calls see only the first `frames` feature frames (None: all)."""
        return self._thread_setting("frames", frames)

    def using(self, model):
        """This thread's calls go to `model` (None: the wrapped one): the translate task's
        model when its compute type differs from the transcription's."""
        return self._thread_setting("model", model)

    def _current(self):
        return getattr(self._local, "model", None) or self._model

    def encode(self, features, to_cpu: bool = False):
        frames = getattr(self._local, "frames", None)
        if frames is not None and features.shape[-1] > frames:
            import ctranslate2

            features = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(features)[..., :frames]))
        key = self._key(features, to_cpu)
        if key is not None:
            key = (id(self._current()),) + key  # another model's encoder output differs
        with self._cond:
            if key is not None and key in self._encoded:
                self._encoded.move_to_end(key)
                return self._encoded[key]
        encoded = self._held("encode", (features,), {"to_cpu": to_cpu})
        if key is not None:
            with self._cond:
                self._encoded[key] = encoded
                while len(self._encoded) > self._keep:
                    self._encoded.popitem(last=False)
        return encoded

    def _key(self, features, to_cpu: bool) -> Optional[tuple]:
        """What identifies an encoder pass: the features' shape and bytes (a 30 s window's are
        under 1 MB: hashed in about a millisecond). None: not kept."""
        if not self._keep:
            return None
        try:
            array = np.ascontiguousarray(np.asarray(features))
        except (TypeError, ValueError, RuntimeError):  # features held on a GPU: not kept
            return None
        return array.shape, str(array.dtype), bool(to_cpu), hashlib.blake2b(array.data, digest_size=16).digest()

    def generate(self, encoder_output, prompts, **kwargs):
        results = self._held("generate", (encoder_output, prompts), kwargs)
        watch = getattr(self._local, "watch", None)
        if watch is not None:
            watch.extend(results)
        return results

    @contextmanager
    def watching(self):
        """The results of this thread's generate() calls while inside."""
        results: list = []
        self._local.watch = results
        try:
            yield results
        finally:
            self._local.watch = None

    def _held(self, kind: str, args: tuple, kwargs: dict):
        order = getattr(self._local, "order", None)
        if order is None:  # not inside run(): a plain call
            return getattr(self._current(), kind)(*args, **kwargs)
        call = _Call(kind, args, kwargs, order, self._current())
        with self._cond:
            self._pending.append(call)
            self._flush_if_ready()
            while not call.done:
                self._cond.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def _flush_if_ready(self) -> None:
        """With the lock held: make the held calls once every running loop waits on one."""
        if not self._pending or len(self._pending) < self._active:
            return
        calls = sorted(self._pending, key=lambda call: call.order)
        self._pending = []
        try:
            shapes: dict = {}  # only inputs of one shape can be stacked
            for call in calls:
                if call.kind == "encode":
                    shapes.setdefault((id(call.model), tuple(call.args[0].shape)), []).append(call)
            for group in shapes.values():
                self._shared(group, self._encode_together)
            generate = [c for c in calls if c.kind == "generate"]
            groups: dict = {}
            for call in generate:
                if "sampling_temperature" in call.kwargs or len(call.args[1]) != 1:
                    self._make([call], self._alone)
                    continue
                key = (id(call.model), len(call.args[1][0]), tuple(call.args[0].shape),
                       repr(sorted((k, v) for k, v in call.kwargs.items() if k != "max_length")))
                groups.setdefault(key, []).append(call)
            for group in groups.values():
                self._shared(group, self._generate_together)
        finally:
            for call in calls:
                call.done = True
            self._cond.notify_all()

    @staticmethod
    def _make(calls: list, how) -> None:
        if not calls:
            return
        try:
            how(calls)
        except BaseException as exc:
            for call in calls:
                call.error = exc

    def _shared(self, calls: list, how) -> None:
        """One batched call, or with several workers one per worker, made at once (each worker
        runs a part of the batch on its own threads; the weights are shared)."""
        if self._workers < 2 or len(calls) < 2:
            return self._make(calls, how)
        size = -(-len(calls) // self._workers)
        parts = [calls[n: n + size] for n in range(0, len(calls), size)]
        threads = [threading.Thread(target=self._make, args=(part, how), daemon=True) for part in parts[1:]]
        for thread in threads:
            thread.start()
        self._make(parts[0], how)
        for thread in threads:
            thread.join()

    def _alone(self, calls: list) -> None:
        for call in calls:
            call.result = getattr(call.model, call.kind)(*call.args, **call.kwargs)

    def _encode_together(self, calls: list) -> None:
        import ctranslate2

        model = calls[0].model
        if len(calls) == 1 or model.device != "cpu":
            return self._alone(calls)
        for part in self._encoder_passes(calls):
            if len(part) == 1:
                self._alone(part)
                continue
            features = np.concatenate([np.asarray(call.args[0]) for call in part])
            encoded = np.asarray(model.encode(ctranslate2.StorageView.from_array(features), to_cpu=True))
            for n, call in enumerate(part):
                call.result = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded[n: n + 1]))

    def _encoder_passes(self, calls: list) -> list[list]:
        """The calls of one stacked encode (inputs of one shape), in passes of at most
        encode_frames feature frames each (a window longer than that alone)."""
        cap = max(0, int(self._encode_frames() or 0))
        size = max(1, cap // int(calls[0].args[0].shape[-1])) if cap else len(calls)
        return [calls[n: n + size] for n in range(0, len(calls), size)]

    def _generate_together(self, calls: list) -> None:
        import ctranslate2

        model = calls[0].model
        if len(calls) == 1 or model.device != "cpu":
            return self._alone(calls)
        encoded = ctranslate2.StorageView.from_array(
            np.ascontiguousarray(np.concatenate([np.asarray(call.args[0]) for call in calls])))
        prompts = [call.args[1][0] for call in calls]
        kwargs = dict(calls[0].kwargs)
        kwargs["max_length"] = max(call.kwargs.get("max_length", 448) for call in calls)
        results = model.generate(encoded, prompts, **kwargs)
        for call, prompt, result in zip(calls, prompts, results):
            room = call.kwargs.get("max_length", 448) - len(prompt)
            # A search that ended (every hypothesis with its end token) before this call's own
            # max_length took the same steps as it would alone; one that came near it is made
            # again alone, where the cap stops it as it always did.
            if all(len(ids) + 1 < room for ids in result.sequences_ids):
                call.result = [result]
            else:
                call.result = model.generate(*call.args, **call.kwargs)


class _GenerateWatch:
    """The CTranslate2 Whisper model, with generate() asked for the N-best while a
    recording is on (everything else passes through)."""

    def __init__(self, model, evidence: _Evidence):
        self._model = model
        self._evidence = evidence

    def __getattr__(self, name):
        return getattr(self._model, name)

    def generate(self, encoder_output, prompts, **kwargs):
        record = self._evidence.current
        beam = kwargs.get("beam_size", 1)
        if record is not None and beam > 1 and "sampling_temperature" not in kwargs:
            kwargs["num_hypotheses"] = max(kwargs.get("num_hypotheses", 1), min(beam, self._evidence.hypotheses or 1))
        results = self._model.generate(encoder_output, prompts, **kwargs)
        if record is not None:
            record.calls.append((encoder_output, results[0]))
        return results


class _Record:
    """What one transcribe() call decoded: per window its N-best, per segment its words."""

    def __init__(self, evidence: _Evidence):
        self.evidence = evidence
        self.calls: list = []  # (encoder_output, result) of every generate call
        self.nbest: list[list[Candidate]] = []
        self.by_seek: dict[int, int] = {}
        self.words: dict[tuple[int, tuple], list[Word]] = {}
        self.failed = False

    def window(self, tokenizer, tokens, time_offset, segment_size, segment_duration, seek, segments) -> None:
        match = next((call for call in reversed(self.calls) if list(call[1].sequences_ids[0]) == tokens), None)
        if match is None:
            return
        encoder_output, result = match
        evidence = self.evidence
        if evidence.hypotheses:
            candidates = []
            for ids, score in zip(result.sequences_ids[:evidence.hypotheses], result.scores):
                ids = list(ids)
                pieces, _seek, _single = evidence.split(tokenizer, ids, time_offset, segment_size, segment_duration, seek)
                # faster-whisper's avg_logprob: the length-normalised score back to a sum, per
                # token with the end token (the best one equals the line's avg_logprob).
                total = score * (len(ids) ** evidence.length_penalty)
                candidates.append(Candidate(
                    tuple((p["start"], p["end"], tokenizer.decode(p["tokens"])) for p in pieces),
                    total / (len(ids) + 1), len(ids) + 1))
            self.by_seek[seek] = len(self.nbest)
            self.nbest.append(candidates)
        if evidence.words and segments:
            copies = [dict(seg, tokens=list(seg["tokens"])) for seg in segments]
            evidence.whisper_model.add_word_timestamps(
                [copies], tokenizer, encoder_output, segment_size, evidence.prepend, evidence.append,
                last_speech_timestamp=time_offset)
            for seg, copy in zip(segments, copies):
                self.words[(seek, tuple(seg["tokens"]))] = [
                    Word(w["word"], w["start"], w["end"], w["probability"]) for w in copy.get("words") or []]

    def decoded(self, segments) -> Decoded:
        out = []
        for seg in segments:
            words = None
            if self.evidence.words and not self.failed:
                words = self.words.get((seg.seek, tuple(seg.tokens)))
            decode = None if self.failed else self.by_seek.get(seg.seek)
            out.append(_segment(seg, words, decode))
        return Decoded(out, [] if self.failed else self.nbest)
