"""Calibrated priors, from the recogniser's confusions: how often a lexicon form, written by this
recogniser, really was said.

    calibration = Calibration.load("lexicons/calibration/whisper-base.json")
    calibration.prior(concept_id, form, kind)  -> (prior, "calibrated (whisper-base): ...")

A monitor's traffic is mostly ordinary talk, so what fills the review queue is whatever forms
the recogniser *writes* for ordinary words: «مین» (landmine) for «من», «کفتار» (hyena) for
«گفتار», «کشید» for «he pulled». Counting that on speech with reference transcripts gives each
form its own prior, for this recogniser and at the prevalence of that speech:

    corpus (metadata.tsv: path, duration_s, transcript) ──recognise──▶ lines per clip
    lines + reference ──count_confusions──▶ per (concept, form, kind): written where the
        reference lacks the concept / where it has it; in how many references the form is
    counts ──Calibration.from_counts──▶ each key's prior: (right + m·base) / (written + m)

`base` is the rate at which all forms of that kind were right on the same speech (a pooled
Beta prior of strength m = PRIOR_STRENGTH; the lexicon's hand-set prior, e.g. 0.25 for a
sound-alike, scales it for a form the calibration never saw written).

An exact form is a word, and the recogniser's confusions are counted for every word it wrote,
not only the lexicon's: `words` keeps, per written word, in how many clips its reference had
that word and in how many it did not, and `length_base` the right share of the real (hazm-known)
words of each length. Long real words written by Whisper base are mostly said; short ones are
often what it writes for something else. So an analyst's new form, or a held-back one, gets its
own prior from the recogniser's record with that word, else the rate of real words of its
length; and an exact form's own counts are pooled toward that length rate, not toward the
(short-form dominated) rate of the lexicon's exact forms. The counts are kept in
the data file beside the lexicon (lexicons/calibration/*.json), keyed by the recogniser's
model hash; `intercept lexicon calibrate CORPUS... --model MODEL` recomputes it. The flag
score (intercept.scoring) uses the calibrated prior for every kind, exact included; an
analyst's `prior:` on a concept still wins.

Truth: the concepts the lexicon's own matcher (exact, morph and pattern, no fuzzy) finds in a
clip's normalised reference transcript. A flag is counted once per (clip, concept, form,
kind): "right" when its concept is in the clip's truth.

This module is the lexicon's side: counting, smoothing, the file and which one belongs to a
model. Recognising a corpus to count on, with a recogniser, is intercept.calibration.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from intercept.types import Line

from .matching import MatchOptions

FORMAT = "intercept-calibration/1"
# Kinds a prior is calibrated for; a pattern is keyed by its id alone (its parts vary).
CALIBRATED_KINDS = ("exact", "morph", "fuzzy", "pattern")
# Pseudo-counts of the pooled Beta prior: a form needs several sightings before its own rate
# outweighs its kind's. Chosen before any counting, not tuned.
PRIOR_STRENGTH = 4.0
# A form "the recogniser invents": written where the reference lacks it at least this many
# times, and more often wrongly than rightly. Such forms, like short ones, need support
# (intercept.scoring.needs_support).
INVENTED_MIN_WRONG = 3
# Word lengths (letters, ZWNJ and spaces dropped) pooled for `length_base`: 2 or fewer, 3, 4, 5,
# 6 or more. Chosen before counting; a class with no known word written falls back to base.
LENGTH_CLASSES = (2, 3, 4, 5, 6)
CALIBRATION_FOLDER = "calibration"  # beside the lexicon files


class CalibrationError(ValueError):
    """The calibration file is unusable. The message reads "path: reason"."""


def _key_form(kind: str, form: str) -> str:
    return "*" if kind == "pattern" else form


def length_class(word: str) -> int:
    """The LENGTH_CLASSES class of a word or form by its letters."""
    letters = len(word.replace("\u200c", "").replace(" ", ""))
    return min(max(letters, LENGTH_CLASSES[0]), LENGTH_CLASSES[-1])


def _words_of(text: str) -> set[str]:
    """A normalised text's words as lookup keys (ZWNJ dropped), punctuation stripped."""
    out = set()
    for token in text.split():
        word = "".join(ch for ch in token if ch.isalnum() or ch == "\u200c").replace("\u200c", "")
        if word:
            out.add(word)
    return out


