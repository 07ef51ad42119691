"""Coded-language lexicons: load and validate them, compile them, flag lines.

A lexicon is a YAML file an analyst edits (format: lexicons/README.md). Loading validates every
file completely before anything is built, so a bad lexicon never half-loads; errors read
"path:line: reason".

Matching works on text the text stage has already normalised (PersianNormalizer):
  exact    the form as written in the lexicon
  morph    plural / suffix / possessive / colloquial forms, verb conjugations (hazm), ZWNJ
           written as space or left out
  fuzzy    recognition noise: split, merged or slightly misspelled words (rapidfuzz), scored lower.
           A lone fuzzy hit must be close to the form (fuzzy_threshold); a looser one (down to
           fuzzy_threshold - fuzzy_context_margin) counts only beside a pattern partner in the
           same line (another animal code, a time beside an animal ...), because on real
           recognition output most loose lone hits are garbled plain words.
  pattern  "<animal> یا <animal>" and co-occurrence of concepts in nearby transmissions
  english  the English glosses on the translation, whole words, with plurals
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import yaml

from intercept import lexicon_cache
from intercept.lexicon_index import EnglishIndex, FuzzyIndex, PartnerIndex
from intercept.text import ZWNJ, PersianNormalizer, PersianTokenizer, shared_verb_forms, verb_forms
from intercept.types import Flag, Line

SEVERITIES = ("low", "medium", "high")
KINDS = ("exact", "morph", "fuzzy", "pattern", "english")
# Higher wins when two flags of one concept cover the same span.
_KIND_STRENGTH = {"exact": 5, "morph": 4, "english": 3, "pattern": 2, "fuzzy": 1}

SCORE_EXACT = 1.0
SCORE_MORPH = 0.9
SCORE_ENGLISH = 0.9
FUZZY_SCORE_SCALE = 0.85  # fuzzy score = similarity * this, so a fuzzy hit never outranks a morph one
EITHER_PATTERN_SCALE = 0.9  # pattern score = weakest part * this
COOCCURRENCE_SCALE = 0.7

# Measured on real Whisper base output (scripts/eval_flags.py, tests/data/asr_outputs.tsv):
# 0.75 for every fuzzy hit flagged about one non-coded line in five; lone hits at 0.85 and
# partnered ones down to 0.70 keep the garbled coded line found.
DEFAULT_FUZZY_THRESHOLD = 0.85
DEFAULT_FUZZY_CONTEXT_MARGIN = 0.15
DEFAULT_FUZZY_MIN_LENGTH = 4
# A window of only short common words ("رو با" is "on with") is plain speech as often as it is
# a split code word, so it needs a partner whatever its similarity.
FUZZY_SHORT_PIECE_LENGTH = 2
# hazm's word list carries corpus frequencies; a word seen at least this often is a real word, not
# recognition noise, so it is never fuzzy-matched to a lexicon form (پرونده is not پرنده).
KNOWN_WORD_MIN_FREQUENCY = 50
FUZZY_MAX_WINDOW_TOKENS = 3
# A known word this long inside a multi-word window is a word of its own, not a fragment.
FUZZY_WHOLE_WORD_LENGTH = 4  # a word split by the recogniser into up to 3 pieces

# Priors: how likely a matched form means its concept at all, before any recogniser evidence.
# Hand-set levels, not fitted: evidence for the flag's trust score to weigh, never a filter; an
# analyst sees the reason on every flag (`intercept match`) and overrides it per concept
# (lexicons/README.md).
PRIOR_PLAIN = 1.0
PRIOR_AMBIGUOUS = 0.25  # a likely mis-hearing of a commoner word, or a form another common verb shares
# A form is a likely mis-hearing when changing one letter for a sound-alike one makes a word this
# many times commoner in hazm's word list (کفتار "hyena" 28 thousand, گفتار "speech" 1.2 million).
SOUND_ALIKE_MIN_RATIO = 10
_SOUND_ALIKE_GROUPS = ("زذظضژ", "سصث", "تط", "هح", "قغ", "کگ", "پب", "چج", "اعآ")
_AMBIGUITY_CHECKS = ("check", "ignore")

_CONCEPT_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_CONCEPT_KEYS = {"id", "category", "severity", "fa", "en", "verbs", "exclude", "inflect", "fuzzy", "notes",
                 "prior", "sound_alike", "shared_stem"}
_PATTERN_KEYS = {"id", "type", "category", "severity", "categories", "concepts", "connectors", "fillers",
                 "window", "max_gap", "notes"}
_FILE_KEYS = {"name", "fuzzy_threshold", "fuzzy_context_margin", "fuzzy_min_length", "concepts", "patterns",
              "notes"}
_PATTERN_TYPES = ("either", "cooccurrence")

# Persian suffixes, by how the word they attach to ends. Written without ZWNJ; _inflect adds it.
_ENCLITICS_AFTER_SILENT_HE = ("ای", "ی", "ام", "ات", "اش", "مان", "تان", "شان", "مون", "تون", "شون")
_ENCLITICS_AFTER_VOWEL = ("یی", "ی", "یم", "یت", "یش", "یمان", "یتان", "یشان", "مان", "تان", "شان", "مون", "تون",
                          "شون")
# colloquial ه (definite: روباهه "the fox") and و (object marker: روباهو "the fox", as object)
_ENCLITICS_AFTER_CONSONANT = ("ی", "م", "ت", "ش", "مان", "تان", "شان", "مون", "تون", "شون", "ه", "و")
# A suffix written after a space is still a suffix (پرنده ها); single letters other than ی are
# not accepted that way because "گرگ و" is "wolf and".
_SPACED_SUFFIX_MIN_LENGTH = 2

# For fuzzy comparison only: letters recognisers confuse because they sound alike, and the four
# Persian letters a recogniser trained mostly on Arabic script writes as their Arabic base
# (گنجشگ / گنجشک, پ as ب).
_SOUND_ALIKE = str.maketrans({"ص": "س", "ث": "س", "ذ": "ز", "ض": "ز", "ظ": "ز", "ط": "ت", "غ": "ق",
                              "ح": "ه", "آ": "ا", "ع": "ا", "گ": "ک", "پ": "ب", "چ": "ج", "ژ": "ز",
                              ZWNJ: None, " ": None})

_ENGLISH_WORD_CHARS = r"[A-Za-z0-9]"


class LexiconError(ValueError):
    """A lexicon file is unusable. The message reads "path:line: reason"."""


@dataclass(frozen=True)
class Term:
    """One form of a concept, as the store's lexicon_terms table holds it."""

    concept: str
    category: str
    severity: str
    form: str
    lang: str  # "fa" (forms and verbs, verbs as past#present stems) or "en"
    prior: float = PRIOR_PLAIN  # for a verb, its lowest form's (see Flag.prior)
    prior_reason: str = ""  # why the prior is below 1 or set by hand; "" when plain
    # The concept's notes from the lexicon file, shown to reviewers; not part of a term's identity.
    notes: str = field(default="", compare=False)


