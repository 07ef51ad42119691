"""Each step of intercept.lexicon used alone, as Lexicon composes them: reading files, known
words, forms, priors, and each matcher family. Lexicon itself is tests/test_lexicon.py."""
from __future__ import annotations

import textwrap

import pytest

from intercept.lexicon import (PRIOR_AMBIGUOUS, PRIOR_PLAIN, FormGenerator, KnownWords, Lexicon, LexiconError,
                               LexiconReader, MatchOptions, PriorEstimator, default_lexicon_path)
from intercept.lexicon.forms import lookup_key
from intercept.lexicon.matching import (EnglishMatcher, FuzzyMatcher, PatternMatcher, SurfaceMatcher, TokenizedLine,
                                        dedupe)
from intercept.text import ZWNJ, PersianNormalizer
from lexicon_cases import POSITIVES, PRIORS


@pytest.fixture(scope="module")
def normalizer() -> PersianNormalizer:
    return PersianNormalizer()


@pytest.fixture(scope="module")
def source(normalizer):
    return LexiconReader(normalizer).read(default_lexicon_path())


@pytest.fixture(scope="module")
def words(source, normalizer):
    return KnownWords(normalizer, (lookup_key(x) for c in source.concepts for x in c.exclude))


@pytest.fixture(scope="module")
def priors(source, normalizer):
    return PriorEstimator(normalizer.word_frequencies()).table(source.concepts)


@pytest.fixture(scope="module")
def surfaces(source, priors, words):
    return SurfaceMatcher(source.concepts, priors, FormGenerator(words), words.excluded)


@pytest.fixture(scope="module")
def patterns(source):
    return PatternMatcher(source.concepts, source.patterns)


@pytest.fixture(scope="module")
def lexicon(normalizer):
    return Lexicon.load(default_lexicon_path(), normalizer=normalizer)


def _concept(source, concept_id):
    return next(c for c in source.concepts if c.id == concept_id)


def test_the_reader_gives_the_checked_content_and_the_lexicons_version(source, lexicon):
    assert source.version == lexicon.version and source.files == lexicon.files
    bird = _concept(source, "bird")
    assert "پرنده" in bird.fa and bird.category == "animal" and "bird" in bird.en
    assert {p.type for p in source.patterns} == {"either", "cooccurrence"}
    assert LexiconReader.files(default_lexicon_path()) == source.files


def test_the_reader_refuses_a_bad_file_naming_file_and_line(tmp_path, normalizer):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""\
        concepts:
          - id: bird
            category: animal
            fa: [پرنده]
            severity: urgent
        """), encoding="utf-8")
    with pytest.raises(LexiconError, match=r"bad\.yaml:5: concept 'bird': bad severity 'urgent'"):
        LexiconReader(normalizer).read(path)


def test_known_words_are_hazms_words_and_the_exclusions(words):
    assert words.is_word("پرونده") and words.is_known_word("پرونده‌ها".replace(ZWNJ, ""))
    assert not words.is_word("پرامده")
    assert all(words.is_word(x) for x in words.excluded)
    assert KnownWords(words.normalizer, {"زخپلش"}).is_word("زخپلش")


def test_forms_inflect_colloquialise_and_conjugate(words):
    forms = FormGenerator(words)
    bird = forms.noun_forms("پرنده")
    for written in ("پرنده", "پرنده‌ها", "پرنده ها", "پرندگان", "پرنده‌ای", "پرنده‌شان", "پرندس", "پرنده‌هارو"):
        assert written in bird, written
    assert forms.noun_forms("پرنده", inflect=False) == ["پرنده"]
    # a colloquial form that spells a real word is left out: مین + ا is مینا (a name)
    assert "مینا" not in forms.noun_forms("مین") and "مین‌ها" in forms.noun_forms("مین")
    assert forms.infinitive("کشت#کش") == "کشتن"
    assert {"کشتند", "می‌کشد"} <= set(forms.verb_forms("کشت#کش"))


def test_noun_keys_are_the_keys_of_the_noun_forms(source, words, normalizer):
    """noun_keys (what the compiler uses) gives the same keys as the written forms' keys, for the
    shipped forms, hazm's words and forms whose stems end oddly (a space, a ZWNJ, nothing)."""
    import hazm

    from intercept.lexicon.forms import lookup_keys

    forms = FormGenerator(words)
    cases = [form for concept in source.concepts for form in concept.fa]
    cases += [normalizer.normalize(w) for w, _, _ in hazm.words_list()[:3000:3]]
    cases += ["ه", "ab ه", "x" + ZWNJ + "ه", "عقب" + ZWNJ + "نشینی", "گنجشک طلایی", "پرنده ها", "آهو", "مین"]
    assert len(cases) > 1000
    for form in filter(None, cases):
        for inflect in (True, False):
            assert set(forms.noun_keys(form, inflect)) == set(lookup_keys(forms.noun_forms(form, inflect))), form


