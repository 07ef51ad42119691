"""English matching: the lexicon's English glosses on a line's translation.

    matcher = EnglishMatcher(concepts)
    matcher.match("two birds at the river")  -> [Flag(bird, english, 0.9, ...)]

Whole words, any case, with regular plurals of the last word (english_variants; the lexicon
lists irregular ones, wolves, as forms of their own). Spans index the English text.
EnglishIndex keeps it cheap with thousands of glosses: at each word start, only the glosses
that begin with that word are tried.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

from intercept.types import Flag

from ..priors import plain_prior
from .common import SCORE_ENGLISH, make_flag

_ENGLISH_WORD_CHARS = r"[A-Za-z0-9]"


def gloss_regex(alternatives: Sequence[str]) -> "re.Pattern":
    body = "|".join(r"\s+".join(re.escape(w) for w in a.split()) for a in alternatives)
    return re.compile(rf"(?<!{_ENGLISH_WORD_CHARS})(?:{body})(?!{_ENGLISH_WORD_CHARS})", re.IGNORECASE)


def english_variants(gloss: str) -> list[str]:
    """The gloss and its regular plural(s) (last word). Hand-written: the rules needed are four
    lines, and the lexicon lists irregular plurals (wolves) as forms of their own."""
    words = gloss.split()
    last = words[-1]
    lower = last.lower()
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        plurals = [last + "es"]
    elif lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        plurals = [last[:-1] + "ies"]
    elif lower.endswith("fe"):
        plurals = [last + "s", last[:-2] + "ves"]
    elif lower.endswith("f"):
        plurals = [last + "s", last[:-1] + "ves"]
    else:
        plurals = [last + "s"]
    head = " ".join(words[:-1])
    return [gloss] + [(head + " " + p) if head else p for p in plurals]



class EnglishMatcher:
    """English flags of a translated line."""

    def __init__(self, concepts) -> None:
        self._english: dict[str, tuple[object, str]] = {}  # lower-case variant -> (concept, gloss)
        for concept in concepts:
            for gloss in concept.en:
                for variant in english_variants(gloss):
                    self._english.setdefault(variant.lower(), (concept, gloss))
        alternatives = sorted(self._english, key=len, reverse=True)
        self._index: Optional[EnglishIndex] = EnglishIndex(alternatives, gloss_regex) if alternatives else None

    @property
    def regex(self) -> Optional["re.Pattern"]:
        """The glosses as one regex (None: no glosses)."""
        return None if self._index is None else self._index.regex

    def __bool__(self) -> bool:
        """False when the lexicon has no English gloss."""
        return self._index is not None

    def match(self, text: str) -> list[Flag]:
        if self._index is None or not text:
            return []
        flags = []
        for m in self._index.finditer(text):  # self.regex.finditer(text), indexed
            concept, gloss = self._english[" ".join(m.group().lower().split())]
            flags.append(make_flag(concept, "english", SCORE_ENGLISH, m.start(), m.end(), text, gloss,
                                   plain_prior(concept)))
        return flags


_ASCII_RUN = re.compile(r"[A-Za-z0-9]+")


class EnglishIndex:
    """The matches of the glosses' regex (alternatives in order, between non-[A-Za-z0-9]
    boundaries, case-insensitive), found by trying at each word start only the alternatives
    that begin with that word: one small regex per first word instead of thousands of
    alternatives at every character. Text that is not ASCII goes to the whole regex
    (IGNORECASE folds a few non-ASCII letters, such as the Kelvin sign, onto ASCII ones).

    Every regex is compiled on first use and never pickled: a lexicon read back from the
    cache by a command that matches no English (`intercept match` on Farsi) would otherwise
    compile them all again on load (0.11 s for the whole regex at 10,000 glosses)."""

    def __init__(self, alternatives: Sequence[str], build):
        """alternatives in the regex's order; build(subset) compiles the regex of a subset."""
        self._alternatives = list(alternatives)
        self._build = build
        self._regex: Optional["re.Pattern"] = None
        self._compiled: dict[str, "re.Pattern"] = {}
        groups: dict[str, list[str]] = {}
        for alternative in alternatives:
            first = _ASCII_RUN.match(alternative)
            groups.setdefault(first.group().lower() if first else "", []).append(alternative)
        # "" cannot happen for validated glosses; the whole regex is then used for everything
        self._groups: Optional[dict[str, list[str]]] = None if "" in groups else groups

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_regex": None, "_compiled": {}}

    @property
    def regex(self) -> "re.Pattern":
        if self._regex is None:
            self._regex = self._build(self._alternatives)
        return self._regex

    def _group(self, first: str) -> Optional["re.Pattern"]:
        pattern = self._compiled.get(first)
        if pattern is None:
            members = self._groups.get(first)
            if members is None:
                return None
            pattern = self._compiled[first] = self._build(members)
        return pattern

    def finditer(self, text: str):
        if self._groups is None or not text.isascii():
            yield from self.regex.finditer(text)
            return
        end = 0
        for run in _ASCII_RUN.finditer(text):
            if run.start() < end:
                continue
            group = self._group(run.group().lower())
            if group is None:
                continue
            m = group.match(text, run.start())
            if m is not None:
                end = m.end()
                yield m
