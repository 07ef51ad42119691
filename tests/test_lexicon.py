"""Tests for intercept.lexicon: loading and validation, matching by kind, patterns, English,
co-occurrence across transmissions, and properties of offsets."""
from __future__ import annotations

import re
import textwrap
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intercept.lexicon import (PRIOR_AMBIGUOUS, PRIOR_PLAIN, Lexicon, LexiconError, MatchOptions, Term,
                               default_lexicon_path)
from intercept.text import ZWNJ, PersianNormalizer
from intercept.types import Line
from lexicon_cases import ASR_NEGATIVES, NEGATIVES, POSITIVES, PRIORS

SOURCE_LINE = "امشب برویم ببینیم پرنده است یا روباه"


@pytest.fixture(scope="module")
def normalizer() -> PersianNormalizer:
    return PersianNormalizer()


@pytest.fixture(scope="module")
def lexicon(normalizer) -> Lexicon:
    return Lexicon.load(default_lexicon_path(), normalizer=normalizer)


def _flags(lexicon, normalizer, raw, text_en=""):
    return lexicon.match(normalizer.normalize(raw), text_en)


def _by_concept(flags):
    return {f.concept: f for f in flags}


# ------------------------------------------------------------------ the source's sentence


def test_source_sentence_flags_bird_fox_and_either_pattern(lexicon, normalizer):
    flags = _by_concept(_flags(lexicon, normalizer, SOURCE_LINE))
    assert flags["bird"].kind == "exact" and flags["bird"].score == 1.0
    assert flags["fox"].kind == "exact" and flags["fox"].matched == "روباه"
    pattern = flags["animal_or_animal"]
    assert pattern.kind == "pattern"
    assert pattern.matched == "پرنده است یا روباه"
    assert 0 < pattern.score < 1
    assert flags["tonight"].severity == "low"


@pytest.mark.parametrize("garbled, matched", [("پرنده است یا رو دا", "رو دا"), ("پرنده است یا رو با", "رو با")])
def test_whisper_garbled_fox_is_fuzzy_and_scored_lower(lexicon, normalizer, garbled, matched):
    flags = _flags(lexicon, normalizer, garbled)
    fox = _by_concept(flags)["fox"]
    bird = _by_concept(flags)["bird"]
    assert fox.kind == "fuzzy" and fox.matched == matched and fox.term == "روباه"
    assert fox.score < 0.9 and bird.score == 1.0
    # the "X یا Y" pattern survives the damage, with a lower score than on clean text
    pattern = _by_concept(flags)["animal_or_animal"]
    clean = _by_concept(_flags(lexicon, normalizer, SOURCE_LINE))["animal_or_animal"]
    assert pattern.score < clean.score


def test_fuzzy_threshold_from_options(lexicon, normalizer):
    text = normalizer.normalize("پرنده است یا رو دا")
    strict = lexicon.with_options(MatchOptions(fuzzy_threshold=0.95))
    assert "fox" not in _by_concept(strict.match(text))
    off = lexicon.with_options(MatchOptions(fuzzy=False))
    assert all(f.kind != "fuzzy" for f in off.match(text))
    with pytest.raises(ValueError, match="fuzzy_threshold"):
        MatchOptions(fuzzy_threshold=1.5)


# ------------------------------------------------------------------ labelled cases


