"""Hostile inputs for every command that opens a store: what it refuses, with one line and
exit 2, and that no command changes a byte of a file it was not meant to write.

Read-only cases are made for real: as root (which ignores permission bits) the file or the
directory gets the immutable attribute (`chattr +i`), and each fixture first proves that a
write there really fails, so the tests cannot pass by accident.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from intercept.cli import cli
from intercept.review import ReviewError, check_store, make_datasette
from intercept.store import (
    CREATE, READ, SCHEMA_VERSION, WRITE, RecordingFacts, Store, StoreError, inspect_store, migrate_store,
)
from intercept.types import Flag, Line, Transmission


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def make_store(path: Path) -> Path:
    """A closed store holding one recording (whose original exists) with a flagged line."""
    original = path.parent / "call.wav"
    original.write_bytes(b"RIFF not really audio, only hashed")
    with Store(path, CREATE) as store:
        lines = [Line(0.0, 1.0, "امشب پرنده آمد", text_fa="امشب پرنده آمد", text_en="tonight the bird came")]
        store.save_recording(
            RecordingFacts(path=str(original), sha256=sha256(original), size_bytes=original.stat().st_size),
            [Transmission(0, 0.0, 1.0)], lines, [[Flag("bird", "animal_code", "exact", 1.0, 5, 10, "پرنده")]],
            run_id=None, engine="e", model="m", translator="none", lexicon_version="v0")
    return path


def _chattr(flag: str, path: Path) -> bool:
    return shutil.which("chattr") is not None and subprocess.run(
        ["chattr", flag, str(path)], capture_output=True).returncode == 0


def _make_read_only(path: Path, request) -> None:
    if os.geteuid() == 0:
        if not _chattr("+i", path):
            pytest.skip(f"running as root and chattr +i does not work on {path.parent}: cannot make it read-only")
        request.addfinalizer(lambda: _chattr("-i", path))
    else:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        request.addfinalizer(lambda: path.chmod(mode))


def _really_read_only_file(path: Path) -> None:
    with pytest.raises(OSError):
        open(path, "r+b").close()


def _really_read_only_dir(folder: Path) -> None:
    with pytest.raises(OSError):
        (folder / "probe").write_bytes(b"")


# ------------------------------------------------------------------ the hostile files

def non_store_sqlite(folder: Path, request) -> Path:
    path = folder / "other.db"
    db = sqlite_utils.Database(path)
    db["things"].insert({"a": 1})
    db.close()
    return path


def future_schema(folder: Path, request) -> Path:
    path = make_store(folder / "future.db")
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('intercept', '0099_future', 'x')")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    return path


def read_only_file(folder: Path, request) -> Path:
    path = make_store(folder / "locked.db")
    _make_read_only(path, request)
    _really_read_only_file(path)
    return path


def read_only_directory(folder: Path, request) -> Path:
    inner = folder / "archive"
    inner.mkdir()
    path = make_store(inner / "archived.db")
    _make_read_only(inner, request)
    _really_read_only_dir(inner)
    return path


def not_sqlite(folder: Path, request) -> Path:
    path = folder / "notes.db"
    path.write_text("these are notes, not a database\n" * 200)
    return path


def truncated_store(folder: Path, request) -> Path:
    path = make_store(folder / "cut.db")
    size = path.stat().st_size
    # Cut at a page boundary, which no size check on whole pages would see.
    with open(path, "r+b") as file:
        file.truncate(size - 2 * 4096)
    return path


REFUSED = [non_store_sqlite, future_schema, not_sqlite, truncated_store]
READ_ONLY = [read_only_file, read_only_directory]


def _commands(path: Path) -> dict[str, list[str]]:
    return {
        "verify": ["verify", str(path)],
        "export": ["export", str(path), "--format", "csv"],
        "review": ["review", str(path)],
        "flag": ["flag", "--db", str(path)],
        "translate": ["translate", "--db", str(path), "--translator", "none"],
    }


@pytest.fixture
def served(monkeypatch):
    """`intercept review` with serve() replaced by: make the Datasette, fetch the start page."""
    pages = []

    def serve_once(db_path, port=8001, host="127.0.0.1", open_browser=False, options=None):
        import asyncio

        ds = make_datasette(db_path, options)
        pages.append(asyncio.run(ds.client.get("/", follow_redirects=True)).status_code)

    monkeypatch.setattr("intercept.review.serve", serve_once)
    return pages


@pytest.mark.parametrize("make", REFUSED, ids=lambda f: f.__name__)
@pytest.mark.parametrize("command", ["verify", "export", "review", "flag", "translate"])
def test_each_command_refuses_what_is_not_a_current_store_with_one_line(tmp_path, request, make, command, served):
    path = make(tmp_path, request)
    before, listing = sha256(path), files_in(path.parent)
    result = CliRunner().invoke(cli, _commands(path)[command])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and path.name in lines[0], result.stderr
    assert result.stdout == "" and served == []
    assert sha256(path) == before
    assert files_in(path.parent) == listing  # no -wal, -shm or journal left behind


@pytest.mark.parametrize("make", READ_ONLY, ids=lambda f: f.__name__)
@pytest.mark.parametrize("command", ["flag", "translate"])
def test_writing_commands_refuse_a_read_only_store_with_one_line(tmp_path, request, make, command):
    path = make(tmp_path, request)
    before, listing = sha256(path), files_in(path.parent)
    result = CliRunner().invoke(cli, _commands(path)[command])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and path.name in lines[0] and "read-only" in lines[0], result.stderr
    assert sha256(path) == before and files_in(path.parent) == listing


@pytest.mark.parametrize("make", READ_ONLY, ids=lambda f: f.__name__)
def test_reading_commands_read_a_read_only_store_and_leave_it_whole(tmp_path, request, make, served):
    path = make(tmp_path, request)
    before, listing = sha256(path), files_in(path.parent)
    runner = CliRunner()
    verify = runner.invoke(cli, _commands(path)["verify"])
    assert verify.exit_code == 0, verify.output
    [summary] = verify.stdout.strip().splitlines()
    assert summary.startswith("1 ok, 0 missing, 0 changed, 0 unreadable; store whole; every row matches its seal")
    export = runner.invoke(cli, _commands(path)["export"])
    assert export.exit_code == 0 and "پرنده" in export.stdout, export.output
    review = runner.invoke(cli, _commands(path)["review"])
    assert review.exit_code == 0, review.output
    assert served == [200]
    assert review.stderr.splitlines() == [
        f"{path}: {check_store(path)}: the review is read-only (no verdicts can be recorded)."]
    assert sha256(path) == before and files_in(path.parent) == listing


def test_verify_on_a_good_store_leaves_it_byte_for_byte(tmp_path):
    path = make_store(tmp_path / "good.db")
    before, listing = sha256(path), files_in(tmp_path)
    result = CliRunner().invoke(cli, ["verify", str(path)])
    assert result.exit_code == 0, result.output
    assert sha256(path) == before and files_in(tmp_path) == listing


def test_verify_reads_a_store_while_a_batch_holds_it_open(tmp_path):
    """With a writer connected (its -wal and -shm exist), verify reads through them as any
    reader, and sees what the writer committed."""
    path = make_store(tmp_path / "busy.db")
    with Store(path, WRITE) as writer:
        writer.add_verdict(1, "confirmed", "maryam")
        assert Path(f"{path}-wal").exists()
        with Store(path, READ) as reader:
            assert reader.count("verdicts") == 1
            with pytest.raises(StoreError, match="read-only"):
                reader.add_verdict(1, "unsure", "ali")


def test_read_only_review_refuses_verdicts(tmp_path, request):
    import asyncio

    path = read_only_directory(tmp_path, request)
    ds = make_datasette(path)
    response = asyncio.run(ds.client.post("/-/intercept/verdict", data={"line_id": "1", "verdict": "confirmed"}))
    assert response.status_code == 403 and "read-only" in response.text


# ------------------------------------------------------------------ older stores and migrate

def older_store(path: Path) -> Path:
    """A store one migration behind: the last migration's record removed, user_version lowered."""
    make_store(path)
    conn = sqlite3.connect(path)
    last = conn.execute("SELECT name FROM _sqlite_migrations ORDER BY rowid DESC LIMIT 1").fetchone()[0]
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = ?", [last])
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("command", ["verify", "export", "review", "flag", "translate"])
def test_an_older_store_is_left_alone_and_the_way_to_migrate_is_said(tmp_path, command, served):
    path = older_store(tmp_path / "old.db")
    before, listing = sha256(path), files_in(tmp_path)
    result = CliRunner().invoke(cli, _commands(path)[command])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"run `intercept migrate {path}`" in lines[0], result.stderr
    assert sha256(path) == before and files_in(tmp_path) == listing


