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

from .keytable import KeyTable
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
        self._hazm, self._tables = hazm_normalizer_and_tables()

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

    def known_words(self, min_frequency: int = 1, tagged: bool = False) -> "KnownWordSet":
        """Words of hazm's word list seen at least min_frequency times in its corpus (or, with
        tagged, any that has a part-of-speech tag: چطور has frequency 0 but is tagged ADV),
        ZWNJ and diacritics removed (اصلاً is listed as اصلا, as the normaliser writes it):
        answers `in` and iterates as a set does, from the tables hazm's Normalizer already loaded."""
        return KnownWordSet(self._tables, min_frequency, tagged)

    def word_frequencies(self) -> KeyTable:
        """hazm's word list as word -> corpus frequency, words written as the normaliser writes
        them (ZWNJ and diacritics removed; where two spellings meet, the higher count): answers
        get, in and [] as a dict does."""
        return self._tables.frequencies

    def known_verb_forms(self) -> KeyTable:
        """Every conjugated form of hazm's verbs (رفتم، می‌روند ...), ZWNJ removed: answers `in`."""
        return self._tables.verb_keys


def _as_written(word: str) -> str:
    """A word of hazm's list as the normaliser writes text: no ZWNJ, no diacritics (اصلاً -> اصلا)."""
    return _DIACRITICS.sub("", word.replace(ZWNJ, ""))


class WordTables:
    """hazm's word and verb tables, and what intercept derives from them, as key tables
    (intercept.keytable) that the disk cache reads back without hashing 900,000 strings:
    building the derived sets alone took a short command (`intercept match`) half a second.

      words        hazm's word list: word -> (frequency, tags), as hazm's Normalizer reads it
      verbs        hazm's conjugated verb forms (the Normalizer only asks `in`)
      frequencies  word as the normaliser writes it (ZWNJ, diacritics removed) -> highest count
      tagged       those words with a part-of-speech tag
      verb_keys    the verb forms, ZWNJ removed

    Tables read back from the cache come with the derived ones; for a Normalizer hazm built,
    they are derived on first use (a run with the cache off may never need them)."""

    DERIVED = ("frequencies", "tagged", "verb_keys")

    def __init__(self, words, verbs, **derived) -> None:
        self.words, self.verbs = words, verbs
        self.__dict__.update(derived)  # read back: the properties below are not computed again

    @classmethod
    def of(cls, normalizer: "hazm.Normalizer") -> "WordTables":
        """The tables of a Normalizer hazm built (its own dicts, not copied)."""
        return cls(KeyTable(normalizer.words), KeyTable.of_set(normalizer.verbs))

    @functools.cached_property
    def frequencies(self) -> KeyTable:
        frequencies: dict[str, int] = {}
        for word, (frequency, _) in self.words.items():
            key = _as_written(word)
            frequencies[key] = max(frequency, frequencies.get(key, 0))
        return KeyTable(frequencies)

    @functools.cached_property
    def tagged(self) -> KeyTable:
        return KeyTable.of_set(_as_written(word) for word, (_, tags) in self.words.items() if tags and tags != ("0",))

    @functools.cached_property
    def verb_keys(self) -> KeyTable:
        return KeyTable.of_set(verb.replace(ZWNJ, "") for verb in self.verbs)

    def packed(self) -> dict:
        """Plain values (str, bytes, lists) that marshal writes."""
        packed = {name: getattr(self, name).packed() for name in ("verbs",) + self.DERIVED}
        # The 193,000 words share far fewer distinct (frequency, tags) pairs: each written once.
        shared: dict[tuple, tuple] = {}
        packed["words"] = KeyTable({word: shared.setdefault(value, value)
                                    for word, value in self.words.items()}).packed()
        return packed

    @classmethod
    def unpacked(cls, packed: dict) -> "WordTables":
        words, verbs = KeyTable.unpacked(packed["words"]), KeyTable.unpacked(packed["verbs"])
        return cls(words, verbs, **{name: KeyTable.unpacked(packed[name]) for name in cls.DERIVED})


