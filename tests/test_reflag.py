"""Tests for intercept.reflag: re-flagging a real store after a lexicon edit."""
from __future__ import annotations

import textwrap

import pytest

from intercept.lexicon import Lexicon, default_lexicon_path
from intercept.reflag import reflag
from intercept.store import CREATE, RecordingFacts, Store
from intercept.text import PersianNormalizer
from intercept.types import Line, Transmission

OLD_LEXICON = """\
concepts:
  - id: bird
    category: animal
    fa: [پرنده]
"""


@pytest.fixture(scope="module")
def normalizer() -> PersianNormalizer:
    return PersianNormalizer()


@pytest.fixture(scope="module")
def lexicon(normalizer) -> Lexicon:
    return Lexicon.load(default_lexicon_path(), normalizer=normalizer)


@pytest.fixture
def old_lexicon(tmp_path, normalizer) -> Lexicon:
    path = tmp_path / "old.yaml"
    path.write_text(textwrap.dedent(OLD_LEXICON), encoding="utf-8")
    return Lexicon.load(path, normalizer=normalizer)


def _save(store, normalizer, lexicon, path, sha, texts):
    """texts: (transmission idx, raw text) per line; flags by `lexicon`, as a first run stores them."""
    transmissions = [Transmission(idx, idx * 10.0, idx * 10.0 + 5.0) for idx in sorted({t for t, _ in texts})]
    lines = [Line(start=tx * 10.0 + n * 0.1, end=tx * 10.0 + 4.0, text=raw, transmission_idx=tx,
                  text_fa=normalizer.normalize(raw)) for n, (tx, raw) in enumerate(texts)]
    return store.save_recording(
        RecordingFacts(path=path, sha256=sha), transmissions, lines, lexicon.flag_lines(lines),
        run_id=None, engine="faster-whisper", model="base", translator="none", lexicon_version=lexicon.version)


@pytest.fixture
def store(tmp_path, normalizer, old_lexicon):
    with Store(tmp_path / "traffic.db", CREATE) as store:
        store.save_lexicon_terms(old_lexicon.version, old_lexicon.terms)
        _save(store, normalizer, old_lexicon, "/r/one.wav", "1" * 64,
              [(0, "امشب برویم ببینیم پرنده است یا روباه"), (1, "گرگ آنجاست"), (2, "فردا شب می‌آییم"),
               (5, "سلام حال شما چطور است")])
        _save(store, normalizer, old_lexicon, "/r/two.wav", "2" * 64, [(0, "نارنجک‌ها را بردند"), (0, "پرنده آمد")])
        yield store


def _flags(store, path):
    return store.rows("SELECT flags.* FROM flags JOIN lines ON lines.id = flags.line_id "
                      "JOIN recordings ON recordings.id = lines.recording_id WHERE recordings.path = ? "
                      "ORDER BY lines.idx, flags.span_start, flags.concept", [path])


def test_reflag_replaces_flags_with_the_new_lexicon_and_records_its_version(store, lexicon, old_lexicon, normalizer):
    assert {f["concept"] for f in _flags(store, "/r/one.wav")} == {"bird"}
    result = reflag(store, lexicon, normalizer=normalizer)
    assert result.lexicon_version == lexicon.version != old_lexicon.version
    assert (result.recordings, result.lines) == (2, 6)
    assert result.flags_before == 2 and result.flags_after == store.count("flags") > result.flags_before
    assert result.renormalised_lines == 0
    one = _flags(store, "/r/one.wav")
    assert {f["lexicon_version"] for f in one} == {lexicon.version}
    assert {"bird", "fox", "tonight", "animal_or_animal", "wolf"} <= {f["concept"] for f in one}
    # the line about a wolf (transmission 1) and the one about tomorrow night (transmission 2) are
    # neighbours: the co-occurrence pattern needs the recording's lines flagged together
    wolf_line = [f for f in one if f["concept"] == "animal_with_time" and f["matched"] == "گرگ"]
    assert wolf_line, one
    # the lexicon's terms are saved under the new version, the old version's terms stay
    versions = {row["lexicon_version"] for row in store.rows("SELECT DISTINCT lexicon_version FROM lexicon_terms")}
    assert versions == {lexicon.version, old_lexicon.version}
    assert store.count("lexicon_terms", "lexicon_version = ?", [lexicon.version]) == len(lexicon.terms)
    # spans still index the stored text
    for row in store.iter_lines():
        for flag in row["flags"]:
            assert row["text_fa"][flag["span_start"]:flag["span_end"]] == flag["matched"]


