"""Translation of recognised lines into English.

Translators fill ``Line.text_en`` in place. The Whisper translator re-decodes each line's
own stretch of audio with Whisper's translate task, so every English line belongs to exactly
one Farsi line; it needs the engine and the samples. ``none`` leaves lines untranslated.
"""
from __future__ import annotations

from typing import Optional, Protocol, Sequence

import numpy as np

from .types import Line

TRANSLATORS = ("whisper", "none")


class Translator(Protocol):
    name: str
    model: Optional[str]

    def translate(self, lines: Sequence[Line], samples: np.ndarray, sample_rate: int = 16000) -> None: ...


class NoTranslator:
    name = "none"
    model = None

    def translate(self, lines, samples, sample_rate=16000) -> None:
        return None


class WhisperTranslator:
    """Whisper's own translate task on the same model that transcribed the line."""

    name = "whisper"

    def __init__(self, engine):
        self.engine = engine
        self.model = engine.model_name

    def translate(self, lines: Sequence[Line], samples: np.ndarray, sample_rate: int = 16000) -> None:
        for line in lines:
            # Lines under 1 s are widened to 1 s of surrounding audio: Whisper returns nothing
            # or noise words for slivers shorter than that.
            start, end = line.start, line.end
            if end - start < 1.0:
                pad = (1.0 - (end - start)) / 2
                start, end = max(0.0, start - pad), end + pad
            line.text_en = self.engine.translate_audio(samples, start, end, sample_rate)


def make_translator(name: str, engine=None) -> Translator:
    if name == "none":
        return NoTranslator()
    if name == "whisper":
        if engine is None or not hasattr(engine, "translate_audio"):
            raise ValueError("the whisper translator needs a Whisper engine")
        return WhisperTranslator(engine)
    raise ValueError(f"unknown translator '{name}' (choose from: {', '.join(TRANSLATORS)})")
