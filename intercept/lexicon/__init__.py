"""Coded-language lexicons: read and validate them, generate their forms, estimate priors, match.

A lexicon is a YAML file an analyst edits (format: lexicons/README.md). Each step is a module
with a class that works alone, as hazm's steps do; Lexicon puts them together:

  files        LexiconReader(normalizer).read(paths) -> LexiconSource: checked concepts and
               patterns, the version; errors read "path:line: reason" (LexiconError)
  words        KnownWords: real Persian words (hazm) and the lexicon's exclusions
  forms        FormGenerator: plural / suffix / possessive / colloquial forms, verb conjugations
               (hazm), ZWNJ written as space or left out
  priors       PriorEstimator: how likely a form means its concept (sound-alikes, shared verb stems)
  matching     one matcher per family (matching/__init__.py):
                 exact, morph  SurfaceMatcher: the forms above in one dictionary
                 fuzzy         FuzzyMatcher: recognition noise, split, merged or misspelled words
                 pattern       PatternMatcher: "<animal> یا <animal>", concepts in nearby transmissions
                 english       EnglishMatcher: the glosses on the translation, whole words, plurals
  compiled     Lexicon.load(paths): all of the above, compiled once; match(), flag_lines()
  cache        compiled lexicons kept on disk, keyed by the files' bytes and this code
  calibration  priors calibrated on a recogniser's confusions, the file beside the lexicon

Matching works on text the text stage has already normalised (PersianNormalizer).
The default lexicon is lexicons/ of the source checkout, shipped inside the installed package
as intercept/lexicon/default/ (default_lexicon_path()).
"""
from .compiled import Lexicon, Term
from .files import (DEFAULT_FUZZY_CONTEXT_MARGIN, DEFAULT_FUZZY_MIN_LENGTH, DEFAULT_FUZZY_THRESHOLD, SEVERITIES, Concept,
                    LexiconError, LexiconReader, LexiconSource, Pattern, default_lexicon_path)
from .forms import FormGenerator
from .matching import KINDS, MatchOptions
from .matching.common import (COOCCURRENCE_SCALE, EITHER_PATTERN_SCALE, FUZZY_SCORE_SCALE, SCORE_ENGLISH, SCORE_EXACT,
                              SCORE_MORPH)
from .priors import PRIOR_AMBIGUOUS, PRIOR_PLAIN, SOUND_ALIKE_MIN_RATIO, PriorEstimator
from .words import KNOWN_WORD_MIN_FREQUENCY, KnownWords

__all__ = ["COOCCURRENCE_SCALE", "DEFAULT_FUZZY_CONTEXT_MARGIN", "DEFAULT_FUZZY_MIN_LENGTH", "DEFAULT_FUZZY_THRESHOLD",
           "EITHER_PATTERN_SCALE", "FUZZY_SCORE_SCALE", "KINDS", "KNOWN_WORD_MIN_FREQUENCY", "PRIOR_AMBIGUOUS",
           "PRIOR_PLAIN", "SCORE_ENGLISH", "SCORE_EXACT", "SCORE_MORPH", "SEVERITIES", "SOUND_ALIKE_MIN_RATIO",
           "Concept", "FormGenerator", "KnownWords", "Lexicon", "LexiconError", "LexiconReader", "LexiconSource",
           "MatchOptions", "Pattern", "PriorEstimator", "Term", "default_lexicon_path"]
