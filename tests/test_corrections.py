"""Reviewers' corrections (intercept.corrections, intercept/store/revisions.py, intercept correct):
kept as revisions, the recogniser's text untouched, the line derived again with reviewer
provenance, the old flags superseded but kept, the English policy, search, exports, bundles,
re-flagging and re-translating after a correction, and nothing else in the store changed."""
from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import zipfile

import pytest
import sqlite_utils
from click.testing import CliRunner

from test_bundle import store  # noqa: F401 (a fixture: a store with real audio)

from intercept.bundle import MANIFEST, BundleOptions, verify_bundle, write_bundle
from intercept.cli import cli
from intercept.corrections import CorrectionConflict, Corrector
from intercept.export import ExportOptions, export_text
from intercept.lexicon import Lexicon, default_lexicon_path
from intercept.reflag import reflag
from intercept.reliability import english_reliability
from intercept.store import CREATE, MIGRATIONS, READ, WRITE, RecordingFacts, Store
from intercept.store import revisions
from intercept.text import PersianNormalizer
from intercept.types import Hypothesis, Line, Transmission, Word

FOX_LINE = "سلام حال شما چطور است"  # the recogniser's text of line 3: no coded word
CORRECTED = "امشب روباه می‌آید"  # what was said: "the fox comes tonight"


@pytest.fixture(scope="module")
def normalizer() -> PersianNormalizer:
    return PersianNormalizer()


@pytest.fixture(scope="module")
def lexicon(normalizer) -> Lexicon:
    return Lexicon.load(default_lexicon_path(), normalizer=normalizer)


@pytest.fixture(scope="module")
def corrector(lexicon, normalizer) -> Corrector:
    return Corrector.build(lexicon, normalizer)


class FakeTextTranslator:
    """A text translator (as transformers MT) that says what it translated."""

    name = "transformers"
    model = "fake-mt@1"
    needs_audio = False

    def __init__(self):
        self.seen = []

    def translate(self, lines, samples=None, sample_rate=16000):
        for line in lines:
            self.seen.append(line.text_fa)
            line.text_en = "MT: the fox comes tonight" if "روباه" in line.text_fa else "MT: " + line.text_fa


def _line(normalizer, tx, raw, english, probability=0.3):
    return Line(start=tx * 10.0, end=tx * 10.0 + 4.0, text=raw, transmission_idx=tx, text_fa=normalizer.normalize(raw),
                text_en=english, confidence=probability, avg_logprob=-0.9,
                words=[Word(w, tx * 10.0, tx * 10.0 + 1.0, probability) for w in raw.split()],
                alternatives=[Hypothesis(raw, -0.9, len(raw.split())), Hypothesis(raw + " پرنده", -1.2, 6)])


@pytest.fixture
def store_path(tmp_path, normalizer, lexicon):
    path = tmp_path / "traffic.db"
    with Store(path, CREATE) as store:
        store.save_lexicon_terms(lexicon.version, lexicon.terms)
        for name, sha, texts in [
            ("/r/one.wav", "1" * 64, [(0, "امشب برویم ببینیم پرنده است یا روباه", "tonight bird or fox"),
                                      (1, "گرگ آنجاست", "the wolf is there"),
                                      (2, FOX_LINE, "hello how are you")]),
            ("/r/two.wav", "2" * 64, [(0, "پرنده آمد", "the bird came")]),
        ]:
            transmissions = [Transmission(t, t * 10.0, t * 10.0 + 5.0) for t, _, _ in texts]
            lines = [_line(normalizer, t, raw, en) for t, raw, en in texts]
            store.save_recording(RecordingFacts(path=name, sha256=sha), transmissions, lines, lexicon.flag_lines(lines),
                                 run_id=None, engine="faster-whisper", model="base", translator="whisper",
                                 lexicon_version=lexicon.version)
        store.add_verdict(1, "confirmed", "maryam")
    return path


