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
from .keytable import KeyTable


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
        # The first two words of every multi-word key ("w1 w2"): the quick test's second step.
        # Forms generate multi-word keys for many common first words (X را, X هست ...), so the
        # first word alone let nine lines in ten through at 10,000 terms.
        self._multi_pairs: set[str] = set()
        self._excluded = frozenset(excluded)
        # One Surface object per (concept, form, kind, prior): a form's ~100 generated keys share
        # it, which keeps a 10,000-term lexicon's memory and its cached pickle small.
        self._shared: dict[tuple, Surface] = {}
        for concept in concepts:  # exact forms first so that they win any clash with a generated form
            for form in concept.fa:
                self._add_all([lookup_key(form)], Surface(concept, form, "exact", *priors.form(concept.id, form)))
        for concept in concepts:
            for form in concept.fa:
                # One Surface per form for all its ~100 generated keys: built once, not per key
                # (a 10,000-term lexicon adds 1.5M keys; compiling it is what --lexicon waits for).
                surface = Surface(concept, form, "morph", *priors.form(concept.id, form))
                self._add_all([lookup_key(key) for key in forms.noun_forms(form, concept.inflect)], surface)
            for lemma in concept.verbs:
                verb_priors = priors.verb(concept.id, lemma)
                plain = plain_prior(concept)
                self._add_all([lookup_key(forms.infinitive(lemma))], Surface(concept, lemma, "exact", *plain))
                for conjugated in forms.verb_forms(lemma):
                    prior = verb_priors.get(conjugated, plain)
                    self._add_all([lookup_key(spelling) for spelling in spellings(conjugated)],
                                  Surface(concept, lemma, "morph", *prior))
        del self._shared  # only needed while compiling
        # Read back from the compiled-lexicon cache without being rebuilt (matching.keytable).
        self._surfaces = KeyTable(self._surfaces)
        self._multi_pairs = KeyTable.of_set(self._multi_pairs)
        self._tokenizer = PersianTokenizer()

    def _add_all(self, keys: list[str], surface: Surface) -> None:
        """Add each key for one surface, in order. First come keeps a key; exact beats morph
        (duplicate exact forms were refused at load); an excluded key is never added."""
        identity = (id(surface.concept), surface.form, surface.kind, surface.prior, surface.prior_reason)
        surface = self._shared.setdefault(identity, surface)
        table, excluded, morph = self._surfaces, self._excluded, surface.kind == "morph"
        for key in keys:
            existing = table.get(key)
            if existing is not None and (morph or existing.kind == "exact"):
                continue
            if key in excluded:
                continue
            table[key] = surface
            if " " in key:  # checked first: most keys are one word, and split() costs at 10,000 terms
                words = key.split(" ")
                self._max_words[words[0]] = max(self._max_words.get(words[0], 1), len(words))
                self._multi_first.add(words[0])
                self._multi_pairs.add(key if len(words) == 2 else words[0] + " " + words[1])

    def build_tables(self) -> None:
        """Build the key tables' dicts now (matching.keytable builds them by itself once many
        lines are matched); benchmarks call it to time it apart from matching."""
        self._surfaces.to_dict()
        self._multi_pairs.to_dict()

    def __len__(self) -> int:
        return len(self._surfaces)

    def get(self, key: str) -> Optional[Surface]:
        """The compiled key's surface (key: words' lookup keys joined by one space)."""
        return self._surfaces.get(key)

    def triggered_by(self, words: list[str]) -> bool:
        """Whether these words (a line's, in order, ZWNJ dropped) can hold a match: a one-word
        key, or the first two words of a longer one side by side. A line with none needs no
        tokenising for exact and morph matching."""
        if not self._surfaces.isdisjoint(words):  # keys with a space never equal a word
            return True
        if self._multi_first.isdisjoint(words):
            return False
        first, pairs = self._multi_first, self._multi_pairs
        return any(words[i] in first and words[i] + " " + words[i + 1] in pairs for i in range(len(words) - 1))

    def find(self, line: TokenizedLine, covered: list[bool]) -> list[Flag]:
        """The flags in line, marking the words they cover in `covered`."""
        flags: list[Flag] = []
        tokens, keys, text = line.tokens, line.keys, line.text
        table = self._surfaces.lookup()
        i = 0
        while i < len(tokens):
            found = None
            if keys[i] in self._multi_first:
                for n in range(min(self._max_words[keys[i]], len(tokens) - i), 1, -1):
                    surface = table.get(" ".join(keys[i:i + n]))
                    if surface is not None:
                        found = (surface, n)
                        break
            if found is None and keys[i] in table:
                found = (table[keys[i]], 1)
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