def test_positives_and_hard_negatives_precision_recall(lexicon, normalizer):
    """Recall per expected kind on POSITIVES; precision per kind over every flag produced on
    POSITIVES and NEGATIVES (a flag is right when its concept is one the case expects)."""
    expected_by_text: dict[str, set[str]] = {}
    for text, concept, _ in POSITIVES:
        expected_by_text.setdefault(text, set()).add(concept)
    found, wanted = Counter(), Counter()
    for text, concept, kind in POSITIVES:
        wanted[kind] += 1
        if any(f.concept == concept and f.kind == kind for f in _flags(lexicon, normalizer, text)):
            found[kind] += 1
    right, produced = Counter(), Counter()
    for text, expected in expected_by_text.items():
        for flag in _flags(lexicon, normalizer, text):
            if flag.kind == "pattern":
                continue
            produced[flag.kind] += 1
            right[flag.kind] += flag.concept in expected
    for text, forbidden in NEGATIVES:
        for flag in _flags(lexicon, normalizer, text):
            produced[flag.kind] += 1
            assert not (flag.concept in forbidden and flag.kind in ("exact", "morph")), (text, flag)
    print()
    print("kind   recall          precision")
    for kind in ("exact", "morph", "fuzzy"):
        recall = found[kind] / wanted[kind] if wanted[kind] else float("nan")
        precision = right[kind] / produced[kind] if produced[kind] else float("nan")
        print(f"{kind:6} {found[kind]:3}/{wanted[kind]:<3} {recall:5.2f}   {right[kind]:3}/{produced[kind]:<3} {precision:5.2f}")
    assert found["exact"] == wanted["exact"]
    assert found["morph"] == wanted["morph"]
    assert found["fuzzy"] / wanted["fuzzy"] >= 0.8


@pytest.mark.parametrize("text, concept, reason", PRIORS)
def test_sound_alike_forms_and_shared_verb_forms_get_a_low_prior_and_say_why(lexicon, normalizer, text, concept,
                                                                             reason):
    flag = _by_concept(_flags(lexicon, normalizer, text))[concept]
    assert flag.prior_reason == reason
    assert flag.prior == (PRIOR_PLAIN if reason is None else PRIOR_AMBIGUOUS)


def test_priors_are_on_the_terms_and_patterns_take_the_weakest(lexicon, normalizer):
    terms = {t.form: t for t in lexicon.terms}
    assert (terms["کفتار"].prior, terms["کفتار"].prior_reason) == (PRIOR_AMBIGUOUS, "sound_alike: گفتار")
    assert terms["کشت#کش"].prior == PRIOR_AMBIGUOUS and terms["پرنده"].prior == PRIOR_PLAIN
    pattern = _by_concept(_flags(lexicon, normalizer, "پرنده است یا کفتار"))["animal_or_animal"]
    assert pattern.prior == PRIOR_AMBIGUOUS and pattern.prior_reason == "hyena: sound_alike: گفتار"
    assert _by_concept(_flags(lexicon, normalizer, SOURCE_LINE))["animal_or_animal"].prior == PRIOR_PLAIN


OVERRIDES = """\
concepts:
  - id: hyena
    category: animal
    fa: [کفتار]
  - id: kill
    category: operation
    verbs: ["کشت#کش"]
"""


@pytest.mark.parametrize("extra, concept, text, prior, reason", [
    ("", "hyena", "کفتار", PRIOR_AMBIGUOUS, "sound_alike: گفتار"),
    ("    fa: [کفتار]\n    sound_alike: ignore\n", "hyena", "کفتار", PRIOR_PLAIN, None),
    ("    fa: [کفتار]\n    prior: 0.9\n", "hyena", "کفتارها", 0.9, "lexicon prior 0.9"),
    ("", "kill", "می‌کشم", PRIOR_AMBIGUOUS, "shared_stem: کشید#کش"),
    ("    verbs: [\"کشت#کش\"]\n    shared_stem: ignore\n", "kill", "می‌کشم", PRIOR_PLAIN, None),
    ("    verbs: [\"کشت#کش\"]\n    prior: 0.5\n", "kill", "کشتند", 0.5, "lexicon prior 0.5"),
])
def test_an_analyst_overrides_priors_in_the_lexicon(tmp_path, normalizer, extra, concept, text, prior, reason):
    body = OVERRIDES
    if extra:  # replace the concept's form line with the form line plus the override
        first = extra.splitlines()[0]
        body = body.replace(first + "\n", extra)
    lexicon = Lexicon.load(_write(tmp_path, body), normalizer=normalizer)
    flag = _by_concept(lexicon.match(normalizer.normalize(text)))[concept]
    assert (flag.prior, flag.prior_reason) == (prior, reason)


