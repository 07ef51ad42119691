"""The dataclasses that travel between pipeline stages.

They live here, not in the stage that makes them, so that no stage imports another
sideways: audio -> segment -> engines -> text -> translate -> lexicon -> store each take
and return these plain values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Transmission:
    """One push-to-talk transmission: a stretch of the original recording, in seconds."""

    idx: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Line:
    """One recognised line of speech. Times are seconds from the start of the original file."""

    start: float
    end: float
    text: str  # raw recogniser output (Farsi)
    transmission_idx: int = 0
    avg_logprob: Optional[float] = None
    no_speech_prob: Optional[float] = None
    compression_ratio: Optional[float] = None
    text_fa: str = ""  # normalised Farsi (text stage)
    text_en: str = ""  # English (translate stage)
    suspect: Optional[str] = None  # why this line may be a recognition artefact; never deleted


@dataclass(frozen=True)
class Flag:
    """A lexicon hit on one line. span_start/span_end index into the text that was matched
    (normalised Farsi for Farsi kinds, the English line for kind 'english')."""

    concept: str
    category: str
    kind: str  # exact, morph, fuzzy, pattern, english
    score: float
    span_start: int
    span_end: int
    matched: str
    severity: str = "medium"
    term: str = ""  # the lexicon form that matched
    # How likely the matched form means the concept at all, before any recogniser evidence
    # (intercept.lexicon: lower for a form one sound-alike letter from a much commoner word,
    # or a verb form shared with another common verb), and why; None when not given.
    prior: Optional[float] = None
    prior_reason: Optional[str] = None
