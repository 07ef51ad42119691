"""End to end: the real embedded model over audio_samples/, plus broken files in the batch."""
import json
import os
from pathlib import Path

import pytest
import sqlite_utils

from intercept.pipeline import AUDIO_EXTENSIONS, iter_recordings


def test_batch_exit_status_and_summary(sample_batch, manifest):
    db, result, inputs = sample_batch
    assert result.exit_code == 1, result.output  # two broken files: "some files failed"
    summary = json.loads(result.output)
    assert summary["done"] == len(manifest["recordings"])
    assert summary["failed"] == 2
    assert summary["transmissions"] >= sum(len(r["transmissions"]) for r in manifest["recordings"].values())
    assert summary["flagged_lines"] >= 1
    assert summary["real_time_factor"] > 0


def test_every_sample_is_transcribed_and_translated(sample_batch, manifest):
    db, _, inputs = sample_batch
    store = sqlite_utils.Database(db)
    for name, expected in manifest["recordings"].items():
        rec = next(store.query("SELECT * FROM recordings WHERE path = ?", [str((inputs / name).absolute())]))
        assert rec["status"] == "done", rec
        assert abs(rec["duration_s"] - expected["duration"]) < 0.2
        assert len(rec["sha256"]) == 64
        txs = list(store.query("SELECT * FROM transmissions WHERE recording_id = ?", [rec["id"]]))
        assert txs, name
        for tx in txs:
            assert 0 <= tx["start_s"] < tx["end_s"] <= rec["duration_s"] + 1e-6
        # Every manifest transmission is covered by a stored one.
        for want in expected["transmissions"]:
            assert any(tx["start_s"] < want["end"] and want["start"] < tx["end_s"] for tx in txs), (name, want)
        lines = list(store.query("SELECT * FROM lines WHERE recording_id = ?", [rec["id"]]))
        assert lines, name
        assert all(line["text_fa"].strip() for line in lines)
        assert any((line["text_en"] or "").strip() for line in lines), name
        for line in lines:
            tx = next(t for t in txs if t["id"] == line["transmission_id"])
            assert tx["start_s"] <= line["start_s"] <= line["end_s"] <= tx["end_s"]


def test_bird_or_fox_sample_is_flagged(sample_batch):
    db, _, inputs = sample_batch
    store = sqlite_utils.Database(db)
    rows = list(store.query(
        "SELECT flags.concept, flags.kind, flags.lexicon_version FROM flags JOIN lines ON lines.id = flags.line_id "
        "JOIN recordings ON recordings.id = lines.recording_id WHERE recordings.path LIKE '%bird_or_fox%'"
    ))
    assert {r["concept"] for r in rows} & {"bird", "fox"}, rows
    version = rows[0]["lexicon_version"]
    assert store["lexicon_terms"].count_where("lexicon_version = ?", [version]) > 0
    flagged = list(store.query("SELECT * FROM flagged_lines WHERE recording LIKE '%bird_or_fox%'"))
    assert flagged


def test_broken_files_fail_with_reason_and_originals_untouched(sample_batch):
    db, _, inputs = sample_batch
    store = sqlite_utils.Database(db)
    failed = {Path(r["path"]).name: r["error"] for r in store.query("SELECT * FROM recordings WHERE status='failed'")}
    assert set(failed) == {"empty.wav", "notes-renamed.mp3"}
    for name, error in failed.items():
        assert name in error and "\n" not in error
    assert (inputs / "empty.wav").read_bytes() == b""
    assert (inputs / "notes-renamed.mp3").read_text().startswith("this is a text file")


def test_run_is_recorded(sample_batch):
    db, _, _ = sample_batch
    run = next(sqlite_utils.Database(db).query("SELECT * FROM runs"))
    assert run["finished_at"] and json.loads(run["versions"])["faster-whisper"]
    assert json.loads(run["settings"])["transcribe"]["language"] == "fa"
    assert json.loads(run["summary"])["failed"] == 2


def test_rerun_skips_stored_content(sample_batch, tmp_path):
    """Re-running over the same folder stores nothing twice; the failed files are retried."""
    from click.testing import CliRunner

    from intercept.cli import cli

    db, _, inputs = sample_batch
    copy = tmp_path / "copy.db"
    copy.write_bytes(db.read_bytes())
    before = sqlite_utils.Database(copy)["lines"].count
    result = CliRunner().invoke(cli, ["run", str(inputs), "--db", str(copy), "--json", "--no-progress"])
    summary = json.loads(result.output)
    assert summary["skipped"] == summary["files"] - 2 and summary["failed"] == 2
    store = sqlite_utils.Database(copy)
    assert store["lines"].count == before
    assert store["recordings"].count_where("status = 'failed'") == 2


def test_iter_recordings_walks_folders_for_audio_only(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ["a.wav", "b/c.MP3", "b/notes.txt", "manifest.json", ".hidden.wav", "x.opus"]:
        (tmp_path / name).write_bytes(b"")
    os.symlink(tmp_path, tmp_path / "b" / "loop")  # a link loop must not trap the walk
    found = [p.relative_to(tmp_path).as_posix() for p in iter_recordings([tmp_path])]
    assert found == ["a.wav", "x.opus", "b/c.MP3"]
    # A file named directly is tried whatever its extension.
    assert list(iter_recordings([tmp_path / "b" / "notes.txt"])) == [tmp_path / "b" / "notes.txt"]
    assert ".flac" in AUDIO_EXTENSIONS


@pytest.mark.parametrize("clean", [False, True])
def test_recogniser_hears_decoded_audio_unless_clean_is_asked(embedded_model_dir, clean):
    """Radio clean-up before Whisper raised WER on real speech (docs/benchmarks.md), so by
    default the engine gets the decoded samples; --clean gives it the cleaned ones."""
    import numpy as np

    from intercept.audio import CleanupOptions, clean_radio, decode
    from intercept.config import RunOptions
    from intercept.pipeline import Pipeline

    options = RunOptions(translator="none")
    assert options.clean_radio is False
    options.clean_radio = clean
    pipeline = Pipeline(options)
    heard = []
    real = pipeline.engine.transcribe

    def spy(samples, transmissions, sample_rate=16000):
        heard.append(samples.copy())
        return real(samples, transmissions, sample_rate)

    pipeline.engine.transcribe = spy
    path = Path(__file__).resolve().parent.parent / "audio_samples" / "short_call.wav"
    analysis = pipeline.analyze(path)
    assert analysis.status == "done" and heard
    decoded = decode(str(path)).samples
    expected = clean_radio(decoded, 16000, CleanupOptions()) if clean else decoded
    np.testing.assert_array_equal(heard[0], expected)
