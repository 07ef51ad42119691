"""What every matcher shares: kinds and their scores, match options, a tokenised line, and the
flag helpers (one flag per concept and span, the weakest part's prior for a pattern)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple, Optional, Sequence

from intercept.text import ZWNJ, PersianTokenizer, Token
from intercept.types import Flag

KINDS = ("exact", "morph", "fuzzy", "pattern", "english")
# Higher wins when two flags of one concept cover the same span.
KIND_STRENGTH = {"exact": 5, "morph": 4, "english": 3, "pattern": 2, "fuzzy": 1}

SCORE_EXACT = 1.0
SCORE_MORPH = 0.9
SCORE_ENGLISH = 0.9
FUZZY_SCORE_SCALE = 0.85  # fuzzy score = similarity * this, so a fuzzy hit never outranks a morph one
EITHER_PATTERN_SCALE = 0.9  # pattern score = weakest part * this
COOCCURRENCE_SCALE = 0.7


@dataclass(frozen=True)
class MatchOptions:
    """What match() does beyond exact and morphological matching."""

    fuzzy: bool = True
    fuzzy_threshold: Optional[float] = None  # overrides every file's fuzzy_threshold when set
    fuzzy_context_margin: Optional[float] = None  # overrides every file's fuzzy_context_margin when set
    english: bool = True
    patterns: bool = True

    def __post_init__(self) -> None:
        if self.fuzzy_threshold is not None and not 0.0 < self.fuzzy_threshold <= 1.0:
            raise ValueError(f"fuzzy_threshold must be in (0, 1], got {self.fuzzy_threshold}")
        if self.fuzzy_context_margin is not None and not 0.0 <= self.fuzzy_context_margin <= 0.5:
            raise ValueError(f"fuzzy_context_margin must be in [0, 0.5], got {self.fuzzy_context_margin}")


class TokenizedLine(NamedTuple):
    """A normalised Farsi line, its words with offsets, and each word's lookup key (ZWNJ dropped):
    tokenised once, read by every Farsi matcher. A NamedTuple: made once per line, cheaply."""

    text: str
    tokens: list[Token]
    keys: list[str]

    @classmethod
    def of(cls, text: str, tokenizer: Optional[PersianTokenizer] = None) -> "TokenizedLine":
        tokens = (tokenizer or PersianTokenizer()).spans(text)
        return cls(text, tokens, [t.text.replace(ZWNJ, "") for t in tokens])


def make_flag(concept, kind: str, score: float, start: int, end: int, text: str, form: str,
              prior: tuple[float, Optional[str]]) -> Flag:
    return Flag(concept.id, concept.category, kind, score, start, end, text[start:end], concept.severity, form, *prior)


def weakest_prior(flags: Sequence[Flag]) -> tuple[Optional[float], Optional[str]]:
    """A pattern is as likely as its least likely part (unknown when a part's prior is)."""
    if any(flag.prior is None for flag in flags):
        return None, None
    weakest = min(flags, key=lambda flag: flag.prior)
    return weakest.prior, (f"{weakest.concept}: {weakest.prior_reason}" if weakest.prior_reason else None)


def dedupe(flags: Iterable[Flag]) -> list[Flag]:
    """One flag per (concept, span) -- spans of English flags are kept apart, they index text_en --
    keeping the strongest kind, then the higher score."""
    best: dict[tuple[str, int, int, bool], Flag] = {}
    for flag in flags:
        key = (flag.concept, flag.span_start, flag.span_end, flag.kind == "english")
        current = best.get(key)
        if current is None or (KIND_STRENGTH[flag.kind], flag.score) > (KIND_STRENGTH[current.kind], current.score):
            best[key] = flag
    return sorted(best.values(), key=lambda f: (f.kind == "english", f.span_start, f.span_end, f.concept))
