"""The compiled lexicon: the steps of intercept.lexicon put together, and what the rest of
intercept calls (Lexicon.load, match, flag_lines)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from intercept.text import ZWNJ, PersianNormalizer, PersianTokenizer
from intercept.types import Flag, Line

from . import cache
from .files import Concept, LexiconError, LexiconReader, LexiconSource, Pattern
from .forms import FormGenerator, lookup_key
from .matching import (EnglishMatcher, FuzzyMatcher, MatchOptions, PatternMatcher, SurfaceMatcher, TokenizedLine,
                       dedupe)
from .priors import PRIOR_PLAIN, PriorEstimator, plain_prior
from .words import KnownWords


@dataclass(frozen=True)
class Term:
    """One form of a concept, as the store's lexicon_terms table holds it."""

    concept: str
    category: str
    severity: str
    form: str
    lang: str  # "fa" (forms and verbs, verbs as past#present stems) or "en"
    prior: float = PRIOR_PLAIN  # for a verb, its lowest form's (see Flag.prior)
    prior_reason: str = ""  # why the prior is below 1 or set by hand; "" when plain
    # The concept's notes from the lexicon file, shown to reviewers; not part of a term's identity.
    notes: str = field(default="", compare=False)


class Lexicon:
    """A compiled lexicon. Build it with Lexicon.load(); it does not change afterwards.

    Matching works on text the text stage has already normalised (PersianNormalizer):
    exact and morph forms (matching.surfaces), then fuzzy ones among the words left
    (matching.fuzzy), then 'either' patterns over the line's flags (matching.patterns), and the
    English glosses on the translation (matching.english); flag_lines adds co-occurrence
    patterns across lines. with_options gives the same compiled tables other options."""

    # Priors calibrated on the recogniser's confusions (intercept.lexicon.calibration), for the
    # flag score; None: the hand-set priors alone. Load attaches the one made with the embedded model.
    calibration = None

    def __init__(self, source: LexiconSource, options: MatchOptions, normalizer: PersianNormalizer) -> None:
        self.version = source.version
        self.files = list(source.files)
        self.options = options
        concepts, patterns = source.concepts, source.patterns
        self._concepts: dict[str, Concept] = {c.id: c for c in concepts}
        self._patterns: list[Pattern] = list(patterns)
        # hazm's word list and verb forms, and the lexicon's excluded words: loaded on first use
        self._words = KnownWords(normalizer, (lookup_key(x) for c in concepts for x in c.exclude))
        priors = PriorEstimator(normalizer.word_frequencies()).table(concepts)
        self.terms: list[Term] = []
        for concept in concepts:
            plain = plain_prior(concept)
            term_priors = [(form, priors.form(concept.id, form)) for form in concept.fa]
            term_priors += [(lemma, min(priors.verb(concept.id, lemma).values(), default=plain))
                            for lemma in concept.verbs]  # a verb shows its least likely form's prior
            term_priors += [(gloss, plain) for gloss in concept.en]
            self.terms += [Term(concept.id, concept.category, concept.severity, form,
                                "en" if form in concept.en else "fa", prior, reason or "", notes=concept.notes)
                           for form, (prior, reason) in term_priors]
        self._tokenizer = PersianTokenizer()
        self._surfaces = SurfaceMatcher(concepts, priors, FormGenerator(self._words), self._words.excluded)
        self._pattern_matcher = PatternMatcher(concepts, patterns)
        self._fuzzy = FuzzyMatcher(concepts, self._surfaces, self._words, priors,
                                   self._pattern_matcher.partners, self._pattern_matcher.either_partners)
        self._english = EnglishMatcher(concepts)

    # -- construction

    @classmethod
    def load(cls, *paths, options: Optional[MatchOptions] = None,
             normalizer: Optional[PersianNormalizer] = None, calibrated: bool = True) -> "Lexicon":
        """Load one or more lexicon files (a folder means every .yaml in it). Everything is
        validated before anything is compiled; the first problem raises LexiconError.
        Pass the pipeline's normalizer to save building another (about a second).
        With `calibrated`, the calibration beside the files (FOLDER/calibration/*.json) made
        with the embedded recogniser is attached (`with_calibration` for another model)."""
        files = LexiconReader.files(*paths)
        normalizer = normalizer or PersianNormalizer()
        cached = cache.read(files, normalizer, cls)  # compiled before from the same bytes
        if cached is not None:
            return cls._calibrated(cached.with_options(options or MatchOptions()), files, calibrated)
        lexicon = cls(LexiconReader(normalizer).read(*files), options or MatchOptions(), normalizer)
        # Cached without its calibration: that is read afresh, since it is a file of its own.
        cache.write(files, lexicon)
        return cls._calibrated(lexicon, files, calibrated)

    @staticmethod
    def _calibrated(lexicon: "Lexicon", files, calibrated: bool) -> "Lexicon":
        if calibrated:
            from .calibration import CalibrationError, embedded_calibration

            try:
                lexicon.calibration = embedded_calibration(files)
            except CalibrationError as exc:
                raise LexiconError(str(exc)) from None
        return lexicon

    def with_options(self, options: MatchOptions) -> "Lexicon":
        """The same lexicon with other match options (compiled tables are shared, not rebuilt)."""
        clone = object.__new__(Lexicon)
        clone.__dict__.update(self.__dict__)
        clone.options = options
        return clone

    def with_calibration(self, calibration) -> "Lexicon":
        """The same lexicon with other calibrated priors (intercept.lexicon.calibration; None: none)."""
        clone = self.with_options(self.options)
        clone.calibration = calibration
        return clone

    def analyst_prior(self, concept_id: str) -> Optional[float]:
        """The prior an analyst set on the concept (`prior:`), which wins over calibration."""
        concept = self._concepts.get(concept_id)
        return None if concept is None else concept.prior

    def pattern_partners(self, concept_id: str):
        """The concepts some pattern could join this one with (two animals, an animal and a time ...):
        answers `in` and `isdisjoint` as a frozenset does (matching.patterns.PartnerIndex)."""
        try:
            return self._pattern_matcher.partners[concept_id]
        except KeyError:
            return frozenset()

    # -- matching

    def match(self, text_fa: str, text_en: str = "") -> list[Flag]:
        """Flags in one line. text_fa must already be normalised by PersianNormalizer; spans index
        text_fa, or text_en for kind 'english'; text[span_start:span_end] == flag.matched."""
        flags = self._match_farsi(text_fa)
        if self.options.english and text_en and self._english:
            flags += self._english.match(text_en)
        return dedupe(flags)

    def _match_farsi(self, text: str) -> list[Flag]:
        if not text:
            return []
        # The quick test first: most lines hold no lexicon word and are never tokenised.
        quick_words = PersianTokenizer._WORD.findall(text.replace(ZWNJ, ""))
        need_exact = self._surfaces.triggered_by(quick_words)
        fuzzy = self.options.fuzzy and bool(self._fuzzy)
        if not need_exact and not fuzzy:
            return []
        line = TokenizedLine.of(text, self._tokenizer)
        covered = [False] * len(line.tokens)
        flags = self._surfaces.find(line, covered) if need_exact else []
        if fuzzy:
            flags += self._fuzzy.find(line, covered, flags, self.options)
        if self.options.patterns:
            flags += self._pattern_matcher.either(line, flags)
        return flags

    def flag_lines(self, lines: list[Line]) -> list[list[Flag]]:
        """Flags per line (same order as lines), plus co-occurrence pattern flags: concepts that
        appear together within a transmission or `window` transmissions either side."""
        per_line = [self.match(line.text_fa, line.text_en) for line in lines]
        if not self.options.patterns:
            return per_line
        self._pattern_matcher.cooccurrence(lines, per_line)
        return [dedupe(flags) for flags in per_line]
