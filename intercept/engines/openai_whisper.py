"""openai-whisper (PyTorch) engine: OpenAI's reference implementation.

Slower than faster-whisper on CPU, but it is the implementation every Whisper paper and
fine-tune is measured against, so analysts use it to check a doubtful line. It loads:

* a CTranslate2 Whisper directory (``model.bin``; the embedded base included): the same
  weights are rebuilt in memory by ``intercept.convert``, nothing is downloaded;
* an openai-whisper ``.pt`` checkpoint (``{"dims", "model_state_dict"}``), e.g. one written
  by ``intercept models convert --to openai-whisper``;
* a model name (``base``, ``large-v3``, ...): openai-whisper's own cache, then its download
  when online.

The decoding policy (token caps, loop retry, packing, clamping, evidence) is
intercept.engines.core's; this module adapts openai-whisper's calls to it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..models import ModelError, error_line
from ..types import Line, Transmission, Word
from .base import TranscribeOptions, beam_for, pack_options_for, resolve_device
from .core import (MAX_NEW_TOKENS, Candidate, Decoded, Decoder, DecoderMethods, Segment, split_at_timestamps,
                   wants_alternatives)


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


class OpenAIWhisperEngine(DecoderMethods):
    name = "openai-whisper"
    token_room = MAX_NEW_TOKENS  # core.WindowModel: hotwords and prompt are not counted here
    packs = False  # one transmission per window: packing is measured for faster-whisper only

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
        self.pack_options = pack_options_for(options)

    def decode(self, audio: np.ndarray, task: str, max_new_tokens: int, loop_retry: bool = False) -> Decoded:
        """core.WindowModel: openai-whisper's transcribe() over one window. Its decode step
        (model.decode, one call per 30 s window and temperature) is replaced on this model
        instance for the call (not on the Whisper class, so no other model in the process
        changes) by _Watch, which keeps the beam's finished candidates and, for the loop
        retry, adds RepeatBan to the logit filters."""
        watch = _Watch(self.model, self.options, loop_retry)
        self.model.decode = watch.decode
        try:
            # The loop retry is deterministic: temperature 0 only.
            segments = self._transcribe(audio, task, (0.0,) if loop_retry else tuple(self.options.temperatures),
                                        max_new_tokens)
        finally:
            del self.model.decode
        return watch.decoded(segments, len(audio))

    def _transcribe(self, audio: np.ndarray, task: str, temperatures: tuple, sample_len: int) -> list[dict]:
        import torch

        opts = self.options
        with torch.no_grad():
            result = self.model.transcribe(
                audio.astype(np.float32, copy=False),
                language=opts.language,
                task=task,
                # beam 1 is greedy decoding: openai-whisper's GreedyDecoder, not a beam of one
                beam_size=beam_for(opts, task) if beam_for(opts, task) > 1 else None,
                temperature=temperatures,
                compression_ratio_threshold=opts.compression_ratio_threshold,
                logprob_threshold=opts.log_prob_threshold,
                no_speech_threshold=opts.no_speech_threshold,
                condition_on_previous_text=opts.condition_on_previous_text,
                initial_prompt=prompt_text(opts),
                sample_len=sample_len,
                fp16=self.fp16,
                verbose=None,
            )
        return result["segments"]

    def transcribe(
        self, samples: np.ndarray, transmissions: Sequence[Transmission], sample_rate: int = 16000
    ) -> list[Line]:
        return Decoder(self, self.options, self.pack_options).transcribe(samples, transmissions, sample_rate)

    def score_window(self, audio: np.ndarray, texts: Sequence[str]) -> list[Optional[tuple[float, int]]]:
        """core.WindowModel: the window's mel padded as transcribe() pads it (zeros in log-mel
        space), encoded once, and each text teacher-forced through the decoder after the
        transcribe prompt without timestamps."""
        import torch
        from whisper.audio import N_FRAMES, N_SAMPLES, log_mel_spectrogram, pad_or_trim
        from whisper.tokenizer import get_tokenizer

        model = self.model
        tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages,
                                  language=self.options.language or "fa", task="transcribe")
        frames = min(N_FRAMES, len(audio) // 160)
        mel = log_mel_spectrogram(audio, model.dims.n_mels, padding=N_SAMPLES)[:, :frames]
        mel = pad_or_trim(mel, N_FRAMES).to(model.device)
        prompt = list(tokenizer.sot_sequence_including_notimestamps)
        out: list[Optional[tuple[float, int]]] = []
        with torch.no_grad():
            encoded = model.embed_audio((mel.half() if self.fp16 else mel)[None])
            for text in texts:
                ids = tokenizer.encode(" " + text.strip()) if text.strip() else []
                if not ids:
                    out.append(None)
                    continue
                tokens = torch.tensor([prompt + ids[:-1]], device=model.device)
                logprobs = torch.log_softmax(model.logits(tokens, encoded)[0].float(), dim=-1)
                targets = torch.tensor(ids, device=model.device)
                picked = logprobs[len(prompt) - 1:].gather(1, targets[:, None])
                out.append((float(picked.sum()), len(ids)))
        return out


class _Watch:
    """openai-whisper's decode step with the recogniser's evidence kept: the candidates its
    decoder finished (BeamSearchDecoder keeps up to beam_size, with their summed
    log-probabilities, and DecodingTask keeps only the best after ranking them), the
    padded mel of each window for the word alignment afterwards."""

    def __init__(self, model, options: TranscribeOptions, loop_retry: bool):
        self.model = model
        self.options = options
        self.loop_retry = loop_retry
        self.calls: list[dict] = []

    def decode(self, mel, options=None, **kwargs):
        from dataclasses import replace

        from whisper.decoding import DecodingOptions, DecodingTask

        options = replace(options or DecodingOptions(), **kwargs)
        single = mel.ndim == 2
        if single:
            mel = mel.unsqueeze(0)
        task = DecodingTask(self.model, options)
        if self.loop_retry:
            task.logit_filters.append(RepeatBan(task.sample_begin, task.tokenizer.eot,
                                                self.options.loop_retry_ngram, self.options.loop_retry_penalty))
        ranker, seen = task.sequence_ranker, {}

        class Keep:  # the ranker, keeping what it was asked to rank
            def rank(self, tokens, sum_logprobs):
                seen.update(tokens=tokens, sum_logprobs=sum_logprobs)
                return ranker.rank(tokens, sum_logprobs)

        task.sequence_ranker = Keep()
        result = task.run(mel)
        if single and seen:
            best = result[0]
            candidates = sorted(
                zip([t.tolist() for t in seen["tokens"][0]], seen["sum_logprobs"][0]),
                key=lambda c: (c[0] != best.tokens, -_ranked(c[1], len(c[0]), options.length_penalty)))
            self.calls.append({"mel": mel[0], "tokens": list(best.tokens), "avg_logprob": best.avg_logprob,
                               "temperature": best.temperature, "candidates": candidates,
                               "tokenizer": task.tokenizer})
        return result[0] if single else result

    def decoded(self, segments: list[dict], samples: int) -> Decoded:
        from whisper.audio import HOP_LENGTH, N_FRAMES, SAMPLE_RATE as RATE

        content_frames = samples // HOP_LENGTH
        chosen: dict[int, int] = {}  # call -> index in nbest
        nbest: list[list[Candidate]] = []
        out: list[Segment] = []
        groups: dict[int, list[tuple[dict, Segment]]] = {}
        for seg in segments:
            call = self._call_of(seg)
            piece = Segment(start=seg["start"], end=seg["end"], text=seg["text"], avg_logprob=seg["avg_logprob"],
                            no_speech_prob=seg["no_speech_prob"], compression_ratio=seg["compression_ratio"])
            out.append(piece)
            if call is None:
                continue
            groups.setdefault(call, []).append((seg, piece))
            if call not in chosen and wants_alternatives(self.options):
                chosen[call] = len(nbest)
                nbest.append(self._candidates(self.calls[call], seg["seek"], content_frames))
            piece.decode = chosen.get(call)
        if self.options.word_evidence:
            for call, members in groups.items():
                seek = members[0][0]["seek"]
                size = min(N_FRAMES, content_frames - seek)
                words = self._words(self.calls[call], [seg for seg, _ in members], size, seek * HOP_LENGTH / RATE)
                for (_seg, piece), found in zip(members, words):
                    piece.words = found
        return Decoded(out, nbest)

    def _call_of(self, seg: dict) -> Optional[int]:
        """The decode call a segment of transcribe() came from: the one whose best tokens
        hold the segment's tokens, at its temperature and average log-probability."""
        tokens = seg["tokens"]
        if not tokens:
            return None
        for i in range(len(self.calls) - 1, -1, -1):
            call = self.calls[i]
            if (call["temperature"] == seg["temperature"] and abs(call["avg_logprob"] - seg["avg_logprob"]) < 1e-9
                    and _holds(call["tokens"], tokens)):
                return i
        return None

    def _candidates(self, call: dict, seek: int, content_frames: int) -> list[Candidate]:
        from whisper.audio import HOP_LENGTH, N_FRAMES, SAMPLE_RATE as RATE

        tokenizer = call["tokenizer"]
        offset = seek * HOP_LENGTH / RATE
        duration = min(N_FRAMES, content_frames - seek) * HOP_LENGTH / RATE
        out = []
        for tokens, sum_logprob in call["candidates"][:wants_alternatives(self.options)]:
            pieces = split_at_timestamps(tokens, tokenizer.timestamp_begin, offset, duration)
            out.append(Candidate(
                tuple((start, end, tokenizer.decode([t for t in piece if t < tokenizer.eot]))
                      for start, end, piece in pieces),
                sum_logprob / (len(tokens) + 1), len(tokens) + 1))
        return out

    def _words(self, call: dict, segments: list[dict], num_frames: int, offset: float) -> list[list[Word]]:
        """Words of the segments of one window: openai-whisper's own alignment
        (whisper.timing.add_word_timestamps) on copies, so the segments keep their times."""
        from whisper.timing import add_word_timestamps

        copies = [dict(seg, tokens=list(seg["tokens"])) for seg in segments]
        add_word_timestamps(segments=copies, model=self.model, tokenizer=call["tokenizer"], mel=call["mel"],
                            num_frames=num_frames, last_speech_timestamp=offset)
        return [[Word(w["word"], w["start"], w["end"], w["probability"]) for w in copy.get("words") or []]
                for copy in copies]


def _ranked(sum_logprob: float, length: int, length_penalty: Optional[float]) -> float:
    """openai-whisper's MaximumLikelihoodRanker score."""
    penalty = length if length_penalty is None else ((5 + length) / 6) ** length_penalty
    return sum_logprob / max(penalty, 1e-9)


def _holds(tokens: list[int], part: list[int]) -> bool:
    n = len(part)
    return any(tokens[i:i + n] == part for i in range(len(tokens) - n + 1))
