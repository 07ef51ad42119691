"""Tests for intercept.text: the normaliser, tokenizer and lemmatizer."""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intercept.text import ZWNJ, PersianLemmatizer, PersianNormalizer, PersianTokenizer, verb_forms


@pytest.fixture(scope="module")
def normalizer() -> PersianNormalizer:
    return PersianNormalizer()


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("امشب برويم ببينيم پرنده است يا روباه", "امشب برویم ببینیم پرنده است یا روباه"),  # Arabic ي
        ("كبوتر", "کبوتر"),  # Arabic ك
        ("مدرسة", "مدرسه"),  # ة
        ("أسب إسم مؤمن", "اسب اسم مومن"),  # أ إ ؤ
        ("پَرَنده", "پرنده"),  # diacritics
        ("روبـــاه", "روباه"),  # kashida
        ("۱۲۳ ١٢٣ 123", "۱۲۳ ۱۲۳ ۱۲۳"),  # Persian, Arabic and Latin digits
        ("روباه ها", "روباه" + ZWNJ + "ها"),  # plural suffix joined with ZWNJ
        ("می روم", "می" + ZWNJ + "روم"),
        ("پرنده" + ZWNJ + ZWNJ + "ها", "پرنده" + ZWNJ + "ها"),  # repeated ZWNJ
        (ZWNJ + "پرنده" + ZWNJ + " است" + ZWNJ, "پرنده است"),  # ZWNJ at word edges is noise
        ("پرنده\u200dها", "پرنده" + ZWNJ + "ها"),  # ZWJ removed, then the suffix joined with ZWNJ
        ("  پرنده   است \t ", "پرنده است"),
        ("", ""),
    ],
)
def test_normalize(normalizer, raw, expected):
    assert normalizer.normalize(raw) == expected


def test_normalize_is_idempotent_on_sentence(normalizer):
    once = normalizer.normalize("امشب برويم ببينيم پَرَنده‌ها است يا روباه ها")
    assert normalizer.normalize(once) == once


def test_normalize_rejects_non_text(normalizer):
    with pytest.raises(TypeError, match="expects str"):
        normalizer.normalize(b"bytes")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("پرندهاستیروباهكيةأإؤ َُِـ‌‍ 123١٢٣۱۲۳،.!?abc\t")), max_size=40))
def test_normalize_never_crashes_and_leaves_no_arabic_letters(normalizer, text):
    out = normalizer.normalize(text)
    assert not set(out) & set("يكةأإؤـ\u200d\u064e\u064f\u0650")
    assert "  " not in out and out == out.strip()
    assert ZWNJ + ZWNJ not in out


# What recognisers, PDFs and keyboards leave in Persian text: letters and suffixes, Arabic ي ك
# and ة, ۀ (U+06C0), zero-width space/joiner/non-joiner, no-break and other spaces, diacritics,
# kashida, digits, punctuation and the Arabic presentation forms (U+FB50-FDFF, U+FE70-FEFF:
# ligatures and positional shapes, unassigned points included).
_IDEMPOTENCE_ALPHABET = st.one_of(
    st.sampled_from(list("پرندهاستیروباهگکمیشنهای") + ["ها", "می", "ی", "ای", "ۀ", "ي", "ك", "ى", "ة", "أ", "ؤ",
                    "\u200b", ZWNJ, "\u200d", "\u00a0", "\u202f", " ", "\t", "\u064e", "\u0651", "\u0670", "ـ",
                    "۱", "١", "1", "،", ".", "!", "؟", ":", "«", "»", "(", "a"]),
    st.characters(min_codepoint=0xFB50, max_codepoint=0xFDFF),
    st.characters(min_codepoint=0xFE70, max_codepoint=0xFEFF),
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_IDEMPOTENCE_ALPHABET, max_size=30).map("".join))
def test_normalize_is_idempotent(normalizer, text):
    once = normalizer.normalize(text)
    assert normalizer.normalize(once) == once


@pytest.mark.parametrize("raw, expected", [
    ("ﺻﺒﺢ", "صبح"),  # positional forms
    ("ﷲ", "الله"),  # a ligature, its diacritics dropped
    ("پرنده\u200b.", "پرنده."),  # ZWSP is a space, and hazm's spacing then applies to it
    ("پرنده\u00a0است", "پرنده است"),
    ("ﻫﺎ", "ها"),
])
def test_normalize_presentation_forms_and_odd_spaces(normalizer, raw, expected):
    assert normalizer.normalize(raw) == expected


def test_tokenizer_offsets_and_zwnj_words():
    text = "پرنده‌ها، و روباه! 12"
    tokens = PersianTokenizer().spans(text)
    assert [t.text for t in tokens] == ["پرنده‌ها", "و", "روباه", "12"]
    for token in tokens:
        assert text[token.start:token.end] == token.text
    assert PersianTokenizer().tokenize(text) == [t.text for t in tokens]