@dataclass(frozen=True)
class MatchOptions:
    """What match() does beyond exact and morphological matching."""

    fuzzy: bool = True
    fuzzy_threshold: Optional[float] = None  # overrides every file's fuzzy_threshold when set
    fuzzy_context_margin: Optional[float] = None  # overrides every file's fuzzy_context_margin when set
    english: bool = True
    patterns: bool = True

    def __post_init__(self) -> None:
        if self.fuzzy_threshold is not None and not 0.0 < self.fuzzy_threshold <= 1.0:
            raise ValueError(f"fuzzy_threshold must be in (0, 1], got {self.fuzzy_threshold}")
        if self.fuzzy_context_margin is not None and not 0.0 <= self.fuzzy_context_margin <= 0.5:
            raise ValueError(f"fuzzy_context_margin must be in [0, 0.5], got {self.fuzzy_context_margin}")


@dataclass(frozen=True)
class _Concept:
    id: str
    category: str
    severity: str
    fa: tuple[str, ...]
    en: tuple[str, ...]
    verbs: tuple[str, ...]
    exclude: tuple[str, ...]
    inflect: bool
    fuzzy: bool
    fuzzy_threshold: float
    fuzzy_context_margin: float
    fuzzy_min_length: int
    where: str  # "path:line" of the concept, for errors found later
    prior: Optional[float] = None  # the analyst's prior for every form; None: found automatically
    sound_alike: bool = True  # look for commoner sound-alike words
    shared_stem: bool = True  # look for other verbs sharing a form
    notes: str = ""


@dataclass(frozen=True)
class _Pattern:
    id: str
    type: str
    category: str
    severity: str
    categories: tuple[str, ...]
    concepts: tuple[str, ...]
    connectors: tuple[str, ...]
    fillers: tuple[str, ...]
    window: int
    max_gap: int
    where: str


@dataclass(frozen=True)
class _Surface:
    """A compiled key: which concept, which lexicon form, and how it was reached."""

    concept: _Concept
    form: str
    kind: str  # exact or morph
    prior: float = PRIOR_PLAIN
    prior_reason: Optional[str] = None


# ---------------------------------------------------------------- loading and validation


class _FileReader:
    """Reads one YAML file into checked values, keeping node positions for "path:line" errors.

    pyyaml's compose() keeps line marks on nodes, which load() throws away."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._constructor = yaml.constructor.SafeConstructor()

    def error(self, node: Optional[yaml.Node], reason: str) -> LexiconError:
        line = node.start_mark.line + 1 if node is not None else 1
        return LexiconError(f"{self.path}:{line}: {reason}")

    def where(self, node: yaml.Node) -> str:
        return f"{self.path}:{node.start_mark.line + 1}"

    def compose(self) -> yaml.Node:
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise LexiconError(f"{self.path}:1: not UTF-8 text ({exc.reason})") from exc
        except OSError as exc:
            raise LexiconError(f"{self.path}:1: cannot read ({exc.strerror})") from exc
        try:
            node = _compose(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            raise LexiconError(f"{self.path}:{line}: YAML syntax error: {' '.join(str(exc.problem or exc).split())}") from exc
        except yaml.reader.ReaderError as exc:  # a control character such as NUL: no mark, a position
            line = text.count("\n", 0, exc.position) + 1
            raise LexiconError(f"{self.path}:{line}: character #x{exc.character:04x} is not allowed in a "
                               f"lexicon ({exc.reason})") from exc
        except yaml.YAMLError as exc:
            raise LexiconError(f"{self.path}:1: YAML error: {' '.join(str(exc).split())}") from exc
        if node is None:
            raise LexiconError(f"{self.path}:1: empty lexicon file")
        return node

    def mapping(self, node: yaml.Node, what: str, allowed: set[str]) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping (key: value lines)")
        items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise self.error(key_node, f"{what}: keys must be plain words")
            if key in items:
                raise self.error(key_node, f"{what}: key {key!r} given twice")
            if key not in allowed:
                raise self.error(key_node, f"{what}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
            items[key] = (key_node, value_node)
        return items

    def value(self, node: yaml.Node):
        return self._constructor.construct_object(node, deep=True)

    def text(self, node: yaml.Node, what: str) -> str:
        value = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, str) or not value.strip():
            raise self.error(node, f"{what} must be non-empty text")
        return value.strip()

    def text_list(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
        if isinstance(node, yaml.ScalarNode):  # a single form written without brackets
            return [(self.text(node, what), node)]
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, f"{what} must be a list of texts")
        return [(self.text(item, f"{what} item"), item) for item in node.value]

    def boolean(self, node: yaml.Node, what: str) -> bool:
        value = self.value(node)
        if not isinstance(value, bool):
            raise self.error(node, f"{what} must be true or false")
        return value

    def number(self, node: yaml.Node, what: str, low: float, high: float, integer: bool = False) -> float:
        value = self.value(node)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            raise self.error(node, f"{what} must be {'a whole number' if integer else 'a number'}")
        if not low <= value <= high:
            raise self.error(node, f"{what} must be between {low} and {high}, got {value}")
        return value


def _read_file(path: Path, normalizer: PersianNormalizer) -> tuple[list[_Concept], list[_Pattern], object]:
    """Validate one file; returns its concepts, patterns and its plain content (for the version hash)."""
    reader = _FileReader(path)
    root = reader.compose()
    top = reader.mapping(root, "lexicon file", _FILE_KEYS)
    if "concepts" not in top:
        raise reader.error(root, "lexicon file has no 'concepts' list")
    threshold = DEFAULT_FUZZY_THRESHOLD
    if "fuzzy_threshold" in top:
        threshold = float(reader.number(top["fuzzy_threshold"][1], "fuzzy_threshold", 0.01, 1.0))
    margin = DEFAULT_FUZZY_CONTEXT_MARGIN
    if "fuzzy_context_margin" in top:
        margin = float(reader.number(top["fuzzy_context_margin"][1], "fuzzy_context_margin", 0.0, 0.5))
    min_length = DEFAULT_FUZZY_MIN_LENGTH
    if "fuzzy_min_length" in top:
        min_length = int(reader.number(top["fuzzy_min_length"][1], "fuzzy_min_length", 1, 100, integer=True))
    if "name" in top:
        reader.text(top["name"][1], "name")

    concepts_node = top["concepts"][1]
    if not isinstance(concepts_node, yaml.SequenceNode) or not concepts_node.value:
        raise reader.error(concepts_node, "'concepts' must be a non-empty list")
    concepts = [_read_concept(reader, node, threshold, margin, min_length, normalizer)
                for node in concepts_node.value]

    patterns: list[_Pattern] = []
    if "patterns" in top:
        patterns_node = top["patterns"][1]
        if not isinstance(patterns_node, yaml.SequenceNode):
            raise reader.error(patterns_node, "'patterns' must be a list")
        patterns = [_read_pattern(reader, node, normalizer) for node in patterns_node.value]
    return concepts, patterns, reader.value(root)


def _compose(text: str):
    """yaml.compose with libyaml when there is one (a 10,000-concept lexicon: seconds instead
    of a minute); a file libyaml refuses is composed again in Python, whose errors
    _FileReader turns into "path:line: reason" as before."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is not None:
        try:
            return yaml.compose(text, Loader=loader)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _required(reader: _FileReader, fields: dict, node: yaml.Node, key: str, what: str) -> yaml.Node:
    if key not in fields:
        raise reader.error(node, f"{what} has no '{key}'")
    return fields[key][1]