class KnownWordSet:
    """PersianNormalizer.known_words: the words of at least a frequency (or tagged), looked up in
    the word tables rather than built as a set of their own (0.15 s each)."""

    def __init__(self, tables: WordTables, min_frequency: int, tagged: bool) -> None:
        self._frequencies, self._tagged = tables.frequencies, tables.tagged if tagged else None
        self._min = min_frequency

    def __contains__(self, word) -> bool:
        # A word many spellings write is known when one of them is: its highest count, any tag.
        frequency = self._frequencies.get(word)
        if frequency is None:
            return False
        return frequency >= self._min or (self._tagged is not None and word in self._tagged)

    def __iter__(self):
        return (word for word in self._frequencies if word in self)


def _tables_key() -> Optional[str]:
    """What hazm's normaliser tables depend on: hazm's version, its word and verb files'
    bytes, the Python version (marshal's format) and this code's format."""
    try:
        from importlib.metadata import version

        digest = hashlib.sha256(f"3|{KeyTable.FORMAT}|{sys.version_info[:2]}|hazm {version('hazm')}".encode())
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
    """hazm's Normalizer with its default settings (hazm_normalizer_and_tables)."""
    return hazm_normalizer_and_tables()[0]


def hazm_normalizer_and_tables() -> tuple["hazm.Normalizer", WordTables]:
    """hazm's Normalizer with its default settings, and its WordTables.

    Building one reads hazm's 193,000-word list and conjugates every verb of its list into
    346,000 forms (1.3 CPU s on the development machine, most of a short command's start-up);
    the Normalizer keeps only those two tables (`words`, `verbs`) and a tokenizer that does not
    use them. So the tables, with what intercept derives from them, are built once and kept in
    the user cache (intercept.models.cache_dir()/hazm, marshal of packed key tables, read back
    without hashing their strings), keyed by hazm's version and data files; the Normalizer is
    then built around them. hazm's Normalizer cannot be pickled (its tokenizer holds lambdas),
    hence the tables only. A missing, stale or unreadable cache only costs the ordinary build;
    INTERCEPT_HAZM_CACHE=0 turns it off."""
    _translation_tables_once()
    path = _tables_file()
    tables = None
    if path is not None:
        try:
            tables = WordTables.unpacked(marshal.loads(path.read_bytes()))
        except (OSError, ValueError, EOFError, TypeError, KeyError):
            tables = None
    if tables is None:
        normalizer = hazm.Normalizer()
        tables = WordTables.of(normalizer)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_suffix(f".{os.getpid()}.tmp")
                temporary.write_bytes(marshal.dumps(tables.packed()))
                os.replace(temporary, path)  # atomic: two processes writing at once cannot tear it
                # Tables of an older hazm or format (20 MB each): the two newest files are kept
                # (two virtualenvs may share the cache), the rest removed.
                older = sorted(path.parent.glob("normalizer-*.marshal"), key=lambda p: p.stat().st_mtime)
                for stale in older[:-2]:
                    stale.unlink(missing_ok=True)
            except (OSError, ValueError):
                pass
        return normalizer, tables
    module = sys.modules[hazm.Normalizer.__module__]
    made, lemmatizer = module.WordTokenizer, module.Lemmatizer

    def tokenizer(**options):
        # The tokenizer the Normalizer splits with (join_verb_parts=False never reads the word
        # list), built on an empty word file and given the cached words.
        built = made(words_file=os.devnull, **options)
        built.words = tables.words
        return built

    class _Verbs:  # what the Normalizer takes from its Lemmatizer: the table of verb forms
        def __init__(self, **_options):
            self.verbs = tables.verbs

    # The Normalizer looks both classes up in its module when it is built; they are swapped for
    # the cached tables during that one call (start-up, one thread) and put back.
    module.WordTokenizer, module.Lemmatizer = tokenizer, _Verbs
    try:
        return hazm.Normalizer(), tables
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
