"""The store against a hostile or careless world (issue 23): locks that hold while other
connections come and go, edits made from outside intercept, a read-only store, and bundles
whose clips cannot all be cut. Each case failed on the code before issue 23.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


# ------------------------------------------------------------------ locks that hold

# A batch as `intercept run` opens the store (CREATE: creates or migrates it), storing small
# recordings one transaction each and saying after each commit how many it has committed.
BATCH = textwrap.dedent("""
    import sys, time
    from intercept.store import CREATE, RecordingFacts, Store
    from intercept.types import Flag, Line, Transmission

    db = sys.argv[1]
    with Store(db, CREATE) as store:
        n = 0
        while True:
            txs = [Transmission(i, i * 2.0, i * 2.0 + 1.5) for i in range(3)]
            lines = [Line(i * 2.0, i * 2.0 + 1.0, "پرنده", text_fa="پرنده", transmission_idx=i) for i in range(3)]
            flags = [[Flag("bird", "animal_code", "exact", 1.0, 0, 5, "پرنده")] for _ in lines]
            store.save_recording(RecordingFacts(path=f"/batch/{n}.wav", sha256=f"batch-{n}"), txs, lines, flags,
                                 run_id=None, engine="e", model="m", translator="none", lexicon_version="v0")
            n += 1
            print(n, flush=True)
            time.sleep(0.02)
""")


def _existing_store(path: Path) -> None:
    from intercept.store import CREATE, Store

    Store(path, CREATE).close()


def _older_store(path: Path) -> None:
    """A store one migration behind (as tests/test_custody.py makes it)."""
    from intercept.store import SCHEMA_VERSION

    _existing_store(path)
    conn = sqlite3.connect(path)
    last = conn.execute("SELECT name FROM _sqlite_migrations ORDER BY rowid DESC LIMIT 1").fetchone()[0]
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = ?", [last])
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    conn.commit()
    conn.close()


def _committed(process: subprocess.Popen, at_least: int) -> int:
    """Read the batch's count of committed recordings until it reaches at_least."""
    count = 0
    while count < at_least:
        line = process.stdout.readline()
        assert line, f"the batch ended: {process.stderr.read()}"
        count = int(line)
    return count


def _deleted_wal(pid: int, db: Path) -> list[str]:
    """The batch's open descriptors that point at a deleted store file (a -wal unlinked under it)."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.endswith("(deleted)") and target.startswith(str(db)):
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("kind", ["new", "migrated", "existing"])
def test_a_batch_keeps_every_commit_while_others_open_and_close_the_store(tmp_path, kind):
    """Issue 23, Why 1: a batch that created (or migrated) the store lost SQLite's lock on it;
    a concurrent `intercept flag` or sqlite3 shell then deleted the WAL, and the commits that
    followed went into an unlinked file: after kill -9 they were gone."""
    db = tmp_path / "traffic.db"
    if kind == "migrated":
        _older_store(db)
    elif kind == "existing":
        _existing_store(db)
    batch = subprocess.Popen([sys.executable, "-c", BATCH, str(db)], cwd=ROOT, env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _committed(batch, 5)
        # A plain read-write connection that opens, reads and closes (a sqlite3 shell).
        shell = sqlite3.connect(db)
        shell.execute("SELECT count(*) FROM recordings").fetchone()
        shell.close()
        _committed(batch, 10)
        # A real `intercept flag` on the same store, from start to end while the batch writes.
        flag = subprocess.run([sys.executable, "-m", "intercept.cli", "flag", "--db", str(db), "--no-fuzzy",
                               "--recording", "1"],
                              cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
        assert flag.returncode == 0, flag.stderr
        shell = sqlite3.connect(db)
        shell.execute("SELECT count(*) FROM recordings").fetchone()
        shell.close()
        committed = _committed(batch, 25)
        deleted = _deleted_wal(batch.pid, db)
    finally:
        batch.send_signal(signal.SIGKILL)
        batch.wait()
    assert deleted == [], f"the batch writes into deleted files: {deleted}"
    conn = sqlite3.connect(db)
    stored = conn.execute("SELECT count(*) FROM recordings WHERE path LIKE '/batch/%'").fetchone()[0]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert stored >= committed, f"{committed} recordings committed before kill -9, {stored} in the store"


def test_reading_a_store_header_keeps_the_locks_of_this_process(tmp_path):
    """Opening and closing the store file anywhere in a process that holds SQLite locks on it
    (the review server reads store headers while Datasette's connections are open) drops them
    all. A check with F_GETLK from another process sees the batch's shared lock on the
    database file or not."""
    from intercept.store import CREATE, READ, Store, inspect_store

    db = tmp_path / "traffic.db"
    _existing_store(db)
    holder = Store(db, "write")
    holder.rows("SELECT count(*) FROM recordings")  # a WAL connection holds a shared lock from its first read
    try:
        assert _other_process_sees_a_lock(db)
        inspect_store(db)
        Store(db, READ).close()
        Store(db, "write").close()
        assert _other_process_sees_a_lock(db), "a header read closed a descriptor and dropped SQLite's lock"
    finally:
        holder.close()


LOCK_PROBE = textwrap.dedent("""
    import fcntl, os, struct, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    # SQLite's shared range starts 2 bytes after the pending byte (1 GiB); ask for a write lock on it.
    query = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0x40000002, 510, 0)
    answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    print(struct.unpack("hhqqi", answer)[0] != fcntl.F_UNLCK)
