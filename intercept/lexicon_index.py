"""Indexes that keep lexicon matching as cheap per line with thousands of terms as with ten.

intercept.lexicon compiles exact and morphological forms into one dictionary keyed by the
words of a line (a hash look-up per word, whatever the lexicon's size: measured against an
Aho-Corasick automaton in docs/benchmarks.md). What grew with the lexicon was the rest,
replaced here by indexes that give the same answers:

  FuzzyIndex      rapidfuzz's extractOne over every fuzzy key, asked only of the keys that
                  can reach the cut-off (a letter-count bound, exact: never drops a match).
  PartnerIndex    which concepts a pattern could join, asked per pair instead of stored as
                  a concept-by-concept table (10,000 concepts: 10^8 pairs).
  EnglishIndex    the English gloss regex, tried only where a gloss's first word starts.
"""
from __future__ import annotations

import re
from typing import Iterable, Optional, Sequence

import numpy as np
from rapidfuzz import fuzz, process

# Below this many keys one extractOne over all of them is cheaper than the index.
_INDEX_FROM = 256
_MEMO_SIZE = 100_000


class FuzzyIndex:
    """process.extractOne(query, keys, scorer=fuzz.ratio, score_cutoff=cutoff), the same
    (choice, score, index), over fewer keys.

    fuzz.ratio is 200 * LCS / (len(a) + len(b)), and the longest common subsequence of two
    strings holds no more of a letter than either has: sum over letters of the smaller
    count bounds LCS. Keys whose bound falls short of the cut-off cannot match and are not
    compared; the rest keep their order, so ties go to the same (first) key as before."""

    def __init__(self, keys: Sequence[str]):
        self.keys = list(keys)
        self._memo: dict = {}
        self._indexed = len(self.keys) >= _INDEX_FROM
        if not self._indexed:
            return
        letters = sorted({ch for key in self.keys for ch in key})
        self._column = {ch: n for n, ch in enumerate(letters)}
        counts = np.zeros((len(letters), len(self.keys)), dtype=np.int16)
        for k, key in enumerate(self.keys):
            for ch in key:
                counts[self._column[ch], k] += 1
        self._counts = counts
        self._lengths = np.array([len(key) for key in self.keys], dtype=np.float64)

    def candidates(self, query: str, cutoff: float) -> np.ndarray:
        """Indexes (ascending) of the keys whose ratio to query can reach cutoff."""
        wanted: dict[int, int] = {}
        for ch in query:
            column = self._column.get(ch)
            if column is not None:
                wanted[column] = wanted.get(column, 0) + 1
        if not wanted:
            bound = np.zeros(len(self.keys))
        else:
            rows = self._counts[list(wanted)]
            bound = np.minimum(rows, np.array(list(wanted.values()), dtype=np.int16)[:, None]).sum(axis=0)
        # A hair of slack: the bound must never drop a key that rapidfuzz's float score keeps.
        return np.flatnonzero(200.0 * bound >= cutoff * (self._lengths + len(query)) - 1e-6)

    def best(self, query: str, cutoff: float):
        """The same (choice, score, index) as extractOne, or None. Answers are remembered per
        (query, cutoff): recognition output repeats its garbled words line after line."""
        key = (query, cutoff)
        if key in self._memo:
            return self._memo[key]
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()  # bounded: a long run's memory stays flat
        found = self._memo[key] = self._best(query, cutoff)
        return found

    def _best(self, query: str, cutoff: float):
        if not self._indexed:
            return process.extractOne(query, self.keys, scorer=fuzz.ratio, score_cutoff=cutoff)
        chosen = self.candidates(query, cutoff)
        if not len(chosen):
            return None
        hit = process.extractOne(query, [self.keys[i] for i in chosen], scorer=fuzz.ratio, score_cutoff=cutoff)
        if hit is None:
            return None
        return hit[0], hit[1], int(chosen[hit[2]])


class _PartnerView:
    """The partners of one concept, answering isdisjoint() as a frozenset would."""

    def __init__(self, index: "PartnerIndex", concept: str):
        self._index = index
        self._concept = concept

    def isdisjoint(self, others: Iterable[str]) -> bool:
        return not any(self._index.joined(self._concept, other) for other in others)

    def __contains__(self, other: str) -> bool:
        return self._index.joined(self._concept, other)


class PartnerIndex:
    """For each concept, the concepts a pattern could join it with: two concepts that both
    fit an 'either' pattern, or that fit different items of another pattern (an animal and a
    time for animal_with_time). Same answers as a table of every pair, computed per pair from
    each concept's items per pattern (a line holds a handful of flags)."""

    def __init__(self, concepts, patterns):
        self._patterns = list(patterns)
        self._fits: dict[str, list[frozenset[int]]] = {}
        for concept in concepts:
            fits = []
            for pattern in self._patterns:
                items = list(pattern.categories) + list(pattern.concepts)
                fits.append(frozenset(n for n, item in enumerate(items) if item in (concept.category, concept.id)))
            self._fits[concept.id] = fits

    def __getitem__(self, concept: str) -> _PartnerView:
        if concept not in self._fits:
            raise KeyError(concept)
        return _PartnerView(self, concept)

    def joined(self, a: str, b: str) -> bool:
        if a == b or a not in self._fits or b not in self._fits:
            return False
        for pattern, fa, fb in zip(self._patterns, self._fits[a], self._fits[b]):
            if not fa or not fb:
                continue
            if pattern.type == "either" or any(x != y for x in fa for y in fb):
                return True
        return False


_ASCII_RUN = re.compile(r"[A-Za-z0-9]+")


class EnglishIndex:
    """The matches of `regex` (alternatives in order, between non-[A-Za-z0-9] boundaries,
    case-insensitive), found by trying at each word start only the alternatives that begin
    with that word: one small regex per first word instead of thousands of alternatives at
    every character. Text that is not ASCII goes to the whole regex (IGNORECASE folds a few
    non-ASCII letters, such as the Kelvin sign, onto ASCII ones)."""

    def __init__(self, alternatives: Sequence[str], regex: "re.Pattern", build):
        """alternatives in the regex's order; build(subset) compiles the regex of a subset."""
        self._regex = regex
        groups: dict[str, list[str]] = {}
        for alternative in alternatives:
            first = _ASCII_RUN.match(alternative)
            groups.setdefault(first.group().lower() if first else "", []).append(alternative)
        if "" in groups:  # cannot happen for validated glosses; the whole regex then
            self._groups = None
            return
        self._groups = {first: build(members) for first, members in groups.items()}

    def finditer(self, text: str):
        if self._groups is None or not text.isascii():
            yield from self._regex.finditer(text)
            return
        end = 0
        for run in _ASCII_RUN.finditer(text):
            if run.start() < end:
                continue
            group = self._groups.get(run.group().lower())
            if group is None:
                continue
            m = group.match(text, run.start())
            if m is not None:
                end = m.end()
                yield m


def first_runs(text: str) -> Optional[str]:
    first = _ASCII_RUN.match(text)
    return first.group().lower() if first else None