@dataclass
class FormCounts:
    """What the recogniser did with one (concept, form, kind) on the calibration speech."""

    concept: str
    form: str
    kind: str
    written_wrong: int = 0  # clips where it was written and the reference lacks the concept
    written_right: int = 0  # ... and the reference has the concept
    prior: float = 1.0

    @property
    def written(self) -> int:
        return self.written_wrong + self.written_right

    @property
    def invented(self) -> bool:
        return self.written_wrong >= INVENTED_MIN_WRONG and self.written_wrong > self.written_right


@dataclass
class Confusions:
    """Raw counts from count_confusions (before smoothing)."""

    forms: dict[tuple[str, str, str], FormCounts] = field(default_factory=dict)
    in_reference: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # concept -> clips
    heard: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # concept in reference and written
    # Every word the recogniser wrote -> [clips where the reference lacks it, clips where it has it].
    words: dict[str, list[int]] = field(default_factory=dict)
    # Per length class, the same summed over real (hazm-known) words only.
    lengths: dict[int, list[int]] = field(default_factory=dict)
    clips: int = 0
    seconds: float = 0.0

    def add(self, concept: str, form: str, kind: str, right: bool) -> None:
        key = (concept, _key_form(kind, form), kind)
        counts = self.forms.setdefault(key, FormCounts(*key))
        if right:
            counts.written_right += 1
        else:
            counts.written_wrong += 1


def reference_concepts(lexicon, reference: str, normalizer) -> set[str]:
    """The truth of one clip: concepts the lexicon finds in its normalised reference by exact,
    morph and pattern matching (no fuzzy: a reference has no recognition noise)."""
    exact = lexicon.with_options(MatchOptions(fuzzy=False, english=False))
    text = normalizer.normalize(reference)
    # flag_lines rather than match: co-occurrence patterns are found across a line's flags there.
    return {f.concept for flags in exact.flag_lines([Line(0.0, 0.0, text, text_fa=text)]) for f in flags}


def count_confusions(clips: Iterable[tuple[str, Sequence, float]], lexicon, normalizer) -> Confusions:
    """Count, per (concept, form, kind), in how many clips the recogniser's lines were flagged
    with it where the clip's reference lacks the concept (wrong) and where it has it (right).

    `clips` yields (reference transcript, recognised lines with `text_fa` set, duration in
    seconds). Flags are the lexicon's own (`flag_lines`, its match options); English flags are
    left out (no translation here). A clip counts once per key however often it is written."""
    from .words import KNOWN_WORD_MIN_FREQUENCY

    known = normalizer.known_words(KNOWN_WORD_MIN_FREQUENCY)
    out = Confusions()
    for reference, lines, seconds in clips:
        truth = reference_concepts(lexicon, reference, normalizer)
        out.clips += 1
        out.seconds += float(seconds or 0.0)
        said = _words_of(normalizer.normalize(reference))
        hypothesis = set().union(*(_words_of(line.text_fa or "") for line in lines)) if lines else set()
        for word in hypothesis:
            right = word in said
            out.words.setdefault(word, [0, 0])[right] += 1
            if word in known:
                out.lengths.setdefault(length_class(word), [0, 0])[right] += 1
        written = {}
        for flags in lexicon.flag_lines(list(lines)):
            for flag in flags:
                if flag.kind in CALIBRATED_KINDS:
                    written[(flag.concept, _key_form(flag.kind, flag.term), flag.kind)] = flag.concept in truth
        for (concept, form, kind), right in written.items():
            out.add(concept, form, kind, right)
        for concept in truth:
            out.in_reference[concept] += 1
            if any(c == concept for c, _, _ in written):
                out.heard[concept] += 1
    return out