@pytest.mark.parametrize("extra, reason", [("    prior: 2\n", "between"),
                                           ("    sound_alike: maybe\n", "sound_alike must be one of check, ignore")])
def test_bad_prior_settings_name_file_and_line(tmp_path, normalizer, extra, reason):
    path = _write(tmp_path, OVERRIDES.replace("    fa: [کفتار]\n", "    fa: [کفتار]\n" + extra))
    with pytest.raises(LexiconError) as caught:
        Lexicon.load(path, normalizer=normalizer)
    assert str(caught.value).startswith(f"{path}:5: ") and reason in str(caught.value)


@pytest.mark.parametrize("text, forbidden", ASR_NEGATIVES)
def test_loose_lone_fuzzy_hits_on_plain_asr_output_are_not_flags(lexicon, normalizer, text, forbidden):
    flagged = {f.concept for f in _flags(lexicon, normalizer, text)}
    assert not flagged & forbidden, (text, flagged)


def test_a_pattern_partner_raises_a_loose_fuzzy_hit(lexicon, normalizer):
    # "رو دا" is 0.75 like روباه: alone it is noise, beside a bird it is the fox
    assert "fox" not in _by_concept(_flags(lexicon, normalizer, "رو دا آمد"))
    assert _by_concept(_flags(lexicon, normalizer, "پرنده است یا رو دا"))["fox"].kind == "fuzzy"
    # a time is an animal's partner too (animal_with_time); a place and an operation are not partners
    assert "fox" in _by_concept(_flags(lexicon, normalizer, "امشب رو دا"))
    assert _flags(lexicon, normalizer, "اتنار باید کامدین") == []
    # without the margin the partner changes nothing
    strict = lexicon.with_options(MatchOptions(fuzzy_context_margin=0.0))
    assert "fox" not in _by_concept(strict.match(normalizer.normalize("پرنده است یا رو دا")))
    with pytest.raises(ValueError, match="fuzzy_context_margin"):
        MatchOptions(fuzzy_context_margin=0.9)


def test_hard_negatives_get_no_fuzzy_flag_either(lexicon, normalizer):
    for text in ("پرونده را بیاور", "پرده را بکش", "روبرو بایستید", "چای شیرین است", "و پرده را باز کن"):
        assert _flags(lexicon, normalizer, text) == [], text


# Whisper base spells what it hears (read on the calibration part of the development speech):
# a short form, which similarity never reaches, and a verb's conjugation, with a final د as ت.
@pytest.mark.parametrize("text, concept, term, matched", [
    ("خرص خش ناک", "bear", "خرس", "خرص"),       # ص for س
    ("اهو میکس کرد", "deer", "آهو", "اهو"),       # ا for آ
    ("خرصا چندین هفته", "bear", "خرس", "خرصا"),   # an inflected short form (خرس + colloquial plural)
    ("زبونه کشیت", "kill", "کشت#کش", "کشیت"),    # کشید heard with a final ت
    ("پرندی درقفس", "bird", "پرنده", "پرندی"),    # the ezafe پرنده‌ی as heard, though پرند + ی is a word
    ("پرندیی که پر زد", "bird", "پرنده", "پرندیی"),
])
def test_a_short_form_or_a_verb_spelled_as_it_sounds_is_a_fuzzy_flag(lexicon, normalizer, text, concept, term, matched):
    flag = _by_concept(_flags(lexicon, normalizer, text))[concept]
    assert (flag.kind, flag.term, flag.matched, flag.score) == ("fuzzy", term, matched, 0.85)


def test_a_real_word_that_sounds_like_a_short_form_is_not_flagged(lexicon, normalizer):
    # سکه (coin) sounds like a suffixed سگ (dog), گشت (patrol) like کشت (killed): real words are
    # never taken for a spelling; two letters (سک) spell too many words to mean anything.
    for text in ("یک سکه داد", "گشت زدند", "سک"):
        assert _flags(lexicon, normalizer, text) == [], text