def _line_id(store, text_fa_raw):
    return store.rows("SELECT id FROM lines WHERE text_fa_raw = ?", [text_fa_raw])[0]["id"]


def _flags(store, line_id, where="1=1"):
    return store.rows(f"SELECT * FROM flags WHERE line_id = ? AND {where} ORDER BY id", [line_id])


def test_a_correction_is_a_revision_and_the_recognisers_text_stays(store_path, corrector):
    with Store(store_path, WRITE) as store:
        line_id = _line_id(store, FOX_LINE)
        before = store.rows("SELECT * FROM lines WHERE id = ?", [line_id])[0]
        first = corrector.correct_line(store, line_id, CORRECTED, reviewer="maryam", note="heard it twice")
        second = corrector.correct_line(store, line_id, "امشب گرگ می‌آید", "The wolf comes tonight", reviewer="ali")
        line = store.rows("SELECT * FROM lines WHERE id = ?", [line_id])[0]
        history = revisions.revisions_of(store.db, line_id)
    assert [(r["id"], r["replaces"], r["reviewer"]) for r in history] == [(first.revision_id, None, "maryam"),
                                                                          (second.revision_id, first.revision_id, "ali")]
    assert history[0]["text_fa"] == CORRECTED and history[0]["text_en"] is None and history[0]["note"] == "heard it twice"
    assert history[1]["text_en"] == "The wolf comes tonight"
    # the recogniser's text as it was; the machine's normalised Farsi and English kept beside the current text
    assert line["text_fa_raw"] == before["text_fa_raw"] == FOX_LINE
    assert (line["text_fa_machine"], line["text_en_machine"]) == (before["text_fa"], before["text_en"])
    assert line["text_fa"] == "امشب گرگ می\u200cآید" and line["text_en"] == "The wolf comes tonight"
    assert (line["revision_id"], line["text_en_from"]) == (second.revision_id, "reviewer")
    # the recogniser's evidence is not rewritten either
    for column in ("words", "alternatives", "confidence", "avg_logprob", "engine", "model", "start_s", "end_s"):
        assert line[column] == before[column], column


def test_flags_are_derived_from_the_reviewers_text_with_their_own_provenance(store_path, corrector):
    with Store(store_path, WRITE) as store:
        line_id = _line_id(store, FOX_LINE)
        assert not _flags(store, line_id)  # the recogniser's text held no coded word
        result = corrector.correct_line(store, line_id, CORRECTED, reviewer="maryam")
        flags = _flags(store, line_id)
        queue = store.rows("SELECT * FROM line_review WHERE line_id = ?", [line_id])
    assert {"fox", "tonight"} <= {f["concept"] for f in flags}
    assert {(f["source"], f["revision_id"], f["superseded_by_revision"]) for f in flags} == {
        ("reviewer_text", result.revision_id, None)}
    # no recogniser doubt: every word certain, the text the only hypothesis, no alternative flags
    exact = [f for f in flags if f["kind"] == "exact"]
    assert exact and all(f["word_prob"] == 1.0 and f["nbest_share"] == 1.0 and f["acoustic_margin"] == 0.0
                         for f in exact)
    assert not [f for f in flags if f["kind"] == "alternative"]
    assert queue and "fox" in queue[0]["concepts"].split(",") and queue[0]["text_fa"] == result.text_fa


