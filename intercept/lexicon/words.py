"""Which words are real Persian words, for the steps that must not mistake one for a lexicon form.

    words = KnownWords(normalizer, excluded={"پرونده"})
    words.is_word("پرونده")  -> True   (hazm's word list, or a lexicon's `exclude`)

Form generation leaves out colloquial forms that spell a real word (مین + ا is مینا), and fuzzy
matching never takes a real word for recognition noise (پرونده is not پرنده). hazm's word
list carries corpus frequencies; a word seen at least KNOWN_WORD_MIN_FREQUENCY times counts.
The tables are the normaliser's (hazm's data, intercept.text.WordTables), taken on first use.
"""
from __future__ import annotations

from typing import Container, Iterable, Optional

# hazm's word list carries corpus frequencies; a word seen at least this often is a real word, not
# recognition noise, so it is never fuzzy-matched to a lexicon form (پرونده is not پرنده).
KNOWN_WORD_MIN_FREQUENCY = 50
# A known word this long inside a multi-word window is a word of its own, not a fragment.
FUZZY_WHOLE_WORD_LENGTH = 4  # a word split by the recogniser into up to 3 pieces
# An inflected real word (پرونده‌ها) is as real as its stem.
_INFLECTIONS = ("ها", "های", "هایی", "ان", "گان", "ی", "ای", "یی", "م", "ت", "ش", "مان", "تان", "شان")


class KnownWords:
    """Real words (hazm's list, its verb forms) and the lexicon's excluded words, as lookup
    keys (ZWNJ dropped). `normalizer` may be None until `attach` gives one (a lexicon read
    back from the compile cache, which does not keep hazm's tables)."""

    def __init__(self, normalizer, excluded: Iterable[str] = ()) -> None:
        self.normalizer = normalizer
        self.excluded = frozenset(excluded)
        self._known_words: Optional[Container[str]] = None  # taken on first use
        self._common_words: Container[str] = frozenset()
        self._known_verbs: Container[str] = frozenset()

    def attach(self, normalizer) -> None:
        """Use this normaliser's tables (built again on first use)."""
        self.normalizer = normalizer
        self._known_words = None
        self._common_words = frozenset()
        self._known_verbs = frozenset()

    def is_word(self, key: str, verbs: bool = True) -> bool:
        """key as a whole is a word of hazm's list (or, when asked, a verb form) or an excluded one."""
        if self._known_words is None:  # taken on first use
            self._known_words = self.normalizer.known_words(KNOWN_WORD_MIN_FREQUENCY, tagged=True)
            self._common_words = self.normalizer.known_words(KNOWN_WORD_MIN_FREQUENCY)
            self._known_verbs = self.normalizer.known_verb_forms()
        return key in self._known_words or key in self.excluded or (verbs and key in self._known_verbs)

    def is_known_word(self, key: str, verbs: bool = True) -> bool:
        """A real Persian word, so not recognition noise. Verb forms count only when asked: a
        single token پرید "flew" is a word, but "پر اندی" merged is a garbled پرنده even though
        پراندی happens to be a rare verb form."""
        if self.is_word(key, verbs):
            return True
        for suffix in _INFLECTIONS:
            if key.endswith(suffix) and len(key) - len(suffix) >= 2:
                stem = key[: -len(suffix)]
                if stem in self._known_words or stem in self.excluded or (
                        suffix == "گان" and stem + "ه" in self._known_words):
                    return True
        return False

    def is_whole_word(self, key: str) -> bool:
        """A common word of its own, not a piece of a split word (rare words like اندی can be pieces)."""
        return len(key) >= FUZZY_WHOLE_WORD_LENGTH and self.is_known_word(key) and (
            key in self._common_words or key in self._known_verbs)