def test_spelled_keys_fold_sound_alike_letters_and_a_final_dal():
    from intercept.lexicon.matching.fuzzy import spelled_key

    assert spelled_key("خرص") == spelled_key("خرس") == "خرس"
    assert spelled_key("کشید") == spelled_key("کشیت") == "کشیت"
    assert spelled_key("آهو") == spelled_key("اهو")
    assert spelled_key("دست") != spelled_key("تست")  # only a final د


@pytest.mark.parametrize("variant", ["پرنده‌ها", "پرنده ها", "پرندهها", "پرنده\u200dها", "پرندة‌ها"])
def test_zwnj_space_joined_and_arabic_variants_are_one_morph_flag(lexicon, normalizer, variant):
    flags = _flags(lexicon, normalizer, variant + " رفتند")
    assert [(f.concept, f.kind) for f in flags] == [("bird", "morph")]


def test_multi_word_and_verb_terms(lexicon, normalizer):
    flags = _by_concept(_flags(lexicon, normalizer, "مواد منفجره را در ساعت صفر بردند و او را کشتند"))
    assert flags["bomb"].matched == "مواد منفجره" and flags["bomb"].kind == "exact"
    assert flags["zero_hour"].matched == "ساعت صفر"
    assert flags["kill"].kind == "morph" and flags["kill"].term == "کشت#کش"


def test_one_flag_per_concept_and_span(lexicon, normalizer):
    flags = _flags(lexicon, normalizer, "روباه روباه روبا")
    spans = [(f.concept, f.span_start, f.span_end) for f in flags if f.kind != "english"]
    assert len(spans) == len(set(spans))
    assert [f.kind for f in flags if f.concept == "fox"] == ["exact", "exact", "fuzzy"]


# ------------------------------------------------------------------ English


def test_english_glosses_on_translation_with_word_boundaries_and_plurals(lexicon):
    text_en = "Two foxes and a Bird; the wolves, not a birdie nor millions of dollars."
    flags = [f for f in lexicon.match("", text_en) if f.kind == "english"]
    got = {(f.concept, f.matched) for f in flags}
    assert got == {("fox", "foxes"), ("bird", "Bird"), ("wolf", "wolves")}
    for flag in flags:
        assert text_en[flag.span_start:flag.span_end] == flag.matched
    assert lexicon.with_options(MatchOptions(english=False)).match("", text_en) == []


# ------------------------------------------------------------------ co-occurrence across lines


def test_flag_lines_cooccurrence_within_window(lexicon, normalizer):
    def line(text, idx):
        return Line(start=0.0, end=1.0, text=text, transmission_idx=idx, text_fa=normalizer.normalize(text))

    lines = [line("گرگ آنجاست", 3), line("فردا شب می‌آییم", 4), line("سلام", 5), line("نارنجک", 9)]
    per_line = lexicon.flag_lines(lines)
    assert len(per_line) == len(lines)
    pattern_on = [{f.concept for f in flags if f.kind == "pattern"} for flags in per_line]
    assert "animal_with_time" in pattern_on[0] and "animal_with_time" in pattern_on[1]
    assert pattern_on[2] == set()
    # the grenade is 6 transmissions away from the wolf: outside window 1
    assert "animal_with_weapon" not in pattern_on[3]
    for flags, item in zip(per_line, lines):
        for flag in flags:
            assert item.text_fa[flag.span_start:flag.span_end] == flag.matched
    no_patterns = lexicon.with_options(MatchOptions(patterns=False)).flag_lines(lines)
    assert all(f.kind != "pattern" for flags in no_patterns for f in flags)


# ------------------------------------------------------------------ properties


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["پرنده", "روباه", "ها", "است", "یا", "رو", "با", "دا", "پر", "اندی", "گرگ", "شیر",
                                 "ین", "ساعت", "صفر", "می", "کشند", "،", " ", ZWNJ, "x", "1", "پرونده", "مواد",
                                 "منفجره"]), max_size=15),
       st.text(max_size=30))
