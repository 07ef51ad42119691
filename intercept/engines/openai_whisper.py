"""openai-whisper (PyTorch) engine: OpenAI's reference implementation.

Slower than faster-whisper on CPU, but it is the implementation every Whisper paper and
fine-tune is measured against, so analysts use it to check a doubtful line. It loads:

* a CTranslate2 Whisper directory (``model.bin``; the embedded base included): the same
  weights are rebuilt in memory by ``intercept.convert``, nothing is downloaded;
* an openai-whisper ``.pt`` checkpoint (``{"dims", "model_state_dict"}``), e.g. one written
  by ``intercept models convert --to openai-whisper``;
* a model name (``base``, ``large-v3``, ...): openai-whisper's own cache, then its download
  when online.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..models import ModelError, error_line
from ..types import Line, Transmission
from . import TranscribeOptions, resolve_device


def clipped_line(tx: Transmission, start: float, end: float, text: str, **scores: Any) -> Line:
    """A Line at absolute times, kept inside its transmission: Whisper's timestamps can run
    past the audio it was given, and playback and ordering need them inside."""
    start = min(max(tx.start + start, tx.start), tx.end)
    end = min(max(tx.start + end, start), tx.end)
    return Line(start=round(start, 3), end=round(end, 3), text=text, transmission_idx=tx.idx, **scores)


def max_new_tokens(options: TranscribeOptions, seconds: float, task: str) -> int:
    """The loop guard shared with faster-whisper: tokens bounded by the audio's length."""
    rate = options.tokens_per_second if task == "transcribe" else options.translate_tokens_per_second
    return min(440, int(rate * seconds) + 20)


def prompt_text(options: TranscribeOptions) -> Optional[str]:
    """Initial prompt with hotwords folded in: these engines have no hotwords option, and
    faster-whisper itself feeds hotwords to the decoder as prompt tokens before the prompt."""
    parts = [p.strip() for p in (options.hotwords, options.initial_prompt) if p and p.strip()]
    return " ".join(parts) or None


def load_openai_model(model_path: str, device: str = "cpu"):
    """A float32 ``whisper.model.Whisper`` from a CTranslate2 directory, a .pt file or a name."""
    import torch
    import whisper

    path = Path(model_path).expanduser()
    if path.is_dir():
        from ..convert import load_openai_whisper

        return load_openai_whisper(path).to(device)
    if path.is_file():
        # whisper.load_model does these same steps; done here so that the alignment heads
        # that intercept's converter stores in the checkpoint are applied too.
        from whisper.model import ModelDimensions, Whisper

        from ..convert import set_openai_alignment_heads

        try:
            checkpoint = torch.load(path, map_location=device, weights_only=True)
            model = Whisper(ModelDimensions(**checkpoint["dims"]))
            model.load_state_dict(checkpoint["model_state_dict"])
        except Exception as exc:
            raise ModelError(f"{path} is not an openai-whisper checkpoint ({error_line(exc)})") from None
        if checkpoint.get("alignment_heads"):
            set_openai_alignment_heads(model, checkpoint["alignment_heads"])
        return model.to(device).eval()
    if str(model_path) not in whisper.available_models():
        raise ModelError(
            f"unknown openai-whisper model '{model_path}': not a file or directory, and not one of "
            f"{', '.join(whisper.available_models())}"
        )
    try:
        # A copy already in openai-whisper's cache (SHA-256 checked by it) loads offline.
        return whisper.load_model(str(model_path), device=device)
    except Exception as exc:
        raise ModelError(
            f"openai-whisper model '{model_path}' is not cached and could not be downloaded ({error_line(exc)}); "
            f"pass a .pt checkpoint or a CTranslate2 directory instead"
        ) from None


class RepeatBan:
    """An openai-whisper logit filter for the loop retry: forbids a text token that would
    repeat an n-gram already written (as CTranslate2's and transformers'
    no_repeat_ngram_size do) and, with penalty > 1, penalises text tokens already written
    (their repetition_penalty). Written here because openai-whisper's decoder has neither.
    Timestamp and special tokens are left alone, so Whisper's timestamp rules always keep
    a token to pick."""

    def __init__(self, sample_begin: int, text_end: int, ngram: int = 0, penalty: float = 1.0):
        self.sample_begin = sample_begin
        self.text_end = text_end  # ids below this are text (the end-of-text token's id)
        self.ngram = ngram
        self.penalty = penalty

    def apply(self, logits, tokens) -> None:
        import torch

        for row in range(tokens.shape[0]):
            written = tokens[row, self.sample_begin:].tolist()
            if self.ngram > 0 and len(written) >= self.ngram - 1:
                prefix = tuple(written[len(written) - self.ngram + 1:]) if self.ngram > 1 else ()
                banned = {
                    written[i + self.ngram - 1]
                    for i in range(len(written) - self.ngram + 1)
                    if tuple(written[i:i + self.ngram - 1]) == prefix
                }
                banned = [t for t in banned if t < self.text_end]
                if banned:
                    logits[row, banned] = -float("inf")
            if self.penalty != 1.0:
                seen = torch.tensor(sorted({t for t in written if t < self.text_end}), dtype=torch.long,
                                    device=logits.device)
                if len(seen):
                    values = logits[row, seen]
                    logits[row, seen] = torch.where(values > 0, values / self.penalty, values * self.penalty)