def _severity(reader: _FileReader, fields: dict, what: str) -> str:
    if "severity" not in fields:
        return "medium"
    node = fields["severity"][1]
    severity = reader.text(node, "severity")
    if severity not in SEVERITIES:
        raise reader.error(node, f"{what}: bad severity {severity!r} (use one of {', '.join(SEVERITIES)})")
    return severity


def _read_concept(reader: _FileReader, node: yaml.Node, threshold: float, margin: float, min_length: int,
                  normalizer: PersianNormalizer) -> _Concept:
    fields = reader.mapping(node, "concept", _CONCEPT_KEYS)
    concept_id = reader.text(_required(reader, fields, node, "id", "concept"), "id")
    what = f"concept {concept_id!r}"
    if not _CONCEPT_ID.match(concept_id):
        raise reader.error(fields["id"][1], f"{what}: id must be lower-case letters, digits and _")
    category = reader.text(_required(reader, fields, node, "category", what), "category")
    severity = _severity(reader, fields, what)
    fa = [(normalizer.normalize(form), item) for form, item in
          (reader.text_list(fields["fa"][1], "fa") if "fa" in fields else [])]
    for form, item in fa:
        if not form:
            raise reader.error(item, f"{what}: Farsi form is empty after normalisation")
    verbs: list[str] = []
    for lemma, item in reader.text_list(fields["verbs"][1], "verbs") if "verbs" in fields else []:
        try:
            verb_forms(lemma)
        except ValueError as exc:
            raise reader.error(item, f"{what}: {exc}") from exc
        verbs.append(lemma)
    en = [form for form, _ in reader.text_list(fields["en"][1], "en")] if "en" in fields else []
    for form, item in reader.text_list(fields["en"][1], "en") if "en" in fields else []:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 '\-]*", form):
            raise reader.error(item, f"{what}: English gloss {form!r} must be Latin letters, digits, spaces, ' or -")
    if not fa and not verbs and not en:
        raise reader.error(node, f"{what} has no forms: give 'fa', 'verbs' or 'en'")
    exclude = [normalizer.normalize(x) for x, _ in reader.text_list(fields["exclude"][1], "exclude")] \
        if "exclude" in fields else []
    inflect = reader.boolean(fields["inflect"][1], "inflect") if "inflect" in fields else True
    fuzzy_on = reader.boolean(fields["fuzzy"][1], "fuzzy") if "fuzzy" in fields else True
    notes = reader.text(fields["notes"][1], "notes") if "notes" in fields else ""
    prior = float(reader.number(fields["prior"][1], "prior", 0.0, 1.0)) if "prior" in fields else None
    checks = {}
    for key in ("sound_alike", "shared_stem"):
        value = reader.text(fields[key][1], key) if key in fields else "check"
        if value not in _AMBIGUITY_CHECKS:
            raise reader.error(fields[key][1], f"{what}: {key} must be one of {', '.join(_AMBIGUITY_CHECKS)}")
        checks[key] = value == "check"
    return _Concept(concept_id, category, severity, tuple(f for f, _ in fa), tuple(en), tuple(verbs),
                    tuple(exclude), inflect, fuzzy_on, threshold, margin, min_length, reader.where(node),
                    prior, checks["sound_alike"], checks["shared_stem"], notes)


