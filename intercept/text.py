"""Persian text stage: normalise raw recogniser output, split it into words, lemmatise.

hazm does the linguistic work; this module adds what hazm 0.10 leaves out for ASR text
(Arabic letters ة أ إ ؤ, zero-width joiners, stray ZWNJ at word edges) and gives the lexicon
and the evaluation code one shared view of what a "word" is. One class per step, each usable
on its own, as in hazm.
"""
from __future__ import annotations

import functools
import hashlib
import marshal
import os
import re
import sys
import unicodedata
from pathlib import Path
from typing import NamedTuple, Optional

from .lightimport import import_hazm

# hazm's normaliser and what it needs, the rest of hazm and NLTK on demand (lightimport.py).
hazm = import_hazm()

ZWNJ = "\u200c"

# hazm 0.10 maps ي ك ى and Arabic digits, but leaves these Arabic letter variants alone,
# and recognisers trained on Arabic script emit them in Persian words.
_ARABIC_TO_PERSIAN = str.maketrans(
    {
        "ة": "ه",
        "أ": "ا",
        "إ": "ا",
        "ٱ": "ا",
        "ؤ": "و",
        "ي": "ی",
        "ى": "ی",
        "ك": "ک",
        "ە": "ه",
        "\u200d": None,  # zero-width joiner: never meaningful in Persian words
        "\u200e": None,  # left-to-right mark
        "\u200f": None,  # right-to-left mark
        "\ufeff": None,  # byte-order mark / zero-width no-break space
        "\u0640": None,  # kashida (tatweel)
    }
)
_MANY_ZWNJ = re.compile(ZWNJ + "{2,}")
# A ZWNJ only means something between two letters; next to a space, edge or punctuation it is noise.
_LOOSE_ZWNJ = re.compile(r"(?<!\w)" + ZWNJ + "|" + ZWNJ + r"(?!\w)")
# Arabic diacritics (tanwin, harakat, shadda, superscript alef): the normaliser drops them from
# text, so word lists must drop them too (hazm lists اصلاً; recognised text says اصلا).
_DIACRITICS = re.compile("[\u064b-\u065f\u0670]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
# Arabic presentation forms (ligatures, initial/medial/final shapes) from PDFs and old encoders:
# NFKC gives their plain letters. Done before hazm, whose own replacement of a few of them runs
# after its spacing step, so a second normalisation would space the result again.
_PRESENTATION_FORMS = re.compile("[\ufb50-\ufdff\ufe70-\ufefe]+")
# hazm's steps run in a fixed order and one can make work for an earlier one (a repeated letter
# removed late joins a suffix that spacing would have separated); normalising again until the
# text stops changing makes normalize(normalize(x)) == normalize(x). Two passes settle the
# property test's cases; the cap only bounds a pathological input.
_MAX_PASSES = 4


class PersianNormalizer:
    """Raw ASR text -> canonical Persian: Persian letters, no diacritics or kashida,
    Persian digits, canonical ZWNJ (suffixes such as ها and prefixes such as می joined with it),
    single spaces."""

    def __init__(self) -> None:
        self._hazm = hazm_normalizer()
        self._frequencies: dict[str, int] | None = None

    def normalize(self, text: str) -> str:
        """Canonical form of text; idempotent: normalize(normalize(x)) == normalize(x)."""
        if not isinstance(text, str):
            raise TypeError(f"PersianNormalizer.normalize expects str, got {type(text).__name__}")
        text = _PRESENTATION_FORMS.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
        for _ in range(_MAX_PASSES):
            normalised = self._pass(text)
            if normalised == text:
                break
            text = normalised
        return text

    def _pass(self, text: str) -> str:
        text = _SPACES.sub(" ", text.translate(_ARABIC_TO_PERSIAN))
        text = self._hazm.normalize(text)
        text = _MANY_ZWNJ.sub(ZWNJ, text)
        text = _LOOSE_ZWNJ.sub("", text)
        text = _SPACES.sub(" ", text)
        return text.strip()

    def known_words(self, min_frequency: int = 1, tagged: bool = False) -> frozenset[str]:
        """Words of hazm's word list seen at least min_frequency times in its corpus (or, with
        tagged, any that has a part-of-speech tag: چطور has frequency 0 but is tagged ADV),
        ZWNJ and diacritics removed (اصلاً is listed as اصلا, as the normaliser writes it). The table is the one hazm's Normalizer already loaded (no second load)."""
        # Kept per normaliser: the scorer asks once per call (per recording, per correction), and
        # building the set from hazm's ~60,000 words took 0.2 s each time.
        cache = self.__dict__.setdefault("_known_words", {})
        key = (min_frequency, tagged)
        if key not in cache:
            cache[key] = frozenset(_DIACRITICS.sub("", w.replace(ZWNJ, "")) for w, (frequency, tags)
                                   in self._hazm.words.items()
                                   if frequency >= min_frequency or (tagged and tags and tags != ("0",)))
        return cache[key]

    def word_frequencies(self) -> dict[str, int]:
        """hazm's word list as word -> corpus frequency, words written as the normaliser writes
        them (ZWNJ and diacritics removed; where two spellings meet, the higher count). Built
        once per normaliser from the table hazm's Normalizer already loaded."""
        if self._frequencies is None:
            frequencies: dict[str, int] = {}
            for word, (frequency, _) in self._hazm.words.items():
                key = _DIACRITICS.sub("", word.replace(ZWNJ, ""))
                frequencies[key] = max(frequency, frequencies.get(key, 0))
            self._frequencies = frequencies
        return self._frequencies

    def known_verb_forms(self) -> frozenset[str]:
        """Every conjugated form of hazm's verbs (رفتم، می‌روند ...), ZWNJ removed."""
        return frozenset(v.replace(ZWNJ, "") for v in self._hazm.verbs)


def _tables_key() -> Optional[str]:
    """What hazm's normaliser tables depend on: hazm's version, its word and verb files'
    bytes, the Python version (marshal's format) and this code's format."""
    try:
        from importlib.metadata import version

        digest = hashlib.sha256(f"2|{sys.version_info[:2]}|hazm {version('hazm')}".encode())
        for path in (hazm.default_words, hazm.default_verbs):
            digest.update(Path(path).read_bytes())
    except Exception:  # no metadata, unreadable files: no cache
        return None
    return digest.hexdigest()[:32]


def _tables_file() -> Optional[Path]:
    if os.environ.get("INTERCEPT_HAZM_CACHE", "1") == "0":
        return None
    key = _tables_key()
    if key is None:
        return None
    try:
        from .models import cache_dir

        return cache_dir() / "hazm" / f"normalizer-{key}.marshal"
    except Exception:  # no platformdirs, no home: no cache
        return None


def _translation_tables_once() -> None:
    """hazm's Normalizer.normalize builds its two character-translation tables again on every
    call (hazm.utils.maketrans, a dict of ~80 entries): a tenth of `intercept flag`'s time per
    line. The module's maketrans is swapped for a memoised one, once: the same pure function of
    two constant strings, whose tables hazm only hands to str.translate."""
    module = sys.modules[hazm.Normalizer.__module__]
    if not hasattr(module.maketrans, "cache_info"):
        module.maketrans = functools.lru_cache(maxsize=32)(module.maketrans)


def hazm_normalizer() -> "hazm.Normalizer":
    """hazm's Normalizer with its default settings.

    Building one reads hazm's 193,000-word list and conjugates every verb of its list into
    346,000 forms (1.3 CPU s on the development machine, most of a short command's start-up);
    the Normalizer keeps only those two tables (`words`, `verbs`) and a tokenizer that does not
    use them. So the tables are built once and kept in the user cache
    (intercept.models.cache_dir()/hazm, marshal: 0.15 s to read), keyed by hazm's version and
    data files; the Normalizer is then built around them. hazm's Normalizer cannot be pickled
    (its tokenizer holds lambdas), hence the tables only. A missing, stale or unreadable cache
    only costs the ordinary build; INTERCEPT_HAZM_CACHE=0 turns it off."""
    _translation_tables_once()
    path = _tables_file()
    tables = None
    if path is not None:
        try:
            tables = marshal.loads(path.read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            tables = None
    if not (isinstance(tables, tuple) and len(tables) == 2 and all(isinstance(t, dict) for t in tables)):
        normalizer = hazm.Normalizer()
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_suffix(f".{os.getpid()}.tmp")
                # The 193,000 words share about 160 distinct tag tuples; written once each (marshal
                # refers back to an object it has written), the table reads back in 3/4 of the time.
                shared: dict[tuple, tuple] = {}
                words = {word: (frequency, shared.setdefault(tags, tags))
                         for word, (frequency, tags) in normalizer.words.items()}
                temporary.write_bytes(marshal.dumps((words, normalizer.verbs)))
                os.replace(temporary, path)  # atomic: two processes writing at once cannot tear it
                # Tables of an older hazm or format (20 MB each): the two newest files are kept
                # (two virtualenvs may share the cache), the rest removed.
                older = sorted(path.parent.glob("normalizer-*.marshal"), key=lambda p: p.stat().st_mtime)
                for stale in older[:-2]:
                    stale.unlink(missing_ok=True)
            except (OSError, ValueError):
                pass
        return normalizer
    words, verbs = tables
    module = sys.modules[hazm.Normalizer.__module__]
    made, lemmatizer = module.WordTokenizer, module.Lemmatizer

    def tokenizer(**options):
        # The tokenizer the Normalizer splits with (join_verb_parts=False never reads the word
        # list), built on an empty word file and given the cached words.
        built = made(words_file=os.devnull, **options)
        built.words = words
        return built

    class _Verbs:  # what the Normalizer takes from its Lemmatizer: the table of verb forms
        def __init__(self, **_options):
            self.verbs = verbs

    # The Normalizer looks both classes up in its module when it is built; they are swapped for
    # the cached tables during that one call (start-up, one thread) and put back.
    module.WordTokenizer, module.Lemmatizer = tokenizer, _Verbs
    try:
        return hazm.Normalizer()
    finally:
        module.WordTokenizer, module.Lemmatizer = made, lemmatizer


class Token(NamedTuple):
    """One word of a text with its character offsets: text[start:end] == token.text.
    A named tuple, not a frozen dataclass: the lexicon builds one per word of every line,
    and a tuple is built in half the time."""

    text: str
    start: int
    end: int


class PersianTokenizer:
    """Words of a (normalised) text with offsets. A word is a run of letters/digits, possibly
    joined by ZWNJ (پرنده‌ها is one word). Punctuation is dropped.

    Written here rather than using hazm.word_tokenize because the lexicon needs character
    offsets, which hazm's tokenizer does not give, and because hazm splits off ها and joins
    verbs in ways that would move spans away from the text."""

    _WORD = re.compile(r"\w+(?:" + ZWNJ + r"\w+)*")

    def spans(self, text: str) -> list[Token]:
        return [Token(m.group(), m.start(), m.end()) for m in self._WORD.finditer(text)]

    def tokenize(self, text: str) -> list[str]:
        return self._WORD.findall(text)


class PersianLemmatizer:
    """hazm's Lemmatizer (verbs come back as 'past#present', e.g. رفت#رو), built once."""

    def __init__(self) -> None:
        self._hazm = hazm.Lemmatizer()

    def lemmatize(self, word: str) -> str:
        return self._hazm.lemmatize(word)


def verb_forms(lemma: str) -> list[str]:
    """All conjugated forms hazm knows for a verb given as its two stems 'past#present'
    (رفت#رو, کشت#کش: both stems are needed because infinitives are ambiguous, کشتن is
    both کشت#کش "kill" and کشت#کار "plant")."""
    past, sep, present = lemma.partition("#")
    if not sep or not past or not present or "#" in present:
        raise ValueError(f"verb {lemma!r}: write it as 'past#present' stems, e.g. رفت#رو")
    return sorted(set(hazm.Conjugation().get_all(lemma)))


def shared_verb_forms(lemma: str) -> dict[str, tuple[str, ...]]:
    """Forms of a verb ('past#present') that hazm also conjugates for another verb of its list
    with a different infinitive: form -> those verbs. می‌کشم is both کشت#کش "I kill" and
    کشید#کش "I draw / endure". A verb listed again with the same infinitive (کشت#کار, an old
    reading of کشتن "to plant") is the same written word, not a second common verb, so it is
    left out."""
    own = set(verb_forms(lemma))
    past, _, present = lemma.partition("#")
    shared: dict[str, list[str]] = {}
    for other in hazm.utils.verbs_list():
        other_past, _, other_present = other.partition("#")
        if other == lemma or other_past == past or not other_past or (
                other_present != present and other_past != past):
            continue  # no stem in common (or the same infinitive): no form in common worth reporting
        for form in own.intersection(hazm.Conjugation().get_all(other)):
            shared.setdefault(form, []).append(other)
    return {form: tuple(others) for form, others in shared.items()}


def search_forms(word: str, normalizer: "PersianNormalizer", lemmatizer: "PersianLemmatizer") -> list[tuple[str, bool]]:
    """The forms a search for `word` should match, as (form, prefix): the word normalised (so
    ZWNJ variants and Arabic letters agree with the stored text), the word without its ZWNJs,
    and its lemma as a prefix, so that پرنده‌ها (plural), پرنده‌ی (ezafe), کتابم (attached pronoun)
    find پرنده / کتاب and every inflection written on them. A verb's lemma (past#present) or a
    lemma under three letters is not used as a prefix: it would match too much."""
    normalised = normalizer.normalize(word).strip()
    if not normalised:
        return []
    forms = [(normalised, False)]
    joined = normalised.replace(ZWNJ, "")
    if joined != normalised:
        forms.append((joined, False))
    lemma = lemmatizer.lemmatize(normalised)
    if lemma and "#" not in lemma and len(lemma) >= 3:
        forms.append((lemma, True))
    return list(dict.fromkeys(forms))