def test_lemmatizer_and_verb_forms():
    lemmatizer = PersianLemmatizer()
    assert lemmatizer.lemmatize("می‌روم") == "رفت#رو"
    forms = verb_forms("کشت#کش")
    assert "کشتند" in forms and "می‌کشد" in forms
    with pytest.raises(ValueError, match="past#present"):
        verb_forms("کشتن")


def test_known_words_are_written_as_the_normaliser_writes_text(normalizer):
    words = normalizer.known_words(1, tagged=True)
    assert "اصلا" in words and normalizer.normalize("اصلاً") == "اصلا"
    assert not any(ZWNJ in w or "\u064b" in w for w in words)


def test_hazm_normaliser_from_the_disk_cache_is_hazms_own(tmp_path, monkeypatch):
    """The Normalizer built around the cached word and verb tables has hazm's own tables and
    normalises as hazm's own does; a damaged cache file only costs the ordinary build."""
    import hazm

    from intercept.text import _tables_file, hazm_normalizer

    monkeypatch.setenv("INTERCEPT_CACHE", str(tmp_path))
    monkeypatch.delenv("INTERCEPT_HAZM_CACHE", raising=False)
    path = _tables_file()
    assert path is not None and not path.exists()
    built = hazm_normalizer()  # the ordinary build, which writes the cache
    assert path.exists()
    cached = hazm_normalizer()
    plain = hazm.Normalizer()
    # hazm's own tables, read back packed (intercept.keytable): the Normalizer reads words and
    # frequencies, and asks only whether a verb form is one.
    assert dict(cached.words.items()) == plain.words and set(cached.verbs) == set(plain.verbs)
    assert built.words == plain.words
    texts = ["اِعلاممممم کَرد : « زمین لرزه ای به بُزرگیِ 6 دهم ریشتر ...»", "می روم به خانه ها",
             "کتاب ها را نمی خوانم", "شنبهها", "سلاممممم", "رفته است و نمی دانم"]
    assert [cached.normalize(t) for t in texts] == [plain.normalize(t) for t in texts]
    assert hazm.normalizer.WordTokenizer is hazm.WordTokenizer  # put back after the build
    path.write_bytes(b"not marshal")
    assert hazm_normalizer().words == plain.words  # built by hazm again
    # Tables of older versions are removed when new ones are written; the newest other one stays.
    for n in range(3):
        old = path.parent / f"normalizer-old{n}.marshal"
        old.write_bytes(b"tables of an older hazm")
        os.utime(old, (1_000_000 + n, 1_000_000 + n))
    path.unlink()
    hazm_normalizer()
    assert sorted(p.name for p in path.parent.glob("normalizer-*.marshal")) == sorted([path.name, "normalizer-old2.marshal"])


def test_the_word_tables_read_back_from_the_cache_are_the_ones_derived_from_hazm(tmp_path, monkeypatch):
    """known_words, word_frequencies and known_verb_forms answer the same read back packed from
    the disk cache as derived from the tables hazm builds (the sets they were before)."""
    import hazm

    from intercept.text import _DIACRITICS

    monkeypatch.setenv("INTERCEPT_CACHE", str(tmp_path))
    monkeypatch.delenv("INTERCEPT_HAZM_CACHE", raising=False)
    built = PersianNormalizer()  # hazm's own build, which writes the cache
    cached = PersianNormalizer()  # read back
    assert cached._tables is not built._tables and not isinstance(cached._tables.words, dict)
    plain = hazm.Normalizer()

    def key(word):
        return _DIACRITICS.sub("", word.replace(ZWNJ, ""))

    for min_frequency, tagged in ((1, False), (3, True), (3, False), (50, True)):
        expected = {key(w) for w, (frequency, tags) in plain.words.items()
                    if frequency >= min_frequency or (tagged and tags and tags != ("0",))}
        for normalizer in (built, cached):
            known = normalizer.known_words(min_frequency, tagged)
            assert set(known) == expected
            assert all(word in known for word in list(expected)[:2000])
            assert "زخپلش" not in known and "" not in known
    frequencies = {}
    for word, (frequency, _) in plain.words.items():
        frequencies[key(word)] = max(frequency, frequencies.get(key(word), 0))
    assert dict(cached.word_frequencies().items()) == dict(built.word_frequencies().items()) == frequencies
    verbs = {v.replace(ZWNJ, "") for v in plain.verbs}
    assert set(cached.known_verb_forms()) == set(built.known_verb_forms()) == verbs
    assert "رفتم" in cached.known_verb_forms() and "رفتمخ" not in cached.known_verb_forms()