class OpenAIWhisperEngine:
    name = "openai-whisper"

    def __init__(self, model_path: str, model_name: str, options: TranscribeOptions):
        self.model_name = model_name
        self.options = options
        if options.cpu_threads > 0:
            import torch

            # torch's thread pool is per process; honoured here as faster-whisper does.
            torch.set_num_threads(options.cpu_threads)
        self.device = resolve_device(options.device, self.name, "torch")
        # float16 on a GPU only when asked for: on an H200 it was slower than float32 for
        # Whisper base on short transmissions (20.6 s vs 9.4 s; scripts/check_cuda.py,
        # docs/benchmarks.md), so "auto" stays float32 here.
        self.fp16 = self.device == "cuda" and options.compute_type == "float16"
        self.model = load_openai_model(model_path, self.device)

    def _decode_with_repeat_ban(self, mel, options=None, **kwargs):
        """openai-whisper's decode() with RepeatBan added to its logit filters."""
        from dataclasses import replace

        from whisper.decoding import DecodingOptions, DecodingTask

        options = replace(options or DecodingOptions(), **kwargs)
        single = mel.ndim == 2
        if single:
            mel = mel.unsqueeze(0)
        task = DecodingTask(self.model, options)
        task.logit_filters.append(RepeatBan(task.sample_begin, task.tokenizer.eot,
                                            self.options.loop_retry_ngram, self.options.loop_retry_penalty))
        result = task.run(mel)
        return result[0] if single else result

    def _decode(self, audio: np.ndarray, task: str) -> list[dict]:
        opts = self.options
        segments = self._transcribe(audio, task, tuple(opts.temperatures))
        threshold = opts.compression_ratio_threshold
        retry = opts.loop_retry_ngram > 0 or opts.loop_retry_penalty != 1.0
        if retry and threshold is not None and _worst_ratio(segments) > threshold:
            # As the other engines do: a window that still loops after the configured
            # temperatures is decoded once more, deterministically (temperature 0), with
            # repeated n-grams forbidden / repeated tokens penalised, and kept when it repeats less.
            # transcribe() decodes each 30 s window through model.decode: for the retry this
            # model's decode is replaced on the instance (not on the Whisper class, so no
            # other model in the process changes) and restored after.
            self.model.decode = self._decode_with_repeat_ban
            try:
                again = self._transcribe(audio, task, (0.0,))
            finally:
                del self.model.decode
            if _worst_ratio(again) < _worst_ratio(segments):
                segments = again
        return segments

    def _transcribe(self, audio: np.ndarray, task: str, temperatures: tuple) -> list[dict]:
        import torch

        opts = self.options
        with torch.no_grad():
            result = self.model.transcribe(
                audio.astype(np.float32, copy=False),
                language=opts.language,
                task=task,
                # beam 1 is greedy decoding: openai-whisper's GreedyDecoder, not a beam of one
                beam_size=opts.beam_size if opts.beam_size > 1 else None,
                temperature=temperatures,
                compression_ratio_threshold=opts.compression_ratio_threshold,
                logprob_threshold=opts.log_prob_threshold,
                no_speech_threshold=opts.no_speech_threshold,
                condition_on_previous_text=opts.condition_on_previous_text,
                initial_prompt=prompt_text(opts),
                sample_len=max_new_tokens(opts, len(audio) / 16000, task),
                fp16=self.fp16,
                verbose=None,
            )
        return result["segments"]

    def transcribe(
        self, samples: np.ndarray, transmissions: Sequence[Transmission], sample_rate: int = 16000
    ) -> list[Line]:
        if sample_rate != 16000:
            raise ValueError("openai-whisper expects 16 kHz samples")
        lines: list[Line] = []
        for tx in transmissions:
            chunk = samples[int(tx.start * sample_rate) : int(tx.end * sample_rate)]
            if len(chunk) == 0:
                continue
            for seg in self._decode(chunk, "transcribe"):
                text = seg["text"].strip()
                if text:
                    lines.append(
                        clipped_line(
                            tx, seg["start"], seg["end"], text,
                            avg_logprob=seg["avg_logprob"],
                            no_speech_prob=seg["no_speech_prob"],
                            compression_ratio=seg["compression_ratio"],
                        )
                    )
        return lines

    def translate_audio(self, samples: np.ndarray, start: float, end: float, sample_rate: int = 16000) -> str:
        chunk = samples[int(start * sample_rate) : int(end * sample_rate)]
        if len(chunk) == 0:
            return ""
        return " ".join(seg["text"].strip() for seg in self._decode(chunk, "translate")).strip()


def _worst_ratio(segments: list[dict]) -> float:
    return max((seg["compression_ratio"] for seg in segments if seg["text"].strip()), default=0.0)