@dataclass
class Calibration:
    """Calibrated priors of one lexicon's forms for one recogniser (see the module's docstring)."""

    model: dict  # {"name": ..., "sha256": ...}
    lexicon_version: str
    base: dict[str, float]  # per kind: pooled rate of right among written
    forms: dict[tuple[str, str, str], FormCounts]
    in_reference: dict[str, int] = field(default_factory=dict)
    heard: dict[str, int] = field(default_factory=dict)
    words: dict[str, tuple[int, int]] = field(default_factory=dict)  # word -> (written wrong, written right)
    length_base: dict[int, float] = field(default_factory=dict)  # length class -> right share of known words
    clips: int = 0
    seconds: float = 0.0
    strength: float = PRIOR_STRENGTH
    corpus: list = field(default_factory=list)
    command: str = ""
    path: str = ""

    @classmethod
    def from_counts(cls, counts: Confusions, model: dict, lexicon_version: str, corpus: Sequence[str] = (),
                    command: str = "", strength: float = PRIOR_STRENGTH) -> "Calibration":
        base = {}
        for kind in CALIBRATED_KINDS:
            right = sum(c.written_right for c in counts.forms.values() if c.kind == kind)
            written = sum(c.written for c in counts.forms.values() if c.kind == kind)
            base[kind] = round((right + 1.0) / (written + 2.0), 4)  # Laplace: a kind never written gets 0.5
        length_base = {n: round((right + 1.0) / (wrong + right + 2.0), 4)
                       for n, (wrong, right) in sorted(counts.lengths.items())}
        made = cls(model=dict(model), lexicon_version=lexicon_version, base=base, forms={},
                   in_reference=dict(counts.in_reference), heard=dict(counts.heard),
                   words={w: (int(v[0]), int(v[1])) for w, v in sorted(counts.words.items())},
                   length_base=length_base, clips=counts.clips, seconds=round(counts.seconds, 1),
                   strength=strength, corpus=list(corpus), command=command)
        for key, c in counts.forms.items():
            prior = (c.written_right + strength * made.pooled_base(c.kind, c.form)) / (c.written + strength)
            made.forms[key] = FormCounts(c.concept, c.form, c.kind, c.written_wrong, c.written_right, round(prior, 4))
        return made

    # -- the flag's prior

    def counts_for(self, concept: str, form: str, kind: str) -> Optional[FormCounts]:
        return self.forms.get((concept, _key_form(kind, form), kind))

    def pooled_base(self, kind: str, form: str) -> float:
        """What a form's own counts are pooled toward: for an exact form, the right share of real
        words of its length (when the calibration counted words); else its kind's base rate."""
        if kind == "exact" and self.length_base:
            value = self.length_base.get(length_class(form))
            if value is not None:
                return value
        return self.base.get(kind, 0.5)

    def word_prior(self, form: str) -> Optional[tuple[float, int, int]]:
        """(prior, written, written where said) of a one-word form from the recogniser's record
        with that word on the calibration speech, pooled toward its length's rate; None when
        the word was never written there."""
        key = form.replace("\u200c", "")
        counts = self.words.get(key) if " " not in key else None
        if not counts:
            return None
        wrong, right = counts
        prior = (right + self.strength * self.pooled_base("exact", key)) / (wrong + right + self.strength)
        return round(prior, 4), wrong + right, right

    def prior(self, concept: str, form: str, kind: str, hand_prior: Optional[float] = None) -> tuple[float, str]:
        """(prior, reason) for a flag of this concept, lexicon form and kind. A key never
        written on the calibration speech takes, for an exact one-word form, the recogniser's
        record with that word (written by it for anything); otherwise the base rate (real words
        of its length for an exact form, its kind's for the others), scaled by the lexicon's
        hand-set prior (a sound-alike's 0.25)."""
        kind = kind if kind in CALIBRATED_KINDS else "exact"
        counts = self.counts_for(concept, form, kind)
        label = self.model.get("name", "model")
        if counts is None:
            word = self.word_prior(form) if kind == "exact" else None
            if word is not None:
                value, written, right = word
                return value, (f"calibrated ({label}): the word written {written}x on {self.clips} clips, "
                               f"{right} where said")
            value = self.pooled_base(kind, form) * (1.0 if hand_prior is None else float(hand_prior))
            what = (f"real {length_class(form)}-letter words" if kind == "exact" and self.length_base
                    else kind)
            return round(value, 4), (f"calibrated ({label}): {kind} never written on {self.clips} clips; "
                                     f"base rate of {what}")
        return counts.prior, (f"calibrated ({label}): {kind} written {counts.written}x on {self.clips} clips, "
                              f"{counts.written_right} where said")

    def invented(self, concept: str, form: str, kind: str) -> bool:
        counts = self.counts_for(concept, form, kind if kind in CALIBRATED_KINDS else "exact")
        return counts is not None and counts.invented

    # -- the file

    def to_dict(self) -> dict:
        rows = sorted(self.forms.values(), key=lambda c: (c.concept, c.form, c.kind))
        return {"format": FORMAT, "model": self.model, "lexicon_version": self.lexicon_version,
                "clips": self.clips, "seconds": self.seconds, "corpus": self.corpus, "command": self.command,
                "strength": self.strength, "base": self.base,
                "forms": [{"concept": c.concept, "form": c.form, "kind": c.kind, "written_wrong": c.written_wrong,
                           "written_right": c.written_right, "prior": c.prior} for c in rows],
                "in_reference": dict(sorted(self.in_reference.items())),
                "heard": dict(sorted(self.heard.items())),
                "length_base": {str(n): v for n, v in sorted(self.length_base.items())},
                "words": {w: list(v) for w, v in sorted(self.words.items())}}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.to_dict()
        words = data.pop("words")
        text = json.dumps(data, ensure_ascii=False, indent=1)
        # One word a line: the table has thousands of entries, indented lists would take four lines each.
        body = ",\n".join(f"  {json.dumps(w, ensure_ascii=False)}: {json.dumps(v)}" for w, v in words.items())
        text = text[:-2] + ',\n "words": {\n' + body + ("\n }" if body else "}") + "\n}"
        path.write_text(text + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Calibration":
        path = Path(path)

        def fail(reason: str):
            raise CalibrationError(f"{path}: {reason}")

        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            fail(f"cannot read the calibration ({exc.strerror or exc})")
        except ValueError as exc:
            fail(f"not valid JSON ({exc})")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            fail(f"not a calibration file (format must be {FORMAT!r})")
        try:
            forms = {}
            for row in data["forms"]:
                c = FormCounts(str(row["concept"]), str(row["form"]), str(row["kind"]), int(row["written_wrong"]),
                               int(row["written_right"]), float(row["prior"]))
                if c.kind not in CALIBRATED_KINDS or not 0.0 <= c.prior <= 1.0 or min(c.written_wrong, c.written_right) < 0:
                    fail(f"bad row {row!r}")
                forms[(c.concept, c.form, c.kind)] = c
            base = {k: float(v) for k, v in data["base"].items()}
            # Files written before words were counted lack both: their forms pool toward `base`.
            words = {str(w): (int(v[0]), int(v[1])) for w, v in data.get("words", {}).items()}
            length_base = {int(n): float(v) for n, v in data.get("length_base", {}).items()}
            if any(not 0.0 <= v <= 1.0 for v in length_base.values()) or any(min(v) < 0 for v in words.values()):
                fail("bad words or length_base")
            return cls(model=dict(data["model"]), lexicon_version=str(data.get("lexicon_version", "")), base=base,
                       forms=forms, in_reference=dict(data.get("in_reference", {})), heard=dict(data.get("heard", {})),
                       words=words, length_base=length_base,
                       clips=int(data.get("clips", 0)), seconds=float(data.get("seconds", 0.0)),
                       strength=float(data.get("strength", PRIOR_STRENGTH)), corpus=list(data.get("corpus", [])),
                       command=str(data.get("command", "")), path=str(path))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, CalibrationError):
                raise
            fail(f"malformed ({type(exc).__name__}: {exc})")


