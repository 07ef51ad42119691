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
    from intercept.store import RecordingFacts, Store
    from intercept.types import Flag, Line, Transmission

    db = sys.argv[1]
    with Store(db) as store:
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
    from intercept.store import Store

    Store(path).close()


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
    from intercept.store import READ, Store, inspect_store

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