""")


def _other_process_sees_a_lock(db: Path) -> bool:
    out = subprocess.run([sys.executable, "-c", LOCK_PROBE, str(db)], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


# ------------------------------------------------------------------ a sealed store

def _recording_file(folder: Path, name: str, content: bytes) -> tuple[Path, str]:
    import hashlib

    path = folder / name
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


def _sealed_store(tmp_path: Path) -> Path:
    """Two recordings (real files, so the originals check passes), flags and a verdict, all
    written by intercept's own code."""
    from intercept.store import CREATE, RecordingFacts, Store
    from intercept.types import Flag, Line, Transmission

    db = tmp_path / "traffic.db"
    originals = tmp_path / "originals"
    originals.mkdir()
    with Store(db, CREATE) as store:
        for n in range(2):
            path, sha = _recording_file(originals, f"night-{n}.wav", f"recording {n}".encode())
            lines = [Line(0.5, 2.0, "پرنده آمد", text_fa="پرنده آمد", text_en="the bird came", transmission_idx=0),
                     Line(3.0, 4.5, "روباه رفت", text_fa="روباه رفت", text_en="the fox left", transmission_idx=1)]
            flags = [[Flag("bird", "animal_code", "exact", 1.0, 0, 5, "پرنده")],
                     [Flag("fox", "animal_code", "exact", 0.9, 0, 5, "روباه")]]
            store.save_recording(RecordingFacts(path=str(path), sha256=sha), [Transmission(0, 0.0, 2.5),
                                 Transmission(1, 2.8, 5.0)], lines, flags, run_id=None, engine="e", model="m",
                                 translator="none", lexicon_version="v0")
        store.add_verdict(1, "confirmed", "maryam", note="the courier")
    return db


def _verify(db: Path):
    from click.testing import CliRunner

    from intercept.cli import cli

    return CliRunner().invoke(cli, ["verify", str(db)])


def _edit(db: Path, *statements: str) -> None:
    """An edit from outside intercept: a plain sqlite3 connection."""
    conn = sqlite3.connect(db)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def test_a_store_written_by_intercept_matches_its_seals(tmp_path):
    db = _sealed_store(tmp_path)
    result = _verify(db)
    assert result.exit_code == 0, result.output
    assert "every row matches its seal" in result.output and "chain head: seal 3" in result.output


