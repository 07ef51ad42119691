"""Pattern matching: "<animal> یا <animal>" inside a line, concepts together across lines.

    matcher = PatternMatcher(concepts, patterns)
    matcher.either(line, flags)           -> pattern flags joining two of a line's flags
    matcher.cooccurrence(lines, per_line) -> adds co-occurrence flags to each line's flags

Patterns read the flags the other matchers found; they find no words themselves. PartnerIndex
answers which concepts a pattern could join (fuzzy matching asks it for a loose hit's partner),
per pair instead of a concept-by-concept table (10,000 concepts: 10^8 pairs).
"""
from __future__ import annotations

from typing import Iterable, Sequence

from intercept.types import Flag, Line

from .common import COOCCURRENCE_SCALE, EITHER_PATTERN_SCALE, TokenizedLine, weakest_prior


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


class PatternMatcher:
    """Flags of a lexicon's patterns (files.Pattern): `either` inside a line, `cooccurrence`
    across the transmissions of a batch of lines."""

    def __init__(self, concepts, patterns: Sequence) -> None:
        self._patterns = list(patterns)
        self._either = [p for p in self._patterns if p.type == "either"]
        self._cooccurrence_patterns = [p for p in self._patterns if p.type == "cooccurrence"]
        self.partners = PartnerIndex(concepts, self._patterns)
        self.either_partners = PartnerIndex(concepts, self._either)

    def either(self, line: TokenizedLine, flags: list[Flag]) -> list[Flag]:
        """'<X> یا <Y>': two hits joined by a connector, with only filler words between."""
        patterns = self._either
        text, tokens, keys = line.text, line.tokens, line.keys
        if not patterns or len(flags) < 2:
            return []
        ordered = sorted(flags, key=lambda f: f.span_start)
        token_index = {t.start: n for n, t in enumerate(tokens)}
        token_end = {t.end: n for n, t in enumerate(tokens)}
        found: list[Flag] = []
        for pattern in patterns:
            for a, b in zip(ordered, ordered[1:]):
                if not (fits(pattern, a) and fits(pattern, b)) or a.concept == b.concept:
                    continue
                first, last = token_end.get(a.span_end), token_index.get(b.span_start)
                if first is None or last is None:
                    continue
                between = keys[first + 1:last]
                if not 1 <= len(between) <= pattern.max_gap:
                    continue
                connectors = [w for w in between if w in pattern.connectors]
                if len(connectors) != 1 or any(w not in pattern.fillers for w in between if w not in pattern.connectors):
                    continue
                score = round(min(a.score, b.score) * EITHER_PATTERN_SCALE, 3)
                found.append(Flag(pattern.id, pattern.category, "pattern", score, a.span_start, b.span_end,
                                  text[a.span_start:b.span_end], pattern.severity,
                                  f"{a.concept} {connectors[0]} {b.concept}", *weakest_prior([a, b])))
        return found

    def cooccurrence(self, lines: list[Line], per_line: list[list[Flag]]) -> None:
        """Adds to per_line (each line's flags) the flags of concepts that appear together within
        a transmission or `window` transmissions either side."""
        for pattern in self._cooccurrence_patterns:
            self._cooccurrence(pattern, lines, per_line)

    def _cooccurrence(self, pattern, lines: list[Line], per_line: list[list[Flag]]) -> None:
        by_transmission: dict[int, list[tuple[int, Flag]]] = {}
        for n, (line, flags) in enumerate(zip(lines, per_line)):
            for flag in flags:
                if fits(pattern, flag):
                    by_transmission.setdefault(line.transmission_idx, []).append((n, flag))
        needed: dict[str, int] = {}
        for item in pattern.categories + pattern.concepts:
            needed[item] = needed.get(item, 0) + 1
        for idx, own in by_transmission.items():
            near = [hit for t in range(idx - pattern.window, idx + pattern.window + 1)
                    for hit in by_transmission.get(t, [])]
            if not _satisfied(needed, pattern, [flag for _, flag in near]):
                continue
            score = round(min(flag.score for _, flag in near) * COOCCURRENCE_SCALE, 3)
            others = sorted({flag.concept for _, flag in near})
            prior = weakest_prior([flag for _, flag in near])
            for n, flag in own:
                per_line[n].append(Flag(pattern.id, pattern.category, "pattern", score, flag.span_start,
                                        flag.span_end, flag.matched, pattern.severity, "+".join(others), *prior))


def fits(pattern, flag: Flag) -> bool:
    """Whether a (non-pattern) flag is one of the pattern's parts."""
    return flag.kind != "pattern" and (flag.category in pattern.categories or flag.concept in pattern.concepts)


def _satisfied(needed: dict[str, int], pattern, flags: list[Flag]) -> bool:
    for item, count in needed.items():
        if item in pattern.concepts:
            distinct = {f.concept for f in flags if f.concept == item}
            if not distinct:
                return False
        elif len({f.concept for f in flags if f.category == item}) < count:
            return False
    return True
