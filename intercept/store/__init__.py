"""The SQLite store: schema, writes and reads. The only module that knows SQL.

One transaction per recording, so a batch stopped at any point (even by SIGKILL) leaves
either a whole recording or none of it. Reviewer verdicts live in their own table and no run
writes there. Runs never delete or rewrite a done recording: a changed file becomes a new
version beside the old one, and the same content seen under another name is recorded as
another path of the stored recording (table `recording_paths`).

The schema is built by `sqlite_utils.migrations.Migrations` (set "intercept"); `PRAGMA
user_version` mirrors the number of migrations so that older intercepts refuse a newer store.
"""
from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import sqlite_utils
from sqlite_utils.migrations import Migrations

from ..types import Flag, Hypothesis, Line, Transmission, Word
# The store's modules in layers: base.py and seal.py at the bottom, team.py and revisions.py on
# them, this module (the Store, the migrations) on top; none imports the package around it.
# revisions before team: each registers its recording contents for the seal (seal.register),
# and that order is the order of a seal's `contents`.
from . import revisions, seal, team
from .base import (BUSY_TIMEOUT_S, FLAG_EVIDENCE, FLAGGED_LINES_VIEW, LINE_REVIEW_SELECT, VERDICTS,
                   immediate_transaction, insert_lexicon_terms, now, now_precise, run_settings)


class StoreError(RuntimeError):
    pass


@dataclass
class RecordingFacts:
    """What the store keeps about a source recording, apart from its content."""

    path: str  # absolute path as text; bytes that are not UTF-8 are shown as \xNN escapes
    sha256: Optional[str] = None
    duration_s: Optional[float] = None
    format: Optional[str] = None
    size_bytes: Optional[int] = None
    path_raw: Optional[bytes] = None  # the exact file-system name, to re-open it (verify)
    recorded_at: Optional[str] = None  # when it was recorded, ISO 8601 UTC (intercept.recorded_at)

    def columns(self) -> dict:
        """The recordings columns these facts fill."""
        return {"path": self.path, "sha256": self.sha256, "duration_s": self.duration_s,
                "format": self.format, "size_bytes": self.size_bytes, "recorded_at": self.recorded_at}

    def raw(self) -> bytes:
        return self.path_raw if self.path_raw is not None else self.path.encode("utf-8")


MIGRATIONS = Migrations("intercept")
_MIGRATION_NAMES: list[str] = []


def _migration(name: str, transactional: bool = True):
    """Register a migration and remember its name (the schema version counts them)."""
    _MIGRATION_NAMES.append(name)
    return MIGRATIONS(name=name, transactional=transactional)


