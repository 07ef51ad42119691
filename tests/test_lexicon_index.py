"""The matchers' indexes (intercept.lexicon.matching) give the lexicon's answers unchanged.

Each index is compared with what it replaced (rapidfuzz's extractOne over every fuzzy key, the
one English regex, the table of every pair of pattern partners), alone on random input and
inside whole lexicons (the default one, and a generated one of 1,500 forms, big enough for
the fuzzy index to be used) on the lines of tests/lexicon_cases.py, audio_samples/ and
generated lines with garbled forms."""
from __future__ import annotations

import copy
import json
import random
import sys
from pathlib import Path

import hazm
import pytest
from rapidfuzz import fuzz, process

from intercept.lexicon import Lexicon, MatchOptions, default_lexicon_path
from intercept.lexicon.matching import fuzzy as fuzzy_matching
from intercept.lexicon.matching.english import EnglishIndex, gloss_regex
from intercept.lexicon.matching.fuzzy import FuzzyIndex
from intercept.lexicon.matching.patterns import PartnerIndex
from intercept.text import PersianNormalizer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))

import bench_lexicon  # noqa: E402
import lexicon_cases  # noqa: E402

LETTERS = "ابپتسجچحخدرزژسشصطعغفقکگلمنوهی"


def _word(rng: random.Random, low: int = 2, high: int = 9) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(low, high)))


def test_fuzzy_index_gives_extract_ones_answer():
    rng = random.Random(3)
    keys = [_word(rng) for _ in range(2000)] + [_word(rng, 10, 16) for _ in range(300)]
    rng.shuffle(keys)  # the index sorts its columns by length; answers keep the keys' own order
    keys += keys[:50]  # duplicates: ties must go to the first, as extractOne gives them
    index = FuzzyIndex(keys)
    assert index._indexed
    checked = 0
    for _ in range(1500):
        query = rng.choice(keys) if rng.random() < 0.3 else _word(rng)
        if rng.random() < 0.5:  # garble a key: the matches the index must not lose
            base = rng.choice(keys)
            at = rng.randrange(len(base))
            query = base[:at] + rng.choice(LETTERS) + base[at + 1:]
        cutoff = rng.choice([0.0, 50.0, 70.0, 72.5, 85.0, 100.0])
        expected = process.extractOne(query, keys, scorer=fuzz.ratio, score_cutoff=cutoff)
        assert index.best(query, cutoff) == expected, (query, cutoff)
        assert index.best(query, cutoff) == expected  # remembered: the same answer
        checked += expected is not None
    assert checked > 500  # most queries found something: the comparison is not vacuous


def test_english_index_finds_what_the_regex_finds():
    rng = random.Random(5)
    glosses = sorted({" ".join(rng.choice(["fox", "bird", "red", "o'clock", "hide-out", "x", "zero", "hour"])
                               for _ in range(rng.randint(1, 3))) for _ in range(200)}, key=len, reverse=True)
    regex = gloss_regex(glosses)
    index = EnglishIndex(glosses, gloss_regex)
    vocabulary = ["fox", "Fox", "FOXES", "bird", "red", "o'clock", "hide-out", "x-fox", "zero", "hour", "and",
                  "the", "-", ",", "ſ", "\u212a", "  ", "\t"]
    for _ in range(3000):
        text = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 12)))
        assert [(m.start(), m.end(), m.group()) for m in index.finditer(text)] == \
               [(m.start(), m.end(), m.group()) for m in regex.finditer(text)], text
    # Read back from a pickle (the lexicon cache), it compiles its regexes again on first use.
    import pickle

    again = pickle.loads(pickle.dumps(index))
    assert again._regex is None and again._compiled == {}
    for text in ("red fox at zero hour", "\u212a x-fox"):
        assert [m.span() for m in again.finditer(text)] == [m.span() for m in regex.finditer(text)]


def _partner_table(concepts, patterns) -> dict[str, frozenset[str]]:
    """Every pair, as the lexicon computed it before the index (a concept-by-concept table)."""
    partners = {c.id: set() for c in concepts}
    for pattern in patterns:
        items = list(pattern.categories) + list(pattern.concepts)
        fits = {c.id: {n for n, item in enumerate(items) if item in (c.category, c.id)} for c in concepts}
        for a in concepts:
            for b in concepts:
                if a.id != b.id and fits[a.id] and fits[b.id] and (
                        pattern.type == "either" or any(x != y for x in fits[a.id] for y in fits[b.id])):
                    partners[a.id].add(b.id)
    return {k: frozenset(v) for k, v in partners.items()}


def test_partner_index_is_the_table_of_pairs():
    lexicon = Lexicon.load(default_lexicon_path())
    concepts = list(lexicon._concepts.values())
    for patterns in (lexicon._patterns, [p for p in lexicon._patterns if p.type == "either"]):
        table = _partner_table(concepts, patterns)
        index = PartnerIndex(concepts, patterns)
        for a in concepts:
            for b in concepts:
                assert (b.id in index[a.id]) == (b.id in table[a.id]), (a.id, b.id)
            assert index[a.id].isdisjoint({c.id for c in concepts} - table[a.id])
            assert index[a.id].isdisjoint(table[a.id]) == (not table[a.id])


