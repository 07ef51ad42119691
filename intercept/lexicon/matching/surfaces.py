"""Exact and morphological matching: every written form of every concept in one dictionary.

    matcher = SurfaceMatcher(concepts, priors, FormGenerator(words), words.excluded)
    matcher.match("امشب پرنده‌ها رو دیدیم")  -> [Flag(bird, morph, 0.9, ...)]

The two kinds are one matcher: both are looked up the same way, by a line's words (one hash
look-up per word, whatever the lexicon's size; docs/benchmarks.md measured it against an
Aho-Corasick automaton). They differ only in where the key came from: `exact` is the form as
the lexicon writes it (and a verb's infinitive), `morph` a form intercept.lexicon.forms
generated. Exact forms are added first, so they win a clash with a generated form; a key
some concept excludes is never added.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from intercept.text import PersianTokenizer
from intercept.types import Flag

from ..forms import lookup_key, spellings
from ..priors import PRIOR_PLAIN, plain_prior
from .common import SCORE_EXACT, SCORE_MORPH, TokenizedLine, make_flag


@dataclass(frozen=True)
class Surface:
    """A compiled key: which concept, which lexicon form, and how it was reached."""

    concept: object  # files.Concept
    form: str
    kind: str  # exact or morph
    prior: float = PRIOR_PLAIN
    prior_reason: Optional[str] = None


class SurfaceMatcher:
    """Exact and morph flags of a line: the longest run of words (up to the longest multi-word
    form starting with that word) that is a compiled key, left to right."""

    def __init__(self, concepts, priors, forms, excluded=frozenset()) -> None:
        """concepts: files.Concept list; priors: priors.PriorTable; forms: forms.FormGenerator;
        excluded: lookup keys never to flag."""
        self._surfaces: dict[str, Surface] = {}
        self._max_words: dict[str, int] = {}
        self._multi_first: set[str] = set()
        self._excluded = frozenset(excluded)
        for concept in concepts:  # exact forms first so that they win any clash with a generated form
            for form in concept.fa:
                self._add(lookup_key(form), Surface(concept, form, "exact", *priors.form(concept.id, form)))
        for concept in concepts:
            for form in concept.fa:
                prior = priors.form(concept.id, form)
                for surface in forms.noun_forms(form, concept.inflect):
                    self._add(lookup_key(surface), Surface(concept, form, "morph", *prior))
            for lemma in concept.verbs:
                verb_priors = priors.verb(concept.id, lemma)
                plain = plain_prior(concept)
                self._add(lookup_key(forms.infinitive(lemma)), Surface(concept, lemma, "exact", *plain))
                for conjugated in forms.verb_forms(lemma):
                    prior = verb_priors.get(conjugated, plain)
                    for spelling in spellings(conjugated):
                        self._add(lookup_key(spelling), Surface(concept, lemma, "morph", *prior))
        # One set for the fast "does this line contain anything at all" test.
        self._triggers = frozenset(k for k in self._surfaces if " " not in k) | self._multi_first
        self._tokenizer = PersianTokenizer()

    def _add(self, key: str, surface: Surface) -> None:
        existing = self._surfaces.get(key)
        if existing is not None and (existing.kind == "exact" or surface.kind == "morph"):
            return  # first come keeps it; exact beats morph (duplicate exact forms were refused at load)
        if key in self._excluded:
            return
        self._surfaces[key] = surface
        if " " in key:  # checked first: most keys are one word, and split() costs at 10,000 terms
            words = key.split(" ")
            self._max_words[words[0]] = max(self._max_words.get(words[0], 1), len(words))
            self._multi_first.add(words[0])

    def __len__(self) -> int:
        return len(self._surfaces)

    def get(self, key: str) -> Optional[Surface]:
        """The compiled key's surface (key: words' lookup keys joined by one space)."""
        return self._surfaces.get(key)

    def triggered_by(self, words) -> bool:
        """Whether any of these words (ZWNJ dropped) can start a match: a line with none needs
        no tokenising for exact and morph matching."""
        return not self._triggers.isdisjoint(words)

    def find(self, line: TokenizedLine, covered: list[bool]) -> list[Flag]:
        """The flags in line, marking the words they cover in `covered`."""
        flags: list[Flag] = []
        tokens, keys, text = line.tokens, line.keys, line.text
        i = 0
        while i < len(tokens):
            found = None
            if keys[i] in self._multi_first:
                for n in range(min(self._max_words[keys[i]], len(tokens) - i), 1, -1):
                    surface = self._surfaces.get(" ".join(keys[i:i + n]))
                    if surface is not None:
                        found = (surface, n)
                        break
            if found is None and keys[i] in self._surfaces:
                found = (self._surfaces[keys[i]], 1)
            if found is None:
                i += 1
                continue
            surface, n = found
            start, end = tokens[i].start, tokens[i + n - 1].end
            flags.append(make_flag(surface.concept, surface.kind,
                                   SCORE_EXACT if surface.kind == "exact" else SCORE_MORPH,
                                   start, end, text, surface.form, (surface.prior, surface.prior_reason)))
            for j in range(i, i + n):
                covered[j] = True
            i += n
        return flags

    def match(self, text: str) -> list[Flag]:
        """The exact and morph flags of one normalised line, used alone."""
        line = TokenizedLine.of(text, self._tokenizer)
        return self.find(line, [False] * len(line.tokens))