@_migration("0001_initial")
def _initial_schema(db: sqlite_utils.Database) -> None:
    """The first schema. Every step is 'if not exists', so a store made before migrations
    were tracked (user_version 1) passes through unchanged."""
    db["runs"].create(
        {
            "id": int,
            "started_at": str,
            "finished_at": str,
            "engine": str,
            "model": str,
            "settings": str,
            "versions": str,
            "summary": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db["recordings"].create(
        {
            "id": int,
            "path": str,
            "sha256": str,
            "duration_s": float,
            "format": str,
            "size_bytes": int,
            "status": str,
            "error": str,
            "run_id": int,
            "processed_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
        if_not_exists=True,
    )
    db["transmissions"].create(
        {"id": int, "recording_id": int, "idx": int, "start_s": float, "end_s": float},
        pk="id",
        foreign_keys=[("recording_id", "recordings", "id")],
        if_not_exists=True,
    )
    db["lines"].create(
        {
            "id": int,
            "recording_id": int,
            "transmission_id": int,
            "idx": int,
            "start_s": float,
            "end_s": float,
            "text_fa_raw": str,
            "text_fa": str,
            "text_en": str,
            "avg_logprob": float,
            "no_speech_prob": float,
            "compression_ratio": float,
            "suspect": str,
            "engine": str,
            "model": str,
            "translator": str,
            "translator_model": str,
        },
        pk="id",
        foreign_keys=[("recording_id", "recordings", "id"), ("transmission_id", "transmissions", "id")],
        if_not_exists=True,
    )
    db["flags"].create(
        {
            "id": int,
            "line_id": int,
            "concept": str,
            "category": str,
            "severity": str,
            "kind": str,
            "score": float,
            "span_start": int,
            "span_end": int,
            "matched": str,
            "term": str,
            "lexicon_version": str,
        },
        pk="id",
        foreign_keys=[("line_id", "lines", "id")],
        if_not_exists=True,
    )
    db["lexicon_terms"].create(
        {
            "id": int,
            "concept": str,
            "category": str,
            "severity": str,
            "form": str,
            "lang": str,
            "lexicon_version": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db["verdicts"].create(
        {
            "id": int,
            "line_id": int,
            "flag_id": int,
            "verdict": str,
            "note": str,
            "reviewer": str,
            "at": str,
        },
        pk="id",
        foreign_keys=[("line_id", "lines", "id")],
        if_not_exists=True,
    )
    for table, columns in [
        ("recordings", ["sha256"]),
        ("recordings", ["path"]),
        ("transmissions", ["recording_id"]),
        ("lines", ["recording_id", "start_s"]),
        ("lines", ["transmission_id"]),
        ("flags", ["line_id"]),
        ("flags", ["concept"]),
        ("verdicts", ["line_id"]),
        ("lexicon_terms", ["lexicon_version"]),
    ]:
        db[table].create_index(columns, if_not_exists=True)
    db.create_view("flagged_lines", FLAGGED_LINES_VIEW, replace=True)


@_migration("0002_lines_fts", transactional=False)
def _lines_fts(db: sqlite_utils.Database) -> None:
    # Not transactional: sqlite-utils creates FTS tables with executescript, which commits.
    # Safe to repeat if a crash comes before it is recorded: detect_fts() sees the table.
    if not db["lines"].detect_fts():
        db["lines"].enable_fts(["text_fa", "text_en"], create_triggers=True, tokenize="unicode61")


@_migration("0003_custody")
def _custody(db: sqlite_utils.Database) -> None:
    """Versions, every path a content was seen under, and the counts that let a check prove
    a done recording is whole."""
    recordings = db["recordings"]
    for column, kind in [("version", int), ("supersedes", int), ("transmission_count", int), ("line_count", int)]:
        if column not in recordings.columns_dict:
            recordings.add_column(column, kind)
    db.execute(
        "UPDATE recordings SET version = 1, "
        "transmission_count = (SELECT count(*) FROM transmissions t WHERE t.recording_id = recordings.id), "
        "line_count = (SELECT count(*) FROM lines l WHERE l.recording_id = recordings.id) "
        "WHERE status = 'done' AND version IS NULL"
    )
    db["recording_paths"].create(
        {"id": int, "recording_id": int, "path": str, "path_raw": bytes, "first_seen_at": str,
         "last_seen_at": str, "run_id": int},
        pk="id",
        foreign_keys=[("recording_id", "recordings", "id")],
        if_not_exists=True,
    )
    db["recording_paths"].create_index(["recording_id", "path_raw"], unique=True, if_not_exists=True)
    db["recording_paths"].create_index(["path_raw"], if_not_exists=True)
    db["recordings"].create_index(["status"], if_not_exists=True)
    for row in list(db.query("SELECT id, path, processed_at, run_id FROM recordings WHERE status = 'done'")):
        db.execute(
            "INSERT OR IGNORE INTO recording_paths (recording_id, path, path_raw, first_seen_at, last_seen_at, run_id) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [row["id"], row["path"], row["path"].encode("utf-8"), row["processed_at"], row["processed_at"],
             row["run_id"]],
        )


# The review queue on a large store: flagged_lines as a GROUP BY view over lines x flags with
# correlated verdict look-ups timed out (> 2 s) on 1M lines, so line_review keeps one row per
# flagged line, re-derived by triggers on every write to flags, verdicts and lines, and
# flagged_lines reads it (same name and columns). scripts/bench_review.py measures both.
LINE_REVIEW_SQL = """
CREATE TABLE IF NOT EXISTS line_review (
  line_id INTEGER PRIMARY KEY REFERENCES lines(id),
  recording_id INTEGER,
  recording TEXT,
  start_s REAL,
  end_s REAL,
  text_fa TEXT,
  text_en TEXT,
  concepts TEXT,
  categories TEXT,
  kinds TEXT,
  score REAL,
  avg_logprob REAL,
  no_speech_prob REAL,
  suspect TEXT,
  verdict TEXT,
  reviewer TEXT,
  verdict_at TEXT
);
-- The queue (verdict IS NULL) in score order, and its count, from one index.
CREATE INDEX IF NOT EXISTS line_review_verdict_score ON line_review(verdict, score);
CREATE INDEX IF NOT EXISTS line_review_score ON line_review(score);
CREATE INDEX IF NOT EXISTS line_review_recording ON line_review(recording_id, start_s);
-- The start page's facets, each read from an index in group order.
CREATE INDEX IF NOT EXISTS line_review_verdict_concepts ON line_review(verdict, concepts);
CREATE INDEX IF NOT EXISTS line_review_verdict_categories ON line_review(verdict, categories);
CREATE INDEX IF NOT EXISTS line_review_verdict_kinds ON line_review(verdict, kinds);
CREATE INDEX IF NOT EXISTS line_review_verdict_recording ON line_review(verdict, recording);
-- ?_flag_concept=fox
CREATE INDEX IF NOT EXISTS flags_concept_line ON flags(concept, line_id);

-- What line_review holds for a line: its row when the line has flags, no row otherwise.
DROP VIEW IF EXISTS line_review_source;
CREATE VIEW line_review_source AS """ + LINE_REVIEW_SELECT + """;

-- Kept current whatever writes flags, verdicts or lines: delete the line's row, re-derive it.
CREATE TRIGGER IF NOT EXISTS line_review_flag_insert AFTER INSERT ON flags BEGIN
  INSERT OR REPLACE INTO line_review SELECT * FROM line_review_source WHERE line_id = NEW.line_id;
END;
CREATE TRIGGER IF NOT EXISTS line_review_flag_delete AFTER DELETE ON flags BEGIN
  DELETE FROM line_review WHERE line_id = OLD.line_id;
  INSERT OR REPLACE INTO line_review SELECT * FROM line_review_source WHERE line_id = OLD.line_id;
END;
CREATE TRIGGER IF NOT EXISTS line_review_flag_update AFTER UPDATE ON flags BEGIN
  DELETE FROM line_review WHERE line_id IN (OLD.line_id, NEW.line_id);
  INSERT OR REPLACE INTO line_review SELECT * FROM line_review_source WHERE line_id IN (OLD.line_id, NEW.line_id);
END;
CREATE TRIGGER IF NOT EXISTS line_review_verdict_insert AFTER INSERT ON verdicts BEGIN
  INSERT OR REPLACE INTO line_review SELECT * FROM line_review_source WHERE line_id = NEW.line_id;
END;
CREATE TRIGGER IF NOT EXISTS line_review_verdict_delete AFTER DELETE ON verdicts BEGIN
  INSERT OR REPLACE INTO line_review SELECT * FROM line_review_source WHERE line_id = OLD.line_id;
END;
CREATE TRIGGER IF NOT EXISTS line_review_line_update AFTER UPDATE ON lines
WHEN EXISTS (SELECT 1 FROM line_review WHERE line_id = NEW.id) BEGIN
  INSERT OR REPLACE INTO line_review SELECT * FROM line_review_source WHERE line_id = NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS line_review_line_delete AFTER DELETE ON lines BEGIN
  DELETE FROM line_review WHERE line_id = OLD.id;
END;
CREATE TRIGGER IF NOT EXISTS line_review_recording_path AFTER UPDATE OF path ON recordings BEGIN
  UPDATE line_review SET recording = NEW.path WHERE recording_id = NEW.id;
END;

-- Backfill once (the migration from the GROUP BY view).
INSERT OR REPLACE INTO line_review SELECT * FROM line_review_source;

-- flagged_lines keeps its name and columns; it now reads one table, no GROUP BY, no join.
DROP VIEW IF EXISTS flagged_lines;
CREATE VIEW flagged_lines AS
SELECT line_id, recording_id, recording, start_s, end_s, text_fa, text_en, concepts, categories, kinds,
  score, avg_logprob, no_speech_prob, suspect, verdict, reviewer, verdict_at
FROM line_review;
"""


@_migration("0004_line_review", transactional=False)
def _line_review(db: sqlite_utils.Database) -> None:
    # Not transactional: the triggers need executescript, which commits. Every statement is
    # IF NOT EXISTS / INSERT OR REPLACE / DROP-and-CREATE of a view, so a repeat is harmless.
    db.conn.executescript(LINE_REVIEW_SQL)


@_migration("0005_flag_evidence")
def _flag_evidence(db: sqlite_utils.Database) -> None:
    """The recogniser's evidence per line and the pieces of a flag's score (all nullable:
    NULL means unknown, never a made-up number). lines.words is a JSON list of
    [word, start_s, end_s, probability]; lines.alternatives a JSON list of
    [text, logprob, tokens] (the beam's N-best, best first; logprob the hypothesis'
    log-probability, tokens what it was averaged over)."""
    for table, columns in [
        ("lines", {"confidence": float, "words": str, "alternatives": str}),
        ("flags", {"match_score": float, "word_prob": float, "nbest_share": float, "prior": float, "prior_reason": str,
                   "hypothesis": str, "scorer_version": str}),
    ]:
        have = db[table].columns_dict
        for name, kind in columns.items():
            if name not in have:  # a crash between two columns leaves the rest to add
                db[table].add_column(name, kind)


@_migration("0006_recorded_at")
def _recorded_at(db: sqlite_utils.Database) -> None:
    """When each recording was made (ISO 8601 UTC, NULL when unknown), for absolute times and
    traffic over time; and each lexicon concept's notes, shown beside its flags in review."""
    if "recorded_at" not in db["recordings"].columns_dict:
        db["recordings"].add_column("recorded_at", str)
    if "notes" not in db["lexicon_terms"].columns_dict:
        db["lexicon_terms"].add_column("notes", str)
    db["recordings"].create_index(["recorded_at"], if_not_exists=True)


VOICE_TABLES_SQL = """
-- One embedding per transmission and voice model version (float16 bytes, NULL when the
-- transmission was too short or had too little speech: status says which).
CREATE TABLE IF NOT EXISTS voice_embeddings (
  id INTEGER PRIMARY KEY,
  transmission_id INTEGER NOT NULL REFERENCES transmissions(id),
  model TEXT NOT NULL,
  model_version TEXT NOT NULL,
  status TEXT NOT NULL,
  speech_s REAL,
  embedding BLOB,
  made_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS voice_embeddings_transmission
  ON voice_embeddings(transmission_id, model, model_version);
-- A voice: transmissions grouped as one speaker across recordings. Never deleted: a merged
-- voice names the voice it went into (merged_into). created_by is 'run' or a reviewer.
CREATE TABLE IF NOT EXISTS voices (
  id INTEGER PRIMARY KEY,
  name TEXT,
  centroid BLOB,
  n INTEGER NOT NULL DEFAULT 0,
  model TEXT NOT NULL,
  model_version TEXT NOT NULL,
  created_at TEXT,
  created_by TEXT,
  named_by TEXT,
  named_at TEXT,
  merged_into INTEGER REFERENCES voices(id),
  updated_at TEXT
);
-- Reviewers' decisions (name, merge, split), in order. Runs never write here.
CREATE TABLE IF NOT EXISTS voice_decisions (
  id INTEGER PRIMARY KEY,
  action TEXT NOT NULL,
  voice_id INTEGER REFERENCES voices(id),
  other_voice_id INTEGER REFERENCES voices(id),
  transmission_ids TEXT,
  name TEXT,
  reviewer TEXT,
  at TEXT
);
"""


@_migration("0007_voices")
def _voices(db: sqlite_utils.Database) -> None:
    """Voice embeddings, voices and reviewers' voice decisions; transmissions.voice_id."""
    # Split by hand (executescript would commit mid-migration): no comment holds a ';'.
    for statement in VOICE_TABLES_SQL.split(";"):
        if statement.strip():
            db.execute(statement)
    if "voice_id" not in db["transmissions"].columns_dict:
        db["transmissions"].add_column("voice_id", int)
    db["transmissions"].create_index(["voice_id"], if_not_exists=True)


@_migration("0008_queue_indexes")
def _queue_indexes(db: sqlite_utils.Database) -> None:
    """The review queue filters on the flag score as well as the verdict (score >= the
    threshold, intercept.scoring.DEFAULT_THRESHOLD): the start page's facets then read the score
    of every queued line, which the (verdict, facet column) indexes do not hold; with it in the
    index each facet is again one covered index scan (1M lines: 373 ms -> 180 ms median,
    scripts/bench_review.py)."""
    for column in ("concepts", "categories", "kinds", "recording"):
        db["line_review"].create_index(["verdict", column, "score"], if_not_exists=True)


@_migration("0009_acoustic_margin")
def _acoustic_margin(db: sqlite_utils.Database) -> None:
    """Each flag's acoustic check (intercept.acoustic): how much less likely the recogniser
    finds the line with the lexicon form in place of the matched words (nats; NULL: not
    checked)."""
    if "acoustic_margin" not in db["flags"].columns_dict:
        db["flags"].add_column("acoustic_margin", float)


@_migration("0010_seal")
def _seal(db: sqlite_utils.Database) -> None:
    """The sealed store (intercept.store.seal): a table of seals, each a digest of one
    recording's rows chained to the seal before it; every done recording is sealed once as
    it is now (reason 'migrated': what was stored before this migration is vouched for from
    here on, not before)."""
    if seal.has_seals(db.conn):
        return  # a repeat (its record was lost): the chain is there already
    seal.create_table(db.conn)
    seal.seal_all(db.conn, "migrated")


@_migration("0011_revisions")
def _revisions(db: sqlite_utils.Database) -> None:
    """Reviewers' corrections (line_revisions), the columns saying which text is current and
    which is the machine's, and the provenance of flags (intercept.store.revisions)."""
    revisions.migrate(db)


@_migration("0012_team_desk")
def _team_desk(db: sqlite_utils.Database) -> None:
    """Verdicts on flags' concepts, their withdrawal and a lead's decision; reviewer flags;
    lexicon suggestions; claims (intercept.store.team)."""
    team.migrate(db)


@_migration("0013_correct_next")
def _correct_next(db: sqlite_utils.Database) -> None:
    """Indexes for the reviewers' "correct next" list (revisions.CORRECT_NEXT_INDEXES)."""
    revisions.create_correct_next_indexes(db)


# The schema version is the number of migrations; PRAGMA user_version mirrors it so that an
# older intercept (which only knows user_version) also refuses a newer store.
SCHEMA_VERSION = len(_MIGRATION_NAMES)
_KNOWN_MIGRATIONS = frozenset(_MIGRATION_NAMES)


# Required of every intercept store: the tables each command reads or writes.
REQUIRED_TABLES = ("runs", "recordings", "transmissions", "lines", "flags", "verdicts")
SQLITE_MAGIC = b"SQLite format 3\x00"

def _json_or_none(items, row) -> Optional[str]:
    """None stays NULL (the engine could not give it); a list, even empty, is JSON."""
    if items is None:
        return None
    return json.dumps([row(item) for item in items], ensure_ascii=False)


def line_evidence(row: dict) -> dict[str, Any]:
    """A stored line's recogniser evidence back as Line fields (words, alternatives,
    confidence); None where the row holds none (an old store, or an engine that gave none)."""
    words = json.loads(row["words"]) if row.get("words") else None
    alternatives = json.loads(row["alternatives"]) if row.get("alternatives") else None
    return {
        "words": None if words is None else [Word(w[0], w[1], w[2], w[3]) for w in words],
        "alternatives": None if alternatives is None else [
            Hypothesis(h[0], h[1] / h[2] if h[2] else h[1], h[2]) for h in alternatives],
        "confidence": row.get("confidence"),
    }



# How a command opens the store (docs/recovery.md lists which command uses which).
READ = "read"  # verify, export, the review's reads: never writes, never migrates
WRITE = "write"  # flag, translate, verdicts: an existing store of the current schema
CREATE = "create"  # run: creates a missing store, migrates an older one (copy kept aside)
MODES = (READ, WRITE, CREATE)


@dataclass
class StoreFile:
    """What a look at a store file found, without writing to it (`inspect_store`)."""

    path: Path
    schema: int = 0  # PRAGMA user_version: the number of migrations applied
    applied: tuple[str, ...] = ()  # intercept migrations recorded in the file
    empty: bool = True  # a missing file, a zero-byte file or an SQLite file with no tables

    @property
    def current(self) -> bool:
        return set(self.applied) == _KNOWN_MIGRATIONS

    @property
    def older(self) -> bool:
        return not self.empty and not self.current


def _uri(path: Path, **params: str) -> str:
    from urllib.parse import quote, urlencode

    query = urlencode(params)
    return f"file:{quote(str(path.absolute()))}" + (f"?{query}" if query else "")


def _check_header(path: Path) -> bool:
    """Refuse a file that is not SQLite, or is shorter than its header says (truncated),
    from its first 100 bytes, before SQLite opens it. Returns True when the file is empty."""
    try:
        info = path.stat()
        if not path.is_file():
            raise StoreError(f"{path}: not a file")
        header = read_head(path, 100)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not header:
        return True
    if not header.startswith(SQLITE_MAGIC):
        if SQLITE_MAGIC.startswith(header):
            raise StoreError(f"{path}: truncated store ({info.st_size} bytes)")
        raise StoreError(f"{path}: not an intercept store (not an SQLite file)")
    if len(header) < 100:
        raise StoreError(f"{path}: truncated store ({info.st_size} bytes, shorter than an SQLite header)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count in the header is valid when the change counter matches the version
    # it was written with (always, since SQLite 3.7.0).
    expected = pages * page_size if pages and header[24:28] == header[92:96] else 0
    if info.st_size < expected or (page_size and info.st_size % page_size):
        raise StoreError(f"{path}: truncated store ({info.st_size} bytes; its header says {expected or 'whole pages'})")
    return False


# Closing any descriptor of a file drops every POSIX (fcntl) lock the process holds on it,
# SQLite's own included (POSIX, not SQLite, decides this). A process that has the store open
# through SQLite (a batch, the review server's Datasette connections) and then opens and
# closes the file to read its header would lose SQLite's shared lock; another connection's
# close then believes it is the last one, checkpoints and deletes the -wal, and this process
# goes on committing into the unlinked file (issue 23). So the store file itself is only ever
# read through one descriptor per file that stays open for the life of the process (SQLite's
# unix VFS keeps its own descriptors the same way), and the create/migrate guard is a flock
# on a separate file, `<store>.lock`.
_HEADS: dict[tuple[int, int], int] = {}
_KEPT: list[int] = []  # descriptors superseded in _HEADS, kept open for the same reason
_HEADS_BEFORE_PRUNING = 64


def read_head(path: str | Path, size: int) -> bytes:
    """The first `size` bytes of the file at path, read without ever closing a descriptor of
    a file whose locks this process may hold (see above)."""
    info = os.stat(path)
    key = (info.st_dev, info.st_ino)
    fd = _HEADS.get(key)
    if fd is not None:
        try:
            held = os.fstat(fd)
            fd = fd if (held.st_dev, held.st_ino) == key else None  # a reused number: not ours
        except OSError:
            fd = None
    if fd is None:
        if len(_HEADS) >= _HEADS_BEFORE_PRUNING:
            _prune_heads()
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        opened = os.fstat(fd)
        key = (opened.st_dev, opened.st_ino)
        if key in _HEADS:
            _KEPT.append(_HEADS[key])
        _HEADS[key] = fd
    return os.pread(fd, size, 0)


def _locked_inodes() -> Optional[set[int]]:
    """Inodes this process holds POSIX locks on (Linux /proc/locks), None when unknown."""
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    pid, inodes = str(os.getpid()), set()
    for line in text.splitlines():
        fields = line.replace("->", "").split()
        if len(fields) > 5 and fields[1] == "POSIX" and fields[4] == pid:
            inodes.add(int(fields[5].rsplit(":", 1)[-1]))
    return inodes


def _prune_heads() -> None:
    # A process that touches many stores (a test suite) would otherwise keep one descriptor
    # per store: close those of files that are deleted or that this process holds no lock on.
    locked = _locked_inodes()
    for key, fd in list(_HEADS.items()):
        try:
            closable = os.fstat(fd).st_nlink == 0 or (locked is not None and key[1] not in locked)
        except OSError:
            closable = True
        if closable:
            del _HEADS[key]
            try:
                os.close(fd)
            except OSError:
                pass


def lock_path(path: str | Path) -> Path:
    """The file beside a store that `intercept run` and `migrate` flock while they create or
    migrate it (never the store file itself, see above). It stays after the run: removing a
    lock file races with a process waiting on it."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def _wal_files(path: Path) -> list[Path]:
    return [p for p in (Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def read_only_connection(path: str | Path) -> sqlite3.Connection:
    """A connection that cannot write to the store and leaves no file behind.

    SQLite's mode=ro on a WAL-mode file creates the -wal and -shm files beside it when they
    are missing (and fails in a read-only directory). Missing, they mean no connection has
    the store open and every committed page is in the main file, so it is then opened as
    immutable=1, which reads the main file alone. When they exist (a batch is writing), the
    reader shares them as any reader does."""
    path = Path(path)
    wal_mode = False
    header = read_head(path, 20)
    if len(header) == 20 and header[18] == 2:
        wal_mode = True
    params = {"mode": "ro"}
    if wal_mode and not _wal_files(path):
        params["immutable"] = "1"
    conn = sqlite3.connect(_uri(path, **params), uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    conn.execute("PRAGMA query_only = ON")
    return conn


def inspect_store(path: str | Path) -> StoreFile:
    """What the file at `path` is, read without writing a byte: a StoreFile, or StoreError
    (one line naming the file and the reason) when it is not SQLite, is truncated, is not
    an intercept store, or is a store of a newer schema than this intercept knows."""
    path = Path(path)
    found = StoreFile(path)
    if not path.exists():
        return found
    if _check_header(path):
        return found
    try:
        conn = read_only_connection(path)
        try:
            db = sqlite_utils.Database(conn)
            tables = set(db.table_names())
            found.schema = conn.execute("PRAGMA user_version").fetchone()[0]
            found.applied = tuple(m.name for m in MIGRATIONS.applied(db))
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not an intercept store ({exc})") from None
    unknown = sorted(set(found.applied) - _KNOWN_MIGRATIONS)
    if found.schema > SCHEMA_VERSION or unknown:
        raise StoreError(
            f"{path}: store schema version {found.schema} is newer than this intercept understands "
            f"({SCHEMA_VERSION}{'; unknown migrations ' + ', '.join(unknown) if unknown else ''}); "
            "upgrade intercept"
        )
    found.empty = not tables and found.schema == 0
    if found.empty:
        return found
    # A store made before migrations were recorded has user_version 1 and the tables.
    if not found.applied and found.schema < 1:
        shown = ", ".join(sorted(t for t in tables if not t.startswith("sqlite_"))[:5])
        raise StoreError(f"{path}: not an intercept store (no intercept schema; tables: {shown})")
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise StoreError(f"{path}: not an intercept store (missing tables: {', '.join(missing)})")
    return found


def is_store_connection(conn: sqlite3.Connection) -> bool:
    """Whether an open connection holds an intercept store, by reading only: the required
    tables and intercept's record of migrations (or user_version, for stores made before
    migrations were recorded)."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not set(REQUIRED_TABLES) <= tables:
        return False
    if Migrations.migrations_table not in tables:
        return conn.execute("PRAGMA user_version").fetchone()[0] >= 1
    found = conn.execute(f"SELECT 1 FROM {Migrations.migrations_table} WHERE migration_set = ? LIMIT 1",
                         [MIGRATIONS.name]).fetchone()
    return found is not None


def _no_write_bits(path: Path) -> bool:
    # access(2) tells root that a chmod 444 file is writable (root ignores permission bits),
    # yet a file nobody may write is how its owner says "keep this as it is": honoured for root too.
    try:
        return not os.stat(path).st_mode & 0o222
    except OSError:
        return False


def write_problem(path: str | Path) -> Optional[str]:
    """Why the store at `path` cannot be written (a read-only file or directory, an
    immutable file), or None. Asked of the system (access(2)), and of the permission bits,
    so that root too leaves a file or directory nobody may write (chmod 444, 555) alone."""
    path = Path(path).absolute()
    for target in [path, *_wal_files(path)]:
        if not os.access(target, os.W_OK) or _no_write_bits(target):
            return f"{target.name} is read-only"
    if not os.access(path.parent, os.W_OK | os.X_OK) or _no_write_bits(path.parent):
        # SQLite creates the -wal and -shm files (and a journal) beside the store.
        return f"its directory {path.parent} is read-only"
    return None


def migrate_store(path: str | Path, warn: Optional[Callable[[str], None]] = None) -> Optional[Path]:
    """`intercept migrate`: bring an older store to this intercept's schema, after copying
    it whole to `<path>.bak-<schema>`. Returns the copy's path, or None when the store was
    already current. StoreError for anything that is not an older store."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no such store")
    if inspect_store(path).empty:  # migrate never makes a new store out of an empty file
        raise StoreError(f"{path}: not an intercept store (an empty file)")
    with Store(path, CREATE, warn=warn) as store:
        return store.backup_path


class Store:
    """A SQLite file holding recordings, transmissions, lines, flags and verdicts.

    `mode` says what the command may do to the file: READ never writes (verify, export),
    WRITE writes rows into an existing store of the current schema (flag, translate,
    verdicts), CREATE (run, migrate) creates a missing store and migrates an older one,
    first copying it aside. Anything that is not an intercept store, or is newer, is refused
    with StoreError before a byte is written. READ is the default; every writer names its mode
    (tests/test_store_rule.py checks that every `Store(` call in the code names one).

    `connection`: work on a connection someone else opened and checked (the review, on
    Datasette's write connection in its write queue: `on_connection`); nothing is opened,
    checked or migrated, and close() leaves the connection open."""

    def __init__(self, path: str | Path, mode: str = READ, warn: Optional[Callable[[str], None]] = None,
                 connection: Optional[sqlite3.Connection] = None):
        if mode not in MODES:
            raise ValueError(f"store mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self.backup_path: Optional[Path] = None
        self._warn = warn
        self._borrowed = connection is not None
        if connection is not None:
            if mode == CREATE:
                raise ValueError("a borrowed connection is never migrated: open it READ or WRITE")
            self.db = sqlite_utils.Database(connection)
        elif mode == CREATE:
            self._open_for_run()
        else:
            self._open_existing()
        if not (self._borrowed and mode == READ):  # a borrowed read connection is left as it is
            self.db.execute("PRAGMA foreign_keys = ON")

    @classmethod
    def on_connection(cls, conn: sqlite3.Connection, mode: str = READ) -> "Store":
        """A Store over `conn`, a connection to a store someone else opened and checked (the
        review's Datasette, which checked the file when it started)."""
        path = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "") or ""
        return cls(path, mode, connection=conn)

    def _connect(self, **params: str) -> None:
        conn = sqlite3.connect(_uri(self.path, **params), uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        self.db = sqlite_utils.Database(conn)

    def _open_existing(self) -> None:
        if not self.path.exists():
            raise StoreError(f"{self.path}: no such store")
        found = inspect_store(self.path)
        if found.empty:
            raise StoreError(f"{self.path}: not an intercept store (an empty file)")
        if found.older:
            raise StoreError(
                f"{self.path}: store schema version {found.schema} is older than this intercept's "
                f"({SCHEMA_VERSION}); run `intercept migrate {self.path}` first (it keeps a copy)"
            )
        if self.mode == READ:
            self.db = sqlite_utils.Database(read_only_connection(self.path))
            return
        problem = write_problem(self.path)
        if problem:
            raise StoreError(f"{self.path}: cannot write to the store ({problem})")
        self._connect(mode="rw")

    def _open_for_run(self) -> None:
        import fcntl

        if not self.path.parent.is_dir():
            raise StoreError(f"{self.path}: no such directory {self.path.parent}")
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"{self.path}: not a file")
        # Checked before anything is created or opened for writing.
        found = inspect_store(self.path)
        problem = write_problem(self.path) if self.path.exists() else None
        if problem:
            raise StoreError(f"{self.path}: cannot write to the store ({problem})")
        try:
            fd = os.open(lock_path(self.path), os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the store ({exc.strerror or exc})") from None
        try:
            # Two runs started together into one store: one migrates, the other waits, then
            # finds the schema current. The lock is on <store>.lock, never on the store file:
            # closing a descriptor of the store would drop SQLite's own locks on it.
            fcntl.flock(fd, fcntl.LOCK_EX)
            found = inspect_store(self.path)  # again: another run may have migrated it meanwhile
            self._connect(mode="rwc")
            if found.current:
                return
            if not found.empty:
                self.backup_path = self._backup(found.schema)
            # WAL lets reviewers read through Datasette while a batch writes.
            self.db.enable_wal()
            MIGRATIONS.apply(self.db)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            if self.backup_path is not None and self._warn:
                self._warn(f"{self.path}: migrated from schema {found.schema} to {SCHEMA_VERSION}; "
                           f"the store as it was is kept in {self.backup_path}")
        except BaseException:
            if getattr(self, "db", None) is not None:
                self.db.close()
            raise
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _backup(self, schema: int) -> Path:
        """The whole store (its WAL included) copied by SQLite's backup API to <path>.bak-<schema>."""
        target = self.path.with_name(f"{self.path.name}.bak-{schema}")
        if target.exists():
            raise StoreError(f"{self.path}: {target} exists already; move it aside, then migrate again")
        copy = sqlite3.connect(target)
        try:
            self.db.conn.backup(copy)
        finally:
            copy.close()
        return target

    def close(self) -> None:
        # Closing the last connection checkpoints the WAL into the main file, so the store
        # is one self-contained file again after a batch.
        if not self._borrowed:
            self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _reseal(self, recording_ids: Iterable[int], reason: str) -> None:
        """Seal these recordings' rows as they are now (intercept.store.seal), inside the
        caller's write transaction."""
        for recording_id in sorted(set(recording_ids)):
            seal.seal_recording(self.db.conn, recording_id, reason)

    def chain_head(self) -> Optional[dict]:
        """The store's last seal ({"id", "chain", "at", "seals"}), or None (intercept.store.seal)."""
        return seal.chain_head(self.db.conn)

    def check_seals(self) -> list[str]:
        """Every row whose content no longer matches its recording's seal, and every break in
        the chain of seals, one line each (intercept.store.seal.verify_store)."""
        return seal.verify_store(self.db.conn)

    def seal_head_problem(self, head: dict) -> Optional[str]:
        """None when the seal `head` (as an evidence bundle records it) is in this store's chain."""
        return seal.head_problem(self.db.conn, head)

    @contextmanager
    def _writing(self) -> Iterator[sqlite_utils.Database]:
        if self.mode == READ:
            raise StoreError(f"{self.path}: opened read-only")
        with immediate_transaction(self.db.conn):
            yield self.db

    # -- runs -----------------------------------------------------------------------------
    def start_run(self, engine: str, model: str, settings: dict, versions: dict) -> int:
        with self._writing():
            return (
                self.db["runs"]
                .insert(
                    {
                        "started_at": now(),
                        "engine": engine,
                        "model": model,
                        "settings": json.dumps(settings, ensure_ascii=False, default=str),
                        "versions": json.dumps(versions, default=str),
                    }
                )
                .last_pk
            )

    def finish_run(self, run_id: int, summary: dict) -> None:
        with self._writing():
            self.db["runs"].update(
                run_id, {"finished_at": now(), "summary": json.dumps(summary, ensure_ascii=False, default=str)}
            )

    def run_settings(self, recording_id: Optional[int] = None, *, line_id: Optional[int] = None) -> Optional[dict]:
        """The settings (RunOptions.to_dict()) of the run that stored recording `recording_id`
        (or line `line_id`), or None when it was stored outside a run or its run kept none."""
        return run_settings(self.db, recording_id, line_id=line_id)

    # -- lexicon --------------------------------------------------------------------------
    def save_lexicon_terms(self, version: str, terms: Iterable[Any]) -> None:
        """Record the terms of a lexicon version once, so every flag's version is explained."""
        with self._writing():
            insert_lexicon_terms(self.db, version, terms)

    # -- recordings -----------------------------------------------------------------------
    def done_recording(self, sha256: str) -> Optional[dict]:
        """The latest stored, completed recording with this content, if any."""
        rows = list(
            self.db.query(
                "SELECT * FROM recordings WHERE sha256 = ? AND status = 'done' ORDER BY id DESC LIMIT 1", [sha256]
            )
        )
        return rows[0] if rows else None

    def latest_at_path(self, path: str) -> Optional[dict]:
        """The latest done recording stored for this path, whatever its content."""
        rows = list(
            self.db.query(
                "SELECT * FROM recordings WHERE path = ? AND status = 'done' ORDER BY id DESC LIMIT 1", [path]
            )
        )
        return rows[0] if rows else None

    def paths_of(self, recording_id: int) -> list[dict]:
        """Every path the content of this recording was seen under, first seen first."""
        return self.rows(
            "SELECT * FROM recording_paths WHERE recording_id = ? ORDER BY first_seen_at, id", [recording_id]
        )

    def _drop_failed(self, facts: RecordingFacts) -> None:
        # A failed attempt holds no lines and no verdicts; a new attempt replaces it so the
        # store shows the file's current state once.
        self.db.execute("DELETE FROM recordings WHERE path = ? AND status = 'failed'", [facts.path])

    def _note_path(self, recording_id: int, facts: RecordingFacts, run_id: Optional[int]) -> bool:
        """Record that this recording's content was seen at facts' path; True when new."""
        seen = now_precise()
        cursor = self.db.execute(
            "UPDATE recording_paths SET last_seen_at = ?, run_id = ? WHERE recording_id = ? AND path_raw = ?",
            [seen, run_id, recording_id, facts.raw()],
        )
        if cursor.rowcount:
            return False
        self.db["recording_paths"].insert(
            {"recording_id": recording_id, "path": facts.path, "path_raw": facts.raw(), "first_seen_at": seen,
             "last_seen_at": seen, "run_id": run_id}
        )
        return True

    def add_path(self, recording_id: int, facts: RecordingFacts, run_id: Optional[int] = None) -> bool:
        """Record the same content seen under another (or the same) path, without processing
        it again. Returns True when the path is new for this recording."""
        with self._writing():
            self._drop_failed(facts)
            return self._note_path(recording_id, facts, run_id)

    def save_failure(self, facts: RecordingFacts, error: str, run_id: Optional[int]) -> int:
        with self._writing():
            self._drop_failed(facts)
            return (
                self.db["recordings"]
                .insert(
                    {
                        **facts.columns(),
                        "status": "failed",
                        "error": error,
                        "run_id": run_id,
                        "processed_at": now(),
                    }
                )
                .last_pk
            )

    def save_recording(
        self,
        facts: RecordingFacts,
        transmissions: Sequence[Transmission],
        lines: Sequence[Line],
        flags: Sequence[Sequence[Flag]],
        *,
        run_id: Optional[int],
        engine: str,
        model: str,
        translator: str,
        lexicon_version: str,
        translator_model: Optional[str] = None,
    ) -> int:
        """Store one processed recording with everything found in it, atomically.

        Nothing stored before is changed: when this path already has a done recording (the
        file changed, or a forced re-run), the new one becomes its next `version` and names
        it in `supersedes`; the old rows, and any verdicts on them, stay."""
        if len(flags) != len(lines):
            raise ValueError("one list of flags per line expected")
        db = self.db
        with self._writing():
            self._drop_failed(facts)
            previous = self.latest_at_path(facts.path)
            recording_id = (
                db["recordings"]
                .insert(
                    {
                        **facts.columns(),
                        "status": "done",
                        "error": None,
                        "run_id": run_id,
                        "processed_at": now(),
                        "version": (previous["version"] or 1) + 1 if previous else 1,
                        "supersedes": previous["id"] if previous else None,
                        "transmission_count": len(transmissions),
                        "line_count": len(lines),
                    }
                )
                .last_pk
            )
            self._note_path(recording_id, facts, run_id)
            tx_ids: dict[int, int] = {}
            for tx in transmissions:
                tx_ids[tx.idx] = (
                    db["transmissions"]
                    .insert(
                        {"recording_id": recording_id, "idx": tx.idx, "start_s": tx.start, "end_s": tx.end}
                    )
                    .last_pk
                )
            for idx, (line, line_flags) in enumerate(zip(lines, flags)):
                line_id = (
                    db["lines"]
                    .insert(
                        {
                            "recording_id": recording_id,
                            "transmission_id": tx_ids.get(line.transmission_idx),
                            "idx": idx,
                            "start_s": line.start,
                            "end_s": line.end,
                            "text_fa_raw": line.text,
                            "text_fa": line.text_fa,
                            "text_en": line.text_en or None,
                            "avg_logprob": line.avg_logprob,
                            "no_speech_prob": line.no_speech_prob,
                            "compression_ratio": line.compression_ratio,
                            "suspect": line.suspect,
                            "confidence": line.confidence,
                            "words": _json_or_none(line.words, lambda w: [w.text, w.start, w.end, w.probability]),
                            "alternatives": _json_or_none(
                                line.alternatives, lambda h: [h.text, round(h.logprob, 4), h.tokens]),
                            "engine": engine,
                            "model": model,
                            "translator": translator,
                            "translator_model": translator_model,
                        }
                    )
                    .last_pk
                )
                self._insert_flags(line_id, line_flags, lexicon_version)
            self._reseal([recording_id], "stored")
        return recording_id

    def originals(self) -> list[dict]:
        """One row per path a done recording was seen under, with the content expected there
        now (the recording seen there last): path, path_raw, recording_id, sha256."""
        return self.rows(
            """
            SELECT p.path, p.path_raw, p.recording_id, r.sha256, p.last_seen_at
            FROM recording_paths p JOIN recordings r ON r.id = p.recording_id
            WHERE p.id = (SELECT p2.id FROM recording_paths p2 WHERE p2.path_raw = p.path_raw
                          ORDER BY p2.last_seen_at DESC, p2.id DESC LIMIT 1)
            ORDER BY p.path
            """
        )

    def check_integrity(self) -> list[str]:
        """Problems in the store, one line each; empty when it is whole. Checks SQLite's own
        integrity and foreign keys, that every done recording holds exactly the transmissions
        and lines it was saved with, and that nothing hangs off a missing or failed recording."""
        problems = []
        for (result,) in self.db.execute("PRAGMA integrity_check").fetchall():
            if result != "ok":
                problems.append(f"integrity_check: {result}")
        for table, rowid, parent, _ in self.db.execute("PRAGMA foreign_key_check").fetchall():
            problems.append(f"{table} row {rowid}: missing {parent} row")
        for row in self.db.query(
            """
            SELECT r.id, r.path, r.transmission_count, r.line_count,
              (SELECT count(*) FROM transmissions t WHERE t.recording_id = r.id) AS transmissions,
              (SELECT count(*) FROM lines l WHERE l.recording_id = r.id) AS lines
            FROM recordings r WHERE r.status = 'done'
            """
        ):
            if (row["transmissions"], row["lines"]) != (row["transmission_count"], row["line_count"]):
                problems.append(
                    f"recording {row['id']} ({row['path']}): {row['transmissions']} transmissions and "
                    f"{row['lines']} lines stored, {row['transmission_count']} and {row['line_count']} saved"
                )
        for table in ("transmissions", "lines"):
            for row in self.db.query(
                f"SELECT {table}.id FROM {table} LEFT JOIN recordings r ON r.id = {table}.recording_id "
                "WHERE r.id IS NULL OR r.status != 'done'"
            ):
                problems.append(f"{table} row {row['id']}: its recording is missing or not done")
        for row in self.db.query(
            "SELECT p.id FROM recording_paths p LEFT JOIN recordings r ON r.id = p.recording_id "
            "WHERE r.id IS NULL OR r.status != 'done'"
        ):
            problems.append(f"recording_paths row {row['id']}: its recording is missing or not done")
        return problems

    def _insert_flags(self, line_id: int, flags: Iterable[Flag], lexicon_version: str) -> None:
        revisions.insert_flags(self.db, line_id, flags, lexicon_version)

    def save_derived(self, derived: Iterable[tuple[int, Line, Sequence[Flag]]], lexicon_version: str,
                     translator: Optional[tuple[str, Optional[str]]] = None, english_from_text: bool = True) -> int:
        """Write what the post-recognition step derived again for stored lines, in one
        transaction: (line_id, Line, flags) gives the normalised Farsi, the suspect marks and
        the flags; with `translator` (name, model) also the English and who made it
        (`english_from_text`: from the Farsi text, not the audio; a corrected line's English is
        kept unless a text translator made it from the corrected Farsi, store/revisions.py).
        Verdicts are keyed by line and never touched. Returns the number of lines."""
        count = 0
        with self._writing():
            touched = []
            for line_id, line, flags in derived:
                values = {"text_fa": line.text_fa, "suspect": line.suspect}
                if translator is not None:
                    values.update(text_en=line.text_en or None, translator=translator[0],
                                  translator_model=translator[1])
                if translator is not None:
                    values.update(revisions.derived_english(self.db, line_id, english_from_text))
                # A prepared UPDATE, not sqlite-utils' Table.update, which reads the schema and the
                # row first on every call (with insert_flags, 46 % of `intercept flag`'s profile).
                self.db.execute(f"UPDATE lines SET {', '.join(f'[{column}] = ?' for column in values)} WHERE id = ?",
                                [*values.values(), line_id])
                # A correction's superseded flags are kept, and reviewers' flags are people's
                # findings, never the lexicon's to take back: only the current lexicon flags are
                # derived again.
                self.db.execute("DELETE FROM flags WHERE line_id = ? AND superseded_by_revision IS NULL "
                                "AND kind IS NOT 'reviewer'", [line_id])
                revisions.insert_flags(self.db, line_id, flags, lexicon_version,
                                       **revisions.flag_provenance(self.db, line_id))
                touched.append(line_id)
                count += 1
            self._reseal(self._recordings_of_lines(touched), "translated" if translator is not None else "reflagged")
        return count

    def _recordings_of_lines(self, line_ids: Sequence[int]) -> set[int]:
        found: set[int] = set()
        for start in range(0, len(line_ids), 500):
            chunk = list(line_ids[start:start + 500])
            found.update(row[0] for row in self.db.execute(
                f"SELECT DISTINCT recording_id FROM lines WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
        return found

    def save_correction(self, correction: "revisions.Correction") -> int:
        """Write one reviewer's correction of a line (intercept.corrections derives it), all in
        one transaction: the revision, the line's current text, its earlier flags marked
        superseded and the flags derived from the reviewer's text. Returns the revision id."""
        with self._writing():
            return revisions.insert_correction(self.db, correction)

    def add_verdict(
        self, line_id: int, verdict: str, reviewer: str, note: str = "", flag_id: Optional[int] = None,
        concept: Optional[str] = None, decision: bool = False,
    ) -> int:
        """Append a verdict on one flag's concept (flag_id), one concept, or every concept of a
        flagged line; `verdict="withdrawn"` withdraws the reviewer's standing one; `decision`: a
        lead's decision. Returns the first new row's id (intercept.store.team.add_verdicts)."""
        with self._writing():
            return team.add_verdicts(self.db, line_id, verdict, reviewer, note, flag_id, concept, decision)[0]

    def add_reviewer_flag(self, line_id: int, concept: str, reviewer: str, note: str = "",
                          heard_form: Optional[str] = None, suggest: bool = False) -> dict:
        """A reviewer marks a line as coded (intercept.store.team.add_reviewer_flag)."""
        with self._writing():
            return team.add_reviewer_flag(self.db, line_id, concept, reviewer, note, heard_form=heard_form,
                                          suggest=suggest)

    def review_of_lines(self, line_ids: Sequence[int]) -> dict[int, dict]:
        """Each line's verdict rows and per-concept outcomes (intercept.store.team.review_of_lines)."""
        return team.review_of_lines(self.db.conn, line_ids)

    def lexicon_suggestions(self, status: Optional[str] = "open") -> list[dict]:
        return team.lexicon_suggestions(self.db.conn, status)

    # -- reads ----------------------------------------------------------------------------
    def iter_lines(
        self, recording_id: Optional[int] = None, flagged_only: bool = False
    ) -> Iterable[dict]:
        """Stored lines in recording and time order, each with its recording's path and its
        flags (a list of dicts), for re-flagging, re-translating and export."""
        where, params = ["1=1"], []
        if recording_id is not None:
            where.append("lines.recording_id = ?")
            params.append(recording_id)
        if flagged_only:
            where.append("EXISTS (SELECT 1 FROM flags WHERE flags.line_id = lines.id)")
        sql = (
            "SELECT lines.*, recordings.path AS recording_path, transmissions.idx AS transmission_idx "
            "FROM lines JOIN recordings ON recordings.id = lines.recording_id "
            "LEFT JOIN transmissions ON transmissions.id = lines.transmission_id "
            f"WHERE {' AND '.join(where)} ORDER BY lines.recording_id, lines.start_s, lines.id"
        )
        for row in self.db.query(sql, params):
            row["flags"] = list(
                self.db.query("SELECT * FROM flags WHERE line_id = ? AND superseded_by_revision IS NULL "
                              "ORDER BY span_start, id", [row["id"]])
            )
            yield row

    def recording_ids_with_lines(self, recording_id: Optional[int] = None) -> list[int]:
        """Ids of the recordings that hold lines (only `recording_id`'s, when given), in order."""
        if recording_id is not None:
            return [row[0] for row in self.db.execute(
                "SELECT DISTINCT recording_id FROM lines WHERE recording_id = ?", [recording_id])]
        return [row[0] for row in self.db.execute("SELECT DISTINCT recording_id FROM lines ORDER BY recording_id")]

    def recording(self, recording_id: int) -> Optional[dict]:
        """The recordings row with this id, or None."""
        rows = self.rows("SELECT * FROM recordings WHERE id = ?", [recording_id])
        return rows[0] if rows else None

    def verdicts_of(self, line_id: int) -> list[dict]:
        """Every verdict on a line, oldest first (the last one is the line's current verdict)."""
        return self.rows("SELECT * FROM verdicts WHERE line_id = ? ORDER BY at, id", [line_id])

    def confirmed_line_ids(self) -> set[int]:
        """The confirmed lines: a flag's concept whose outcome is confirmed (view confirmed_lines;
        the meaning is in intercept.store.team)."""
        return team.confirmed_line_ids(self.db.conn)

    def count(self, table: str, where: Optional[str] = None, params: Sequence[Any] = ()) -> int:
        return self.db[table].count_where(where, params) if where else self.db[table].count

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict]:
        return list(self.db.query(sql, params))

    # -- voices (intercept.voices computes, this stores) ----------------------------------
    def save_voice_prints(self, recording_id: int, prints: dict[int, tuple[str, float, Optional[bytes]]],
                          model: str, model_version: str) -> int:
        """Store (status, speech_s, embedding bytes or None) per transmission idx of a recording,
        replacing an earlier embedding of the same model version. Returns how many were stored."""
        with self._writing():
            ids = {row["idx"]: row["id"] for row in self.transmissions_of(recording_id)}
            made = now()
            for idx, (status, speech_s, blob) in prints.items():
                if idx in ids:
                    self.db.execute(
                        "INSERT OR REPLACE INTO voice_embeddings (transmission_id, model, model_version, status, "
                        "speech_s, embedding, made_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [ids[idx], model, model_version, status, speech_s, blob, made],
                    )
        return len(prints)

    def transmissions_of(self, recording_id: int) -> list[dict]:
        return self.rows("SELECT id, idx, start_s, end_s, voice_id FROM transmissions WHERE recording_id = ? "
                         "ORDER BY idx", [recording_id])

    def recordings_needing_embeddings(self, model: str, model_version: str) -> list[dict]:
        """Done recordings with a transmission that has no embedding of this model version."""
        return self.rows(
            "SELECT r.id, r.path FROM recordings r WHERE r.status = 'done' AND EXISTS ("
            " SELECT 1 FROM transmissions t WHERE t.recording_id = r.id AND NOT EXISTS ("
            "  SELECT 1 FROM voice_embeddings e WHERE e.transmission_id = t.id AND e.model = ? "
            "  AND e.model_version = ?)) ORDER BY r.id",
            [model, model_version],
        )

    def voice_embeddings(self, model: str, model_version: str) -> list[dict]:
        """Every embedded transmission of this model version: transmission_id, embedding and
        the transmission's voice_id (NULL when it has no voice yet)."""
        return self.rows(
            "SELECT e.transmission_id, e.embedding, t.voice_id FROM voice_embeddings e "
            "JOIN transmissions t ON t.id = e.transmission_id "
            "WHERE e.status = 'ok' AND e.model = ? AND e.model_version = ? ORDER BY e.transmission_id",
            [model, model_version],
        )

    def open_voices(self, model: str, model_version: str) -> list[dict]:
        """Voices of this model version that take new members (not merged into another)."""
        return self.rows("SELECT * FROM voices WHERE merged_into IS NULL AND model = ? AND model_version = ? "
                         "ORDER BY id", [model, model_version])

    def voice(self, voice_id: int) -> Optional[dict]:
        rows = self.rows("SELECT * FROM voices WHERE id = ?", [voice_id])
        return rows[0] if rows else None

    def _new_voice(self, model: str, model_version: str, created_by: str, name: Optional[str] = None) -> int:
        at = now()
        return self.db["voices"].insert(
            {"name": name, "n": 0, "model": model, "model_version": model_version, "created_at": at,
             "created_by": created_by, "named_by": created_by if name else None, "named_at": at if name else None,
             "updated_at": at}
        ).last_pk

    def place_in_voices(self, joined: dict[int, int], new_groups: Sequence[Sequence[int]], model: str,
                        model_version: str) -> list[int]:
        """Give transmissions without a voice their voice: `joined` maps transmission id to an
        existing voice, each of `new_groups` becomes a new voice. Only transmissions whose
        voice_id is still NULL are touched. Returns the new voices' ids."""
        created = []
        with self._writing():
            for tx_id, voice_id in joined.items():
                self.db.execute("UPDATE transmissions SET voice_id = ? WHERE id = ? AND voice_id IS NULL",
                                [voice_id, tx_id])
            for group in new_groups:
                voice_id = self._new_voice(model, model_version, "run")
                created.append(voice_id)
                for tx_id in group:
                    self.db.execute("UPDATE transmissions SET voice_id = ? WHERE id = ? AND voice_id IS NULL",
                                    [voice_id, tx_id])
        return created

    def voice_member_embeddings(self, voice_id: int) -> list[bytes]:
        return [row["embedding"] for row in self.db.query(
            "SELECT e.embedding FROM transmissions t JOIN voices v ON v.id = t.voice_id "
            "JOIN voice_embeddings e ON e.transmission_id = t.id AND e.model = v.model "
            "AND e.model_version = v.model_version AND e.status = 'ok' WHERE t.voice_id = ? ORDER BY t.id",
            [voice_id])]

    def set_voice_centroid(self, voice_id: int, centroid: Optional[bytes], n: int) -> None:
        with self._writing():
            self.db["voices"].update(voice_id, {"centroid": centroid, "n": n, "updated_at": now()})

    def _decide(self, action: str, reviewer: str, voice_id: int, other_voice_id: Optional[int] = None,
                transmission_ids: Optional[Sequence[int]] = None, name: Optional[str] = None) -> None:
        self.db["voice_decisions"].insert(
            {"action": action, "voice_id": voice_id, "other_voice_id": other_voice_id,
             "transmission_ids": json.dumps(list(transmission_ids)) if transmission_ids is not None else None,
             "name": name, "reviewer": reviewer, "at": now()}
        )

    def _open_voice(self, voice_id: int) -> dict:
        found = self.voice(voice_id)
        if found is None:
            raise ValueError(f"no voice {voice_id}")
        if found["merged_into"] is not None:
            raise ValueError(f"voice {voice_id} was merged into voice {found['merged_into']}")
        return found

    def name_voice(self, voice_id: int, name: str, reviewer: str) -> None:
        """A reviewer names (or renames; an empty name clears) a voice."""
        name = " ".join((name or "").split()) or None
        with self._writing():
            self._open_voice(voice_id)
            self.db["voices"].update(voice_id, {"name": name, "named_by": reviewer, "named_at": now(),
                                                "updated_at": now()})
            self._decide("name", reviewer, voice_id, name=name)

    def merge_voices(self, source_id: int, target_id: int, reviewer: str) -> None:
        """Move every transmission of voice source_id to target_id; the source stays, merged."""
        if source_id == target_id:
            raise ValueError("a voice cannot be merged into itself")
        with self._writing():
            source, target = self._open_voice(source_id), self._open_voice(target_id)
            if (source["model"], source["model_version"]) != (target["model"], target["model_version"]):
                raise ValueError(f"voices {source_id} and {target_id} come from different voice models")
            self.db.execute("UPDATE transmissions SET voice_id = ? WHERE voice_id = ?", [target_id, source_id])
            if not target["name"] and source["name"]:
                # The merged voice keeps the only name a reviewer gave.
                self.db["voices"].update(target_id, {"name": source["name"], "named_by": source["named_by"],
                                                     "named_at": source["named_at"]})
            self.db["voices"].update(source_id, {"merged_into": target_id, "updated_at": now()})
            self._decide("merge", reviewer, source_id, other_voice_id=target_id)

    def split_voice(self, voice_id: int, transmission_ids: Sequence[int], reviewer: str,
                    name: Optional[str] = None) -> int:
        """Move some transmissions of a voice to a new voice made by the reviewer."""
        wanted = sorted({int(t) for t in transmission_ids})
        if not wanted:
            raise ValueError("choose at least one transmission to split off")
        with self._writing():
            voice = self._open_voice(voice_id)
            members = {row["id"] for row in self.db.query(
                f"SELECT id FROM transmissions WHERE voice_id = ? AND id IN ({', '.join('?' * len(wanted))})",
                [voice_id, *wanted])}
            strangers = [t for t in wanted if t not in members]
            if strangers:
                raise ValueError(f"transmission(s) {', '.join(map(str, strangers))} are not of voice {voice_id}")
            name = " ".join((name or "").split()) or None
            new_id = self._new_voice(voice["model"], voice["model_version"], reviewer, name)
            self.db.execute(f"UPDATE transmissions SET voice_id = ? WHERE id IN ({', '.join('?' * len(wanted))})",
                            [new_id, *wanted])
            self._decide("split", reviewer, voice_id, other_voice_id=new_id, transmission_ids=wanted, name=name)
        return new_id

    def voices_overview(self) -> list[dict]:
        """Every voice not merged away, with its transmissions, recordings and lines counted."""
        if "voices" not in self.db.table_names():
            return []
        return self.rows(
            "SELECT v.id, v.name, v.n, v.created_by, v.named_by, v.created_at, "
            " (SELECT count(*) FROM transmissions t WHERE t.voice_id = v.id) AS transmissions, "
            " (SELECT count(DISTINCT t.recording_id) FROM transmissions t WHERE t.voice_id = v.id) AS recordings, "
            " (SELECT count(*) FROM lines l JOIN transmissions t ON t.id = l.transmission_id "
            "  WHERE t.voice_id = v.id) AS lines, "
            " (SELECT count(DISTINCT f.line_id) FROM flags f JOIN lines l ON l.id = f.line_id "
            "  JOIN transmissions t ON t.id = l.transmission_id WHERE t.voice_id = v.id) AS flagged_lines "
            "FROM voices v WHERE v.merged_into IS NULL ORDER BY v.id"
        )

    def voice_transmissions(self, voice_id: int) -> list[dict]:
        """A voice's transmissions in recording and time order, each with its lines' text."""
        return self.rows(
            "SELECT t.id AS transmission_id, t.recording_id, r.path AS recording, t.start_s, t.end_s, "
            " (SELECT min(l.id) FROM lines l WHERE l.transmission_id = t.id) AS line_id, "
            " (SELECT group_concat(l.text_fa, ' ') FROM lines l WHERE l.transmission_id = t.id) AS text_fa, "
            " (SELECT group_concat(l.text_en, ' ') FROM lines l WHERE l.transmission_id = t.id) AS text_en, "
            " (SELECT group_concat(DISTINCT f.concept) FROM flags f JOIN lines l ON l.id = f.line_id "
            "  WHERE l.transmission_id = t.id) AS concepts "
            "FROM transmissions t JOIN recordings r ON r.id = t.recording_id WHERE t.voice_id = ? "
            "ORDER BY t.recording_id, t.start_s",
            [voice_id],
        )

    def voices_of_lines(self, line_ids: Sequence[int]) -> dict[int, dict]:
        """{line id: {voice_id, name}} for the given lines that have a voice."""
        if not line_ids or "voices" not in self.db.table_names():
            return {}
        marks = ", ".join("?" * len(line_ids))
        return {row["line_id"]: {"voice_id": row["voice_id"], "name": row["name"]} for row in self.db.query(
            f"SELECT l.id AS line_id, v.id AS voice_id, v.name FROM lines l "
            f"JOIN transmissions t ON t.id = l.transmission_id JOIN voices v ON v.id = t.voice_id "
            f"WHERE l.id IN ({marks})", [int(i) for i in line_ids])}

    def voice_decisions(self) -> list[dict]:
        return self.rows("SELECT * FROM voice_decisions ORDER BY id")


def insert_verdict(db: sqlite_utils.Database, line_id: int, verdict: str, reviewer: str, note: str = "",
                   flag_id: Optional[int] = None) -> int:
    """Insert one reviewer verdict; the caller holds the write transaction."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
    found = db.execute("SELECT recording_id FROM lines WHERE id = ?", [line_id]).fetchone()
    if found is None:
        raise ValueError(f"no line {line_id}")
    verdict_id = (
        db["verdicts"]
        .insert({"line_id": line_id, "flag_id": flag_id, "verdict": verdict, "note": note or None,
                 "reviewer": reviewer, "at": now()})
        .last_pk
    )
    # The line's recording is sealed again with the verdict, in the same transaction.
    seal.seal_recording(db.conn, found[0], "verdict")
    return verdict_id


def write_on_connection(conn: sqlite3.Connection, work: Callable[..., Any], *args, **kwargs):
    """work(store, *args, **kwargs) in one write transaction on `conn`, a connection someone
    else opened: the review's writes (voices: name, merge, split) run so in Datasette's write
    queue (`execute_write_fn`), one writer thread per database."""
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    store = Store.on_connection(conn, WRITE)
    with immediate_transaction(conn):
        return work(store, *args, **kwargs)


def write_verdict(conn: sqlite3.Connection, line_id: int, verdict: str, reviewer: str, note: str = "",
                  flag_id: Optional[int] = None, concept: Optional[str] = None, decision: bool = False) -> list[int]:
    """A verdict written on a connection someone else opened: the review plugin calls it in
    Datasette's write queue (`execute_write_fn`), one transaction per verdict (one row per
    concept it covers; intercept.store.team.add_verdicts). Returns the new rows' ids."""
    return team.write_team(conn, team.add_verdicts, line_id, verdict, reviewer, note, flag_id, concept, decision)
