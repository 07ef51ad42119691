"""What every engine shares, below the engines themselves: the `Engine` interface, the decoding
settings (`TranscribeOptions`) and the device check (`resolve_device`). The adapters and the
decoding core import this module, never the package around them, whose `load_engine` imports the
adapters (intercept/engines/__init__.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol, Sequence

import numpy as np

from ..types import Hypothesis, Line, Transmission

ENGINES = ("faster-whisper", "openai-whisper", "transformers")


@dataclass
class TranscribeOptions:
    """Decoding settings shared by every engine."""

    language: Optional[str] = "fa"  # None: detect per transmission
    # Greedy by default: on the 10-minute real-speech session 0.42x beam 5's CPU seconds (as
    # fast as faster-whisper's BatchedInferencePipeline), held-out WER level as recorded and
    # through the radio, and its own flag calibration and scorer (docs/benchmarks.md, "Greedy
    # decoding (beam 1)"). The N-best then holds the one hypothesis: no alternative flags.
    beam_size: int = 1
    # One temperature (0.0) by default, so that the same audio always gives the same text:
    # Whisper's fallback ladder samples at temperatures above 0, and CTranslate2's sampler
    # cannot be re-seeded per call, so a re-run or a Ray worker transcribed the same file
    # differently. Loops are retried deterministically instead (loop_retry_* below).
    # A ladder such as (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) can still be set; with it a window is
    # re-decoded when its compression ratio is above compression_ratio_threshold, or its
    # average log-probability below log_prob_threshold (off: Whisper base is below -1 on
    # nearly all Farsi radio speech, so that trigger re-decoded almost everything).
    temperatures: Sequence[float] = (0.0,)
    compression_ratio_threshold: Optional[float] = 2.4
    log_prob_threshold: Optional[float] = None
    # Deterministic loop retry, in every engine (openai-whisper's decoder has no n-gram ban,
    # so intercept adds one: engines.openai_whisper.RepeatBan): a window whose text still
    # repeats (compression ratio above the threshold) is decoded once more with beam search
    # that may not repeat an n-gram of loop_retry_ngram tokens (and, when
    # loop_retry_penalty > 1, penalises repeated tokens); the retry is kept when it repeats
    # less. On audio_samples/: WER 1.18 against the loops-only ladder's 1.17 and a single
    # temperature's 2.40, in 0.36x the ladder's time, and the same text on every run (the
    # ladder: 10 of 15 transmissions alike across two runs). scripts/bench_decode_options.py,
    # docs/benchmarks.md. 0 and 1.0 turn it off.
    loop_retry_ngram: int = 3
    loop_retry_penalty: float = 1.0
    # > 0: every transcribe decode (not only the loop retry) may not repeat an n-gram of this
    # many tokens (faster-whisper). It stops Whisper base's loops as they start, so no window
    # is decoded again (3 of the 4 windows of the 10-minute real-speech session loop). The
    # ban covers a packed window, so a transmission where it acted because of another
    # transmission's words is decoded again alone (core.Decoder._split_pack): each gets what a
    # ban per transmission gives. Under greedy search a text with no repeated 7-gram is the
    # text without the ban, token for token. 8 (Persian is 5-7 tokens a word), since greedy
    # decoding became the default: 0.72x the session's wall time, the same review queue on
    # both parts of the real-prevalence evaluation, WER level on pooled clips, the coded bird
    # line kept; it costs WER +0.003 .. +0.015 on the held-out part through the radio channel.
    # With beam 5 it cost WER +0.043 on the session; 6 lost the bird line's پرنده.
    # docs/benchmarks.md ("The first-pass ban of repeated 8-grams, with greedy decoding"); 0: off.
    no_repeat_ngram: int = 8
    # > 1: every transcribe decode penalises tokens already written (CTranslate2's
    # repetition_penalty; faster-whisper only), so a hypothesis that starts to loop loses to one
    # that does not. Off by default: 1.2 took 0.96x the CPU seconds on pooled real clips and
    # 0.75x on the 10-minute session, WER level, but the review queue on the calibration part
    # found one coded mention fewer (23 of 80 against 24). docs/benchmarks.md (issue 25).
    repetition_penalty: float = 1.0
    # None: never drop a window as silence. Whisper's own rule drops a window whose
    # no-speech probability is above 0.6 (with low log-probability); with packing one such
    # drop lost five transmissions of session_long.mp3 at once. The VAD already decided
    # there is speech, so the line is kept and the guards mark it suspect instead.
    no_speech_threshold: Optional[float] = None
    # Off by default: conditioning on previous text lets one hallucination seed the next.
    condition_on_previous_text: bool = False
    # Loop guard: Whisper decodes repetition loops up to its token limit; a transmission of
    # d seconds gets at most tokens_per_second * d + 20 new tokens (Farsi byte-level BPE runs
    # at roughly 10-20 tokens per second of speech).
    tokens_per_second: float = 30.0
    # None: off. A number: the first decode of a transcribe window asks CTranslate2 for at most
    # this many tokens per call; faster-whisper keeps the segments that ended and decodes the
    # rest of the window from the last one's timestamp in its next call (as at any cap). A loop
    # runs to its call's cap inside one beam search (CTranslate2 cannot stop it sooner), so a
    # small per-call cap lets the loop guard see it after this many tokens instead of the
    # window's whole cap. Loop retries keep the window's cap. faster-whisper only. Off by
    # default: 200 took 0.70x the CPU seconds on the 10-minute session (3 of its 4 windows
    # loop) but 1.23x on pooled real clips, which rarely loop (more calls, each with an encoder
    # pass, and more loops through the radio). docs/benchmarks.md (issue 25).
    first_call_tokens: Optional[int] = None
    # English on the translate task needs far fewer tokens (about 3 words a second).
    translate_tokens_per_second: float = 8.0
    initial_prompt: Optional[str] = None
    hotwords: Optional[str] = None
    # float32 by default: on this project's reference CPU (AVX2, no VNNI) int8 measured up
    # to 2x faster on short probes but raised WER on real Persian (0.708 -> 0.774), and
    # whole-run timings favoured float32 (docs/benchmarks.md). "auto" picks the fastest type
    # from a short timed probe cached per machine and model (CPU), or int8_float16 on CUDA.
    compute_type: str = "float32"
    device: str = "cpu"
    cpu_threads: int = 0  # 0: CTranslate2's default (all cores)
    # CTranslate2 workers sharing the model's weights, the threads split between them and each
    # batched call split between them (faster-whisper, CPU). 1: on 2 cores two made the
    # real-speech session 0.95x as long, but a window decoded alone (a one-window recording,
    # the acoustic check, a loop retry) gets half the threads: 1.25x as long on 40 short
    # clips, 1.04x on 120 one-second files. docs/benchmarks.md (issue 25).
    cpu_workers: int = 1
    # The translate task's compute type: "same" (the transcription's), "auto" (int8 where the
    # compute-type probe finds it faster on this CPU), or a CTranslate2 type (faster-whisper).
    # "same": int8 translated the session in 0.5x the time, but its English moved further
    # than the noise floor on cv_fa clips, and with the second model (and two workers) a folder
    # of tiny files peaked at 1.58 GB (docs/benchmarks.md, issue 25).
    translate_compute_type: str = "same"
    # Pack short transmissions into shared 30 s windows, one encoder pass for several
    # (intercept/packing.py); measured faster than per-transmission decoding and than
    # faster-whisper's BatchedInferencePipeline at equal accuracy (docs/benchmarks.md).
    # Needs a fixed language: with language=None each transmission is decoded alone.
    pack: bool = True
    pack_gap_s: float = 1.5  # silence between packed transmissions
    # How much audio one packed window holds (PackOptions.window_s). 25, 22 and 20 s were no
    # worse in WER on pooled real clips but 1.03-1.16x the CPU (more encoder passes; loops no
    # rarer), although one looping session decoded 2.3x faster at 20 s by chance
    # (scripts/bench_pack_window.py, docs/benchmarks.md, issue 25).
    pack_window_s: float = 29.0
    # Whisper's translate task packed the same way (core.Decoder.translate_spans): the lines
    # of a recording, or of a pool of short recordings, share windows. Off by default: on the
    # folder corpus it halved the decodes (12 of 40 lines still decoded again alone, their
    # English segments crossing the gaps) but was not measurably faster (1.04x wall, 0.97x
    # CPU, a loaded machine), and its English moved as far from the per-line English as a
    # 0.25 s different cut moves it (scripts/bench_translate_packed.py, docs/benchmarks.md).
    # Needs pack as well.
    pack_translate: bool = False
    # The translate task (the whisper translator: one decode per line). Its encoder pass was
    # three quarters of its time on the real-speech session (one padded 30 s window per line),
    # so the encoder of a translate window sees its audio padded to translate_context_s
    # seconds (the audio plus 1 s when longer; None: Whisper's 30 s), and no timestamp tokens
    # are decoded (the English of a line needs none; packed translation keeps them). On that
    # session: 0.32x the translation's CPU seconds, its English no further from the 30 s
    # window's than a 0.25 s different cut moves it, and the same cut of the encoder input
    # left the transcribe task's WER on cv_fa clips level (-0.027 .. +0.039). faster-whisper
    # only. translate_beam_size (None: beam_size): beams 1 and 2 moved the English more than
    # that cut does and saved at most 12 % of its CPU, so translation keeps beam 5 while
    # transcription is greedy. scripts/bench_session_translate.py, docs/benchmarks.md (issue 25).
    translate_beam_size: Optional[int] = 5
    translate_timestamps: bool = False
    # False: transcribe without Whisper's timestamp tokens (faster-whisper); a packed window is
    # then one segment, cut into its transmissions by its words' times (packing.split_by_words;
    # needs word_evidence). Experimental, measured in docs/benchmarks.md (issue 25).
    transcribe_timestamps: bool = True
    translate_context_s: Optional[float] = 10.0
    # The acoustic check (intercept.acoustic: each flagged line's texts scored on its audio)
    # sees its audio padded to this many seconds in the same way; None: Whisper's 30 s
    # (faster-whisper only). 10 s: 0.34x the check's time, no flag moved across the queue's
    # threshold on the real-prevalence evaluation (docs/benchmarks.md, issue 25).
    score_context_s: Optional[float] = 10.0
    # > 0: decode transmissions with faster-whisper's BatchedInferencePipeline in batches of
    # this size instead (one line per transmission; ignores pack).
    batch_size: int = 0
    # Windows (packs, or transmissions alone) whose encoder and first decoder passes run
    # together (core.Decoder.decode_many; faster-whisper only): each window still goes
    # through faster-whisper's own decode loop and intercept's loop guard, alone where it
    # loops. 1: one window at a time. 4 rather than 8: the same speed on folders of tiny files
    # and the real-speech session, 10 % slower on a dense one, but 400 MB less at peak (beam
    # 5 x windows of cross-attention state): 1,165 MB against 1,575 MB on 120 one-second
    # files. Measured in docs/benchmarks.md (issue 25).
    decode_batch: int = 4
    # Lines of the translate task decoded together (None: decode_batch). A translate window's
    # encoder sees 10 s (translate_context_s), a third of the cross-attention state a 30 s
    # window holds per beam, so twice decode_batch's lines take less memory than decode_batch's
    # 30 s windows. 8: the same English, 0.85x the translation's wall time on the real-speech
    # session (fewer, fuller beam searches). Packed translation (pack_translate) and a 30 s
    # translate window (translate_context_s None or 30) keep decode_batch. docs/benchmarks.md (issue 25).
    translate_batch: Optional[int] = 8
    # Feature frames (100 a second: 3,000 is a 30 s window) that one stacked encoder pass of a
    # batch holds at most; the batch's other windows go through further passes, and the beam
    # searches stay as large. 0: the whole batch in one pass. A larger pass holds more than the
    # caches do: 6,000 (two 30 s windows, six 10 s translate windows) kept every line and its
    # English, translated the real-speech session in 0.95x the time and peaked 190 MB lower on
    # 120 one-second files (docs/benchmarks.md, "Smaller stacked encoder passes").
    encode_batch_frames: int = 6000
    # Recogniser evidence kept with every line (intercept.engines.core): the beam's N-best
    # (None: as many as beam_size; 0: off; a beam holds at most beam_size) and each word's
    # probability from a cross-attention alignment of the text (word_evidence). Cost: the
    # whole pipeline 1.08x on audio_samples/, the text unchanged (scripts/bench_evidence.py,
    # docs/benchmarks.md).
    alternatives: Optional[int] = None
    word_evidence: bool = True


def pack_options_for(options: TranscribeOptions) -> "PackOptions":
    """The packing layout of these options: every engine, the pipeline's pool and the
    evaluations build their PackOptions here, so that they pack alike."""
    from ..packing import PackOptions

    return PackOptions(window_s=options.pack_window_s, gap_s=options.pack_gap_s)


def batch_for(options: TranscribeOptions, task: str) -> int:
    """How many windows of a task are decoded together: translate_batch for the translate task
    when set and its windows are cut short (translate_context_s, no packing), else decode_batch."""
    if (task == "translate" and options.translate_batch is not None and options.translate_context_s is not None
            and options.translate_context_s < 30.0 and not options.pack_translate):
        return max(1, options.translate_batch)
    return max(1, options.decode_batch)


def beam_for(options: TranscribeOptions, task: str) -> int:
    """The beam of a task's decodes: translate_beam_size for the translate task when set."""
    if task == "translate" and options.translate_beam_size is not None:
        return max(1, options.translate_beam_size)
    return options.beam_size