@pytest.mark.parametrize("statements, named", [
    (["UPDATE lines SET text_fa_raw = 'x' WHERE id = 2"], ["line 2 of recording 1", "changed since seal"]),
    (["UPDATE lines SET text_en = 'the fox stayed' WHERE id = 4"], ["line 4 of recording 2", "changed"]),
    (["DELETE FROM flags WHERE line_id = 1"], ["flag 1 of recording 1", "removed since seal"]),
    (["UPDATE lines SET start_s = start_s + 7, end_s = end_s + 7 WHERE recording_id = 2",
      "UPDATE transmissions SET start_s = start_s + 7, end_s = end_s + 7 WHERE recording_id = 2"],
     ["line 3 of recording 2", "line 4 of recording 2", "transmission 3 of recording 2"]),
    (["UPDATE verdicts SET verdict = 'false_positive' WHERE id = 1"], ["verdict 1 of recording 1", "changed"]),
    (["INSERT INTO verdicts (line_id, verdict, reviewer, at) VALUES (3, 'confirmed', 'mallory', '2026-01-01')"],
     ["verdict 2 of recording 2", "not sealed"]),
    (["INSERT INTO flags (line_id, concept, category, kind, score) VALUES (4, 'wolf', 'animal_code', 'exact', 1)"],
     ["flag 5 of recording 2", "not sealed"]),
])
def test_verify_names_every_row_edited_from_outside(tmp_path, statements, named):
    """Issue 23, Why 2: each of these printed "store whole", exit 0."""
    db = _sealed_store(tmp_path)
    _edit(db, *statements)
    result = _verify(db)
    assert result.exit_code == 1, result.output
    for words in named:
        assert words in result.output, result.output
    assert "every row matches its seal" not in result.output


def test_a_rewritten_sha256_matching_a_modified_original_is_seen(tmp_path):
    """The original changed and recordings.sha256 rewritten to match it: the originals check
    passes, the seal does not."""
    import hashlib

    db = _sealed_store(tmp_path)
    original = tmp_path / "originals" / "night-0.wav"
    original.write_bytes(b"another recording")
    _edit(db, f"UPDATE recordings SET sha256 = '{hashlib.sha256(b'another recording').hexdigest()}' WHERE id = 1")
    result = _verify(db)
    assert result.exit_code == 1, result.output
    assert "2 ok, 0 missing, 0 changed" in result.output
    assert "recording 1 of recording 1" in result.output and "changed since seal" in result.output


@pytest.mark.parametrize("statement, named", [
    ("UPDATE seals SET reason = 'stored' WHERE id = 3", "seal 3 (recording 1): edited"),
    ("UPDATE seals SET at = '2020-01-01T00:00:00' WHERE id = 2", "seal 2 (recording 2): edited"),
    ("DELETE FROM seals WHERE id = 2", "seal 3 (recording 1): does not follow seal 1"),
    ("DELETE FROM seals WHERE recording_id = 2", "recording 2 ("),
])
def test_verify_sees_a_seal_edited_or_removed(tmp_path, statement, named):
    db = _sealed_store(tmp_path)
    _edit(db, statement)
    result = _verify(db)
    assert result.exit_code == 1, result.output
    assert named in result.output, result.output


def test_an_edit_resealed_by_hand_breaks_the_chain(tmp_path):
    """Someone who edits a line and recomputes that recording's digest and rows by hand (but
    cannot recompute the chain without rewriting every later seal) is seen."""
    from intercept.store import seal

    db = _sealed_store(tmp_path)
    _edit(db, "UPDATE lines SET text_en = 'nothing happened' WHERE id = 1")
    conn = sqlite3.connect(db)
    rows = seal.recording_rows(conn, 1)
    text = seal._canonical(rows)
    conn.execute("UPDATE seals SET rows = ?, digest = ? WHERE id = 3", [text, seal._sha256(text)])
    conn.commit()
    conn.close()
    result = _verify(db)
    assert result.exit_code == 1
    assert "seal 3 (recording 1): edited" in result.output


