"""Guards against Whisper's known failure modes.

A guarded line is marked ``suspect`` with the reason and kept: reviewers decide, and a
deleted line could be the one that mattered. The Farsi checks read the normalised text
(``Line.text_fa``; the raw text only when a line has none), so Arabic-letter variants of a
known phrase (زيرنويس with Arabic ي) are caught like the Persian spelling.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from .types import Line

DEFAULT_PHRASES = Path(__file__).resolve().parent.parent / "lexicons" / "hallucinations.txt"


@dataclass
class GuardOptions:
    max_compression_ratio: float = 2.4  # Whisper's own threshold for repetitive output
    no_speech_prob: float = 0.6  # together with a low log-probability: probably no speech
    low_logprob: float = -1.0
    # A word n-gram (n=1..4) repeated this many times in a row is a decoding loop.
    max_repeats: int = 4
    phrases_path: Optional[Path] = None


def load_phrases(path: Optional[Path] = None, normalize: Optional[Callable[[str], str]] = None) -> list[str]:
    """Known hallucinated phrases, one a line, '#' comments; compared lower-cased, and
    normalised by `normalize` (the text stage's) when given, as the lines they are found in."""
    path = Path(path) if path else DEFAULT_PHRASES
    if not path.is_file():
        return []
    phrases = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            phrases.append(_fold(normalize(line) if normalize else line))
    return phrases


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u200c", " ")).strip().lower()


def repeated_ngram(words: Sequence[str], max_repeats: int) -> Optional[str]:
    """The first n-gram (n <= 4) that repeats at least max_repeats times back to back."""
    for n in range(1, 5):
        for start in range(0, len(words) - n * max_repeats + 1):
            gram = words[start : start + n]
            count = 1
            pos = start + n
            while words[pos : pos + n] == gram:
                count += 1
                pos += n
            if count >= max_repeats:
                return " ".join(gram)
    return None


class Guards:
    """Marks suspect lines in place; returns the reasons it found, for the summary."""

    def __init__(self, options: Optional[GuardOptions] = None, normalize: Optional[Callable[[str], str]] = None):
        self.options = options or GuardOptions()
        self.phrases = load_phrases(self.options.phrases_path, normalize)

    def reasons(self, line: Line) -> list[str]:
        o = self.options
        found = []
        if line.compression_ratio is not None and line.compression_ratio > o.max_compression_ratio:
            found.append(f"repetitive text (compression ratio {line.compression_ratio:.1f})")
        if (
            line.no_speech_prob is not None
            and line.avg_logprob is not None
            and line.no_speech_prob > o.no_speech_prob
            and line.avg_logprob < o.low_logprob
        ):
            found.append(f"probably no speech (no_speech {line.no_speech_prob:.2f}, logprob {line.avg_logprob:.2f})")
        farsi = line.text_fa or line.text
        loop = repeated_ngram(farsi.split(), o.max_repeats)
        if loop:
            found.append(f"decoding loop ('{loop}' repeated)")
        loop_en = repeated_ngram(re.findall(r"[\w']+", line.text_en.lower()), o.max_repeats)
        if loop_en:
            found.append(f"translation loop ('{loop_en}' repeated)")
        folded = _fold(farsi) + "\n" + _fold(line.text_en)
        for phrase in self.phrases:
            if phrase in folded:
                found.append(f"known hallucinated phrase ('{phrase}')")
                break
        return found

    def mark(self, lines: Iterable[Line]) -> None:
        for line in lines:
            reasons = self.reasons(line)
            line.suspect = "; ".join(reasons) if reasons else None