@pytest.mark.parametrize("text, concept_id, reason", [p for p in PRIORS if p[2] and p[2].startswith("sound_alike")][:1])
def test_priors_alone_mark_a_sound_alike_of_a_commoner_word(text, concept_id, reason, source, normalizer):
    estimator = PriorEstimator(normalizer.word_frequencies())
    concept = _concept(source, concept_id)
    assert estimator.form_prior(concept, concept.fa[0]) == (PRIOR_AMBIGUOUS, reason)
    assert estimator.form_prior(_concept(source, "bird"), "پرنده") == (PRIOR_PLAIN, None)
    kill = _concept(source, "kill")
    shared = estimator.verb_priors(kill, kill.verbs[0])
    assert shared and all(prior == PRIOR_AMBIGUOUS and reason.startswith("shared_stem: ")
                          for prior, reason in shared.values())


def test_the_surface_matcher_alone_finds_exact_and_morph_forms(surfaces, normalizer):
    for text, concept_id, kind in [p for p in POSITIVES if p[2] in ("exact", "morph")]:
        flags = surfaces.match(normalizer.normalize(text))
        assert any(f.concept == concept_id and f.kind == kind for f in flags), (text, concept_id, kind)
    assert surfaces.match(normalizer.normalize("پرونده را بستم")) == []


def test_the_fuzzy_matcher_alone_finds_a_garbled_form(source, surfaces, words, priors, patterns, normalizer, lexicon):
    fuzzy = FuzzyMatcher(source.concepts, surfaces, words, priors, patterns.partners, patterns.either_partners)
    text = normalizer.normalize("روبا رفت")
    assert [(f.concept, f.kind) for f in fuzzy.match(text)] == [("fox", "fuzzy")]
    # what the lexicon finds on a line with no exact or morph hit, patterns off
    alone = lexicon.with_options(MatchOptions(patterns=False, english=False))
    assert dedupe(fuzzy.match(text)) == alone.match(text)
    assert fuzzy.match(text)[0].score == 0.85  # روبا is روباه less its final ه: similarity 1
    assert fuzzy.match(normalizer.normalize("پرونده را بستم")) == []  # a real word is never noise


def test_the_pattern_matcher_alone_joins_two_flags(surfaces, patterns, normalizer):
    text = normalizer.normalize("امشب برویم ببینیم پرنده است یا روباه")
    line = TokenizedLine.of(text)
    found = surfaces.find(line, [False] * len(line.tokens))
    joined = patterns.either(line, found)
    assert [(f.concept, f.term, f.matched) for f in joined] == [("animal_or_animal", "bird یا fox", "پرنده است یا روباه")]
    assert patterns.either(line, found[:1]) == []
    assert "fox" in patterns.partners["bird"] and "bird" not in patterns.partners["bird"]


def test_the_english_matcher_alone_finds_glosses_and_plurals(source):
    english = EnglishMatcher(source.concepts)
    flags = english.match("Two Birds and a fox near the river")
    assert [(f.concept, f.matched) for f in flags] == [("bird", "Birds"), ("fox", "fox")]
    assert english.match("a firebird") == [] and not EnglishMatcher([])
