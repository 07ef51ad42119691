"""One post-recognition step for run, translate and flag: a new text re-derives everything
that depends on it (English flags, suspect marks), never leaving the old ones behind."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from intercept.cli import cli
from intercept.derive import PostRecognition
from intercept.lexicon import Lexicon, default_lexicon_path
from intercept.store import CREATE, READ, RecordingFacts, Store
from intercept.text import PersianNormalizer
from intercept.retranslate import retranslate
from intercept.types import Line, Transmission


class ScriptedTranslator:
    """English given per Farsi text: the translation step without a model."""

    name = "scripted"
    needs_audio = False

    def __init__(self, english: dict[str, str], model: str = "script-1"):
        self.english = english
        self.model = model

    def translate(self, lines, samples=None, sample_rate=16000):
        for line in lines:
            line.text_en = self.english.get(line.text_fa, "")


@pytest.fixture(scope="module")
def normalizer():
    return PersianNormalizer()


@pytest.fixture(scope="module")
def lexicon(normalizer):
    return Lexicon.load(default_lexicon_path(), normalizer=normalizer)


LOOP = "the one who is the one who is the one who is the one who is the one"


def _store_after_a_run(path, normalizer, lexicon):
    """A store as `run` leaves it, through the same post-recognition step."""
    post = PostRecognition(normalizer, lexicon, ScriptedTranslator({"سلام": "the fox is a bird", "خداحافظ": LOOP}))
    lines = [Line(0.0, 1.0, "سلام", transmission_idx=0), Line(2.0, 3.0, "خداحافظ", transmission_idx=1)]
    flags = post.derive(lines)
    with Store(path, CREATE) as store:
        store.save_recording(RecordingFacts(path="/r/a.wav", sha256="a" * 64),
                             [Transmission(0, 0.0, 1.5), Transmission(1, 1.5, 3.0)], lines, flags,
                             run_id=None, engine="e", model="m", translator="scripted",
                             lexicon_version=lexicon.version)
        line_ids = [row["id"] for row in store.iter_lines()]
        store.add_verdict(line_ids[0], "confirmed", "maryam")
    return line_ids


def _english_flags(store):
    return store.rows("SELECT line_id, concept, matched, span_start, span_end FROM flags WHERE kind = 'english' "
                      "ORDER BY line_id, span_start")


def test_retranslation_re_derives_english_flags_and_suspect_marks(tmp_path, normalizer, lexicon):
    db = tmp_path / "s.db"
    first, second = _store_after_a_run(db, normalizer, lexicon)
    with Store(db, READ) as store:
        assert {f["concept"] for f in _english_flags(store)} == {"fox", "bird"}
        marks = [row["suspect"] for row in store.iter_lines()]
        assert marks[0] is None and "translation loop" in marks[1]
    new = ScriptedTranslator({"سلام": "hello, a bird", "خداحافظ": "goodbye"}, model="script-2")
    with Store(db, "write") as store:
        assert retranslate(store, new, lexicon=lexicon, normalizer=normalizer) == 2
        rows = list(store.iter_lines())
        assert [r["text_en"] for r in rows] == ["hello, a bird", "goodbye"]
        assert [r["suspect"] for r in rows] == [None, None]  # the loop went with its English
        english = _english_flags(store)
        assert [(f["line_id"], f["concept"]) for f in english] == [(first, "bird")]
        # Every English flag's span indexes the English now stored.
        assert all(rows[0]["text_en"][f["span_start"]:f["span_end"]] == f["matched"] for f in english)
        assert {(r["translator"], r["translator_model"]) for r in rows} == {("scripted", "script-2")}
        # The verdict on all of the line's flags is one row per concept (fox and bird), kept.
        assert store.rows("SELECT concept, verdict FROM verdicts ORDER BY concept") == [
            {"concept": "bird", "verdict": "confirmed"}, {"concept": "fox", "verdict": "confirmed"}]
        assert store.check_integrity() == []


def test_flag_command_keeps_the_english_and_derives_flags_and_marks(tmp_path, normalizer, lexicon):
    db = tmp_path / "s.db"
    _store_after_a_run(db, normalizer, lexicon)
    with Store(db, "write") as store:  # a mark made by an older guard, no longer justified
        store.db.execute("UPDATE lines SET suspect = 'old reason' WHERE idx = 0")
        store.db.conn.commit()
    result = CliRunner().invoke(cli, ["flag", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "1 lines' suspect marks changed" in result.output
    with Store(db, READ) as store:
        rows = list(store.iter_lines())
        assert rows[0]["text_en"] == "the fox is a bird" and rows[0]["suspect"] is None
        assert "translation loop" in rows[1]["suspect"]
        assert {f["concept"] for f in _english_flags(store)} == {"fox", "bird"}


def test_translate_command_with_no_translator_clears_english_and_its_flags(tmp_path, normalizer, lexicon):
    db = tmp_path / "s.db"
    _store_after_a_run(db, normalizer, lexicon)
    result = CliRunner().invoke(cli, ["translate", "--db", str(db), "--translator", "none"])
    assert result.exit_code == 0, result.output
    with Store(db, READ) as store:
        rows = list(store.iter_lines())
        assert [r["text_en"] for r in rows] == [None, None]
        assert [r["suspect"] for r in rows] == [None, None]
        assert _english_flags(store) == []
