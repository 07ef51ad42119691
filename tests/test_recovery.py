"""Nothing lost: a batch killed with SIGKILL leaves whole recordings only and a re-run
completes just the rest; Datasette reads while a batch writes (WAL); content is processed
once (SHA-256), --force and changed files add versions and keep the old rows and verdicts;
`verify` re-hashes originals."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlite_utils

from intercept.pipeline import examine, verify_originals
from intercept.store import CREATE, RecordingFacts, Store
from intercept.types import Flag, Line, Transmission

ROOT = Path(__file__).resolve().parent.parent
SHORT_CALL = ROOT / "audio_samples" / "short_call.wav"  # 6.5 s, one transmission

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg builds the inputs")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def silence(path: Path, seconds: float) -> Path:
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", str(seconds), "-c:a", "pcm_s16le", str(path))
    return path


def datasette_get(ds, path: str):
    return asyncio.run(ds.client.get(path))


def save(store: Store, facts: RecordingFacts, text: str = "امشب پرنده") -> int:
    return store.save_recording(
        facts, [Transmission(0, 0.5, 2.5)],
        [Line(1.0, 2.0, text, text_fa=text, text_en="tonight bird")],
        [[Flag("bird", "animal_code", "exact", 1.0, 5, 10, "پرنده")]],
        run_id=None, engine="e", model="m", translator="t", lexicon_version="v1",
    )


# ------------------------------------------------------------------ SIGKILL mid-batch


@needs_ffmpeg
def test_sigkill_mid_batch_leaves_whole_recordings_and_rerun_completes_the_rest(tmp_path, embedded_model_dir):
    """The batch runs as a real process, read through Datasette while it writes, and is
    killed with SIGKILL as soon as one recording is done."""
    from click.testing import CliRunner
    from datasette.app import Datasette

    from intercept.cli import cli

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    count = 3
    for n in range(count):  # distinct content: the same call after n x 0.25 s of silence
        ffmpeg("-f", "lavfi", "-i", f"anullsrc=r=16000:cl=mono:d={0.5 + n * 0.25}", "-i", str(SHORT_CALL),
               "-filter_complex", "[1:a]aformat=sample_rates=16000:channel_layouts=mono[s];[0:a][s]concat=n=2:v=0:a=1",
               "-c:a", "pcm_s16le", str(inputs / f"call-{n}.wav"))
    db = tmp_path / "store.db"
    # Recordings one by one: short ones would be recognised (and stored) together as one pool.
    # A kill inside a pool: tests/test_folders.py.
    config = tmp_path / "one-by-one.toml"
    config.write_text("[pool]\nshort_s = 0\n")
    batch = subprocess.Popen(
        [sys.executable, "-m", "intercept.cli", "run", str(inputs), "--db", str(db), "--no-progress", "--json",
         "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
    )
    reads = 0
    try:
        deadline = time.monotonic() + 240
        ds = None
        done_seen = 0
        while time.monotonic() < deadline and batch.poll() is None:
            if ds is None and db.exists():
                try:
                    if "recordings" in sqlite_utils.Database(db).table_names():
                        ds = Datasette(files=[str(db)])
                except Exception:  # the store is being created: try again
                    pass
            if ds is not None:
                response = datasette_get(ds, "/store/recordings.json?_shape=array&status=done")
                assert response.status_code == 200, response.text  # never "database is locked"
                reads += 1
                done_seen = len(response.json())
                if done_seen >= 1:
                    break
            time.sleep(0.05)
        assert batch.poll() is None, batch.stderr.read().decode()[-2000:]
        assert done_seen >= 1, "no recording was done before the deadline"
        os.kill(batch.pid, signal.SIGKILL)
        batch.wait()
    finally:
        if batch.poll() is None:
            os.kill(batch.pid, signal.SIGKILL)
            batch.wait()
    assert batch.returncode == -signal.SIGKILL and reads >= 1

    with Store(db, CREATE) as store:
        assert store.check_integrity() == []
        done_before = {r["path"]: r["id"] for r in store.rows("SELECT id, path FROM recordings WHERE status='done'")}
        assert 1 <= len(done_before) < count, "the kill must land mid-batch"
        assert store.rows("SELECT finished_at FROM runs") == [{"finished_at": None}]  # the killed run shows

    result = CliRunner().invoke(cli, ["run", str(inputs), "--db", str(db), "--json", "--no-progress"],
                                catch_exceptions=False)
    summary = json.loads(result.output)
    assert result.exit_code == 0, result.output
    assert (summary["skipped"], summary["done"], summary["failed"]) == (len(done_before), count - len(done_before), 0)
    with Store(db, CREATE) as store:
        assert store.check_integrity() == []
        rows = store.rows("SELECT id, path, status FROM recordings ORDER BY id")
        assert len(rows) == count and all(r["status"] == "done" for r in rows)
        for path, recording_id in done_before.items():  # untouched by the re-run
            assert [r["id"] for r in rows if r["path"] == path] == [recording_id]
        assert all(store.count("lines", "recording_id = ?", [r["id"]]) >= 1 for r in rows)


def test_integrity_check_finds_a_half_stored_recording(tmp_path):
    with Store(tmp_path / "s.db", CREATE) as store:
        rid = save(store, RecordingFacts(path="/r/a.wav", sha256="a" * 64))
        assert store.check_integrity() == []
        store.db.execute("DELETE FROM flags")
        store.db.execute("DELETE FROM lines WHERE recording_id = ?", [rid])
        problems = store.check_integrity()
        assert len(problems) == 1 and "0 lines stored" in problems[0]


def test_a_failed_save_leaves_nothing(tmp_path):
    with Store(tmp_path / "s.db", CREATE) as store:
        with pytest.raises(Exception):
            store.save_recording(
                RecordingFacts(path="/r/a.wav", sha256="a" * 64), [Transmission(0, 0, 1)],
                [Line(0, 1, "x")], [object()], run_id=None, engine="e", model="m", translator="t",
                lexicon_version="v")
        for table in ("recordings", "transmissions", "lines", "flags", "recording_paths"):
            assert store.count(table) == 0, table


# ------------------------------------------------------------------ WAL


def test_datasette_reads_while_a_write_transaction_is_open(tmp_path):
    """In WAL mode a reader is never blocked by a writer, even one holding an exclusive
    transaction (with a rollback journal this read would fail: database is locked)."""
    from datasette.app import Datasette

    db = tmp_path / "store.db"
    with Store(db, CREATE) as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        save(store, RecordingFacts(path="/r/a.wav", sha256="a" * 64))
        ds = Datasette(files=[str(db)])
        store.db.execute("BEGIN EXCLUSIVE")
        save(store, RecordingFacts(path="/r/b.wav", sha256="b" * 64))  # nested: a savepoint, uncommitted
        response = datasette_get(ds, "/store/recordings.json?_shape=array")
        assert response.status_code == 200, response.text
        assert [r["path"] for r in response.json()] == ["/r/a.wav"]  # committed rows only
        store.db.execute("COMMIT")
        assert len(datasette_get(ds, "/store/recordings.json?_shape=array").json()) == 2


# ------------------------------------------------------------------ SHA-256, --force, versions


@pytest.fixture(scope="module")
def pipeline(embedded_model_dir):
    from intercept.config import RunOptions
    from intercept.pipeline import Pipeline

    return Pipeline(RunOptions())


def process(pipeline, store, path, force=False):
    from dataclasses import replace

    from intercept.pipeline import Recorder

    return Recorder(store, replace(pipeline.options, force=force)).process(pipeline, path)


@needs_ffmpeg
def test_same_content_is_processed_once_and_force_redoes_it(tmp_path, pipeline):
    a = silence(tmp_path / "a.wav", 2.0)
    with Store(tmp_path / "s.db", CREATE) as store:
        first = process(pipeline, store, a)
        assert first.status == "done"
        again = process(pipeline, store, a)
        assert (again.status, again.note, again.recording_id) == ("skipped", "already stored", first.recording_id)
        b = tmp_path / "b.wav"
        shutil.copy(a, b)
        other = process(pipeline, store, b)
        assert other.status == "skipped" and "same content as" in other.note
        assert [p["path"] for p in store.paths_of(first.recording_id)] == [str(a), str(b)]
        assert store.count("recordings") == 1
        forced = process(pipeline, store, a, force=True)
        assert forced.status == "done" and forced.recording_id != first.recording_id
        rows = store.rows("SELECT id, version, supersedes FROM recordings ORDER BY id")
        assert rows == [{"id": first.recording_id, "version": 1, "supersedes": None},
                        {"id": forced.recording_id, "version": 2, "supersedes": first.recording_id}]
        assert store.check_integrity() == []


@needs_ffmpeg
def test_a_changed_file_becomes_a_new_version_and_old_rows_and_verdicts_stay(tmp_path, pipeline):
    path = silence(tmp_path / "a.wav", 2.0)
    with Store(tmp_path / "s.db", CREATE) as store:
        facts = examine(path)
        old_id = save(store, facts)  # as if the model had found a flagged line in it
        line_id = store.rows("SELECT id FROM lines")[0]["id"]
        verdict_id = store.add_verdict(line_id, "confirmed", "maryam", note="bird = courier")
        silence(path, 3.0)  # the file at the same path changes
        new = process(pipeline, store, path)
        assert new.status == "done"
        rows = store.rows("SELECT id, sha256, version, supersedes, status FROM recordings ORDER BY id")
        assert [(r["id"], r["version"], r["supersedes"]) for r in rows] == [(old_id, 1, None), (new.recording_id, 2, old_id)]
        assert rows[0]["sha256"] == facts.sha256 != rows[1]["sha256"]
        assert store.count("lines", "recording_id = ?", [old_id]) == 1
        assert store.rows("SELECT id, line_id, verdict, note FROM verdicts") == [
            {"id": verdict_id, "line_id": line_id, "verdict": "confirmed", "note": "bird = courier"}]
        # verify checks the path against its newest version, so this change is not a fault
        [check] = verify_originals(store.path).originals
        assert (check.status, check.recording_id) == ("ok", new.recording_id)


# ------------------------------------------------------------------ verify


@needs_ffmpeg
def test_verify_reports_missing_and_changed_originals(tmp_path):
    keep, change, remove = (silence(tmp_path / f"{n}.wav", s) for n, s in (("keep", 1.0), ("change", 1.5), ("remove", 2.0)))
    copy = tmp_path / "keep-copy.wav"
    shutil.copy(keep, copy)
    db = tmp_path / "s.db"
    with Store(db, CREATE) as store:
        for path in (keep, change, remove):
            save(store, examine(path))
        store.add_path(store.done_recording(examine(copy).sha256)["id"], examine(copy))
    report = verify_originals(db)
    assert report.ok and report.counts()["ok"] == 4
    change.write_bytes(change.read_bytes()[:-100])
    remove.unlink()
    os.remove(copy)
    report = verify_originals(db)
    status = {Path(c.path).name: c.status for c in report.originals}
    assert status == {"keep.wav": "ok", "change.wav": "changed", "remove.wav": "missing", "keep-copy.wav": "missing"}
    assert not report.ok and report.to_dict()["counts"] == {"ok": 1, "missing": 2, "changed": 1, "unreadable": 0}
    changed = next(c for c in report.originals if c.status == "changed")
    assert changed.actual_sha256 != changed.expected_sha256 and "SHA-256 is now" in changed.reason


def test_verify_refuses_a_missing_store(tmp_path):
    from intercept.store import StoreError

    with pytest.raises(StoreError, match="no such store"):
        verify_originals(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()