def test_the_recognisers_flags_are_superseded_kept_and_out_of_the_queue(store_path, corrector):
    with Store(store_path, WRITE) as store:
        line_id = _line_id(store, "امشب برویم ببینیم پرنده است یا روباه")
        old = _flags(store, line_id)
        verdicts = store.verdicts_of(line_id)
        assert {"bird", "fox"} <= {f["concept"] for f in old}
        result = corrector.correct_line(store, line_id, "امشب برویم ببینیم گرگ است", reviewer="maryam")
        kept = _flags(store, line_id, "superseded_by_revision IS NOT NULL")
        current = _flags(store, line_id, "superseded_by_revision IS NULL")
        queue = store.rows("SELECT concepts FROM line_review WHERE line_id = ?", [line_id])[0]
        exported = json.loads(export_text(store, ExportOptions(format="jsonl", recording_id=1)).splitlines()[0])
        assert store.verdicts_of(line_id) == verdicts  # verdicts are keyed by line, never touched
    # nothing deleted: the old rows are there as they were, but for the mark
    assert [{**f, "superseded_by_revision": None} for f in kept] == old
    assert {f["superseded_by_revision"] for f in kept} == {result.revision_id}
    assert "bird" not in {f["concept"] for f in current} and "wolf" in {f["concept"] for f in current}
    assert "bird" not in queue["concepts"].split(",") and "wolf" in queue["concepts"].split(",")
    assert "bird" not in exported["concepts"]


def test_english_the_reviewers_else_the_text_translator_on_the_corrected_farsi_else_the_old_marked(
        store_path, lexicon, normalizer, corrector):
    translator = FakeTextTranslator()
    with Store(store_path, WRITE) as store:
        ids = [_line_id(store, raw) for raw in (FOX_LINE, "گرگ آنجاست", "پرنده آمد")]
        yours = corrector.correct_line(store, ids[0], CORRECTED, "The fox comes tonight", reviewer="maryam")
        translated = Corrector.build(lexicon, normalizer, translator).correct_line(store, ids[1], CORRECTED,
                                                                                   reviewer="maryam")
        kept = corrector.correct_line(store, ids[2], CORRECTED, reviewer="maryam")
        rows = {row["id"]: row for row in store.rows("SELECT * FROM lines")}
    assert (yours.en_from, rows[ids[0]]["text_en"]) == ("reviewer", "The fox comes tonight")
    assert (translated.en_from, rows[ids[1]]["text_en"]) == ("corrected_fa", "MT: the fox comes tonight")
    assert translator.seen == [normalizer.normalize(CORRECTED)]  # the corrected Farsi, not the recogniser's
    assert (rows[ids[1]]["translator"], rows[ids[1]]["translator_model"]) == ("transformers", "fake-mt@1")
    assert (kept.en_from, rows[ids[2]]["text_en"]) == ("uncorrected_fa", "the bird came")
    assert english_reliability(rows[ids[0]]).label == "reliable"
    assert english_reliability(rows[ids[1]]).label == "reliable"
    old = english_reliability(rows[ids[2]])
    assert old.label == "unreliable" and "uncorrected" in old.reason
    # the old English is not flagged again; the reviewer's English is
    with Store(store_path, READ) as store:
        assert not _flags(store, ids[2], "superseded_by_revision IS NULL AND kind = 'english'")
        assert {"fox", "tonight"} <= {f["concept"] for f in _flags(store, ids[0], "kind = 'english'")}


def test_a_whisper_translator_is_never_used_on_a_correction(lexicon, normalizer):
    class Whisper(FakeTextTranslator):
        name, needs_audio = "whisper", True

    assert Corrector.build(lexicon, normalizer, Whisper()).translator is None


def test_search_finds_the_corrected_text_and_not_the_old(store_path, corrector):
    with Store(store_path, WRITE) as store:
        line_id = _line_id(store, FOX_LINE)
        corrector.correct_line(store, line_id, CORRECTED, "The fox comes tonight", reviewer="maryam")
        found = {row["rowid"] for row in store.rows("SELECT rowid FROM lines_fts WHERE lines_fts MATCH ?", ["روباه"])}
        english = {row["rowid"] for row in store.rows("SELECT rowid FROM lines_fts WHERE lines_fts MATCH 'comes'")}
        old = {row["rowid"] for row in store.rows("SELECT rowid FROM lines_fts WHERE lines_fts MATCH ?", ["چطور"])}
    assert line_id in found and english == {line_id} and line_id not in old


