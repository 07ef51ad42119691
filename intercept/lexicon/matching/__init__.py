"""Matchers, one module per family; each takes the compiled pieces it needs and works alone:

  surfaces  exact and morph: every written form in one dictionary keyed by a line's words
  fuzzy     recognition noise: split, merged or slightly misspelled words (FuzzyIndex)
  patterns  "<animal> یا <animal>" in a line, concepts together across lines (PartnerIndex)
  english   the English glosses on the translation (EnglishIndex)

The indexes keep matching as cheap per line with thousands of terms as with ten, with the
same answers as the plain search they replace (tests/test_lexicon_index.py compares them).
intercept.lexicon.Lexicon composes the matchers; common holds what they share. Their key tables
are intercept.keytable's, which the compiled-lexicon cache reads back without rebuilding them.
"""
from .common import KINDS, MatchOptions, TokenizedLine, dedupe
from .english import EnglishIndex, EnglishMatcher
from .fuzzy import FuzzyIndex, FuzzyMatcher
from .patterns import PartnerIndex, PatternMatcher
from .surfaces import Surface, SurfaceMatcher

__all__ = ["KINDS", "EnglishIndex", "EnglishMatcher", "FuzzyIndex", "FuzzyMatcher", "MatchOptions", "PartnerIndex",
           "PatternMatcher", "Surface", "SurfaceMatcher", "TokenizedLine", "dedupe"]
