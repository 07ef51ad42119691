"""Guards against Whisper's known failure modes.

A guarded line is marked ``suspect`` with the reason and kept: reviewers decide, and a
deleted line could be the one that mattered. The Farsi checks read the normalised text
(``Line.text_fa``; the raw text only when a line has none), so Arabic-letter variants of a
known phrase (زيرنويس with Arabic ي) are caught like the Persian spelling.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from .lexicon.files import default_lexicon_file
from .types import Line

DEFAULT_PHRASES = default_lexicon_file("hallucinations.txt")


@dataclass
class GuardOptions:
    max_compression_ratio: float = 2.4  # Whisper's own threshold for repetitive output
    no_speech_prob: float = 0.6  # together with a low log-probability: probably no speech
    low_logprob: float = -1.0
    # A word n-gram (n=1..4) repeated this many times in a row is a decoding loop.
    max_repeats: int = 4
    phrases_path: Optional[Path] = None


# In the phrase list, a line "filler: w1 w2 ..." lists words dropped before comparing, and a
# "*" word at either end of a phrase stands for any words there.
FILLER_PREFIX = "filler:"
ANY = "*"


def load_phrases(path: Optional[Path] = None, normalize: Optional[Callable[[str], str]] = None) -> list[str]:
    """Known hallucinated phrases, one a line, '#' comments; compared lower-cased, and
    normalised by `normalize` (the text stage's) when given, as the lines they are found in.
    `filler:` lines are not phrases (see load_phrase_list)."""
    return [phrase.text for phrase in load_phrase_list(path, normalize).phrases]


def _listed(path: Optional[Path]) -> list[str]:
    path = Path(path) if path else DEFAULT_PHRASES
    if not path.is_file():
        return []
    entries = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            entries.append(line)
    return entries


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u200c", " ")).strip().lower()


def phrase_words(text: str) -> tuple[str, ...]:
    """The words a line or phrase is compared by: case-folded; ZWNJ, punctuation and symbols
    are word breaks (so "Thanks, for watching!" and "thanks for watching" are the same words);
    other invisible format marks (bidi marks, ZWJ) are dropped."""
    kept = []
    for char in text.casefold():
        category = unicodedata.category(char)
        if char == "\u200c" or category[0] in "PSZ" or char.isspace():
            kept.append(" ")
        elif category not in ("Cf", "Cc"):
            kept.append(char)
    return tuple("".join(kept).split())


@dataclass(frozen=True)
class Phrase:
    """One listed phrase: its words, and whether any words may come before or after it."""

    text: str  # as listed (folded), for the reason a guard gives
    words: tuple[str, ...]
    any_before: bool = False
    any_after: bool = False


class PhraseList:
    """Known hallucinated phrases, matched by normalised words rather than exact string.

    A text matches when, with filler words dropped, it consists of listed phrases and nothing
    else: one phrase ("Thank you very much for watching." is "thank you for watching" once
    "very" and "much" are fillers), or several in a row ("Thanks for watching, please
    subscribe!"). A phrase that starts or ends with "*" also takes any words on that side
    ("subtitles by *" matches "Subtitles by the Amara.org community"; "* www *" any line with
    the word www). So "Thank you for the report, over." is not suspect though it holds
    "thank you": "for the report over" is no listed phrase."""

    def __init__(self, phrases: Sequence[Phrase] = (), fillers: Iterable[str] = ()):
        self.phrases = [phrase for phrase in phrases if phrase.words]
        self.fillers = frozenset(fillers)

    def find(self, text: str) -> Optional[str]:
        """The first listed phrase `text` is made of (as load_phrases lists it), or None."""
        words = tuple(word for word in phrase_words(text or "") if word not in self.fillers)
        if not words:
            return None
        # Dynamic programming over word positions: reached[i] holds the phrase that the
        # words before i started with, when they are whole phrases end to end.
        reached: dict[int, str] = {0: ""}
        for start in range(len(words)):
            if start not in reached:
                continue
            for phrase in self.phrases:
                size = len(phrase.words)
                first = reached[start] or phrase.text
                if phrase.any_before:
                    inside = _contains(words[start:], phrase.words)
                    if inside is not None and (phrase.any_after or inside + size == len(words) - start):
                        return first
                elif words[start : start + size] == phrase.words:
                    if phrase.any_after:
                        return first
                    reached.setdefault(start + size, first)
        return reached.get(len(words)) or None


def _contains(words: tuple[str, ...], part: tuple[str, ...]) -> Optional[int]:
    """The last position at which `part` occurs in `words`, or None."""
    for position in range(len(words) - len(part), -1, -1):
        if words[position : position + len(part)] == part:
            return position
    return None


def load_phrase_list(path: Optional[Path] = None, normalize: Optional[Callable[[str], str]] = None) -> PhraseList:
    """The phrase list file (lexicons/hallucinations.txt by default): phrases, "*" ends and
    `filler:` words, each normalised by `normalize` (the text stage's) when given."""
    def prepared(text: str) -> str:
        return _fold(normalize(text) if normalize else text)

    phrases, fillers = [], set()
    for entry in _listed(path):
        if entry.lower().startswith(FILLER_PREFIX):
            fillers.update(phrase_words(prepared(entry[len(FILLER_PREFIX):])))
            continue
        parts = entry.split()
        any_before, any_after = parts[0] == ANY, parts[-1] == ANY and len(parts) > 1
        core = " ".join(parts[int(any_before) : len(parts) - int(any_after)])
        text = prepared(core)
        shown = " ".join(([ANY] if any_before else []) + [text] + ([ANY] if any_after else []))
        phrases.append(Phrase(shown, phrase_words(text), any_before, any_after))
    # Fillers are dropped from the phrases too, so that a listed "thank you for watching the
    # video" and a spoken "thank you for watching" compare alike.
    phrases = [Phrase(p.text, tuple(w for w in p.words if w not in fillers), p.any_before, p.any_after)
               for p in phrases]
    return PhraseList(phrases, fillers)


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
        self.phrases = load_phrase_list(self.options.phrases_path, normalize)

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
        # The Farsi and the English each on its own: a text made only of listed phrases.
        phrase = self.phrases.find(farsi) or self.phrases.find(line.text_en)
        if phrase:
            found.append(f"known hallucinated phrase ('{phrase}')")
        return found

    def mark(self, lines: Iterable[Line]) -> None:
        for line in lines:
            reasons = self.reasons(line)
            line.suspect = "; ".join(reasons) if reasons else None