def test_match_never_crashes_and_offsets_point_at_matched_text(lexicon, normalizer, pieces, noise):
    raw = " ".join(pieces) + noise
    for text in (raw, normalizer.normalize(raw)):
        for flag in lexicon.match(text, raw):
            source = raw if flag.kind == "english" else text
            assert source[flag.span_start:flag.span_end] == flag.matched
            assert 0 < flag.score <= 1 and flag.kind in ("exact", "morph", "fuzzy", "pattern", "english")
            assert 0 <= flag.prior <= 1 and (flag.prior_reason is None) == (flag.prior == PRIOR_PLAIN)


# ------------------------------------------------------------------ loading, version, terms


def test_default_lexicon_terms_and_version(lexicon):
    assert re.fullmatch(r"[0-9a-f]{12}", lexicon.version)
    assert Term("bird", "animal", "medium", "پرنده", "fa") in lexicon.terms
    assert Term("fox", "animal", "medium", "fox", "en") in lexicon.terms
    assert {t.lang for t in lexicon.terms} == {"fa", "en"}
    assert (default_lexicon_path() / "default.yaml").is_file()


GOOD = """\
name: test
fuzzy_threshold: 0.8
concepts:
  - id: bird
    category: animal
    severity: medium
    fa: [پرنده]
    en: [bird]
  - id: fox
    category: animal
    fa: [روباه]
"""


def _write(tmp_path, text, name="lex.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_version_is_content_hash(tmp_path, normalizer):
    first = Lexicon.load(_write(tmp_path, GOOD, "a.yaml"), normalizer=normalizer)
    same = Lexicon.load(_write(tmp_path, "# a comment changes nothing\n" + GOOD, "b.yaml"), normalizer=normalizer)
    other = Lexicon.load(_write(tmp_path, GOOD.replace("[bird]", "[bird, hen]"), "c.yaml"), normalizer=normalizer)
    assert first.version == same.version != other.version


def test_folder_and_several_files(tmp_path, normalizer):
    folder = tmp_path / "lex"
    folder.mkdir()
    _write(folder, GOOD, "one.yaml")
    _write(folder, "concepts:\n  - id: wolf\n    category: animal\n    fa: [گرگ]\n", "two.yml")
    (folder / "README.md").write_text("not a lexicon")
    lexicon = Lexicon.load(folder, normalizer=normalizer)
    assert {t.concept for t in lexicon.terms} == {"bird", "fox", "wolf"}


@pytest.mark.parametrize(
    "text, line, reason",
    [
        (GOOD.replace("    category: animal\n    severity: medium\n", "    severity: medium\n"), 4, "has no 'category'"),
        (GOOD.replace("severity: medium", "severity: urgent"), 6, "bad severity 'urgent'"),
        (GOOD.replace("id: fox", "id: bird"), 9, "duplicate concept 'bird'"),
        (GOOD.replace("fa: [روباه]", "fa: [پرنده]"), 9, "already belongs to concept 'bird'"),
        (GOOD.replace("fa: [پرنده]", "fa: [پرنده"), 8, "YAML syntax error"),
        (GOOD.replace("    en: [bird]\n", "    english: [bird]\n"), 8, "unknown key 'english'"),
        (GOOD.replace("fuzzy_threshold: 0.8", "fuzzy_threshold: 3"), 2, "between"),
        (GOOD + "patterns:\n  - id: p\n    type: either\n    categories: [fish]\n", 13, "no concept has category 'fish'"),
        (GOOD + "    verbs: [کشتن]\n", 12, "past#present"),
        ("concepts: []\n", 1, "non-empty list"),
        ("", 1, "empty lexicon file"),
    ],
)
def test_bad_lexicon_errors_name_file_and_line(tmp_path, normalizer, text, line, reason):
    path = _write(tmp_path, text)
    with pytest.raises(LexiconError) as caught:
        Lexicon.load(path, normalizer=normalizer)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert reason in message


# Pieces of lexicon text, good and bad, that hypothesis splices into whole files.
_LEXICON_PIECES = [
    "name: fuzzed\n", "fuzzy_threshold: 0.8\n", "fuzzy_threshold: 7\n", "fuzzy_threshold: [1]\n",
    "concepts:\n", "concepts: 3\n", "concepts: []\n", "patterns:\n", "unknown_key: 1\n",
    "  - id: bird\n", "  - id: bird\n", "  - id: \n", "  - just text\n", "  - id: [a, b]\n",
    "    category: animal\n", "    category:\n", "    severity: medium\n", "    severity: 7\n",
    "    fa: [پرنده]\n", "    fa: []\n", "    fa: [پرنده, پرنده]\n", "    fa: پرنده\n", "    fa: [\"\"]\n",
    "    en: [bird]\n", "    en: [42]\n", "    exclude: [پرونده]\n", "    inflect: maybe\n",
    "    verbs: [رفت#رو]\n", "    verbs: [bad]\n", "    fuzzy: yes\n", "    notes: ok\n",
    "  - type: either\n", "    concepts: [bird, fox]\n", "    concepts: [nobody]\n", "    window: -1\n",
    "\t\n", "{\n", "]\n", ": :\n", "- \n", "&a [1]\n", "*a\n", "\x00\n", "\ufeff\n",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_LEXICON_PIECES), max_size=14), st.binary(max_size=12))
