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

import datetime as _dt
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import sqlite_utils
from sqlite_utils.migrations import Migrations

from .types import Flag, Line, Transmission

VERDICTS = ("confirmed", "false_positive", "unsure")

# One row per flagged line, derived from lines, flags and verdicts. Migration 0001 made this
# the flagged_lines view; migration 0004 keeps its rows in line_review instead.
LINE_REVIEW_SELECT = """
SELECT
  lines.id AS line_id,
  lines.recording_id,
  recordings.path AS recording,
  lines.start_s,
  lines.end_s,
  lines.text_fa,
  lines.text_en,
  group_concat(DISTINCT flags.concept) AS concepts,
  group_concat(DISTINCT flags.category) AS categories,
  group_concat(DISTINCT flags.kind) AS kinds,
  max(flags.score) AS score,
  lines.avg_logprob,
  lines.no_speech_prob,
  lines.suspect,
  (SELECT v.verdict FROM verdicts v WHERE v.line_id = lines.id ORDER BY v.at DESC, v.id DESC LIMIT 1) AS verdict,
  (SELECT v.reviewer FROM verdicts v WHERE v.line_id = lines.id ORDER BY v.at DESC, v.id DESC LIMIT 1) AS reviewer,
  (SELECT v.at FROM verdicts v WHERE v.line_id = lines.id ORDER BY v.at DESC, v.id DESC LIMIT 1) AS verdict_at
FROM lines
JOIN flags ON flags.line_id = lines.id
JOIN recordings ON recordings.id = lines.recording_id
GROUP BY lines.id
"""
FLAGGED_LINES_VIEW = LINE_REVIEW_SELECT + "ORDER BY max(flags.score) DESC, lines.recording_id, lines.start_s\n"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def now_precise() -> str:
    # Microseconds: "which path was seen last" must order sightings within one second.
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


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

    def columns(self) -> dict:
        """The recordings columns these facts fill."""
        return {"path": self.path, "sha256": self.sha256, "duration_s": self.duration_s,
                "format": self.format, "size_bytes": self.size_bytes}

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
        ("flags", {"match_score": float, "word_prob": float, "nbest_share": float, "prior": float,
                   "hypothesis": str, "scorer_version": str}),
    ]:
        have = db[table].columns_dict
        for name, kind in columns.items():
            if name not in have:  # a crash between two columns leaves the rest to add
                db[table].add_column(name, kind)


# The schema version is the number of migrations; PRAGMA user_version mirrors it so that an
# older intercept (which only knows user_version) also refuses a newer store.
SCHEMA_VERSION = len(_MIGRATION_NAMES)
_KNOWN_MIGRATIONS = frozenset(_MIGRATION_NAMES)


# Flag attributes stored as they are (None: unknown); the scorer fills them.
_FLAG_EVIDENCE = ("match_score", "word_prob", "nbest_share", "prior", "hypothesis", "scorer_version")


def _json_or_none(items, row) -> Optional[str]:
    """None stays NULL (the engine could not give it); a list, even empty, is JSON."""
    if items is None:
        return None
    return json.dumps([row(item) for item in items], ensure_ascii=False)


def line_evidence(row: dict) -> dict[str, Any]:
    """A stored line's recogniser evidence back as Line fields (words, alternatives,
    confidence); None where the row holds none (an old store, or an engine that gave none)."""
    from .types import Hypothesis, Word

    words = json.loads(row["words"]) if row.get("words") else None
    alternatives = json.loads(row["alternatives"]) if row.get("alternatives") else None
    return {
        "words": None if words is None else [Word(w[0], w[1], w[2], w[3]) for w in words],
        "alternatives": None if alternatives is None else [
            Hypothesis(h[0], h[1] / h[2] if h[2] else h[1], h[2]) for h in alternatives],
        "confidence": row.get("confidence"),
    }


