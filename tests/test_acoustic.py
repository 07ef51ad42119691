"""Tests for intercept.acoustic: fuzzy matches checked against the audio by the recogniser.

The engine here is scripted: it "heard" one transcript per time span and scores a text by how
far it is from what it heard (two nats a letter), as a recogniser scores a text it did not
expect, one token a letter. The real engines' score_texts are tested in test_engines.py."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from intercept.acoustic import AcousticCheck, AcousticOptions, EngineMargins, StoredMargins
from intercept.derive import PostRecognition
from intercept.lexicon import Lexicon
from intercept.reflag import reflag
from intercept.store import CREATE, RecordingFacts, Store
from intercept.text import PersianNormalizer
from intercept.types import Hypothesis, Line, Transmission

LEXICON = """\
concepts:
  - id: bird
    category: animal
    fa: [پرنده]
  - id: depot
    category: place
    fa: [انبار]
"""
RATE = 16000


class HearingEngine:
    """Scores texts against the transcript it heard in the span asked about."""

    name = "hearing"

    def __init__(self, heard: dict[tuple[float, float], str]):
        self.heard = heard
        self.calls: list[list[str]] = []

    def score_texts(self, samples, start, end, texts, sample_rate=RATE):
        self.calls.append(list(texts))
        truth = next(text for (a, b), text in self.heard.items() if start <= a and b <= end)
        return [Hypothesis(text, (-2.0 * Levenshtein.distance(text, truth) - 10.0) / len(text), len(text))
                if text else None for text in texts]


@pytest.fixture(scope="module")
def normalizer():
    return PersianNormalizer()


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory, normalizer):
    path = tmp_path_factory.mktemp("lexicon") / "test.yaml"
    path.write_text(textwrap.dedent(LEXICON), encoding="utf-8")
    return Lexicon.load(path, normalizer=normalizer)


def _lines(normalizer, texts):
    lines = [Line(start=n * 5.0 + 0.5, end=n * 5.0 + 4.0, text=text, transmission_idx=n) for n, text in enumerate(texts)]
    for line in lines:
        line.text_fa = normalizer.normalize(line.text)
    return lines


def _by_concept(flags):
    return {f.concept: f for f in flags}


def test_a_fuzzy_match_the_audio_supports_gets_a_small_margin_and_one_it_does_not_a_large_one(lexicon, normalizer):
    # Both lines are written "پرندع"; on the first the speaker said پرنده, on the second پرچم.
    lines = _lines(normalizer, ["امشب پرندع را دیدم", "امشب پرندع را دیدم"])
    engine = HearingEngine({(0.5, 4.0): "امشب پرنده را دیدم", (5.5, 9.0): "امشب پرچم را دیدم"})
    samples = np.zeros(10 * RATE, np.float32)
    per_line = AcousticCheck(lexicon).check(lines, lexicon.flag_lines(lines), EngineMargins(engine, samples))
    heard, not_heard = _by_concept(per_line[0])["bird"], _by_concept(per_line[1])["bird"]
    assert heard.kind == not_heard.kind == "fuzzy"
    # پرنده is one letter from what was heard where پرندع is two letters off: +2 nats;
    # on the second line پرنده is as far from پرچم as پرندع is: 0 nats.
    assert heard.acoustic_margin == pytest.approx(2.0)
    assert not_heard.acoustic_margin == pytest.approx(0.0)
    # One call per line: the written line, then the line with the form in place.
    assert engine.calls[0] == ["امشب پرندع را دیدم", "امشب پرنده را دیدم"]


def test_a_shorter_form_gains_nothing_from_being_shorter(lexicon, normalizer):
    """Replacing three garbled letters with a two-letter-shorter form must not look better only
    because fewer tokens are left to pay for: lengths are compared at the line's own mean."""
    lines = _lines(normalizer, ["امشب پرندعععع را دیدم"])
    engine = HearingEngine({(0.5, 4.0): "امشب سرو را دیدم"})
    flags = AcousticCheck(lexicon, AcousticOptions(loose_threshold=0.5, keep_margin=-100)).check(
        lines, lexicon.flag_lines(lines), EngineMargins(engine, np.zeros(5 * RATE, np.float32)))
    written, substituted = engine.calls[0]
    base = -2.0 * Levenshtein.distance(written, "امشب سرو را دیدم") - 10.0
    raw = -2.0 * Levenshtein.distance(substituted, "امشب سرو را دیدم") - 10.0 - base
    assert raw > 0  # shorter, so closer to what was heard: the raw difference would favour it
    expected = (-2.0 * Levenshtein.distance(substituted, "امشب سرو را دیدم") - 10.0) - len(substituted) * base / len(written)
    margin = next(f.acoustic_margin for f in flags[0] if f.concept == "bird")
    assert margin == pytest.approx(expected, abs=1e-3) and margin < raw


def test_exact_matches_hold_the_form_so_their_margin_is_zero_without_asking_the_engine(lexicon, normalizer):
    lines = _lines(normalizer, ["امشب پرنده را دیدم"])
    engine = HearingEngine({(0.5, 4.0): "امشب پرنده را دیدم"})
    per_line = AcousticCheck(lexicon).check(lines, lexicon.flag_lines(lines),
                                            EngineMargins(engine, np.zeros(5 * RATE, np.float32)))
    assert [(f.kind, f.acoustic_margin) for f in per_line[0]] == [("exact", 0.0)]
    assert engine.calls == []