def test_reflag_keeps_verdicts_and_is_repeatable(store, lexicon, normalizer):
    line_id = store.rows("SELECT id FROM lines WHERE text_fa LIKE 'امشب%'")[0]["id"]
    store.add_verdict(line_id, "confirmed", "analyst1", note="the source's question")
    verdicts_before = store.rows("SELECT * FROM verdicts")
    first = reflag(store, lexicon)
    snapshot = store.rows("SELECT line_id, concept, kind, score, span_start, span_end FROM flags ORDER BY 1, 2, 3, 5")
    second = reflag(store, lexicon)
    assert store.rows("SELECT * FROM verdicts") == verdicts_before
    assert second.flags_before == second.flags_after == first.flags_after
    assert store.rows("SELECT line_id, concept, kind, score, span_start, span_end FROM flags ORDER BY 1, 2, 3, 5") \
        == snapshot
    # The verdict was on the old lexicon's one flag (bird): it stays confirmed; the new
    # lexicon's other concepts on the line await review, so the line is back in the queue.
    flagged = store.rows("SELECT verdict, confirmed FROM flagged_lines WHERE line_id = ?", [line_id])
    assert flagged == [{"verdict": None, "confirmed": 1}]
    outcomes = {row["concept"]: row["outcome"] for row in
                store.rows("SELECT concept, outcome FROM concept_outcomes WHERE line_id = ?", [line_id])}
    assert outcomes["bird"] == "confirmed" and outcomes["fox"] is None


def test_reflag_one_recording_leaves_the_others_alone(store, lexicon):
    two = store.rows("SELECT id FROM recordings WHERE path = '/r/two.wav'")[0]["id"]
    before_one = _flags(store, "/r/one.wav")
    result = reflag(store, lexicon, recording_id=two)
    assert (result.recordings, result.lines) == (1, 2)
    assert _flags(store, "/r/one.wav") == before_one
    two_flags = _flags(store, "/r/two.wav")
    assert {"grenade", "bird", "animal_with_weapon"} <= {f["concept"] for f in two_flags}
    assert result.by_kind["pattern"] >= 1


def test_reflag_drops_flags_a_narrower_lexicon_no_longer_finds(store, lexicon, old_lexicon):
    reflag(store, lexicon)
    result = reflag(store, old_lexicon)
    assert {f["concept"] for f in _flags(store, "/r/one.wav")} == {"bird"}
    assert result.flags_after == 2 < result.flags_before


def test_reflag_normalises_stale_text_again_and_flags_the_new_text(tmp_path, lexicon, normalizer):
    with Store(tmp_path / "raw.db", CREATE) as store:
        line = Line(start=0.0, end=1.0, text="پرنده ها", text_fa="پرنده ها")  # stored un-normalised
        store.save_recording(RecordingFacts(path="/r/raw.wav"), [Transmission(0, 0.0, 1.0)], [line], [[]],
                             run_id=None, engine="e", model="m", translator="none", lexicon_version="v0")
        result = reflag(store, lexicon, normalizer=normalizer)
        assert result.renormalised_lines == 1
        text_fa = store.rows("SELECT text_fa FROM lines")[0]["text_fa"]
        assert text_fa == normalizer.normalize("پرنده ها") != "پرنده ها"
        flags = store.rows("SELECT concept, matched, span_start, span_end FROM flags")
        assert any(f["concept"] == "bird" and text_fa[f["span_start"]:f["span_end"]] == f["matched"] for f in flags)


def test_reflag_derives_suspect_marks_again_from_the_normalised_text(tmp_path, lexicon, normalizer):
    """A hallucinated phrase written with Arabic ي is caught like the Persian spelling, and a
    stale suspect mark goes when its reason no longer holds."""
    with Store(tmp_path / "s.db", CREATE) as store:
        arabic = Line(start=0.0, end=1.0, text="زيرنويس", text_fa="زيرنويس")
        stale = Line(start=1.0, end=2.0, text="سلام", text_fa="سلام", suspect="translation loop ('hi' repeated)")
        store.save_recording(RecordingFacts(path="/r/h.wav"), [Transmission(0, 0.0, 2.0)], [arabic, stale], [[], []],
                             run_id=None, engine="e", model="m", translator="none", lexicon_version="v0")
        result = reflag(store, lexicon, normalizer=normalizer)
        marks = [row["suspect"] for row in store.rows("SELECT suspect FROM lines ORDER BY idx")]
        assert "hallucinated" in marks[0] and marks[1] is None
        assert result.suspect_changed == 2