def test_exports_use_the_current_text_with_the_machines_beside_it(store_path, corrector):
    with Store(store_path, WRITE) as store:
        line_id = _line_id(store, FOX_LINE)
        result = corrector.correct_line(store, line_id, CORRECTED, "The fox comes tonight", reviewer="maryam")
        table = list(csv.DictReader(io.StringIO(export_text(store, ExportOptions(format="csv")))))
        jsonl = [json.loads(row) for row in export_text(store, ExportOptions(format="jsonl")).splitlines()]
        srt = export_text(store, ExportOptions(format="srt", recording_id=1))
        vtt = export_text(store, ExportOptions(format="vtt", recording_id=1))
    row = next(r for r in table if int(r["line_id"]) == line_id)
    assert (row["text_fa"], row["text_en"]) == (result.text_fa, "The fox comes tonight")
    assert row["text_fa_machine"] == FOX_LINE and row["text_en_machine"] == "hello how are you"
    assert (int(row["revision_id"]), row["text_en_from"]) == (result.revision_id, "reviewer")
    assert "fox" in row["concepts"].split(";")
    other = next(r for r in table if r["text_fa_raw"] == "گرگ آنجاست")
    assert other["text_fa_machine"] == other["text_fa"] and other["revision_id"] == ""
    record = next(r for r in jsonl if r["line_id"] == line_id)
    assert record["text_fa_machine"] == FOX_LINE and record["text_fa"] == result.text_fa
    assert all(f["concept"] != "bird" or f["kind"] != "exact" for f in record["flags"])
    for subtitles in (srt, vtt):
        assert result.text_fa in subtitles and "The fox comes tonight" in subtitles and FOX_LINE not in subtitles


def test_reflagging_keeps_the_reviewers_text_and_the_superseded_flags(store_path, corrector, lexicon, normalizer):
    with Store(store_path, WRITE) as store:
        line_id = _line_id(store, "امشب برویم ببینیم پرنده است یا روباه")
        result = corrector.correct_line(store, line_id, "امشب برویم ببینیم گرگ است", reviewer="maryam")
        superseded = _flags(store, line_id, "superseded_by_revision IS NOT NULL")
        current = _flags(store, line_id, "superseded_by_revision IS NULL")
        reflag(store, lexicon, normalizer)
        line = store.rows("SELECT * FROM lines WHERE id = ?", [line_id])[0]
        after = _flags(store, line_id, "superseded_by_revision IS NULL")
        assert _flags(store, line_id, "superseded_by_revision IS NOT NULL") == superseded
    assert line["text_fa"] == result.text_fa  # not normalised again from the recogniser's raw text
    assert {(f["source"], f["revision_id"]) for f in after} == {("reviewer_text", result.revision_id)}
    # re-flagging derives what the correction derived: same concepts, kinds and scores
    key = lambda f: (f["concept"], f["kind"], f["span_start"], f["score"])  # noqa: E731
    assert sorted(map(key, after)) == sorted(map(key, current))


def test_retranslating_keeps_the_reviewers_english_and_translates_the_corrected_farsi(
        store_path, corrector, lexicon, normalizer):
    from intercept.retranslate import retranslate

    translator = FakeTextTranslator()
    with Store(store_path, WRITE) as store:
        yours = _line_id(store, FOX_LINE)
        stale = _line_id(store, "گرگ آنجاست")
        corrector.correct_line(store, yours, CORRECTED, "The fox comes tonight", reviewer="maryam")
        corrector.correct_line(store, stale, CORRECTED, reviewer="maryam")
        retranslate(store, translator, recording_id=1, lexicon=lexicon, normalizer=normalizer)
        rows = {row["id"]: row for row in store.rows("SELECT * FROM lines")}
    assert (rows[yours]["text_en"], rows[yours]["text_en_from"]) == ("The fox comes tonight", "reviewer")
    assert (rows[stale]["text_en"], rows[stale]["text_en_from"]) == ("MT: the fox comes tonight", "corrected_fa")
    assert normalizer.normalize(CORRECTED) in translator.seen and FOX_LINE not in translator.seen