def _read_pattern(reader: _FileReader, node: yaml.Node, normalizer: PersianNormalizer) -> _Pattern:
    fields = reader.mapping(node, "pattern", _PATTERN_KEYS)
    pattern_id = reader.text(_required(reader, fields, node, "id", "pattern"), "id")
    what = f"pattern {pattern_id!r}"
    if not _CONCEPT_ID.match(pattern_id):
        raise reader.error(fields["id"][1], f"{what}: id must be lower-case letters, digits and _")
    type_node = _required(reader, fields, node, "type", what)
    kind = reader.text(type_node, "type")
    if kind not in _PATTERN_TYPES:
        raise reader.error(type_node, f"{what}: type must be one of {', '.join(_PATTERN_TYPES)}")
    categories = [c for c, _ in reader.text_list(fields["categories"][1], "categories")] if "categories" in fields else []
    concepts = [c for c, _ in reader.text_list(fields["concepts"][1], "concepts")] if "concepts" in fields else []
    if not categories and not concepts:
        raise reader.error(node, f"{what} needs 'categories' or 'concepts'")
    connectors = [normalizer.normalize(c) for c, _ in reader.text_list(fields["connectors"][1], "connectors")] \
        if "connectors" in fields else ["یا"]
    fillers = [normalizer.normalize(c) for c, _ in reader.text_list(fields["fillers"][1], "fillers")] \
        if "fillers" in fields else []
    window = int(reader.number(fields["window"][1], "window", 0, 100, integer=True)) if "window" in fields else 0
    max_gap = int(reader.number(fields["max_gap"][1], "max_gap", 1, 10, integer=True)) if "max_gap" in fields else 3
    category = reader.text(fields["category"][1], "category") if "category" in fields else "pattern"
    if "notes" in fields:
        reader.text(fields["notes"][1], "notes")
    return _Pattern(pattern_id, kind, category, _severity(reader, fields, what), tuple(categories), tuple(concepts),
                    tuple(connectors), tuple(fillers), window, max_gap, reader.where(node))


def _lexicon_files(paths: Sequence) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                raise LexiconError(f"{path}:1: folder holds no .yaml lexicon")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise LexiconError(f"{path}:1: no such lexicon file or folder")
    if not files:
        raise LexiconError("<none>:1: no lexicon file given")
    return files


# ---------------------------------------------------------------- compiling


_SPACE = re.compile(r"\s")


def _key(surface: str) -> str:
    """Lookup key of a word or words: ZWNJ dropped (joined, ZWNJ and ZWNJ-less spellings agree)."""
    if not _SPACE.search(surface):  # one word (most keys): the same, without split and join
        return surface.replace(ZWNJ, "")
    return " ".join(word.replace(ZWNJ, "") for word in surface.split())


def _ends_with_silent_he(word: str) -> bool:
    # پرنده ends in a silent ه (plural پرندگان, indefinite پرنده‌ای); روباه, کوه, شاه end in a real h.
    return word.endswith("ه") and not word.endswith(("اه", "وه"))


def _enclitics(word: str) -> tuple[str, ...]:
    if _ends_with_silent_he(word):
        return _ENCLITICS_AFTER_SILENT_HE
    if word.endswith(("ا", "و")):
        return _ENCLITICS_AFTER_VOWEL
    return _ENCLITICS_AFTER_CONSONANT


def _inflect(form: str) -> list[tuple[str, str]]:
    """(stem, suffix) pairs of plural, indefinite, ezafe, possessive and colloquial forms of a
    form (the last word takes them). Written by hand: hazm has a stemmer/lemmatizer (suffix
    removal) but no generator, and generating lets matching be one dictionary lookup a word."""
    plurals: list[tuple[str, str]] = [(form, ""), (form, "ها")]
    if _ends_with_silent_he(form):
        plurals.append((form[:-1], "گان"))
    elif form.endswith(("ا", "و")):
        plurals += [(form, "یان"), (form, "ان")]
    else:
        plurals.append((form, "ان"))
    pairs: list[tuple[str, str]] = []
    for stem, plural in plurals:
        if plural:
            pairs.append((stem, plural))
        for enclitic in _enclitics(plural or stem):
            pairs.append((stem, plural + enclitic))
    return pairs


def _colloquial(form: str) -> list[tuple[str, str]]:
    """(stem, suffix) pairs of spoken forms monitors hear and recognisers write: plural ا (گرگا,
    آهوا, with enclitics: گرگامون), copula س/ست (پرندس, پرنده‌ست, آهوست), ۀ as ezafe (پرندۀ) and
    the object marker رو attached (روباهرو, گرگارو, پرنده‌هارو)."""
    pairs: list[tuple[str, str]] = [(form, "رو"), (form, "هارو")]
    if _ends_with_silent_he(form):
        return pairs + [(form, "ست"), (form[:-1], "س"), (form[:-1], "ۀ")]
    if form.endswith(("ا", "و")):
        pairs.append((form, "ست"))
    if not form.endswith("ا"):
        pairs += [(form, "ا"), (form, "ارو")] + [(form, "ا" + enclitic) for enclitic in _ENCLITICS_AFTER_VOWEL]
    return pairs


def _join(stem: str, suffix: str) -> str:
    if suffix.startswith("ها") or _ends_with_silent_he(stem) and not suffix.startswith("گان"):
        return stem + ZWNJ + suffix
    return stem + suffix