def test_migrate_copies_the_store_aside_then_migrates_it(tmp_path):
    path = older_store(tmp_path / "old.db")
    before = sha256(path)
    result = CliRunner().invoke(cli, ["migrate", str(path)])
    assert result.exit_code == 0, result.output
    backup = tmp_path / f"old.db.bak-{SCHEMA_VERSION - 1}"
    assert f"kept in {backup}" in result.stderr
    # The copy is the store as it was: the old schema, the same rows.
    assert inspect_store(backup).schema == SCHEMA_VERSION - 1
    assert sqlite3.connect(backup).execute("SELECT count(*) FROM lines").fetchone()[0] == 1
    assert inspect_store(path).current
    with Store(path, READ) as store:
        assert store.count("lines") == 1 and store.check_integrity() == []
    # A second migrate has nothing to do, and would never overwrite the copy.
    again = CliRunner().invoke(cli, ["migrate", str(path)])
    assert again.exit_code == 0 and "nothing to migrate" in again.stdout
    older_store(tmp_path / "old2.db")
    (tmp_path / f"old2.db.bak-{SCHEMA_VERSION - 1}").write_bytes(b"an earlier copy")
    refused = CliRunner().invoke(cli, ["migrate", str(tmp_path / "old2.db")])
    assert refused.exit_code == 2 and "exists already" in refused.stderr


def test_migrate_refuses_what_is_not_a_store(tmp_path, request):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(StoreError, match="empty.db: not an intercept store"):
        migrate_store(empty)
    assert empty.read_bytes() == b""
    for make in REFUSED:
        folder = tmp_path / make.__name__
        folder.mkdir()
        path = make(folder, request)
        before = sha256(path)
        with pytest.raises(StoreError, match=path.name):
            migrate_store(path)
        assert sha256(path) == before
        assert not list(path.parent.glob("*.bak-*"))


def test_run_refuses_a_file_that_is_not_a_store_before_writing(tmp_path, request):
    for make in REFUSED:
        folder = tmp_path / make.__name__
        folder.mkdir()
        path = make(folder, request)
        before, listing = sha256(path), files_in(folder)
        with pytest.raises(StoreError, match=path.name):
            Store(path, CREATE)
        assert sha256(path) == before and files_in(folder) == listing


@pytest.mark.parametrize("keep", [10, 50, 4096 + 100], ids=["in-the-magic", "in-the-header", "mid-page"])
def test_a_store_cut_anywhere_is_called_truncated(tmp_path, keep):
    path = make_store(tmp_path / "cut.db")
    with open(path, "r+b") as file:
        file.truncate(keep)
    before = sha256(path)
    with pytest.raises(StoreError, match="cut.db: truncated store"):
        Store(path, READ)
    assert sha256(path) == before
