"""Reading lexicon files: YAML in, checked concepts and patterns out.

    LexiconReader(normalizer).read("lexicons/")  ->  LexiconSource(concepts, patterns, version, files)

Every file is validated completely before anything is built, so a bad lexicon never
half-loads; errors read "path:line: reason" (LexiconError). Farsi forms, exclusions,
connectors and fillers are normalised with the normaliser the recognised text goes through,
so a form written with Arabic letters or diacritics matches the text as the pipeline writes it.
The format is lexicons/README.md.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import yaml

from intercept.text import PersianNormalizer, verb_forms

from .forms import lookup_key

SEVERITIES = ("low", "medium", "high")

# Measured on real Whisper base output (scripts/eval_flags.py, tests/data/asr_outputs.tsv):
# 0.75 for every fuzzy hit flagged about one non-coded line in five; lone hits at 0.85 and
# partnered ones down to 0.70 keep the garbled coded line found.
DEFAULT_FUZZY_THRESHOLD = 0.85
DEFAULT_FUZZY_CONTEXT_MARGIN = 0.15
DEFAULT_FUZZY_MIN_LENGTH = 4

_AMBIGUITY_CHECKS = ("check", "ignore")
_CONCEPT_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_CONCEPT_KEYS = {"id", "category", "severity", "fa", "en", "verbs", "exclude", "inflect", "fuzzy", "notes",
                 "prior", "sound_alike", "shared_stem"}
_PATTERN_KEYS = {"id", "type", "category", "severity", "categories", "concepts", "connectors", "fillers",
                 "window", "max_gap", "notes"}
_FILE_KEYS = {"name", "fuzzy_threshold", "fuzzy_context_margin", "fuzzy_min_length", "concepts", "patterns",
              "notes"}
_PATTERN_TYPES = ("either", "cooccurrence")
# The default lexicon inside an installed package (setup.py maps lexicons/ there), and
# lexicons/ at the top of a source checkout (or an editable install of one).
_PACKAGED_LEXICON = Path(__file__).resolve().parent / "default"
_CHECKOUT_LEXICON = Path(__file__).resolve().parent.parent.parent / "lexicons"


class LexiconError(ValueError):
    """A lexicon file is unusable. The message reads "path:line: reason"."""


@dataclass(frozen=True)
class Concept:
    """One concept of a lexicon file, checked, its Farsi forms normalised."""

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
class Pattern:
    """One pattern of a lexicon file ('either' inside a line, 'cooccurrence' across lines)."""

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
class LexiconSource:
    """What a set of lexicon files says, checked across files: the input of every later step."""

    concepts: list[Concept]
    patterns: list[Pattern]
    version: str  # first 12 hex digits of the SHA-256 of the files' content (not their layout)
    files: list[Path]


class LexiconReader:
    """Reads and validates lexicon files (a folder means every .yaml/.yml in it).

    `read(*paths)` checks each file, then what needs every file (unique ids, one owner per
    Farsi form, patterns naming known categories and concepts), and raises LexiconError at the
    first problem; `files(*paths)` only lists the files a load would read."""

    def __init__(self, normalizer: Optional[PersianNormalizer] = None) -> None:
        self.normalizer = normalizer or PersianNormalizer()

    @staticmethod
    def files(*paths) -> list[Path]:
        return _lexicon_files(paths)

    def read(self, *paths) -> LexiconSource:
        files = _lexicon_files(paths)
        concepts: list[Concept] = []
        patterns: list[Pattern] = []
        contents = []
        for path in files:
            file_concepts, file_patterns, content = _read_file(path, self.normalizer)
            concepts += file_concepts
            patterns += file_patterns
            contents.append(content)
        _check_across(concepts, patterns)
        canonical = json.dumps(contents, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
        version = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
        return LexiconSource(concepts, patterns, version, files)


def default_lexicon_path() -> Path:
    """The default lexicon folder: the copy an installed package carries (intercept/lexicon/
    default/, made from lexicons/ at build time), else lexicons/ of the source checkout the
    package sits in (an editable install reads the checkout's, so edits there count)."""
    for path in (_PACKAGED_LEXICON, _CHECKOUT_LEXICON):
        if path.is_dir():
            return path
    raise LexiconError(f"{_CHECKOUT_LEXICON}:1: default lexicon folder not found; pass a lexicon path explicitly")


def default_lexicon_file(name: str) -> Path:
    """A file shipped with the default lexicon (hallucinations.txt, the guards' phrase list), where
    default_lexicon_path() finds the folder; a path that does not exist when there is none."""
    for path in (_PACKAGED_LEXICON, _CHECKOUT_LEXICON):
        if path.is_dir():
            return path / name
    return _CHECKOUT_LEXICON / name


# ---------------------------------------------------------------- one file


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


def _read_file(path: Path, normalizer: PersianNormalizer) -> tuple[list[Concept], list[Pattern], object]:
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

    patterns: list[Pattern] = []
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
                  normalizer: PersianNormalizer) -> Concept:
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
    return Concept(concept_id, category, severity, tuple(f for f, _ in fa), tuple(en), tuple(verbs),
                    tuple(exclude), inflect, fuzzy_on, threshold, margin, min_length, reader.where(node),
                    prior, checks["sound_alike"], checks["shared_stem"], notes)


def _read_pattern(reader: _FileReader, node: yaml.Node, normalizer: PersianNormalizer) -> Pattern:
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
    return Pattern(pattern_id, kind, category, _severity(reader, fields, what), tuple(categories), tuple(concepts),
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


def _check_across(concepts: list[Concept], patterns: list[Pattern]) -> None:
    """Checks that need every file: unique ids, one owner per Farsi form, patterns that name
    known categories and concepts."""
    seen: dict[str, Concept] = {}
    for concept in concepts:
        if concept.id in seen:
            raise LexiconError(f"{concept.where}: duplicate concept {concept.id!r} "
                               f"(first defined at {seen[concept.id].where})")
        seen[concept.id] = concept
    owners: dict[str, Concept] = {}
    for concept in concepts:
        for form in concept.fa:
            owner = owners.get(lookup_key(form))
            if owner is not None:
                raise LexiconError(f"{concept.where}: concept {concept.id!r}: form {form!r} already belongs to "
                                   f"concept {owner.id!r} ({owner.where})")
            owners[lookup_key(form)] = concept
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