# ---------------------------------------------------------------- which file, which model


def calibration_files(lexicon_files: Sequence[Path]) -> list[Path]:
    """Calibration files beside the lexicon files (FOLDER/calibration/*.json)."""
    seen, found = set(), []
    for path in lexicon_files:
        folder = Path(path).parent / CALIBRATION_FOLDER
        if folder in seen or not folder.is_dir():
            continue
        seen.add(folder)
        found += sorted(folder.glob("*.json"))
    return found


def find_calibration(lexicon_files: Sequence[Path], sha256: str) -> Optional[Calibration]:
    """The calibration beside these lexicon files made with the model of this hash, if any."""
    for path in calibration_files(lexicon_files):
        calibration = Calibration.load(path)
        if calibration.model.get("sha256") == sha256:
            return calibration
    return None


def default_calibration_path(lexicon_files: Sequence[Path], model: dict) -> Path:
    folder = Path(lexicon_files[0]).parent if lexicon_files else Path(".")
    return folder / CALIBRATION_FOLDER / f"{model['name']}.json"


def embedded_calibration(lexicon_files: Sequence[Path]) -> Optional[Calibration]:
    """The calibration beside the lexicon files made with the embedded Whisper base model."""
    from intercept.models import EMBEDDED_SHA256

    return find_calibration(lexicon_files, EMBEDDED_SHA256)
