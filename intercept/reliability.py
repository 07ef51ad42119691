"""How far to trust a line's English: the one rule the review page and every export share.

    reliability = english_reliability(line)      # line: a mapping of a stored lines row
    reliability.label                            # "reliable" | "unreliable" | "unknown"

Whisper translates garbled Farsi into fluent English ("I will not let you down, I will not let
you down"), so English is only as good as the recognition under it. The English of a line is
**unreliable** when

- a guard marked the line (`lines.suspect`: a repetition loop, speech too fast, ...), or
- its recognition is weak: the line's confidence is below the weak level.

The line's confidence is `lines.confidence` (the recogniser's mean word probability, stored since
the flag-evidence migration); below WEAK_CONFIDENCE (0.51) the English is unreliable. That level
was fitted on real Persian speech (scripts/fit_reliability.py: the confidence that best tells
clips whose character error rate is above 0.5 from the rest, fitted on the dev part and checked
on held-out speakers and sentences; docs/benchmarks.md): it catches about two thirds of the
weakly recognised lines and also marks about a third to two fifths of the better ones, since
Whisper base's English for Farsi is weak nearly everywhere. Whisper's own failure level,
exp(-1) = 0.37, caught only one in ten. A line stored without word probabilities falls back to
exp(avg_logprob) (the window's mean token log-probability) against Whisper's own
`log_prob_threshold`, WEAK_LOGPROB = -1. With neither score nor a guard mark the English is
**unknown**; a line without English has no reliability (None).

A corrected line's English (`lines.text_en_from`, intercept.corrections) is **reliable** when a
reviewer typed it or a text translator made it from the reviewer's Farsi (unless a guard marked
it), and **unreliable** when it is the old English, made from the uncorrected text.

Whisper sometimes "translates" by writing the Farsi in Latin letters ("Begoo Shambhya Begoo"):
that English is never **reliable**. A transliteration is English of at least two words of which
at least half are not English words (ROMANISED_SHARE): not among the words that occur at least
ENGLISH_MIN_FREQUENCY times in pyspellchecker's English word frequencies (OpenSubtitles counts;
romanised Farsi such as "begoo", "khoda", "salam", "agha" falls well below it). Such English is
unreliable whatever the confidence.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

WEAK_LOGPROB = -1.0  # Whisper's log_prob_threshold, for lines without word probabilities
WEAK_CONFIDENCE = 0.51  # mean word probability; fitted by scripts/fit_reliability.py
LABELS = ("reliable", "unreliable", "unknown")
UNRELIABLE_MARKER = "[unreliable] "  # put before unreliable English in subtitles
ROMANISED_SHARE = 0.5  # this share or more of the English words unknown to English: a transliteration
ENGLISH_MIN_FREQUENCY = 1000  # occurrences in pyspellchecker's English counts to be an English word
LATIN_WORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class Reliability:
    label: str  # one of LABELS
    reason: str  # why, in a few words, for a tooltip or an export column
    confidence: Optional[float]  # the line's confidence in [0, 1], None when unknown

    @property
    def unreliable(self) -> bool:
        return self.label == "unreliable"


def line_confidence(line: Mapping[str, Any]) -> Optional[float]:
    """The recogniser's confidence for a line in [0, 1]: `confidence` when stored, else
    exp(avg_logprob); None when neither is known."""
    confidence = line.get("confidence")
    if confidence is not None:
        return float(confidence)
    avg_logprob = line.get("avg_logprob")
    if avg_logprob is None:
        return None
    return min(1.0, math.exp(float(avg_logprob)))


@functools.lru_cache(maxsize=1)
def _english_counts():
    # A spell checker's word counts are a ready English dictionary with frequencies (loaded once,
    # about a second); only the counts are used, never its corrections.
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1).word_frequency


def romanised_share(text: str) -> Optional[float]:
    """The share of `text`'s Latin words that are not English words; None under two words."""
    words = [word.lower() for word in LATIN_WORD.findall(text or "")]
    if len(words) < 2:
        return None
    counts = _english_counts()
    unknown = sum(1 for word in words if counts[word] < ENGLISH_MIN_FREQUENCY)
    return unknown / len(words)


def is_transliteration(text: str) -> bool:
    """Whether `text` is Farsi written in Latin letters rather than an English translation."""
    share = romanised_share(text)
    return share is not None and share >= ROMANISED_SHARE


def english_reliability(line: Mapping[str, Any]) -> Optional[Reliability]:
    """How far to trust the line's English (None when it has none). `line` needs text_en and
    whichever of confidence, avg_logprob and suspect the store has."""
    if not (line.get("text_en") or "").strip():
        return None
    confidence = line_confidence(line)
    # A corrected line (intercept.corrections): its English's source decides first.
    made_from = line.get("text_en_from")
    if made_from == "reviewer":
        return Reliability("reliable", "typed by a reviewer", confidence)
    if made_from == "uncorrected_fa":
        return Reliability("unreliable", "made from the uncorrected text: the Farsi was corrected since", confidence)
    suspect = (line.get("suspect") or "").strip()
    if suspect:
        return Reliability("unreliable", f"a guard marked the line: {suspect}", confidence)
    if made_from == "corrected_fa":
        return Reliability("reliable", "translated from a reviewer's Farsi", confidence)
    if is_transliteration(line.get("text_en") or ""):
        return Reliability("unreliable", "romanised Farsi (a transliteration), not a translation", confidence)
    if confidence is None:
        return Reliability("unknown", "no recognition score stored", None)
    # Word probabilities and exp(avg_logprob) are on different scales: each has its own level.
    weak = WEAK_CONFIDENCE if line.get("confidence") is not None else math.exp(WEAK_LOGPROB)
    if confidence < weak:
        return Reliability("unreliable", f"weak recognition: confidence {confidence:.2f} < {weak:.2f}", confidence)
    return Reliability("reliable", f"confidence {confidence:.2f}", confidence)