class Lexicon:
    """A compiled lexicon. Build it with Lexicon.load(); it does not change afterwards."""

    # Priors calibrated on the recogniser's confusions (intercept.calibration), for the flag
    # score; None: the hand-set priors alone. Load attaches the one made with the embedded model.
    calibration = None

    def __init__(self, concepts: list[_Concept], patterns: list[_Pattern], version: str,
                 options: MatchOptions, files: list[Path], normalizer: PersianNormalizer) -> None:
        self.version = version
        self._normalizer = normalizer
        self.files = files
        self.options = options
        self._concepts = {c.id: c for c in concepts}
        self._patterns = patterns
        self._frequencies = normalizer.word_frequencies()
        self._known_words: Optional[frozenset[str]] = None  # hazm word list and verb forms: loaded on
        self._known_verbs: frozenset[str] = frozenset()  # first use (colloquial forms, fuzzy matching)
        self._common_words: frozenset[str] = frozenset()
        self._compile_priors(concepts)
        self.terms: list[Term] = []
        for concept in concepts:
            plain = _override(concept) or (PRIOR_PLAIN, None)
            priors = [(form, self._form_priors[(concept.id, form)]) for form in concept.fa]
            priors += [(lemma, min(self._verb_priors[(concept.id, lemma)].values(), default=plain))
                       for lemma in concept.verbs]  # a verb shows its least likely form's prior
            priors += [(gloss, plain) for gloss in concept.en]
            self.terms += [Term(concept.id, concept.category, concept.severity, form,
                                "en" if form in concept.en else "fa", prior, reason or "", notes=concept.notes)
                           for form, (prior, reason) in priors]
        self._tokenizer = PersianTokenizer()
        self._compile_farsi(concepts)
        self._compile_fuzzy(concepts)
        self._compile_english(concepts)

    # -- construction

    @classmethod
    def load(cls, *paths, options: Optional[MatchOptions] = None,
             normalizer: Optional[PersianNormalizer] = None, calibrated: bool = True) -> "Lexicon":
        """Load one or more lexicon files (a folder means every .yaml in it). Everything is
        validated before anything is compiled; the first problem raises LexiconError.
        Pass the pipeline's normalizer to save building another (about a second).
        With `calibrated`, the calibration beside the files (FOLDER/calibration/*.json) made
        with the embedded recogniser is attached (`with_calibration` for another model)."""
        files = _lexicon_files(paths)
        normalizer = normalizer or PersianNormalizer()
        cached = lexicon_cache.read(files, normalizer)  # compiled before from the same bytes
        if cached is not None:
            return cls._calibrated(cached.with_options(options or MatchOptions()), files, calibrated)
        concepts: list[_Concept] = []
        patterns: list[_Pattern] = []
        contents = []
        for path in files:
            file_concepts, file_patterns, content = _read_file(path, normalizer)
            concepts += file_concepts
            patterns += file_patterns
            contents.append(content)
        _check_across(concepts, patterns)
        canonical = json.dumps(contents, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
        version = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
        lexicon = cls(concepts, patterns, version, options or MatchOptions(), files, normalizer)
        # Cached without its calibration: that is read afresh, since it is a file of its own.
        lexicon_cache.write(files, lexicon)
        return cls._calibrated(lexicon, files, calibrated)

    @staticmethod
    def _calibrated(lexicon: "Lexicon", files, calibrated: bool) -> "Lexicon":
        if calibrated:
            from .calibration import CalibrationError, embedded_calibration

            try:
                lexicon.calibration = embedded_calibration(files)
            except CalibrationError as exc:
                raise LexiconError(str(exc)) from None
        return lexicon

    def with_options(self, options: MatchOptions) -> "Lexicon":
        """The same lexicon with other match options (compiled tables are shared, not rebuilt)."""
        clone = object.__new__(Lexicon)
        clone.__dict__.update(self.__dict__)
        clone.options = options
        return clone

    def with_calibration(self, calibration) -> "Lexicon":
        """The same lexicon with other calibrated priors (intercept.calibration; None: none)."""
        clone = self.with_options(self.options)
        clone.calibration = calibration
        return clone

    def analyst_prior(self, concept_id: str) -> Optional[float]:
        """The prior an analyst set on the concept (`prior:`), which wins over calibration."""
        concept = self._concepts.get(concept_id)
        return None if concept is None else concept.prior

    def pattern_partners(self, concept_id: str):
        """The concepts some pattern could join this one with (two animals, an animal and a time ...):
        answers `in` and `isdisjoint` as a frozenset does (lexicon_index.PartnerIndex)."""
        try:
            return self._partners[concept_id]
        except KeyError:
            return frozenset()

    def _add_surface(self, key: str, surface: _Surface) -> None:
        existing = self._surfaces.get(key)
        if existing is not None and (existing.kind == "exact" or surface.kind == "morph"):
            return  # first come keeps it; exact beats morph (duplicate exact forms were refused at load)
        if key in self._excluded:
            return
        self._surfaces[key] = surface
        if " " in key:  # checked first: most keys are one word, and split() costs at 10,000 terms
            words = key.split(" ")
            self._max_words[words[0]] = max(self._max_words.get(words[0], 1), len(words))
            self._multi_first.add(words[0])

    def _compile_priors(self, concepts: list[_Concept]) -> None:
        """Each Farsi form's prior and reason; each verb's forms that another verb shares."""
        self._form_priors: dict[tuple[str, str], tuple[float, Optional[str]]] = {}
        self._verb_priors: dict[tuple[str, str], dict[str, tuple[float, Optional[str]]]] = {}
        for concept in concepts:
            override = _override(concept)
            for form in concept.fa:
                neighbour = None
                if override is None and concept.sound_alike and " " not in form:
                    neighbour = _commoner_sound_alike(_key(form), self._frequencies)
                self._form_priors[(concept.id, form)] = override or (
                    (PRIOR_AMBIGUOUS, f"sound_alike: {neighbour}") if neighbour else (PRIOR_PLAIN, None))
            for lemma in concept.verbs:
                if override is not None:
                    priors = {form: override for form in verb_forms(lemma)}
                elif concept.shared_stem:
                    priors = {form: (PRIOR_AMBIGUOUS, "shared_stem: " + ", ".join(others))
                              for form, others in shared_verb_forms(lemma).items()}
                else:
                    priors = {}
                self._verb_priors[(concept.id, lemma)] = priors

    def _compile_farsi(self, concepts: list[_Concept]) -> None:
        self._surfaces: dict[str, _Surface] = {}
        self._max_words: dict[str, int] = {}
        self._multi_first: set[str] = set()
        self._excluded = {_key(x) for c in concepts for x in c.exclude}
        for concept in concepts:  # exact forms first so that they win any clash with a generated form
            for form in concept.fa:
                self._add_surface(_key(form), _Surface(concept, form, "exact", *self._form_priors[(concept.id, form)]))
        for concept in concepts:
            for form in concept.fa:
                surfaces = [form] + ([_join(s, x) for s, x in _inflect(form)] if concept.inflect else [])
                spaced = [s + " " + x for s, x in _inflect(form)
                          if concept.inflect and (len(x) >= _SPACED_SUFFIX_MIN_LENGTH or x == "ی")]
                # Colloquial forms (گرگا, پرندس, روباهرو) can spell another word (مین + ا is مینا,
                # a name, and مینای "enamel of"): one that is a real word, or built on a plural ـا
                # that is one, is left out.
                colloquial = [_join(s, x) for s, x in _colloquial(form) if concept.inflect and not (
                    self._is_word(_key(s + x)) or x.startswith("ا") and self._is_word(_key(s + "ا")))]
                prior = self._form_priors[(concept.id, form)]
                for surface in surfaces + spaced + colloquial:
                    self._add_surface(_key(surface), _Surface(concept, form, "morph", *prior))
                    if ZWNJ in surface:  # ZWNJ typed as a space: عقب نشینی
                        self._add_surface(_key(surface.replace(ZWNJ, " ")), _Surface(concept, form, "morph", *prior))
            for lemma in concept.verbs:
                priors = self._verb_priors[(concept.id, lemma)]
                plain = _override(concept) or (PRIOR_PLAIN, None)
                infinitive = lemma.split("#")[0] + "ن"
                self._add_surface(_key(infinitive), _Surface(concept, lemma, "exact", *plain))
                for surface in verb_forms(lemma):
                    prior = priors.get(surface, plain)
                    self._add_surface(_key(surface), _Surface(concept, lemma, "morph", *prior))
                    if ZWNJ in surface:
                        self._add_surface(_key(surface.replace(ZWNJ, " ")), _Surface(concept, lemma, "morph", *prior))
        # One set for the fast "does this line contain anything at all" test.
        self._triggers = frozenset(k for k in self._surfaces if " " not in k) | self._multi_first

    def _compile_fuzzy(self, concepts: list[_Concept]) -> None:
        keys: list[str] = []
        owners: list[tuple[_Concept, str]] = []
        for concept in concepts:
            if not concept.fuzzy:
                continue
            for form in concept.fa:
                if len(form.replace(ZWNJ, "").replace(" ", "")) >= concept.fuzzy_min_length:
                    for key in _sound_keys(form):
                        keys.append(key)
                        owners.append((concept, form))
        self._fuzzy_keys = keys
        self._fuzzy_index = FuzzyIndex(keys)
        self._fuzzy_owners = owners
        self._fuzzy_max_len = max((len(k) for k in keys), default=0)
        self._fuzzy_floor: dict[MatchOptions, float] = {}
        self._partners = PartnerIndex(concepts, self._patterns)
        self._either_partners = PartnerIndex(concepts, [p for p in self._patterns if p.type == "either"])

    def _compile_english(self, concepts: list[_Concept]) -> None:
        self._english: dict[str, tuple[_Concept, str]] = {}
        for concept in concepts:
            for gloss in concept.en:
                for variant in _english_variants(gloss):
                    self._english.setdefault(variant.lower(), (concept, gloss))
        alternatives = sorted(self._english, key=len, reverse=True)
        if alternatives:
            self._english_regex = _english_regex(alternatives)
            self._english_index = EnglishIndex(alternatives, self._english_regex, _english_regex)
        else:
            self._english_regex = None

    # -- matching

    def match(self, text_fa: str, text_en: str = "") -> list[Flag]:
        """Flags in one line. text_fa must already be normalised by PersianNormalizer; spans index
        text_fa, or text_en for kind 'english'; text[span_start:span_end] == flag.matched."""
        flags = self._match_farsi(text_fa)
        if self.options.english and text_en and self._english_regex is not None:
            flags += self._match_english(text_en)
        return _dedupe(flags)

    def _match_farsi(self, text: str) -> list[Flag]:
        flags: list[Flag] = []
        if not text:
            return flags
        quick = text.replace(ZWNJ, "")
        quick_words = PersianTokenizer._WORD.findall(quick)
        need_exact = not self._triggers.isdisjoint(quick_words)
        if not need_exact and not (self.options.fuzzy and self._fuzzy_keys):
            return flags
        tokens = self._tokenizer.spans(text)
        keys = [t.text.replace(ZWNJ, "") for t in tokens]
        covered = [False] * len(tokens)
        if need_exact:
            i = 0
            while i < len(tokens):
                found = None
                if keys[i] in self._multi_first:
                    for n in range(min(self._max_words[keys[i]], len(tokens) - i), 1, -1):
                        surface = self._surfaces.get(" ".join(keys[i:i + n]))
                        if surface is not None:
                            found = (surface, n)
                            break
                if found is None and keys[i] in self._surfaces:
                    found = (self._surfaces[keys[i]], 1)
                if found is None:
                    i += 1
                    continue
                surface, n = found
                start, end = tokens[i].start, tokens[i + n - 1].end
                flags.append(_flag(surface.concept, surface.kind,
                                   SCORE_EXACT if surface.kind == "exact" else SCORE_MORPH,
                                   start, end, text, surface.form, (surface.prior, surface.prior_reason)))
                for j in range(i, i + n):
                    covered[j] = True
                i += n
        if self.options.fuzzy and self._fuzzy_keys:
            flags += self._match_fuzzy(text, tokens, keys, covered, flags)
        if self.options.patterns:
            flags += self._match_either(text, tokens, keys, flags)
        return flags

    def _is_known_word(self, key: str, verbs: bool = True) -> bool:
        """A real Persian word, so not recognition noise. Verb forms count only when asked: a
        single token پرید "flew" is a word, but "پر اندی" merged is a garbled پرنده even though
        پراندی happens to be a rare verb form."""
        if self._is_word(key, verbs):
            return True
        # An inflected real word (پرونده‌ها) is as real as its stem.
        for suffix in ("ها", "های", "هایی", "ان", "گان", "ی", "ای", "یی", "م", "ت", "ش", "مان", "تان", "شان"):
            if key.endswith(suffix) and len(key) - len(suffix) >= 2:
                stem = key[: -len(suffix)]
                if stem in self._known_words or stem in self._excluded or (
                        suffix == "گان" and stem + "ه" in self._known_words):
                    return True
        return False

    def _is_word(self, key: str, verbs: bool = True) -> bool:
        """key as a whole is a word of hazm's list (or, when asked, a verb form) or an excluded one."""
        if self._known_words is None:  # built on first use
            self._known_words = self._normalizer.known_words(KNOWN_WORD_MIN_FREQUENCY, tagged=True)
            self._common_words = self._normalizer.known_words(KNOWN_WORD_MIN_FREQUENCY)
            self._known_verbs = self._normalizer.known_verb_forms()
        return key in self._known_words or key in self._excluded or (verbs and key in self._known_verbs)

    def _is_whole_word(self, key: str) -> bool:
        """A common word of its own, not a piece of a split word (rare words like اندی can be pieces)."""
        return len(key) >= FUZZY_WHOLE_WORD_LENGTH and self._is_known_word(key) and (
            key in self._common_words or key in self._known_verbs)

    def _fuzzy_cutoffs(self, concept: _Concept) -> tuple[float, float]:
        """(lone, with a partner) similarity cut-offs, 0..100, for one concept."""
        threshold = self.options.fuzzy_threshold
        margin = self.options.fuzzy_context_margin
        lone = threshold if threshold is not None else concept.fuzzy_threshold
        partnered = lone - (margin if margin is not None else concept.fuzzy_context_margin)
        return 100.0 * lone, 100.0 * max(partnered, 0.0)

    def _match_fuzzy(self, text: str, tokens, keys: list[str], covered: list[bool],
                     found: list[Flag]) -> list[Flag]:
        cutoff = self._fuzzy_floor.get(self.options)
        if cutoff is None:  # the loosest cut-off of any concept under these options, once per options
            cutoff = self._fuzzy_floor[self.options] = min(self._fuzzy_cutoffs(c)[1] for c, _ in self._fuzzy_owners)
        # ratio >= t needs len(window) <= len(form) * (2 - t) / t; longer windows cannot match
        max_len = self._fuzzy_max_len * (200.0 - cutoff) / max(cutoff, 1.0)
        candidates: list[tuple[float, int, int, int]] = []  # (score, -tokens, first, last)
        best: dict[tuple[int, int], tuple[float, _Concept, str, bool]] = {}  # ... lone: needs no partner
        for i in range(len(tokens)):
            if covered[i]:
                continue
            merged = ""
            for j in range(i, min(i + FUZZY_MAX_WINDOW_TOKENS, len(tokens))):
                if covered[j] or (j > i and tokens[j].start - tokens[j - 1].end > 1):
                    break  # never across a flagged word or punctuation
                if j > i and (len(keys[i]) == 1 or self._is_whole_word(keys[i]) or self._is_whole_word(keys[j])):
                    # "و پرده" is "and curtain", not a bird split in two: a window starting with a
                    # one-letter word, or holding a real long word, is not one word split apart.
                    break
                merged += keys[j]
                if len(merged) > max_len:
                    break
                # "رو با" ("on with"): pieces that are all short real words need a partner
                short_pieces = j > i and all(len(k) <= FUZZY_SHORT_PIECE_LENGTH and self._is_known_word(k)
                                             for k in keys[i:j + 1])
                joined = self._surfaces.get(merged) if j > i else None
                if joined is not None and joined.concept.fuzzy:  # a lexicon word split apart: گنج شک
                    candidates.append((1.0, -(j - i), i, j))
                    best[(i, j)] = (1.0, joined.concept, joined.form, not short_pieces)
                    continue
                if len(merged) < 3 or self._is_known_word(merged, verbs=j == i):
                    continue
                result = None
                for key in _sound_keys(merged):  # with and without a final ه: پرامده ~ پرنده
                    hit = self._fuzzy_index.best(key, cutoff)  # process.extractOne over the keys
                    if hit is not None and (result is None or hit[1] > result[1]):
                        result = hit
                if result is None:
                    continue
                _, score, index = result
                concept, form = self._fuzzy_owners[index]
                lone_cutoff, partnered_cutoff = self._fuzzy_cutoffs(concept)
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
            flags.append(_flag(concept, "fuzzy", round(similarity * FUZZY_SCORE_SCALE, 3),
                               tokens[i].start, tokens[j].end, text, form, self._form_priors[(concept.id, form)]))
        return flags

    def _match_either(self, text: str, tokens, keys: list[str], flags: list[Flag]) -> list[Flag]:
        """'<X> یا <Y>': two hits joined by a connector, with only filler words between."""
        patterns = [p for p in self._patterns if p.type == "either"]
        if not patterns or len(flags) < 2:
            return []
        ordered = sorted(flags, key=lambda f: f.span_start)
        token_index = {t.start: n for n, t in enumerate(tokens)}
        token_end = {t.end: n for n, t in enumerate(tokens)}
        found: list[Flag] = []
        for pattern in patterns:
            for a, b in zip(ordered, ordered[1:]):
                if not (self._fits(pattern, a) and self._fits(pattern, b)) or a.concept == b.concept:
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
                                  f"{a.concept} {connectors[0]} {b.concept}", *_weakest_prior([a, b])))
        return found

    def _fits(self, pattern: _Pattern, flag: Flag) -> bool:
        return flag.kind != "pattern" and (flag.category in pattern.categories or flag.concept in pattern.concepts)

    def _match_english(self, text: str) -> list[Flag]:
        flags = []
        for m in self._english_index.finditer(text):  # self._english_regex.finditer(text), indexed
            concept, gloss = self._english[" ".join(m.group().lower().split())]
            flags.append(_flag(concept, "english", SCORE_ENGLISH, m.start(), m.end(), text, gloss,
                               _override(concept) or (PRIOR_PLAIN, None)))
        return flags

    def flag_lines(self, lines: list[Line]) -> list[list[Flag]]:
        """Flags per line (same order as lines), plus co-occurrence pattern flags: concepts that
        appear together within a transmission or `window` transmissions either side."""
        per_line = [self.match(line.text_fa, line.text_en) for line in lines]
        if not self.options.patterns:
            return per_line
        for pattern in (p for p in self._patterns if p.type == "cooccurrence"):
            self._cooccurrence(pattern, lines, per_line)
        return [_dedupe(flags) for flags in per_line]

    def _cooccurrence(self, pattern: _Pattern, lines: list[Line], per_line: list[list[Flag]]) -> None:
        by_transmission: dict[int, list[tuple[int, Flag]]] = {}
        for n, (line, flags) in enumerate(zip(lines, per_line)):
            for flag in flags:
                if self._fits(pattern, flag):
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
            prior = _weakest_prior([flag for _, flag in near])
            for n, flag in own:
                per_line[n].append(Flag(pattern.id, pattern.category, "pattern", score, flag.span_start,
                                        flag.span_end, flag.matched, pattern.severity, "+".join(others), *prior))


