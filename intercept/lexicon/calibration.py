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
sound-alike, scales it for a form the calibration never saw written). The counts are kept in
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
CALIBRATION_FOLDER = "calibration"  # beside the lexicon files


class CalibrationError(ValueError):
    """The calibration file is unusable. The message reads "path: reason"."""


def _key_form(kind: str, form: str) -> str:
    return "*" if kind == "pattern" else form


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
    out = Confusions()
    for reference, lines, seconds in clips:
        truth = reference_concepts(lexicon, reference, normalizer)
        out.clips += 1
        out.seconds += float(seconds or 0.0)
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
        forms = {}
        for key, c in counts.forms.items():
            prior = (c.written_right + strength * base[c.kind]) / (c.written + strength)
            forms[key] = FormCounts(c.concept, c.form, c.kind, c.written_wrong, c.written_right, round(prior, 4))
        return cls(model=dict(model), lexicon_version=lexicon_version, base=base, forms=forms,
                   in_reference=dict(counts.in_reference), heard=dict(counts.heard), clips=counts.clips,
                   seconds=round(counts.seconds, 1), strength=strength, corpus=list(corpus), command=command)

    # -- the flag's prior

    def counts_for(self, concept: str, form: str, kind: str) -> Optional[FormCounts]:
        return self.forms.get((concept, _key_form(kind, form), kind))

    def prior(self, concept: str, form: str, kind: str, hand_prior: Optional[float] = None) -> tuple[float, str]:
        """(prior, reason) for a flag of this concept, lexicon form and kind. A key never
        written on the calibration speech takes its kind's base rate, scaled by the lexicon's
        hand-set prior (a sound-alike's 0.25)."""
        kind = kind if kind in CALIBRATED_KINDS else "exact"
        counts = self.counts_for(concept, form, kind)
        label = self.model.get("name", "model")
        if counts is None:
            value = self.base.get(kind, 0.5) * (1.0 if hand_prior is None else float(hand_prior))
            return round(value, 4), f"calibrated ({label}): {kind} never written on {self.clips} clips; base rate"
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
                "heard": dict(sorted(self.heard.items()))}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
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
            return cls(model=dict(data["model"]), lexicon_version=str(data.get("lexicon_version", "")), base=base,
                       forms=forms, in_reference=dict(data.get("in_reference", {})), heard=dict(data.get("heard", {})),
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