class Store:
    """A SQLite file holding recordings, transmissions, lines, flags and verdicts."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.db = sqlite_utils.Database(self.path)
            self._check_not_newer()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not an intercept store ({exc})") from None
        # WAL lets reviewers read through Datasette while a batch writes.
        self.db.enable_wal()
        self.db.execute("PRAGMA foreign_keys = ON")
        self._ensure_schema()

    def close(self) -> None:
        # Closing the last connection checkpoints the WAL into the main file, so the store
        # is one self-contained file again after a batch.
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------------------
    def _check_not_newer(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        unknown = sorted({m.name for m in MIGRATIONS.applied(self.db)} - _KNOWN_MIGRATIONS)
        if version > SCHEMA_VERSION or unknown:
            raise StoreError(
                f"{self.path}: store schema version {version} is newer than this intercept understands "
                f"({SCHEMA_VERSION}{'; unknown migrations ' + ', '.join(unknown) if unknown else ''}); "
                "upgrade intercept"
            )

    def _ensure_schema(self) -> None:
        MIGRATIONS.apply(self.db)
        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- runs -----------------------------------------------------------------------------
    def start_run(self, engine: str, model: str, settings: dict, versions: dict) -> int:
        with self.db.atomic():
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
        with self.db.atomic():
            self.db["runs"].update(
                run_id, {"finished_at": now(), "summary": json.dumps(summary, ensure_ascii=False, default=str)}
            )

    # -- lexicon --------------------------------------------------------------------------
    def save_lexicon_terms(self, version: str, terms: Iterable[Any]) -> None:
        """Record the terms of a lexicon version once, so every flag's version is explained."""
        with self.db.atomic():
            if self.db["lexicon_terms"].count_where("lexicon_version = ?", [version]):
                return
            self.db["lexicon_terms"].insert_all(
                {
                    "concept": t.concept,
                    "category": t.category,
                    "severity": t.severity,
                    "form": t.form,
                    "lang": t.lang,
                    "lexicon_version": version,
                }
                for t in terms
            )

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
        with self.db.atomic():
            self._drop_failed(facts)
            return self._note_path(recording_id, facts, run_id)

    def save_failure(self, facts: RecordingFacts, error: str, run_id: Optional[int]) -> int:
        with self.db.atomic():
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
        with db.atomic():
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
        self.db["flags"].insert_all(
            {
                "line_id": line_id,
                "concept": f.concept,
                "category": f.category,
                "severity": f.severity,
                "kind": f.kind,
                "score": round(f.score, 4),
                "span_start": f.span_start,
                "span_end": f.span_end,
                "matched": f.matched,
                "term": f.term,
                "lexicon_version": lexicon_version,
                **{name: getattr(f, name, None) for name in _FLAG_EVIDENCE},
            }
            for f in flags
        )

    def update_translations(self, rows: Iterable[tuple[int, str, str, Optional[str]]]) -> int:
        """Set (line_id, text_en, translator, translator_model) on stored lines, atomically."""
        count = 0
        with self.db.atomic():
            for line_id, text_en, translator, model in rows:
                self.db["lines"].update(
                    line_id, {"text_en": text_en or None, "translator": translator, "translator_model": model}
                )
                count += 1
        return count

    def replace_flags(self, flags_by_line: Iterable[tuple[int, Sequence[Flag]]], lexicon_version: str) -> int:
        """Replace the flags of the given lines (a re-flag after a lexicon edit), atomically.
        Verdicts are keyed by line and are never touched."""
        count = 0
        with self.db.atomic():
            for line_id, flags in flags_by_line:
                self.db.execute("DELETE FROM flags WHERE line_id = ?", [line_id])
                self._insert_flags(line_id, flags, lexicon_version)
                count += len(flags)
        return count

    def add_verdict(
        self, line_id: int, verdict: str, reviewer: str, note: str = "", flag_id: Optional[int] = None
    ) -> int:
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
        if not self.db["lines"].count_where("id = ?", [line_id]):
            raise ValueError(f"no line {line_id}")
        with self.db.atomic():
            return (
                self.db["verdicts"]
                .insert(
                    {"line_id": line_id, "flag_id": flag_id, "verdict": verdict, "note": note or None,
                     "reviewer": reviewer, "at": now()}
                )
                .last_pk
            )

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
                self.db.query("SELECT * FROM flags WHERE line_id = ? ORDER BY span_start, id", [row["id"]])
            )
            yield row

    def count(self, table: str, where: Optional[str] = None, params: Sequence[Any] = ()) -> int:
        return self.db[table].count_where(where, params) if where else self.db[table].count

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict]:
        return list(self.db.query(sql, params))