def test_intercepts_own_writes_reseal(tmp_path):
    """Re-flagging (the real command), re-translating, a verdict through the review's write
    path and a verdict through the Store all seal again in their own transaction."""
    from click.testing import CliRunner

    from intercept.cli import cli
    from intercept.store import CREATE, Store, write_verdict
    from intercept.types import Line

    db = _sealed_store(tmp_path)
    flagged = CliRunner().invoke(cli, ["flag", "--db", str(db), "--no-fuzzy"])
    assert flagged.exit_code == 0, flagged.output
    with Store(db, "write") as store:
        store.save_derived([(3, Line(0.5, 2.0, "پرنده آمد", text_fa="پرنده آمد", text_en="a bird came"), [])], "v1",
                           translator=("test", None))
        store.add_verdict(2, "unsure", "ali")
        reasons = [row["reason"] for row in store.rows("SELECT reason FROM seals ORDER BY id")]
    conn = sqlite3.connect(db)
    write_verdict(conn, 4, "false_positive", "maryam", "not the fox")
    conn.close()
    result = _verify(db)
    assert result.exit_code == 0, result.output
    assert reasons[:3] == ["stored", "stored", "verdict"]
    assert "reflagged" in reasons and "translated" in reasons and reasons[-1] == "verdict"


# Re-translation as `intercept translate` writes it (Store.save_derived), in a process that
# imports the store alone, as `run`, `flag` and `translate` do: never the review's modules.
RESEAL_ALONE = textwrap.dedent("""
    import sys
    from intercept.store import WRITE, Store
    from intercept.types import Line
    with Store(sys.argv[1], WRITE) as store:
        store.save_derived([(1, Line(0.5, 2.0, "پرنده آمد", text_fa="پرنده آمد", text_en="a bird came"), [])], "v1",
                           translator=("test", None))
""")