@pytest.fixture(scope="module")
def normalizer():
    return PersianNormalizer()


@pytest.fixture(scope="module")
def big_lexicon(tmp_path_factory, normalizer):
    folder = bench_lexicon.generate_lexicon(1500, tmp_path_factory.mktemp("lexicon"))
    return Lexicon.load(folder, normalizer=normalizer)


def _lines(lexicon: Lexicon, normalizer: PersianNormalizer) -> list[tuple[str, str]]:
    raw = [case[0] for case in lexicon_cases.POSITIVES + lexicon_cases.NEGATIVES + lexicon_cases.PRIORS
           + lexicon_cases.ASR_NEGATIVES]
    lines = [(normalizer.normalize(text), "") for text in raw]
    manifest = json.loads((ROOT / "audio_samples" / "manifest.json").read_text(encoding="utf-8"))
    lines += [(normalizer.normalize(tx["text_fa"]), tx["text_en"])
              for record in manifest["recordings"].values() for tx in record["transmissions"]]
    generated = bench_lexicon.generate_lines(lexicon, bench_lexicon.CorpusOptions(lines=400, seed=7))
    english = [f"the term {n:05d}s and a fox" for n in range(0, 400, 7)]
    lines += [(text, english[n % len(english)]) for n, text in enumerate(generated)]
    return lines


def _unindexed(lexicon: Lexicon) -> Lexicon:
    """The same lexicon matching as before the indexes: extractOne over every key, the one regex,
    the table of every pair (on copies of its matchers: the compiled ones are shared)."""
    plain = lexicon.with_options(lexicon.options)
    fuzzy = plain._fuzzy = copy.copy(lexicon._fuzzy)
    fuzzy._index = FuzzyIndex.__new__(FuzzyIndex)
    fuzzy._index.keys, fuzzy._index._indexed = fuzzy.keys, False
    fuzzy._index._memo = {}
    english = plain._english = copy.copy(lexicon._english)
    whole = english.regex
    if whole is not None:
        english._index = EnglishIndex.__new__(EnglishIndex)
        english._index._regex, english._index._groups = whole, None
    fuzzy._partners = _partner_table(list(lexicon._concepts.values()), lexicon._patterns)
    fuzzy._either_partners = _partner_table(list(lexicon._concepts.values()),
                                            [p for p in lexicon._patterns if p.type == "either"])
    return plain


@pytest.mark.parametrize("which", ["default", "generated"])
def test_indexed_lexicon_flags_exactly_as_before(which, big_lexicon, normalizer):
    lexicon = Lexicon.load(default_lexicon_path(), normalizer=normalizer) if which == "default" else big_lexicon
    if which == "generated":
        assert lexicon._fuzzy._index._indexed and len(lexicon.terms) >= 1500
    lines = _lines(lexicon, normalizer)
    for options in (MatchOptions(), MatchOptions(fuzzy_threshold=0.75, fuzzy_context_margin=0.1)):
        indexed, plain = lexicon.with_options(options), _unindexed(lexicon.with_options(options))
        flagged = 0
        for fa, en in lines:
            got = indexed.match(fa, en)
            assert got == plain.match(fa, en), (fa, en)
            flagged += bool(got)
        assert flagged > len(lines) // 5
        assert any(f.kind == "fuzzy" for fa, en in lines for f in indexed.match(fa, en))
        assert any(f.kind == "english" for fa, en in lines for f in indexed.match(fa, en))