def test_bad_corrections_are_refused_and_write_nothing(store_path, corrector):
    with Store(store_path, WRITE) as store:
        line_id = _line_id(store, FOX_LINE)
        counts = {t: store.count(t) for t in ("line_revisions", "flags", "lines")}
        for fa, en, reviewer, message in [("  ", None, "maryam", "empty"), (CORRECTED, None, "", "reviewer"),
                                          (FOX_LINE, None, "maryam", "nothing to correct"),
                                          ("x" * 4001, None, "maryam", "longer than")]:
            with pytest.raises(ValueError, match=message):
                corrector.correct_line(store, line_id, fa, en, reviewer=reviewer)
        with pytest.raises(ValueError, match="no line 999"):
            corrector.correct_line(store, 999, CORRECTED, reviewer="maryam")
        assert {t: store.count(t) for t in counts} == counts


def test_a_correction_derived_before_another_is_refused(store_path, corrector):
    with Store(store_path, WRITE) as store:
        line_id = _line_id(store, FOX_LINE)
        stale = corrector.prepare(store.db, line_id, CORRECTED, reviewer="ali")
        corrector.correct_line(store, line_id, "امشب گرگ می‌آید", reviewer="maryam")
        with pytest.raises(CorrectionConflict, match="corrected it meanwhile"):
            store.save_correction(stale)
        assert store.count("line_revisions") == 1


