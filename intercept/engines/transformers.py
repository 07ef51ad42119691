"""transformers (PyTorch) engine: any Whisper fine-tune from the Hugging Face ecosystem, and
wav2vec2-style CTC models (several Persian ones exist), on the same interface.

It loads:

* a CTranslate2 Whisper directory (``model.bin``; the embedded base included): the same
  weights are rebuilt in memory by ``intercept.convert``, nothing is downloaded;
* a transformers directory (``config.json`` + weights + tokenizer/processor files), e.g. one
  written by ``intercept models convert --to transformers`` or copied from the hub;
* a hub id (``openai/whisper-large-v3``, a Persian fine-tune): the local hub cache first, a
  download only when online.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..models import ModelError, error_line
from ..types import Hypothesis, Line, Transmission
from .base import TranscribeOptions, beam_for, pack_options_for, resolve_device
from .core import MAX_NEW_TOKENS, Decoded, Decoder, DecoderMethods, Segment, compression_ratio
from .openai_whisper import prompt_text

_WINDOW_SECONDS = 30.0  # Whisper's input window; longer audio takes transformers' long-form path


def load_transformers_model(model_path: str, device: str = "cpu"):
    """(model, processor, kind) with kind "whisper" or "ctc", in float32."""
    import torch
    from transformers import AutoConfig, AutoModelForCTC, AutoProcessor, WhisperForConditionalGeneration, WhisperProcessor

    path = Path(model_path).expanduser()
    if path.is_dir() and (path / "model.bin").is_file():
        from ..convert import load_hf_whisper

        model, processor = load_hf_whisper(path)
        return model.to(device), processor, "whisper"
    if path.exists() and not path.is_dir():
        raise ModelError(f"{path} is a file; the transformers engine needs a model directory or a hub id")
    source = str(path) if path.is_dir() else str(model_path)

    def load(local_only: bool):
        config = AutoConfig.from_pretrained(source, local_files_only=local_only)
        if config.model_type == "whisper":
            model = WhisperForConditionalGeneration.from_pretrained(
                source, dtype=torch.float32, local_files_only=local_only
            )
            return model, WhisperProcessor.from_pretrained(source, local_files_only=local_only), "whisper"
        if any(a.endswith("ForCTC") for a in (config.architectures or [])):
            model = AutoModelForCTC.from_pretrained(source, dtype=torch.float32, local_files_only=local_only)
            return model, AutoProcessor.from_pretrained(source, local_files_only=local_only), "ctc"
        raise ModelError(
            f"model '{model_path}' is a {config.model_type} model; the transformers engine runs Whisper "
            f"or CTC (wav2vec2-style) speech recognisers"
        )

    try:
        model, processor, kind = load(local_only=True)
    except ModelError:
        raise
    except Exception as exc:
        if path.is_dir():
            raise ModelError(f"{path} is not a loadable transformers model ({error_line(exc)})") from None
        try:
            model, processor, kind = load(local_only=False)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(
                f"transformers model '{model_path}' is not a local directory, not in the hub cache, and could not "
                f"be downloaded ({error_line(exc)})"
            ) from None
    return model.to(device).eval(), processor, kind


class TransformersEngine(DecoderMethods):
    name = "transformers"
    token_room = MAX_NEW_TOKENS  # core.WindowModel
    packs = False  # one transmission per window: packing is measured for faster-whisper only

    def __init__(self, model_path: str, model_name: str, options: TranscribeOptions):
        self.model_name = model_name
        self.options = options
        if options.cpu_threads > 0:
            import torch

            torch.set_num_threads(options.cpu_threads)  # per process, as faster-whisper's setting
        self.device = resolve_device(options.device, self.name, "torch")
        self.model, self.processor, self.kind = load_transformers_model(model_path, self.device)
        if self.device == "cuda" and options.compute_type == "float16":
            # Only when asked for ("auto" stays float32): slower than float32 on an H200 for
            # Whisper base (23.2 s vs 16.7 s; scripts/check_cuda.py). Inputs follow the dtype.
            self.model = self.model.half()
        self.pack_options = pack_options_for(options)

    # -- Whisper -------------------------------------------------------------------------
    def decode(self, audio: np.ndarray, task: str, max_new_tokens: int, loop_retry: bool = False) -> Decoded:
        """core.WindowModel: transformers' Whisper generate over one window. No evidence:
        its generate expands num_return_sequences into that many separate decodes (no N-best
        of one beam), and keeps no token scores under beam search, so words and alternatives
        stay None (unknown)."""
        import torch

        opts = self.options
        audio = audio.astype(np.float32, copy=False)
        long_form = len(audio) / 16000 > _WINDOW_SECONDS
        features = self.processor.feature_extractor(
            audio, sampling_rate=16000, return_tensors="pt", return_attention_mask=True,
            truncation=False, padding="longest",
        )
        if not long_form:
            # openai-whisper and faster-whisper pad a short input with zeros in log-mel space,
            # transformers pads the audio with silence before the mel; on a 1-2 s transmission
            # that alone changed the text (a loop instead of the line), so pad as the others do.
            frames = features.input_features.shape[-1]
            window = self.processor.feature_extractor.nb_max_frames
            features["input_features"] = torch.nn.functional.pad(features.input_features, (0, window - frames))
            features["attention_mask"] = torch.ones(1, window, dtype=features.attention_mask.dtype)
        temperatures = tuple(opts.temperatures)
        kwargs = {}
        if loop_retry:
            # Deterministic, with repeated n-grams forbidden / repeated tokens penalised.
            kwargs["do_sample"] = False
            if opts.loop_retry_ngram > 0:
                kwargs["no_repeat_ngram_size"] = opts.loop_retry_ngram
            if opts.loop_retry_penalty != 1.0:
                kwargs["repetition_penalty"] = opts.loop_retry_penalty
        elif len(temperatures) > 1:
            # transformers only falls back to the next temperature when given thresholds:
            # the same ones as the other engines (TranscribeOptions).
            kwargs.update(temperature=temperatures, compression_ratio_threshold=opts.compression_ratio_threshold,
                          logprob_threshold=opts.log_prob_threshold, do_sample=False)
        elif temperatures and temperatures[0] > 0:
            kwargs.update(temperature=temperatures[0], do_sample=True)
        else:
            kwargs.update(do_sample=False)
        prompt = prompt_text(opts)
        if prompt:
            kwargs["prompt_ids"] = torch.as_tensor(self.processor.get_prompt_ids(prompt))
        if long_form:
            kwargs["condition_on_prev_tokens"] = opts.condition_on_previous_text
        segments = self._generate(features, task, max_new_tokens, kwargs)
        return Decoded([Segment(seg["start"], seg["end"], seg["text"], avg_logprob=seg["avg_logprob"],
                                compression_ratio=compression_ratio(seg["text"])) for seg in segments])

    def _generate(self, features, task: str, max_new_tokens: int, kwargs: dict) -> list[dict]:
        import torch

        opts = self.options
        with torch.no_grad():
            out = self.model.generate(
                features.input_features.to(self.model.device, self.model.dtype),
                attention_mask=features.attention_mask.to(self.model.device),
                language=opts.language,
                task=task,
                num_beams=max(1, beam_for(opts, task)),
                # Whisper's generate adds the prompt's length to max_length itself, so this caps the
                # new tokens as max_new_tokens would, without transformers' warning on every call
                # that both are set (the model's generation config always holds a max_length).
                max_length=max_new_tokens,
                return_timestamps=True,
                return_segments=True,
                return_dict_in_generate=True,
                output_scores=True,  # for avg_logprob, which intercept's guards read
                **kwargs,
            )
        segments = []
        for seg in out["segments"][0]:
            text = self.processor.tokenizer.decode(seg["tokens"], skip_special_tokens=True)
            segments.append(
                {"start": float(seg["start"]), "end": float(seg["end"]), "text": text,
                 "avg_logprob": self._avg_logprob(seg)}
            )
        return segments

    @staticmethod
    def _avg_logprob(seg: dict) -> Optional[float]:
        """Mean log-probability of the segment's tokens, from the scores transformers keeps in
        ``seg["result"]``; None when this generation path kept none (beam search)."""
        import torch

        result = seg.get("result")
        scores = result.get("scores") if isinstance(result, dict) else None
        first, last = seg.get("idxs", (None, None))
        if not scores or first is None:
            return None
        sequence = result["sequences"]
        offset = len(sequence) - len(scores)  # scores start after the forced decoder prompt
        picked = []
        for position in range(first, last):
            step = position - offset
            if 0 <= step < len(scores):
                logprobs = torch.log_softmax(scores[step].float().reshape(-1), dim=-1)
                picked.append(float(logprobs[int(sequence[position])]))
        return sum(picked) / len(picked) if picked else None

    # -- CTC (wav2vec2 and kin) ------------------------------------------------------------
    def _ctc_text(self, audio: np.ndarray) -> tuple[str, float]:
        import torch

        inputs = self.processor(audio, sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            logits = self.model(inputs.input_values.to(self.model.device, self.model.dtype)).logits[0]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        best = logprobs.max(dim=-1)
        text = self.processor.decode(best.indices.tolist())
        return text.strip(), float(best.values.mean())

    def transcribe(
        self, samples: np.ndarray, transmissions: Sequence[Transmission], sample_rate: int = 16000
    ) -> list[Line]:
        decoder = Decoder(self, self.options, self.pack_options)
        if self.kind != "ctc":
            return decoder.transcribe(samples, transmissions, sample_rate)
        if sample_rate != 16000:
            raise ValueError("the transformers engine expects 16 kHz samples")
        lines: list[Line] = []
        for tx in transmissions:
            chunk = samples[int(tx.start * sample_rate) : int(tx.end * sample_rate)].astype(np.float32, copy=False)
            if len(chunk) == 0:
                continue
            # CTC models give no segment timestamps here: one line per transmission.
            text, avg_logprob = self._ctc_text(chunk)
            lines.extend(decoder.lines_in(
                Decoded([Segment(0.0, tx.duration, text, avg_logprob=avg_logprob,
                                 compression_ratio=compression_ratio(text))]), tx))
        return lines

    def score_texts(self, samples: np.ndarray, start: float, end: float, texts: Sequence[str],
                    sample_rate: int = 16000) -> list[Optional[Hypothesis]]:
        if self.kind == "ctc":
            return [None] * len(texts)  # a CTC model has no decoder to score a given text with
        return super().score_texts(samples, start, end, texts, sample_rate)

    def score_window(self, audio: np.ndarray, texts: Sequence[str]) -> list[Optional[tuple[float, int]]]:
        """core.WindowModel: the window's features padded as decode() pads them, and each text
        teacher-forced through the decoder after the transcribe prompt without timestamps."""
        import torch

        tokenizer = self.processor.tokenizer
        features = self.processor.feature_extractor(audio.astype(np.float32, copy=False), sampling_rate=16000,
                                                    return_tensors="pt", truncation=False,
                                                    padding="longest").input_features
        window = self.processor.feature_extractor.nb_max_frames
        features = torch.nn.functional.pad(features[..., :window], (0, max(0, window - features.shape[-1])))
        language = self.options.language or "fa"
        prompt = tokenizer.convert_tokens_to_ids(["<|startoftranscript|>", f"<|{language}|>", "<|transcribe|>",
                                                  "<|notimestamps|>"])
        out: list[Optional[tuple[float, int]]] = []
        with torch.no_grad():
            encoded = self.model.get_encoder()(features.to(self.model.device, self.model.dtype))
            for text in texts:
                ids = tokenizer.encode(" " + text.strip(), add_special_tokens=False) if text.strip() else []
                if not ids:
                    out.append(None)
                    continue
                decoder_ids = torch.tensor([prompt + ids[:-1]], device=self.model.device)
                logits = self.model(encoder_outputs=encoded, decoder_input_ids=decoder_ids).logits[0]
                logprobs = torch.log_softmax(logits.float(), dim=-1)
                picked = logprobs[len(prompt) - 1:].gather(1, torch.tensor(ids, device=logits.device)[:, None])
                out.append((float(picked.sum()), len(ids)))
        return out

    def translate_audio(self, samples: np.ndarray, start: float, end: float, sample_rate: int = 16000) -> str:
        if self.kind == "ctc":
            raise ValueError(f"{self.model_name} is a CTC recogniser and cannot translate; use --translator none")
        return super().translate_audio(samples, start, end, sample_rate)

    def translate_spans(self, samples: np.ndarray, spans: Sequence[Transmission], sample_rate: int = 16000) -> list[str]:
        return [self.translate_audio(samples, tx.start, tx.end, sample_rate) for tx in spans]