def test_the_quick_test_lets_through_every_line_that_holds_an_exact_or_morph_match(tmp_path, normalizer):
    """SurfaceMatcher.triggered_by skips tokenising lines with no one-word key and no first two
    words of a longer key side by side; it must never skip a line that find() flags."""
    from intercept.lexicon.matching import TokenizedLine
    from intercept.text import ZWNJ, PersianTokenizer

    lexicon = Lexicon.load(bench_lexicon.generate_sized_lexicon(600, tmp_path / "sized"), normalizer=normalizer)
    surfaces = lexicon._surfaces
    multi = sorted(k for k in surfaces._surfaces if " " in k)
    assert len(multi) > 1000 and any(k.count(" ") >= 2 for k in multi)  # place names, X را ...
    rng = random.Random(3)
    lines = [fa for fa, _ in _lines(lexicon, normalizer)]
    filler = [w for w, _, _ in sorted(hazm.words_list(), key=lambda w: -w[1])[:3000] if " " not in w]
    for n in range(600):  # a multi-word key, or its first words only, among common words
        key = rng.choice(multi).split(" ")
        piece = key if n % 2 else key[: rng.randrange(1, len(key))]
        words = [rng.choice(filler) for _ in range(rng.randint(2, 8))]
        at = rng.randrange(len(words) + 1)
        lines.append(" ".join(words[:at] + piece + words[at:]))
    let_through = skipped = first_word_only = 0
    for text in lines:
        line = TokenizedLine.of(text)
        found = surfaces.find(line, [False] * len(line.tokens))
        quick = PersianTokenizer._WORD.findall(text.replace(ZWNJ, ""))
        assert quick == line.keys
        if surfaces.triggered_by(quick):
            let_through += 1
        else:
            assert not found, text
            skipped += 1
            first_word_only += not surfaces._multi_first.isdisjoint(quick)
    assert let_through > 300 and skipped > 300 and first_word_only > 100  # the pair test is what skipped them
    # The compiled cache's packed form gives back the same tables, with the surfaces still shared.
    import pickle

    back = pickle.loads(pickle.dumps(surfaces, protocol=pickle.HIGHEST_PROTOCOL))
    # Packed, it answers every key (and no other) as the dict did, before the dict is built back.
    table, original = back._surfaces, surfaces._surfaces.to_dict()
    assert len(table) == len(original) and table._dict is None
    for key in rng.sample(sorted(original), 2000):
        assert table.get(key) == original[key] and key in table and table[key] == original[key]
    for text in lines[:300]:
        for word in PersianTokenizer._WORD.findall(text.replace(ZWNJ, "")):
            assert table.get(word) == original.get(word) and (word in back._multi_pairs) == (word in surfaces._multi_pairs)
    assert table.get("no such key") is None and "no such key" not in table and table._dict is None
    assert [back.triggered_by(PersianTokenizer._WORD.findall(t.replace(ZWNJ, ""))) for t in lines] == \
        [surfaces.triggered_by(PersianTokenizer._WORD.findall(t.replace(ZWNJ, ""))) for t in lines]
    for key in list(original)[: table._build_after + 1]:  # many look-ups: the dict is built, same answers
        assert table.get(key) == original[key]
    assert table._dict is not None and table.lookup() is table._dict
    assert back._surfaces.to_dict() == original and back._multi_pairs.to_dict() == surfaces._multi_pairs.to_dict()
    assert back._multi_first == surfaces._multi_first and back._max_words == surfaces._max_words
    assert len({id(v) for v in back._surfaces.to_dict().values()}) == len({id(v) for v in original.values()}) < 2000


def test_the_fuzzy_index_is_used_only_where_it_pays(monkeypatch):
    assert not FuzzyIndex(["پرنده"] * (fuzzy_matching._INDEX_FROM - 1))._indexed
    assert FuzzyIndex(["پرنده"] * fuzzy_matching._INDEX_FROM)._indexed


def test_a_compiled_lexicon_is_read_back_from_the_cache_and_recompiled_when_edited(tmp_path, monkeypatch, normalizer):
    import shutil

    from intercept import lexicon as lexicon_module

    monkeypatch.setenv("INTERCEPT_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "lexicon"
    shutil.copytree(default_lexicon_path(), folder)
    first = Lexicon.load(folder, normalizer=normalizer)
    assert len(list((tmp_path / "cache" / "lexicons").glob("*.pickle"))) == 1
    compiled = []
    real_init = lexicon_module.Lexicon.__init__

    def counting(self, *args, **kwargs):
        compiled.append(True)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(lexicon_module.Lexicon, "__init__", counting)
    options = MatchOptions(fuzzy_threshold=0.75)
    again = Lexicon.load(folder, normalizer=normalizer, options=options)
    assert not compiled and again.options == options and again.version == first.version
    # One table of known words, shared by the matchers as after a compile, with the caller's normaliser.
    assert again._fuzzy._words is again._words and again._words.normalizer is normalizer
    lines = _lines(first, normalizer)[:300]
    assert [again.match(fa, en) for fa, en in lines] == [first.with_options(options).match(fa, en) for fa, en in lines]
    assert again.terms == first.terms
    # An edit is new bytes: compiled again, and the edit is seen.
    path = folder / "default.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("fa: [گرگ]", "fa: [گرگ, گرگینه]"), encoding="utf-8")
    edited = Lexicon.load(folder, normalizer=normalizer)
    assert compiled and [f.concept for f in edited.match("گرگینه آمد")] == ["wolf"]
    # A torn cache file costs a compile, never the load.
    for pickled in (tmp_path / "cache" / "lexicons").glob("*.pickle"):
        pickled.write_bytes(b"torn")
    compiled.clear()
    assert Lexicon.load(folder, normalizer=normalizer).version == edited.version and compiled
    # A file of another format (its head), or a sound pickle of something else under the same
    # name, is compiled again and written over, never trusted.
    import pickle

    from intercept.lexicon import cache

    written = tmp_path / "cache" / "lexicons" / f"{cache.cache_key(lexicon_module.LexiconReader.files(folder))}.pickle"
    body = written.read_bytes()[len(cache._HEAD):]
    for stale in (b"intercept-lexicon-cache 1\n" + body, cache._HEAD + pickle.dumps({"not": "a lexicon"}),
                  cache._HEAD + body[: len(body) // 2]):
        written.write_bytes(stale)
        compiled.clear()
        reloaded = Lexicon.load(folder, normalizer=normalizer)
        assert compiled and [f.concept for f in reloaded.match("گرگینه آمد")] == ["wolf"]
        assert written.read_bytes().startswith(cache._HEAD) and written.read_bytes() != stale
    compiled.clear()
    assert Lexicon.load(folder, normalizer=normalizer).version == edited.version and not compiled