def test_a_seal_written_by_a_command_covers_the_reviewers_rows(tmp_path):
    """Every content of a recording's seal is registered once intercept.store is imported. Before
    (issue 26), the team's (verdict details, reviewer flags, notes) were registered only when
    intercept.store.team was first imported: a seal written by a command that never imported it
    left a reviewer's note out, and verify no longer saw that note edited from outside."""
    from intercept.store import team

    db = _sealed_store(tmp_path)
    conn = sqlite3.connect(db)
    team.write_team(conn, team.add_note, 1, "met at the depot", "maryam")
    conn.close()
    done = subprocess.run([sys.executable, "-c", RESEAL_ALONE, str(db)], env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    _edit(db, "UPDATE line_notes SET note = 'met nowhere' WHERE id = 1")
    result = _verify(db)
    assert result.exit_code == 1, result.output
    assert "note 1 of recording 1" in result.output and "changed since seal" in result.output, result.output


def test_an_older_store_is_sealed_once_by_its_migration(tmp_path):
    """0010_seal seals every done recording as it is (reason 'migrated')."""
    from intercept.store import CREATE, Store

    db = _sealed_store(tmp_path)
    _edit(db, "DROP TABLE seals", "DELETE FROM _sqlite_migrations WHERE name = '0010_seal'", "PRAGMA user_version = 9")
    with Store(db, CREATE) as store:
        assert [r["reason"] for r in store.rows("SELECT reason FROM seals")] == ["migrated", "migrated"]
    result = _verify(db)
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------ a read-only store

@pytest.mark.parametrize("command", ["flag", "translate", "run", "migrate"])
@pytest.mark.parametrize("read_only", ["file", "directory"])
def test_a_read_only_store_is_refused_for_writing(tmp_path, command, read_only):
    """Issue 23, Why 4: a chmod 444 store was written anyway, exit 0 (root ignores permission
    bits; intercept honours them)."""
    from click.testing import CliRunner

    from intercept.cli import cli

    folder = tmp_path / "store"
    folder.mkdir()
    db = _sealed_store(folder)
    if command == "migrate":
        _older_store_in_place(db)
    args = {"flag": ["flag", "--db", str(db)], "translate": ["translate", "--db", str(db), "--translator", "none"],
            "run": ["run", str(ROOT / "audio_samples" / "short_call.wav"), "--db", str(db), "--no-progress"],
            "migrate": ["migrate", str(db)]}[command]
    target = db if read_only == "file" else folder
    before = (db.read_bytes(), db.stat().st_mtime_ns, sorted(p.name for p in folder.iterdir()))
    target.chmod(0o444 if read_only == "file" else 0o555)
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        target.chmod(0o644 if read_only == "file" else 0o755)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(db) in lines[0] and "read-only" in lines[0], result.stderr
    assert (db.read_bytes(), db.stat().st_mtime_ns, sorted(p.name for p in folder.iterdir())) == before


def _older_store_in_place(db: Path) -> None:
    from intercept.store import SCHEMA_VERSION

    _edit(db, "DELETE FROM _sqlite_migrations WHERE name = (SELECT name FROM _sqlite_migrations "
              "ORDER BY rowid DESC LIMIT 1)", f"PRAGMA user_version = {SCHEMA_VERSION - 1}")


# ------------------------------------------------------------------ bundles never silently short

def _store_with_audio(tmp_path: Path, past_end: bool) -> Path:
    """A 10 s recording with one line inside it and, with past_end, one past its end."""
    import hashlib

    from test_review import write_wav

    from intercept.store import CREATE, RecordingFacts, Store
    from intercept.types import Flag, Line, Transmission

    wav = tmp_path / "radio.wav"
    write_wav(wav, 10.0)
    db = tmp_path / "traffic.db"
    lines = [Line(1.0, 3.0, "پرنده آمد", text_fa="پرنده آمد", text_en="the bird came", transmission_idx=0)]
    if past_end:
        lines.append(Line(20.0, 22.0, "روباه رفت", text_fa="روباه رفت", text_en="the fox left", transmission_idx=0))
    with Store(db, CREATE) as store:
        store.save_recording(RecordingFacts(path=str(wav), sha256=hashlib.sha256(wav.read_bytes()).hexdigest(),
                                            duration_s=10.0), [Transmission(0, 0.5, 22.0)], lines,
                             [[Flag("bird", "animal_code", "exact", 1.0, 0, 5, "پرنده")] for _ in lines],
                             run_id=None, engine="e", model="m", translator="none", lexicon_version="v0")
    return db


def test_a_bundle_with_a_line_that_cannot_be_cut_says_so_and_is_not_intact(tmp_path):
    """Issue 23, Why 4: lines past the recording's end were silently left out ("4 lines
    written", exit 0) and `verify --bundle` said "intact"."""
    import json
    import zipfile

    from click.testing import CliRunner

    from intercept.cli import cli

    db = _store_with_audio(tmp_path, past_end=True)
    bundle = tmp_path / "evidence.zip"
    runner = CliRunner()
    made = runner.invoke(cli, ["export", str(db), "--format", "bundle", "-o", str(bundle)])
    assert made.exit_code == 1, made.output
    assert "1 lines written" in made.stderr and "1 chosen lines have no clip" in made.stderr
    assert "line 2" in made.stderr
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert [m["line_id"] for m in manifest["missing"]] == [2]
    assert "end of the recording" in manifest["missing"][0]["reason"]
    checked = runner.invoke(cli, ["verify", "--bundle", str(bundle)])
    assert checked.exit_code == 1, checked.output
    assert "MISSING line 2" in checked.output and "intact" not in checked.output


def test_a_bundle_carries_the_chain_head_and_is_tied_to_its_store(tmp_path):
    import json
    import zipfile

    from click.testing import CliRunner

    from intercept.cli import cli
    from intercept.store import CREATE, READ, Store

    db = _store_with_audio(tmp_path, past_end=False)
    bundle = tmp_path / "evidence.zip"
    runner = CliRunner()
    made = runner.invoke(cli, ["export", str(db), "--format", "bundle", "-o", str(bundle)])
    assert made.exit_code == 0, made.output
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    with Store(db, READ) as store:
        head = store.chain_head()
    assert manifest["store_seal"] == head and manifest["missing"] == []
    shown = runner.invoke(cli, ["verify", "--bundle", str(bundle)])
    assert shown.exit_code == 0 and f"store seal {head['id']} {head['chain']}" in shown.output
    tied = runner.invoke(cli, ["verify", str(db), "--bundle", str(bundle)])
    assert tied.exit_code == 0, tied.output
    other = tmp_path / "other"
    other.mkdir()
    stranger = runner.invoke(cli, ["verify", str(_store_with_audio(other, past_end=False)), "--bundle", str(bundle)])
    assert stranger.exit_code == 1 and "another store" in stranger.output
