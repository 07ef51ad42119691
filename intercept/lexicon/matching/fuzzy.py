"""Fuzzy matching: recognition noise, split, merged or slightly misspelled words (rapidfuzz).

    matcher = FuzzyMatcher(concepts, surfaces, words, priors, partners, either_partners)
    matcher.match("امشب پرامده رو دیدیم", MatchOptions())  -> [Flag(bird, fuzzy, ...)]

Windows of one to FUZZY_MAX_WINDOW_TOKENS words not already flagged are compared, with
sound-alike letters folded (sound_keys), to every fuzzy key; scored lower than a morph hit.
A lone fuzzy hit must be close to the form (fuzzy_threshold); a looser one (down to
fuzzy_threshold - fuzzy_context_margin) counts only beside a pattern partner in the same
line (another animal code, a time beside an animal ...), because on real recognition output
most loose lone hits are garbled plain words. Real words (KnownWords) are never taken for noise.

Similarity cannot reach two kinds of key: a form shorter than fuzzy_min_length (too many
look-alikes) and a verb's conjugations. A word that is spelled as one of those sounds
(spelled_key: خرص for خرس, کشیت for کشید) is a fuzzy hit of similarity 1, and so is a form's
ezafe written as heard (پرندی for پرنده‌ی), though it is also a real word's inflection; a short
form's flag still needs the recogniser's support (intercept.scoring.needs_support).

FuzzyIndex keeps this as cheap per line with thousands of keys as with ten: rapidfuzz's
extractOne over every key, asked only of the keys that can reach the cut-off.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from rapidfuzz import fuzz, process

from intercept.text import ZWNJ, PersianTokenizer
from intercept.types import Flag

from .common import FUZZY_SCORE_SCALE, MatchOptions, TokenizedLine, make_flag

FUZZY_MAX_WINDOW_TOKENS = 3
# A window of only short common words ("رو با" is "on with") is plain speech as often as it is
# a split code word, so it needs a partner whatever its similarity.
FUZZY_SHORT_PIECE_LENGTH = 2

# For fuzzy comparison only: letters recognisers confuse because they sound alike, and the four
# Persian letters a recogniser trained mostly on Arabic script writes as their Arabic base
# (گنجشگ / گنجشک, پ as ب).
_SOUND_ALIKE = str.maketrans({"ص": "س", "ث": "س", "ذ": "ز", "ض": "ز", "ظ": "ز", "ط": "ت", "غ": "ق",
                              "ح": "ه", "آ": "ا", "ع": "ا", "گ": "ک", "پ": "ب", "چ": "ج", "ژ": "ز",
                              ZWNJ: None, " ": None})


def sound_keys(text: str) -> tuple[str, ...]:
    """What fuzzy matching compares: sound-alike letters folded, spaces/ZWNJ dropped, and the
    key once more without a final ه (recognisers drop and add it freely: روبا for روباه)."""
    folded = text.translate(_SOUND_ALIKE)
    return (folded, folded[:-1]) if folded.endswith("ه") and len(folded) > 3 else (folded,)


def spelled_key(key: str) -> str:
    """A word as a recogniser spells what it hears: sound-alike letters folded (as sound_keys)
    and a final د written ت (Whisper base hears the devoiced ending: کشیت for کشید). Two words
    with one spelled key sound the same."""
    folded = key.translate(_SOUND_ALIKE)
    return folded[:-1] + "ت" if folded.endswith("د") else folded


# A spelled key shorter than this matches nothing: two letters spell too many words.
SPELLED_MIN_LETTERS = 3
# A form's silent final ه with the ezafe, as Whisper base writes it: پرندی, پرندیی.
_EZAFE_SPELLINGS = ("یی", "ی")


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
        # Columns sorted by key length: a ratio >= cutoff bounds the key's length (the letter
        # bound below is at most the shorter length), so only one slice of columns is compared.
        order = sorted(range(len(self.keys)), key=lambda k: len(self.keys[k]))
        self._order = np.array(order, dtype=np.int64)
        letters = sorted({ch for key in self.keys for ch in key})
        self._column = {ch: n for n, ch in enumerate(letters)}
        counts = np.zeros((len(letters), len(self.keys)), dtype=np.int16)
        for position, k in enumerate(order):
            for ch in self.keys[k]:
                counts[self._column[ch], position] += 1
        self._counts = counts
        self._lengths = np.array([len(self.keys[k]) for k in order], dtype=np.float64)
        self._key_array = np.empty(len(self.keys), dtype=object)  # the str objects: a slice is one C call
        self._key_array[:] = self.keys

    def candidates(self, query: str, cutoff: float) -> np.ndarray:
        """Indexes (ascending) of the keys whose ratio to query can reach cutoff."""
        q = len(query)
        # Keys of length L can reach the cut-off only if 200 * min(L, q) >= cutoff * (L + q):
        # the slice of lengths that can, with the same hair of slack as the test below.
        if 0 < cutoff < 200:
            shortest = (cutoff * q - 1e-6) / (200.0 - cutoff) - 1e-9
            longest = (q * (200.0 - cutoff) + 1e-6) / cutoff + 1e-9
            lo = int(np.searchsorted(self._lengths, shortest, side="left"))
            hi = int(np.searchsorted(self._lengths, longest, side="right"))
        else:
            lo, hi = 0, len(self.keys)
        if lo >= hi:
            return np.zeros(0, dtype=np.int64)
        wanted: dict[int, int] = {}
        for ch in query:
            column = self._column.get(ch)
            if column is not None:
                wanted[column] = wanted.get(column, 0) + 1
        if not wanted:
            bound = np.zeros(hi - lo)
        else:
            rows = self._counts[list(wanted), lo:hi]
            bound = np.minimum(rows, np.array(list(wanted.values()), dtype=np.int16)[:, None]).sum(axis=0)
        # A hair of slack: the bound must never drop a key that rapidfuzz's float score keeps.
        keep = np.flatnonzero(200.0 * bound >= cutoff * (self._lengths[lo:hi] + q) - 1e-6)
        return np.sort(self._order[lo + keep])

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
        hit = process.extractOne(query, self._key_array[chosen].tolist(), scorer=fuzz.ratio, score_cutoff=cutoff)
        if hit is None:
            return None
        return hit[0], hit[1], int(chosen[hit[2]])


class FuzzyMatcher:
    """Fuzzy flags of a line (the module's docstring says which)."""

    def __init__(self, concepts, surfaces, words, priors, partners, either_partners) -> None:
        """concepts: files.Concept list; surfaces: the SurfaceMatcher (a lexicon word split apart,
        گنج شک, is its own key joined); words: KnownWords; priors: PriorTable; partners and
        either_partners: PartnerIndex of every pattern and of 'either' patterns."""
        keys: list[str] = []
        owners: list[tuple[object, str]] = []
        for concept in concepts:
            if not concept.fuzzy:
                continue
            for form in concept.fa:
                if len(form.replace(ZWNJ, "").replace(" ", "")) >= concept.fuzzy_min_length:
                    for key in sound_keys(form):
                        keys.append(key)
                        owners.append((concept, form))
        self._keys = keys
        self._index = FuzzyIndex(keys)
        self._spelled = self._spelled_table(surfaces)
        self._owners = owners
        self._max_len = max((len(k) for k in keys), default=0)
        self._floor: dict[MatchOptions, float] = {}
        self._surfaces = surfaces
        self._words = words
        self._priors = priors
        self._partners = partners
        self._either_partners = either_partners
        self._tokenizer = PersianTokenizer()

    @staticmethod
    def _spelled_table(surfaces) -> dict:
        """spelled_key -> Surface of the keys fuzzy similarity cannot reach: every written form
        (inflections too) of a form shorter than its file's fuzzy_min_length, and every
        conjugation of a verb (verbs have no fuzzy keys). The recogniser spells them as it hears
        them (خرص for خرس, اهو for آهو, کشیت for کشید), and the spelling is no real word. The first
        key to spell a sound keeps it (exact forms come first in the table)."""
        table: dict = {}
        wanted: dict[int, bool] = {}  # per Surface (a form's ~100 keys share one): 1.3 million keys at 10,000 terms
        for key, surface in surfaces.items():
            ok = wanted.get(id(surface))
            if ok is None:
                form, concept = surface.form, surface.concept
                ok = wanted[id(surface)] = concept.fuzzy and (
                    "#" in form or len(form.replace(ZWNJ, "").replace(" ", "")) < concept.fuzzy_min_length)
            if ok and " " not in key:
                spelled = spelled_key(key)
                if len(spelled) >= SPELLED_MIN_LETTERS:
                    table.setdefault(spelled, surface)
        return table

    def _ezafe_of(self, key: str):
        """The Surface of a form ending in a silent ه whose ezafe this word is, written as heard
        (پرندی, پرندیی for پرنده‌ی, پرنده‌ای), else None. Taken even when the word is also a real
        word's inflection (پرند + ی), which form generation and fuzzy similarity both refuse."""
        for suffix in _EZAFE_SPELLINGS:
            if key.endswith(suffix) and len(key) - len(suffix) >= SPELLED_MIN_LETTERS:
                form = key[: -len(suffix)] + "ه"
                surface = self._surfaces.get(form)  # the form itself, not one of its inflections
                if surface is not None and surface.concept.fuzzy and surface.form.replace(ZWNJ, "") == form:
                    return surface
        return None

    def __bool__(self) -> bool:
        """False when no concept has a form to fuzzy-match."""
        return bool(self._keys) or bool(self._spelled)

    @property
    def keys(self) -> list[str]:
        return self._keys

    def match(self, text: str, options: MatchOptions = MatchOptions()) -> list[Flag]:
        """The fuzzy flags of one normalised line, used alone (no exact flags as partners)."""
        line = TokenizedLine.of(text, self._tokenizer)
        return self.find(line, [False] * len(line.tokens), [], options)

    @staticmethod
    def cutoffs(concept, options: MatchOptions) -> tuple[float, float]:
        """(lone, with a partner) similarity cut-offs, 0..100, for one concept."""
        threshold = options.fuzzy_threshold
        margin = options.fuzzy_context_margin
        lone = threshold if threshold is not None else concept.fuzzy_threshold
        partnered = lone - (margin if margin is not None else concept.fuzzy_context_margin)
        return 100.0 * lone, 100.0 * max(partnered, 0.0)

    def find(self, line: TokenizedLine, covered: list[bool], found: list[Flag], options: MatchOptions) -> list[Flag]:
        """Fuzzy flags among the words of line not `covered` by a flag already; `found` holds the
        line's flags so far (their concepts are partners for loose hits)."""
        if not self:
            return []
        text, tokens, keys, words = line.text, line.tokens, line.keys, self._words
        cutoff = self._floor.get(options)
        if cutoff is None:  # the loosest cut-off of any concept under these options, once per options
            cutoff = self._floor[options] = min((self.cutoffs(c, options)[1] for c, _ in self._owners), default=100.0)
        # ratio >= t needs len(window) <= len(form) * (2 - t) / t; longer windows cannot match
        max_len = self._max_len * (200.0 - cutoff) / max(cutoff, 1.0)
        candidates: list[tuple[float, int, int, int]] = []  # (score, -tokens, first, last)
        best: dict[tuple[int, int], tuple[float, object, str, bool]] = {}  # ... lone: needs no partner
        priors: dict[tuple[int, int], tuple] = {}  # spelled hits: their surface's prior
        for i in range(len(tokens)):
            if covered[i]:
                continue
            merged = ""
            for j in range(i, min(i + FUZZY_MAX_WINDOW_TOKENS, len(tokens))):
                if covered[j] or (j > i and tokens[j].start - tokens[j - 1].end > 1):
                    break  # never across a flagged word or punctuation
                if j > i and (len(keys[i]) == 1 or words.is_whole_word(keys[i]) or words.is_whole_word(keys[j])):
                    # "و پرده" is "and curtain", not a bird split in two: a window starting with a
                    # one-letter word, or holding a real long word, is not one word split apart.
                    break
                merged += keys[j]
                if j == i and len(merged) >= SPELLED_MIN_LETTERS:
                    surface = self._ezafe_of(merged)
                    if surface is None:
                        if words.is_known_word(merged):
                            continue  # a real word is neither noise (below) nor a spelling
                        surface = self._spelled.get(spelled_key(merged))
                    if surface is not None:  # spelled as it sounds: خرص, کشیت, پرندی
                        candidates.append((1.0, 0, i, i))
                        best[(i, i)] = (1.0, surface.concept, surface.form, True)
                        priors[(i, i)] = (surface.prior, surface.prior_reason)  # a verb's is its conjugation's
                        continue
                if len(merged) > max_len:
                    break
                # "رو با" ("on with"): pieces that are all short real words need a partner
                short_pieces = j > i and all(len(k) <= FUZZY_SHORT_PIECE_LENGTH and words.is_known_word(k)
                                             for k in keys[i:j + 1])
                joined = self._surfaces.get(merged) if j > i else None
                if joined is not None and joined.concept.fuzzy:  # a lexicon word split apart: گنج شک
                    candidates.append((1.0, -(j - i), i, j))
                    best[(i, j)] = (1.0, joined.concept, joined.form, not short_pieces)
                    continue
                if len(merged) < 3 or (j > i and words.is_known_word(merged, verbs=False)):
                    continue  # (one word of 3 letters or more was asked above)
                result = None
                for key in sound_keys(merged):  # with and without a final ه: پرامده ~ پرنده
                    hit = self._index.best(key, cutoff)  # process.extractOne over the keys
                    if hit is not None and (result is None or hit[1] > result[1]):
                        result = hit
                if result is None:
                    continue
                _, score, index = result
                concept, form = self._owners[index]
                lone_cutoff, partnered_cutoff = self.cutoffs(concept, options)
                if score < partnered_cutoff or len(merged) < concept.fuzzy_min_length:
                    continue  # a short piece (بیا) is no garbled long form (پایگاه)
                similarity = score / 100.0
                candidates.append((similarity, -(j - i), i, j))
                best[(i, j)] = (similarity, concept, form, score >= lone_cutoff and not short_pieces)
        chosen: list[tuple[int, int]] = []
        taken = [False] * len(tokens)
        for similarity, _, i, j in sorted(candidates, reverse=True):
            if any(taken[i:j + 1]):
                continue
            for k in range(i, j + 1):
                taken[k] = True
            chosen.append((i, j))
        # A loose hit stands when a pattern partner is in the line: an exact/morph flag, or another
        # fuzzy hit that an 'either' pattern could join it with (two garbled animal codes in one
        # line raise each other: پرامده ... رو گا). Two fuzzy hits of a co-occurrence pattern do
        # not: on plain output that pairs any garbled animal with any garbled place.
        present = {flag.concept for flag in found}
        fuzzy_present = {best[span][1].id for span in chosen}
        flags: list[Flag] = []
        for i, j in chosen:
            similarity, concept, form, lone = best[(i, j)]
            if not lone and self._partners[concept.id].isdisjoint(present - {concept.id}) \
                    and self._either_partners[concept.id].isdisjoint(fuzzy_present - {concept.id}):
                continue
            flags.append(make_flag(concept, "fuzzy", round(similarity * FUZZY_SCORE_SCALE, 3),
                                   tokens[i].start, tokens[j].end, text, form,
                                   priors.get((i, j)) or self._priors.form(concept.id, form)))
        return flags
