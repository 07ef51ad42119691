"""The dataclasses that travel between pipeline stages.

They live here, not in the stage that makes them, so that no stage imports another
sideways: audio -> segment -> engines -> text -> translate -> lexicon -> store each take
and return these plain values.
"""
from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Word:
    """One recognised word with the recogniser's probability for it (the mean probability
    of its tokens). Times are seconds from the start of the original file."""

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Hypothesis:
    """One of the beam's N-best texts for a line.

    avg_logprob is per token of the decoded sequence this hypothesis came from and tokens
    that sequence's number of text tokens, so avg_logprob * tokens is its log-probability.
    Whisper scores a whole window: in a window that held several lines (a packed window, or
    a transmission of several segments) every line's hypothesis i carries the score of the
    window's hypothesis i, and two hypotheses that differ only in another line give this
    line the same text twice (their shares add up)."""

    text: str
    avg_logprob: float
    tokens: int

    @property
    def logprob(self) -> float:
        return self.avg_logprob * self.tokens


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
    # Recogniser evidence (intercept.engines.core). None always means "this engine could not
    # give it", never a made-up number.
    words: Optional[list[Word]] = None
    alternatives: Optional[list[Hypothesis]] = None  # N-best, best first; [0].text == text
    confidence: Optional[float] = None  # mean word probability, else exp(avg_logprob)


@dataclass(frozen=True)
class Flag:
    """A lexicon hit on one line. span_start/span_end index into the text that was matched
    (normalised Farsi for Farsi kinds, the English line for kind 'english')."""

    concept: str
    category: str
    kind: str  # exact, morph, fuzzy, pattern, english, alternative
    score: float
    span_start: int
    span_end: int
    matched: str
    severity: str = "medium"
    term: str = ""  # the lexicon form that matched
    # How likely the matched form means the concept at all, before any recogniser evidence
    # (intercept.lexicon: lower for a form one sound-alike letter from a much commoner word,
    # or a verb form shared with another common verb), and why; None when not given. Right
    # after term: the lexicon passes them by position.
    prior: Optional[float] = None
    prior_reason: Optional[str] = None
    # Evidence behind the flag (filled by the scorer; None: unknown). score above is what the
    # review queue sorts by; match_score keeps the text-match score it was computed from.
    match_score: Optional[float] = None
    word_prob: Optional[float] = None
    nbest_share: Optional[float] = None
    hypothesis: Optional[str] = None  # kind "alternative": the hypothesis text span indexes into
    scorer_version: Optional[str] = None
    # intercept.acoustic: log-probability (nats) the recogniser gives the line with the lexicon
    # form in place of the matched words, minus the line as written (0.0 for exact, morph and
    # pattern flags, which hold the form as written; None: not checked).
    acoustic_margin: Optional[float] = None