def test_lexicon_loader_fuzzed_loads_or_names_file_and_line(tmp_path_factory, normalizer, pieces, noise):
    """Whatever an analyst's editor leaves in the file, loading either gives a working lexicon
    or one LexiconError that names the file (and a line where there is one): never another
    exception, never half a lexicon."""
    import re

    path = tmp_path_factory.mktemp("fuzz") / "lex.yaml"
    path.write_bytes("".join(pieces).encode("utf-8") + noise)
    try:
        loaded = Lexicon.load(path, normalizer=normalizer)
    except LexiconError as exc:
        message = str(exc)
        assert message.startswith(str(path)), message
        assert re.match(re.escape(str(path)) + r"(:\d+)?: \S", message), message
        assert "\n" not in message.strip(), message
    else:
        assert loaded.version and isinstance(loaded.match("امشب پرنده است یا روباه"), list)


def test_bad_second_file_loads_nothing(tmp_path, normalizer):
    good = _write(tmp_path, GOOD, "good.yaml")
    bad = _write(tmp_path, GOOD.replace("severity: medium", "severity: 7"), "bad.yaml")
    with pytest.raises(LexiconError, match="bad.yaml:6"):
        Lexicon.load(good, bad, normalizer=normalizer)


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(LexiconError, match="no such lexicon"):
        Lexicon.load(tmp_path / "nope.yaml")


# ------------------------------------------------------------------ real recognition output


def _asr_lines(name: str = "asr_outputs.tsv"):
    import csv
    from pathlib import Path

    path = Path(__file__).parent / "data" / name
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["source"], row["hypothesis"], set(filter(None, row["concepts"].split(","))))
                for row in csv.DictReader(handle, delimiter="\t")]


@pytest.mark.parametrize("name", ["asr_outputs.tsv", "asr_outputs_v1.tsv"])
def test_real_whisper_base_output_few_false_flags_and_the_coded_line_found(lexicon, normalizer, name):
    """tests/data/asr_outputs.tsv: what Whisper base wrote for 10 real Persian clips and the
    espeak radio samples through the current engine (scripts/eval_flags.py transcribe);
    asr_outputs_v1.tsv: the same before the loop retry and with the radio clean-up, where the
    coded line came out as two loose fuzzy hits that only the 'either' partner rule keeps.
    The lexicon before the partner rule put 5 false flags on v1's 21 plain lines."""
    lines = _asr_lines(name)
    plain = [(source, hyp) for source, hyp, concepts in lines if not concepts]
    assert len(plain) >= 20
    false = [(source, f.concept, f.matched) for source, hyp in plain for f in _flags(lexicon, normalizer, hyp)]
    assert len(false) <= 1, false
    coded = {source: (hyp, concepts) for source, hyp, concepts in lines}["audio_samples/bird_or_fox.ogg@18.6"]
    found = _by_concept(_flags(lexicon, normalizer, coded[0]))
    assert {"bird", "fox"} <= coded[1] and {"bird", "fox"} <= set(found)
