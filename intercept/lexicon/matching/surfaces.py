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
from itertools import repeat
from typing import Optional

from intercept.keytable import KeyTable
from intercept.text import PersianTokenizer
from intercept.types import Flag

from ..forms import lookup_key, lookup_keys, spellings
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
        # One Surface object per (concept, form, kind, prior): a form's ~100 generated keys share
        # it, which keeps a 10,000-term lexicon's memory and its cached pickle small.
        shared: dict[tuple, Surface] = {}

        def one(surface: Surface) -> Surface:
            identity = (id(surface.concept), surface.form, surface.kind, surface.prior, surface.prior_reason)
            return shared.setdefault(identity, surface)

        # Who owns a key: an exact form beats a generated one, and otherwise the first to write it
        # (in lexicon order: all exact forms, then each concept's forms and verbs). The generated
        # keys go into the table per form as whole lists, latest form first so that earlier ones
        # overwrite them: a 10,000-term lexicon has 1.8 million, and a Python step per key was
        # most of its first load.
        exact: dict[str, Surface] = {}
        generated: list[tuple[list[str], Surface]] = []
        for concept in concepts:
            for form in concept.fa:
                exact.setdefault(lookup_key(form), one(Surface(concept, form, "exact", *priors.form(concept.id, form))))
        for concept in concepts:
            for form in concept.fa:
                generated.append((forms.noun_keys(form, concept.inflect),
                                  one(Surface(concept, form, "morph", *priors.form(concept.id, form)))))
            for lemma in concept.verbs:
                verb_priors = priors.verb(concept.id, lemma)
                plain = plain_prior(concept)
                exact.setdefault(lookup_key(forms.infinitive(lemma)), one(Surface(concept, lemma, "exact", *plain)))
                for conjugated in forms.verb_forms(lemma):
                    generated.append((lookup_keys(spellings(conjugated)),
                                      one(Surface(concept, lemma, "morph", *verb_priors.get(conjugated, plain)))))
        table: dict[str, Surface] = {}
        for keys, surface in reversed(generated):
            table.update(zip(keys, repeat(surface)))
        table.update(exact)
        for key in excluded:  # never flagged, whoever wrote it
            table.pop(key, None)
        # The longest multi-word key per first word, and the first two words of every multi-word
        # key ("w1 w2"): the quick test's second step. Forms generate multi-word keys for many
        # common first words (X را, X هست ...), so the first word alone let nine lines in ten
        # through at 10,000 terms.
        self._max_words: dict[str, int] = {}
        multi_pairs: set[str] = set()
        for key in [key for key in table if " " in key]:
            words = key.split(" ")
            self._max_words[words[0]] = max(self._max_words.get(words[0], 1), len(words))
            multi_pairs.add(key if len(words) == 2 else words[0] + " " + words[1])
        self._multi_first: set[str] = set(self._max_words)
        # Read back from the compiled-lexicon cache without being rebuilt (intercept.keytable).
        self._surfaces = KeyTable(table)
        self._multi_pairs = KeyTable.of_set(multi_pairs)
        self._tokenizer = PersianTokenizer()

    def build_tables(self) -> None:
        """Build the key tables' dicts now (intercept.keytable builds them by itself once many
        lines are matched); benchmarks call it to time it apart from matching."""
        self._surfaces.to_dict()
        self._multi_pairs.to_dict()

    def __len__(self) -> int:
        return len(self._surfaces)

    def items(self):
        """(key, Surface) of every compiled key."""
        return self._surfaces.items()

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