def _satisfied(needed: dict[str, int], pattern: _Pattern, flags: list[Flag]) -> bool:
    for item, count in needed.items():
        if item in pattern.concepts:
            distinct = {f.concept for f in flags if f.concept == item}
            if not distinct:
                return False
        elif len({f.concept for f in flags if f.category == item}) < count:
            return False
    return True


def _check_across(concepts: list[_Concept], patterns: list[_Pattern]) -> None:
    """Checks that need every file: unique ids, one owner per Farsi form, patterns that name
    known categories and concepts."""
    seen: dict[str, _Concept] = {}
    for concept in concepts:
        if concept.id in seen:
            raise LexiconError(f"{concept.where}: duplicate concept {concept.id!r} "
                               f"(first defined at {seen[concept.id].where})")
        seen[concept.id] = concept
    owners: dict[str, _Concept] = {}
    for concept in concepts:
        for form in concept.fa:
            owner = owners.get(_key(form))
            if owner is not None:
                raise LexiconError(f"{concept.where}: concept {concept.id!r}: form {form!r} already belongs to "
                                   f"concept {owner.id!r} ({owner.where})")
            owners[_key(form)] = concept
    categories = {c.category for c in concepts}
    pattern_ids: set[str] = set()
    for pattern in patterns:
        if pattern.id in pattern_ids or pattern.id in seen:
            raise LexiconError(f"{pattern.where}: duplicate id {pattern.id!r} (patterns and concepts share ids)")
        pattern_ids.add(pattern.id)
        for category in pattern.categories:
            if category not in categories:
                raise LexiconError(f"{pattern.where}: pattern {pattern.id!r}: no concept has category {category!r}")
        for concept_id in pattern.concepts:
            if concept_id not in seen:
                raise LexiconError(f"{pattern.where}: pattern {pattern.id!r}: unknown concept {concept_id!r}")


