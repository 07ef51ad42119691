"""faster-whisper (CTranslate2) engine: the default, fastest on CPU."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..types import Line, Transmission
from . import TranscribeOptions


class FasterWhisperEngine:
    name = "faster-whisper"

    def __init__(self, model_path: str, model_name: str, options: TranscribeOptions):
        from faster_whisper import WhisperModel

        self.model_name = model_name
        self.options = options
        self.model = WhisperModel(
            str(model_path),
            device=options.device,
            compute_type=options.compute_type,
            cpu_threads=options.cpu_threads,
        )

    def _decode(self, audio: np.ndarray, task: str):
        opts = self.options
        duration = len(audio) / 16000
        rate = opts.tokens_per_second if task == "transcribe" else opts.translate_tokens_per_second
        segments, _info = self.model.transcribe(
            audio,
            language=opts.language,
            task=task,
            beam_size=opts.beam_size,
            temperature=list(opts.temperatures),
            condition_on_previous_text=opts.condition_on_previous_text,
            initial_prompt=opts.initial_prompt,
            hotwords=opts.hotwords,
            max_new_tokens=min(440, int(rate * duration) + 20),
            vad_filter=False,  # transmissions are already cut by intercept.segment
        )
        return list(segments)

    def transcribe(
        self, samples: np.ndarray, transmissions: Sequence[Transmission], sample_rate: int = 16000
    ) -> list[Line]:
        if sample_rate != 16000:
            raise ValueError("faster-whisper expects 16 kHz samples")
        lines: list[Line] = []
        for tx in transmissions:
            first = int(tx.start * sample_rate)
            chunk = samples[first : int(tx.end * sample_rate)]
            if len(chunk) == 0:
                continue
            for seg in self._decode(chunk, "transcribe"):
                text = seg.text.strip()
                if not text:
                    continue
                # Whisper's timestamps can run past the audio it was given; keep every line
                # inside its transmission so playback and ordering stay right.
                start = min(max(tx.start + seg.start, tx.start), tx.end)
                end = min(max(tx.start + seg.end, start), tx.end)
                lines.append(
                    Line(
                        start=round(start, 3),
                        end=round(end, 3),
                        text=text,
                        transmission_idx=tx.idx,
                        avg_logprob=seg.avg_logprob,
                        no_speech_prob=seg.no_speech_prob,
                        compression_ratio=seg.compression_ratio,
                    )
                )
        return lines

    def translate_audio(self, samples: np.ndarray, start: float, end: float, sample_rate: int = 16000) -> str:
        chunk = samples[int(start * sample_rate) : int(end * sample_rate)]
        if len(chunk) == 0:
            return ""
        return " ".join(seg.text.strip() for seg in self._decode(chunk, "translate")).strip()