def test_a_loose_match_becomes_a_flag_only_when_the_audio_supports_it(lexicon, normalizer):
    # "امبال" is too far from انبار for the lexicon alone (similarity 0.6). Loose matching is off
    # by default: nothing to check.
    assert AcousticCheck(lexicon).check(_lines(normalizer, ["در امبال بود"]), [[]], None) == [[]]
    lines = _lines(normalizer, ["در امبال بود", "در امبال بود"])
    assert lexicon.flag_lines(lines) == [[], []]
    engine = HearingEngine({(0.5, 4.0): "در انبار بود", (5.5, 9.0): "در اقبال بود"})
    check = AcousticCheck(lexicon, AcousticOptions(loose_threshold=0.5, keep_margin=-1.0))
    per_line = check.check(lines, lexicon.flag_lines(lines), EngineMargins(engine, np.zeros(10 * RATE, np.float32)))
    kept = per_line[0]
    assert [(f.concept, f.kind, f.term) for f in kept] == [("depot", "fuzzy", "انبار")]
    assert kept[0].acoustic_margin == pytest.approx(4.0)  # two letters closer to what was said
    assert per_line[1] == []  # "اقبال" was said: انبار fits no better than امبال (-4 nats)


def test_without_audio_or_engine_nothing_is_checked_and_no_margin_is_made_up(lexicon, normalizer):
    lines = _lines(normalizer, ["امشب پرندع را دیدم", "در امبال بود"])
    post = PostRecognition(normalizer, lexicon, acoustic=AcousticCheck(lexicon))
    per_line = post.derive(lines)
    assert [f.concept for f in per_line[0]] == ["bird"] and per_line[1] == []
    assert per_line[0][0].acoustic_margin is None
    assert per_line[0][0].score is not None  # scored with the check unknown


def test_stored_margins_are_reused_for_the_same_text_and_unknown_for_a_changed_one(lexicon, normalizer):
    lines = _lines(normalizer, ["امشب پرندع را دیدم"])
    flag = lexicon.flag_lines(lines)[0][0]
    stored = [[{"concept": "bird", "term": flag.term, "span_start": flag.span_start, "span_end": flag.span_end,
                "acoustic_margin": -3.5}]]
    same = StoredMargins(stored, [lines[0].text_fa])
    assert same.margins(0, lines[0], lines[0].text_fa, [flag]) == [-3.5]
    changed = StoredMargins(stored, ["امشب پرندع را ندیدم"])
    assert changed.margins(0, lines[0], lines[0].text_fa, [flag]) == [None]


def test_the_pipeline_step_scores_a_supported_match_above_an_unsupported_one(lexicon, normalizer):
    """The shipped scorer weighs the margin: the same written match scores higher where the
    audio supports the form (margin near 0) than where it does not (margin far below)."""
    from intercept.scoring import default_scorer

    if default_scorer().to_dict()["weights"]["acoustic_margin"] <= 0:
        pytest.fail("the shipped scorer gives the acoustic margin no weight")
    lines = _lines(normalizer, ["امشب پرندع را دیدم", "امشب پرندع را دیدم"])
    # On the second line the recogniser wrote exactly what it heard: the form is a letter off it.
    engine = HearingEngine({(0.5, 4.0): "امشب پرنده را دیدم", (5.5, 9.0): "امشب پرندع را دیدم"})
    post = PostRecognition(normalizer, lexicon, engine=engine, acoustic=AcousticCheck(lexicon))
    per_line = post.derive(lines, np.zeros(10 * RATE, np.float32))
    supported, unsupported = per_line[0][0], per_line[1][0]
    assert supported.acoustic_margin > unsupported.acoustic_margin
    assert supported.score > unsupported.score


def test_reflag_keeps_stored_margins_and_checked_loose_flags(tmp_path, lexicon, normalizer):
    """intercept flag has no recogniser: a flag on an unchanged line keeps the margin stored with
    it, a loose flag that was checked before is found again, nothing is made up."""
    lines = _lines(normalizer, ["امشب پرندع را دیدم", "در امبال بود"])
    engine = HearingEngine({(0.5, 4.0): "امشب پرنده را دیدم", (5.5, 9.0): "در انبار بود"})
    loose = AcousticCheck(lexicon, AcousticOptions(loose_threshold=0.5))
    post = PostRecognition(normalizer, lexicon, engine=engine, acoustic=loose)
    per_line = post.derive(lines, np.zeros(10 * RATE, np.float32))
    assert [f.concept for f in per_line[1]] == ["depot"]  # loose, kept: margin +4
    with Store(tmp_path / "t.db", CREATE) as store:
        store.save_recording(RecordingFacts(path="/r/a.wav", sha256="a" * 64),
                             [Transmission(0, 0.0, 5.0), Transmission(1, 5.0, 10.0)], lines, per_line,
                             run_id=None, engine="hearing", model="x", translator="none",
                             lexicon_version=lexicon.version)
        before = store.rows("SELECT concept, kind, acoustic_margin, score FROM flags ORDER BY concept")
        result = reflag(store, lexicon, normalizer, acoustic_loose=0.5)
        after = store.rows("SELECT concept, kind, acoustic_margin, score FROM flags ORDER BY concept")
        reflag(store, lexicon, normalizer)  # loose matching off: only the lexicon's own fuzzy match stays
        strict = store.rows("SELECT concept, acoustic_margin FROM flags ORDER BY concept")
    assert [(r["concept"], r["kind"], r["acoustic_margin"]) for r in after] == \
        [(r["concept"], r["kind"], r["acoustic_margin"]) for r in before] == \
        [("bird", "fuzzy", 2.0), ("depot", "fuzzy", 4.0)]
    assert [r["score"] for r in after] == pytest.approx([r["score"] for r in before])
    assert result.fuzzy_unchecked == 0
    assert [(r["concept"], r["acoustic_margin"]) for r in strict] == [("bird", 2.0)]