def _sound_keys(text: str) -> tuple[str, ...]:
    """What fuzzy matching compares: sound-alike letters folded, spaces/ZWNJ dropped, and the
    key once more without a final ه (recognisers drop and add it freely: روبا for روباه)."""
    folded = text.translate(_SOUND_ALIKE)
    return (folded, folded[:-1]) if folded.endswith("ه") and len(folded) > 3 else (folded,)


def _english_regex(alternatives: Sequence[str]) -> "re.Pattern":
    body = "|".join(r"\s+".join(re.escape(w) for w in a.split()) for a in alternatives)
    return re.compile(rf"(?<!{_ENGLISH_WORD_CHARS})(?:{body})(?!{_ENGLISH_WORD_CHARS})", re.IGNORECASE)


def _english_variants(gloss: str) -> list[str]:
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


def _flag(concept: _Concept, kind: str, score: float, start: int, end: int, text: str, form: str,
          prior: tuple[float, Optional[str]]) -> Flag:
    return Flag(concept.id, concept.category, kind, score, start, end, text[start:end], concept.severity, form, *prior)


def _override(concept: _Concept) -> Optional[tuple[float, str]]:
    """The analyst's prior for a concept, with its reason, when the lexicon sets one."""
    return None if concept.prior is None else (concept.prior, f"lexicon prior {concept.prior:g}")