DEVICES = ("cpu", "cuda", "auto")


def _cuda_problem(backend: str) -> Optional[str]:
    """Why `backend` cannot use a CUDA GPU on this machine, or None when it sees one."""
    if backend == "ctranslate2":
        import ctranslate2

        # 0 both without a GPU and with a driver older than CTranslate2's CUDA runtime.
        if ctranslate2.get_cuda_device_count() > 0:
            return None
        return (f"CTranslate2 {ctranslate2.__version__} sees no usable CUDA GPU (it needs an NVIDIA "
                f"driver for CUDA 12 or newer)")
    import torch

    if torch.version.cuda is None:
        return (f"this PyTorch ({torch.__version__}) is a CPU-only build; install a CUDA build of "
                f"torch {torch.__version__.split('+')[0]} in this virtualenv")
    if not torch.cuda.is_available():
        return f"PyTorch (CUDA {torch.version.cuda}) sees no CUDA GPU (no NVIDIA driver, or no GPU visible)"
    return None


def resolve_device(device: str, engine: str, backend: str, *, what: str = "engine", option: str = "--device") -> str:
    """"cpu", "cuda" or "auto" -> the device to load on ("auto": cuda when `backend` sees a
    GPU, else cpu). Checked before loading, so that a CUDA set-up that cannot work is one
    line naming the reason at start, not a traceback on the first recording (or, with Ray,
    on every worker)."""
    if device not in DEVICES:
        raise ValueError(f"unknown device '{device}' (choose from: {', '.join(DEVICES)})")
    if device == "cpu":
        return "cpu"
    problem = _cuda_problem(backend)
    if device == "auto":
        return "cpu" if problem else "cuda"
    if problem:
        from ..models import ModelError

        raise ModelError(f"{option} cuda: the {engine} {what} cannot use a GPU here: {problem}")
    return "cuda"


class Engine(Protocol):
    name: str
    model_name: str

    def transcribe(
        self, samples: np.ndarray, transmissions: Sequence[Transmission], sample_rate: int = 16000
    ) -> list[Line]: ...

    def translate_audio(self, samples: np.ndarray, start: float, end: float, sample_rate: int = 16000) -> str: ...

    def translate_spans(self, samples: np.ndarray, spans: Sequence[Transmission], sample_rate: int = 16000) -> list[str]:
        """English of each (start, end) span, in order; packed where the engine packs."""
        ...

    def score_texts(self, samples: np.ndarray, start: float, end: float, texts: Sequence[str],
                    sample_rate: int = 16000) -> list[Optional[Hypothesis]]:
        """How well each given text fits the audio between start and end (None: cannot tell)."""
        ...
