"""Reviewers' corrections of a line's text, and everything derived from it again.

    from intercept.corrections import Corrector
    corrector = Corrector(lexicon, normalizer, translator=None)
    with Store("traffic.db", mode="write") as store:
        result = corrector.correct_line(store, 42, "امشب روباه می‌آید", en=None, reviewer="maryam")

A correction is appended as a revision (intercept/store/revisions.py); the recogniser's text
stays as it was. The corrected line goes through the one post-recognition step
(intercept.derive.PostRecognition.derive_line), built as the run that stored the line was set
(its `[guards]` settings; intercept.components.PostPerRun): normalised, marked by the guards,
flagged by the lexicon and scored, with no recogniser doubt (a reviewer-typed word is certain). Its
earlier flags are kept, marked superseded, and leave the queue.

The English, in this order:
1. the reviewer's own, when given (`en`);
2. else the text translator (`--translator transformers`), when there is one, on the corrected
   Farsi (Whisper's translate task hears the audio, not the correction, so it is never used);
3. else the English the line had, kept and marked as made from the uncorrected text
   (text_en_from = 'uncorrected_fa'; intercept.reliability calls it unreliable). Its words are
   not flagged again: the flags it had are kept, superseded.

Only the corrected line's rows change: a neighbour whose co-occurrence pattern flag depended on
the old text keeps it until `intercept flag` re-derives the recording. The corrected line's own
patterns see the neighbours (within the widest pattern window) that hold a flag now.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from .components import PostPerRun, load_lexicon
from .derive import PostRecognition, line_from_row, reviewer_line
from .store import Store, revisions, run_settings
from .store.revisions import CORRECTED_FA, REVIEWER, UNCORRECTED_FA, Correction, CorrectionConflict
from .types import Flag

if TYPE_CHECKING:  # the store's Database (intercept.store.revisions.database): only the store opens SQLite
    import sqlite_utils

MAX_TEXT_CHARS = 4000  # as a verdict's note: a line is a transmission, never pages of text
# Co-occurrence patterns look at most this many transmissions either side (intercept.lexicon).
PATTERN_WINDOW = 100

__all__ = ["Corrector", "CorrectionResult", "CorrectionConflict", "MAX_TEXT_CHARS", "check_text"]


@dataclass
class CorrectionResult:
    """What a correction wrote."""

    revision_id: int
    line_id: int
    text_fa: str  # the line's current (normalised) Farsi
    text_en: Optional[str]  # its current English
    en_from: str  # reviewer | corrected_fa | uncorrected_fa
    reviewer: str
    replaces: Optional[int]
    flags: list[Flag] = field(default_factory=list)  # derived from the reviewer's text
    superseded: int = 0  # flags the correction marked superseded

    def as_dict(self) -> dict:
        return {
            "revision_id": self.revision_id, "line_id": self.line_id, "text_fa": self.text_fa,
            "text_en": self.text_en, "text_en_from": self.en_from, "reviewer": self.reviewer,
            "replaces": self.replaces, "superseded_flags": self.superseded,
            "flags": [{"concept": f.concept, "kind": f.kind, "score": round(f.score, 4), "matched": f.matched}
                      for f in self.flags],
        }


def check_text(fa: Optional[str], en: Optional[str], reviewer: Optional[str]) -> tuple[str, Optional[str], str]:
    """The correction's Farsi, English (None: not given) and reviewer, stripped; ValueError
    saying what is wrong with them."""
    fa = (fa or "").strip()
    if not fa:
        raise ValueError("the corrected Farsi is empty: type the line's text (an empty line is not a correction)")
    en = (en or "").strip() or None
    for name, text in (("Farsi", fa), ("English", en or "")):
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"the corrected {name} is longer than {MAX_TEXT_CHARS} characters")
        if "\x00" in text:
            raise ValueError(f"the corrected {name} holds a NUL character")
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise ValueError("a correction needs the reviewer's name")
    return fa, en, reviewer


class Corrector:
    """Derives and writes corrections with one lexicon, normaliser and (optional) text
    translator: build it once, correct many lines. Each line is derived with the guards of the
    run that stored it (`runs.settings`, intercept.components.PostPerRun), so `intercept
    correct` and the review desk mark the same text alike."""

    def __init__(self, per_run: PostPerRun):
        self.per_run = per_run

    @classmethod
    def build(cls, lexicon, normalizer, translator=None, scorer=None) -> "Corrector":
        if translator is not None and getattr(translator, "needs_audio", False):
            translator = None  # it would translate the audio, not the correction
        if translator is not None and getattr(translator, "name", "") == "none":
            translator = None
        # No acoustic check: a reviewer's text is not the recogniser's guess (derive_line).
        return cls(PostPerRun(None, normalizer, lexicon, translator=translator, scorer=scorer, acoustic=False))

    @property
    def post(self) -> PostRecognition:
        """The step with default settings: its normaliser, lexicon and translator are every line's."""
        return self.per_run.default

    @property
    def translator(self):
        return self.post.translator

    def prepare(self, db: sqlite_utils.Database, line_id: int, fa: str, en: Optional[str] = None,
                reviewer: str = "", note: Optional[str] = None) -> Correction:
        """Derive a correction from the store as it is now (nothing written). ValueError for an
        unknown line or bad text."""
        fa, en, reviewer = check_text(fa, en, reviewer)
        row = revisions.line_for_correction(db, int(line_id))
        if row is None:
            raise ValueError(f"no line {line_id} in the store")
        near = revisions.lines_near(db, row, PATTERN_WINDOW)
        target = next((n for n, other in enumerate(near) if other["id"] == row["id"]), None)
        if target is None:  # a line whose transmission row is missing: alone
            near, target = [row], 0
        lines = [line_from_row(other, n) for n, other in enumerate(near)]
        post = self.per_run.for_settings(run_settings(db, line_id=int(line_id)))
        normalised = post.normalizer.normalize(fa)
        old_en = row.get("text_en") or None
        if normalised == (row.get("text_fa") or "") and (en is None or en == old_en):
            raise ValueError(f"line {line_id}: the text is the line's current text; nothing to correct")
        translate = en is None and self.translator is not None
        line = reviewer_line(normalised, en or "", row["start_s"], row["end_s"], lines[target].transmission_idx)
        lines[target] = line
        flags = post.derive_line(lines, target, translate=translate)
        if en is not None:
            current_en, en_from, translator = en, REVIEWER, None
        elif translate:
            current_en, en_from = line.text_en or None, CORRECTED_FA
            translator = (self.translator.name, getattr(self.translator, "model", None))
        else:
            current_en, en_from, translator = old_en, UNCORRECTED_FA, None
        return Correction(
            line_id=int(line_id), text_fa=fa, text_fa_normalised=line.text_fa, text_en=en, current_en=current_en,
            en_from=en_from, reviewer=reviewer, suspect=line.suspect, flags=flags,
            lexicon_version=post.lexicon.version, replaces=row.get("revision_id"), translator=translator,
            note=(note or "").strip() or None)

    def correct_line(self, store: Store, line_id: int, fa: str, en: Optional[str] = None, *, reviewer: str,
                     note: Optional[str] = None) -> CorrectionResult:
        """Correct one line of `store` (opened for writing): derive, then write it all in one
        transaction (Store.save_correction). Raises ValueError for bad input, CorrectionConflict
        when someone corrected the line between the two."""
        correction = self.prepare(store.db, line_id, fa, en, reviewer, note)
        store.save_lexicon_terms(self.post.lexicon.version, self.post.lexicon.terms)
        revision_id = store.save_correction(correction)
        return result_of(store.db, correction, revision_id)


def result_of(db: sqlite_utils.Database, correction: Correction, revision_id: int) -> CorrectionResult:
    superseded = revisions.superseded_count(db, revision_id)
    return CorrectionResult(
        revision_id=revision_id, line_id=correction.line_id, text_fa=correction.text_fa_normalised,
        text_en=correction.current_en, en_from=correction.en_from, reviewer=correction.reviewer,
        replaces=correction.replaces, flags=list(correction.flags), superseded=superseded)


def correct_line(store: Store, line_id: int, fa: str, en: Optional[str] = None, *, reviewer: str,
                 lexicon=None, normalizer=None, translator=None, note: Optional[str] = None) -> CorrectionResult:
    """One correction with the shipped lexicons (or `lexicon`) and no translator unless given:
    `Corrector` when correcting many lines (building the normaliser takes seconds)."""
    from .text import PersianNormalizer

    normalizer = normalizer or PersianNormalizer()
    lexicon = lexicon or load_lexicon((), normalizer)
    return Corrector.build(lexicon, normalizer, translator).correct_line(
        store, line_id, fa, en, reviewer=reviewer, note=note)