def _weakest_prior(flags: Sequence[Flag]) -> tuple[Optional[float], Optional[str]]:
    """A pattern is as likely as its least likely part (unknown when a part's prior is)."""
    if any(flag.prior is None for flag in flags):
        return None, None
    weakest = min(flags, key=lambda flag: flag.prior)
    return weakest.prior, (f"{weakest.concept}: {weakest.prior_reason}" if weakest.prior_reason else None)


_ALIKE_LETTERS = {letter: group.replace(letter, "") for group in _SOUND_ALIKE_GROUPS for letter in group}


def _commoner_sound_alike(word: str, frequencies: dict[str, int]) -> Optional[str]:
    """The commonest word one sound-alike letter away from word (کفتار -> گفتار), when it is at
    least SOUND_ALIKE_MIN_RATIO times as common in hazm's word list (a word the list lacks or
    counts rarely counts as KNOWN_WORD_MIN_FREQUENCY)."""
    own = max(frequencies.get(word, 0), KNOWN_WORD_MIN_FREQUENCY)
    best, best_count = None, SOUND_ALIKE_MIN_RATIO * own
    for n, letter in enumerate(word):
        for other in _ALIKE_LETTERS.get(letter, ""):
            neighbour = word[:n] + other + word[n + 1:]
            count = frequencies.get(neighbour, 0)
            if count >= best_count:
                best, best_count = neighbour, count
    return best


def _dedupe(flags: Iterable[Flag]) -> list[Flag]:
    """One flag per (concept, span) -- spans of English flags are kept apart, they index text_en --
    keeping the strongest kind, then the higher score."""
    best: dict[tuple[str, int, int, bool], Flag] = {}
    for flag in flags:
        key = (flag.concept, flag.span_start, flag.span_end, flag.kind == "english")
        current = best.get(key)
        if current is None or (_KIND_STRENGTH[flag.kind], flag.score) > (_KIND_STRENGTH[current.kind], current.score):
            best[key] = flag
    return sorted(best.values(), key=lambda f: (f.kind == "english", f.span_start, f.span_end, f.concept))


def default_lexicon_path() -> Path:
    """The repository's lexicons/ folder (the project installs itself editable, so it sits next
    to the package)."""
    path = Path(__file__).resolve().parent.parent / "lexicons"
    if not path.is_dir():
        raise LexiconError(f"{path}:1: default lexicon folder not found; pass a lexicon path explicitly")
    return path
