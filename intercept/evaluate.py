"""Word and character error rates of recognised Farsi against reference transcripts.

Both sides go through the project's own text stage first (intercept.text: hazm
normalisation, then PersianTokenizer words), so that differences the rest of the pipeline
never sees (Arabic yeh vs Persian yeh, diacritics, ZWNJ vs no ZWNJ, punctuation) are not
counted as errors. Edit distances come from rapidfuzz (Levenshtein over word lists and over
character strings), not hand-written dynamic programming.

Corpus scores are micro-averaged: total edits over total reference words (characters),
the usual way WER is reported, so that short clips do not weigh as much as long ones.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from rapidfuzz.distance import Levenshtein

from .text import ZWNJ, PersianNormalizer, PersianTokenizer


@dataclass(frozen=True)
class ErrorCounts:
    """Edits and reference sizes, for one utterance or summed over many."""

    word_edits: int = 0
    reference_words: int = 0
    char_edits: int = 0
    reference_chars: int = 0
    utterances: int = 0

    @property
    def wer(self) -> float:
        """Word error rate; an empty reference scores 0 if the hypothesis is empty, else 1 per word."""
        if self.reference_words == 0:
            return 0.0 if self.word_edits == 0 else float(self.word_edits)
        return self.word_edits / self.reference_words

    @property
    def cer(self) -> float:
        if self.reference_chars == 0:
            return 0.0 if self.char_edits == 0 else float(self.char_edits)
        return self.char_edits / self.reference_chars

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(
            self.word_edits + other.word_edits,
            self.reference_words + other.reference_words,
            self.char_edits + other.char_edits,
            self.reference_chars + other.reference_chars,
            self.utterances + other.utterances,
        )

    def to_dict(self) -> dict:
        return {
            "wer": round(self.wer, 4),
            "cer": round(self.cer, 4),
            "word_edits": self.word_edits,
            "reference_words": self.reference_words,
            "char_edits": self.char_edits,
            "reference_chars": self.reference_chars,
            "utterances": self.utterances,
        }


class ErrorRateScorer:
    """Scores hypotheses against references after hazm normalisation.

    Characters for CER are the normalised words joined by single spaces with ZWNJ removed:
    whether a recogniser writes می‌کشم or میکشم is a spelling choice, not a misrecognised sound.
    """

    def __init__(self, normalizer: Optional[PersianNormalizer] = None,
                 tokenizer: Optional[PersianTokenizer] = None) -> None:
        self.normalizer = normalizer or PersianNormalizer()
        self.tokenizer = tokenizer or PersianTokenizer()

    def words(self, text: str) -> list[str]:
        return self.tokenizer.tokenize(self.normalizer.normalize(text))

    def chars(self, words: list[str]) -> str:
        return " ".join(word.replace(ZWNJ, "") for word in words)

    def score(self, reference: str, hypothesis: str) -> ErrorCounts:
        ref_words, hyp_words = self.words(reference), self.words(hypothesis)
        ref_chars, hyp_chars = self.chars(ref_words), self.chars(hyp_words)
        return ErrorCounts(
            word_edits=Levenshtein.distance(ref_words, hyp_words),
            reference_words=len(ref_words),
            char_edits=Levenshtein.distance(ref_chars, hyp_chars),
            reference_chars=len(ref_chars),
            utterances=1,
        )

    def score_corpus(self, pairs: Iterable[tuple[str, str]]) -> ErrorCounts:
        """Micro-averaged counts over (reference, hypothesis) pairs."""
        total = ErrorCounts()
        for reference, hypothesis in pairs:
            total = total + self.score(reference, hypothesis)
        return total


@dataclass(frozen=True)
class EvalItem:
    """One clip of an evaluation corpus."""

    path: Path  # absolute
    duration_s: Optional[float]
    transcript: str


class CorpusError(ValueError):
    """An evaluation corpus cannot be read; the message names the file and the reason."""


def read_corpus(folder: str | os.PathLike) -> list[EvalItem]:
    """Read FOLDER/metadata.tsv: a header `path<TAB>duration_s<TAB>transcript`, then any other
    columns (`intercept export --format corpus` adds speaker, voice, recording...), one clip per
    line, paths relative to FOLDER (the format of shared/eval/fa_virgool)."""
    folder = Path(folder)
    metadata = folder / "metadata.tsv"
    if not metadata.is_file():
        raise CorpusError(f"cannot read corpus '{folder}': no metadata.tsv in it")
    items: list[EvalItem] = []
    with open(metadata, encoding="utf-8", newline="") as handle:
        # Transcripts may contain quotes and brackets: no CSV quoting.
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if not header or [h.strip() for h in header[:3]] != ["path", "duration_s", "transcript"]:
            raise CorpusError(f"cannot read corpus '{metadata}': header must be path, duration_s, transcript "
                              f"(tab-separated), got {header!r}")
        for number, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 3:
                raise CorpusError(f"cannot read corpus '{metadata}': line {number} has {len(row)} fields, expected 3")
            clip = folder / row[0]
            if not clip.is_file():
                raise CorpusError(f"cannot read corpus '{metadata}': line {number}: clip '{clip}' not found")
            try:
                duration = float(row[1]) if row[1].strip() else None
            except ValueError:
                raise CorpusError(f"cannot read corpus '{metadata}': line {number}: duration {row[1]!r} "
                                  "is not a number") from None
            # The transcript is the third column; the header's further columns are the row's last
            # ones, so a tab inside a transcript (unquoted TSV) stays in it.
            after = len(header) - 3
            items.append(EvalItem(clip.resolve(), duration, "\t".join(row[2: len(row) - after]).strip()))
    if not items:
        raise CorpusError(f"cannot read corpus '{metadata}': no clips listed")
    return items