def _dump(path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    tables = [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'lines_fts%' ORDER BY name")]
    dump = {table: conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall() for table in tables}
    dump["lines_fts"] = conn.execute("SELECT rowid, text_fa, text_en FROM lines_fts ORDER BY rowid").fetchall()
    conn.close()
    return dump


@pytest.mark.parametrize("raw", [FOX_LINE, "امشب برویم ببینیم پرنده است یا روباه"])  # without flags, with
def test_nothing_in_the_store_changes_but_the_derived_rows_of_the_line(store_path, corrector, raw):
    with Store(store_path, READ) as store:
        line_id = _line_id(store, raw)
    before = _dump(store_path)
    with Store(store_path, WRITE) as store:
        result = corrector.correct_line(store, line_id, CORRECTED, "The fox comes tonight", reviewer="maryam")
    after = _dump(store_path)
    assert set(after) == set(before)
    changed = {table for table in before if before[table] != after[table]}
    # seals: one seal appended for the line's recording, the chain before it untouched
    assert changed == {"lines", "flags", "line_review", "lines_fts", "line_revisions", "seals"}
    assert after["seals"][:len(before["seals"])] == before["seals"]
    assert len(after["seals"]) == len(before["seals"]) + 1
    conn = sqlite3.connect(store_path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(lines)")]
    flag_columns = [row[1] for row in conn.execute("PRAGMA table_info(flags)")]
    conn.close()

    def others(rows, key=0):
        return [row for row in rows if row[key] != line_id]

    assert others(after["lines"]) == others(before["lines"])
    line_before = next(row for row in before["lines"] if row[0] == line_id)
    line_after = next(row for row in after["lines"] if row[0] == line_id)
    derived = {"text_fa", "text_en", "suspect", "revision_id", "text_fa_machine", "text_en_machine", "text_en_from"}
    assert {name for n, name in enumerate(columns) if line_before[n] != line_after[n]} <= derived
    line_col, superseded_col = flag_columns.index("line_id"), flag_columns.index("superseded_by_revision")
    assert others(after["flags"], line_col) == others(before["flags"], line_col)
    old_flags = [row for row in before["flags"] if row[line_col] == line_id]
    kept = [row for row in after["flags"] if row[line_col] == line_id and row[0] in {r[0] for r in old_flags}]
    # the line's old flags: the same rows, but for the mark
    assert [row[:superseded_col] + row[superseded_col + 1:] for row in kept] == \
        [row[:superseded_col] + row[superseded_col + 1:] for row in old_flags]
    assert {row[superseded_col] for row in kept} <= {result.revision_id}
    assert bool(old_flags) == (raw != FOX_LINE)
    assert others(after["line_review"]) == others(before["line_review"])
    assert others(after["lines_fts"]) == others(before["lines_fts"])
    assert [row[0] for row in after["line_revisions"]] == [result.revision_id]


def test_migration_0011_on_a_store_of_the_previous_schema(tmp_path, normalizer, lexicon):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    MIGRATIONS.apply(db, stop_before="0011_revisions")
    assert "line_revisions" not in db.table_names()
    db.execute("INSERT INTO recordings (id, path, status) VALUES (1, '/r/a.wav', 'done')")
    db.execute("INSERT INTO lines (id, recording_id, start_s, end_s, text_fa_raw, text_fa) "
               "VALUES (1, 1, 0, 1, 'روباه', 'روباه')")
    db.execute("INSERT INTO flags (line_id, concept, kind, score) VALUES (1, 'fox', 'exact', 0.9)")
    db.conn.commit()
    MIGRATIONS.apply(db)
    assert "line_revisions" in db.table_names()
    assert {"revision_id", "text_fa_machine", "text_en_machine", "text_en_from"} <= set(db["lines"].columns_dict)
    assert {"source", "revision_id", "superseded_by_revision"} <= set(db["flags"].columns_dict)
    assert [row["concepts"] for row in db.query("SELECT concepts FROM line_review")] == ["fox"]
    db.execute("UPDATE flags SET superseded_by_revision = 1")
    db.conn.commit()
    assert not list(db.query("SELECT * FROM line_review"))  # a superseded flag leaves the queue
    assert db["flags"].count == 1


def test_correct_next_ranks_doubtful_and_neighbouring_lines_first(store_path, corrector):
    with Store(store_path, WRITE) as store:
        doubtful = _line_id(store, "پرنده آمد")
        store.db.execute("UPDATE flags SET kind = 'fuzzy', score = 0.5 WHERE line_id = ?", [doubtful])
        store.db.conn.commit()
        ranked = revisions.correct_next(store.db, threshold=0.5, band=0.2, weak_confidence=0.51, neighbour_s=30.0)
        ids = [row["line_id"] for row in ranked]
        confirmed = _line_id(store, "امشب برویم ببینیم پرنده است یا روباه")
        neighbour = _line_id(store, "گرگ آنجاست")
        assert confirmed not in ids or ranked[ids.index(confirmed)]["confirmed_near"] == 0
        assert ids[0] == doubtful and ranked[0]["near_threshold"] == 1.0
        assert neighbour in ids and ranked[ids.index(neighbour)]["confirmed_near"] == 1
        corrector.correct_line(store, neighbour, CORRECTED, reviewer="maryam")
        after = [row["line_id"] for row in revisions.correct_next(store.db, 0.5, 0.2, 0.51, 30.0)]
    assert neighbour not in after  # corrected lines leave the list


def test_intercept_correct_cli(store_path):
    runner = CliRunner()
    with Store(store_path, READ) as store:
        line_id = _line_id(store, FOX_LINE)
    result = runner.invoke(cli, ["correct", str(store_path), str(line_id), "--fa", CORRECTED, "--reviewer", "maryam",
                                 "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["line_id"] == line_id and data["text_en_from"] == "uncorrected_fa"
    assert "fox" in {f["concept"] for f in data["flags"]}
    result = runner.invoke(cli, ["correct", str(store_path), str(line_id), "--fa", "امشب گرگ می‌آید",
                                 "--en", "The wolf comes tonight", "--reviewer", "ali"])
    assert result.exit_code == 0, result.output
    assert "revision 2 by ali" in result.output and "English: yours" in result.output
    for args, message in [([str(line_id), "--fa", " ", "--reviewer", "ali"], "empty"),
                          (["999", "--fa", CORRECTED, "--reviewer", "ali"], "no line 999"),
                          ([str(line_id), "--fa", "امشب گرگ می‌آید", "--reviewer", "ali"], "nothing to correct")]:
        result = runner.invoke(cli, ["correct", str(store_path), *args])
        assert result.exit_code == 2 and message in result.output, result.output
    with Store(store_path, READ) as store:
        assert store.count("line_revisions") == 2


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is not installed")
def test_an_evidence_bundle_holds_each_lines_revisions_and_machine_text(store, tmp_path, corrector):
    # `store`: test_bundle's store with real audio (line 1: fox and bird, line 2: hello)
    with Store(store, WRITE) as opened:
        result = corrector.correct_line(opened, 1, CORRECTED, "The fox comes tonight", reviewer="maryam", note="n")
        write_bundle(opened, tmp_path / "evidence.zip", BundleOptions(line_ids=[1, 2]))
    with zipfile.ZipFile(tmp_path / "evidence.zip") as bundle:
        manifest = json.loads(bundle.read(MANIFEST))
    entries = {entry["line_id"]: entry for entry in manifest["lines"]}
    assert [(r["id"], r["reviewer"], r["text_fa"], r["text_en"], r["note"]) for r in entries[1]["revisions"]] == [
        (result.revision_id, "maryam", CORRECTED, "The fox comes tonight", "n")]
    assert entries[1]["text_fa"] == result.text_fa and entries[1]["text_fa_machine"].startswith("امشب برویم")
    assert entries[1]["text_en_from"] == "reviewer"
    assert entries[2]["revisions"] == [] and entries[2]["text_fa_machine"] == entries[2]["text_fa"]
    assert verify_bundle(tmp_path / "evidence.zip").ok


def test_a_corrected_lines_patterns_see_its_flagged_neighbours(store_path, corrector):
    with Store(store_path, WRITE) as store:
        line_id = _line_id(store, "گرگ آنجاست")  # transmission 1; transmission 0 says "tonight"
        result = corrector.correct_line(store, line_id, "روباه آنجاست", reviewer="maryam")
        neighbour = _line_id(store, "امشب برویم ببینیم پرنده است یا روباه")
        neighbour_flags = _flags(store, neighbour)
    kinds = {(f.concept, f.kind) for f in result.flags}
    assert ("fox", "exact") in kinds and ("animal_with_time", "pattern") in kinds, kinds
    # the neighbour's own flags are not rewritten (only the corrected line is derived again)
    assert {f["superseded_by_revision"] for f in neighbour_flags} == {None}
    assert all(f["source"] is None for f in neighbour_flags)


def test_a_correction_is_sealed_and_an_edit_of_it_from_outside_is_named(store_path, corrector):
    """The correction re-seals its recording (verify stays clean); editing the revision, the
    line's machine text or a flag's superseded mark with sqlite3 afterwards is named."""
    from intercept.store import seal

    with Store(store_path, READ) as store:
        line_id = _line_id(store, FOX_LINE)
    with Store(store_path, WRITE) as store:
        result = corrector.correct_line(store, line_id, CORRECTED, "The fox comes tonight", reviewer="maryam")
    conn = sqlite3.connect(store_path)
    assert seal.verify_store(conn) == []
    for edit, named in [
        ("UPDATE line_revisions SET text_fa = 'x' WHERE id = ?", "line revision"),
        ("UPDATE lines SET text_fa_machine = 'x' WHERE revision_id = ?", "line"),
    ]:
        conn.execute("SAVEPOINT edit")
        conn.execute(edit, [result.revision_id])
        problems = seal.verify_store(conn)
        assert problems and any(named in p for p in problems), problems
        conn.execute("ROLLBACK TO edit")
        conn.execute("RELEASE edit")
    assert seal.verify_store(conn) == []
    conn.close()
