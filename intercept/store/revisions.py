"""Reviewers' corrections of a line's text, kept as revisions (the SQL; the logic is
intercept.corrections).

Each correction appends a `line_revisions` row (the line, the reviewer's Farsi, their English
or NULL, who, when, the revision it replaces). Nothing the recogniser wrote is changed:
`lines.text_fa_raw` stays the recogniser's text, and the machine's normalised Farsi and English
are copied once, at the first correction, to `lines.text_fa_machine` / `text_en_machine`.
`lines.text_fa` / `text_en` are the line's current text (read by search, the queue and every
export without a join), `lines.revision_id` the revision they come from (NULL: the machine's),
and `lines.text_en_from` where the current English came from:

    NULL            the run's translator on the recognised text (no correction)
    reviewer        typed by the reviewer with the correction
    corrected_fa    the text translator on the corrected Farsi
    uncorrected_fa  the old English, made from the uncorrected text (not reliable)

A correction's flags are derived again from the reviewer's text (flags.source = 'reviewer_text',
flags.revision_id = the revision); the flags the line held before are kept, with
flags.superseded_by_revision set, and leave the review queue (line_review reads only flags
that are not superseded). flags.source NULL is the recogniser's (rows written before this
migration and by `run`).

`save_correction` writes all of one correction in one transaction: the one place a seal over
a recording's rows (intercept/store/seal.py) needs to know about.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import sqlite_utils

# This module is imported by intercept.store halfway through (its migration must be registered
# before the schema version is counted): names defined after that point are read at call time.
from intercept import store as _store
from . import LINE_REVIEW_SELECT, _migration, now, seal

REVIEWER = "reviewer"
CORRECTED_FA = "corrected_fa"
UNCORRECTED_FA = "uncorrected_fa"
EN_SOURCES = (REVIEWER, CORRECTED_FA, UNCORRECTED_FA)
REVIEWER_TEXT = "reviewer_text"  # flags.source of flags derived from a reviewer's text
RECOGNISER = "recogniser"  # flags.source of the recogniser's flags (also NULL on older rows)

REVISIONS_SQL = """
CREATE TABLE IF NOT EXISTS line_revisions (
  id INTEGER PRIMARY KEY,
  line_id INTEGER NOT NULL REFERENCES lines(id),
  text_fa TEXT NOT NULL,
  text_en TEXT,
  reviewer TEXT NOT NULL,
  at TEXT NOT NULL,
  replaces INTEGER REFERENCES line_revisions(id),
  note TEXT
);
CREATE INDEX IF NOT EXISTS line_revisions_line ON line_revisions(line_id, id);
DROP VIEW IF EXISTS line_review_source;
CREATE VIEW line_review_source AS {select};
"""

# The queue counts only the flags a line holds now: a correction's superseded flags stay in
# `flags` (never deleted) but not in line_review. The triggers of migration 0004 read this view.
CURRENT_LINE_REVIEW_SELECT = LINE_REVIEW_SELECT.replace(
    "JOIN flags ON flags.line_id = lines.id",
    "JOIN flags ON flags.line_id = lines.id AND flags.superseded_by_revision IS NULL")
assert CURRENT_LINE_REVIEW_SELECT != LINE_REVIEW_SELECT


@_migration("0011_revisions")
def _revisions(db: sqlite_utils.Database) -> None:
    """Reviewers' corrections (line_revisions), the columns saying which text is current and
    which is the machine's, and the provenance of flags (module docstring)."""
    for table, columns in [
        ("lines", {"revision_id": int, "text_fa_machine": str, "text_en_machine": str, "text_en_from": str}),
        ("flags", {"source": str, "revision_id": int, "superseded_by_revision": int}),
    ]:
        have = db[table].columns_dict
        for name, kind in columns.items():
            if name not in have:
                db[table].add_column(name, kind)
    # Split by hand (executescript would commit mid-migration); no statement holds a ';' inside.
    for statement in REVISIONS_SQL.format(select=CURRENT_LINE_REVIEW_SELECT).split(";\n"):
        if statement.strip():
            db.execute(statement)
    # No flag is superseded yet, so line_review needs no re-derivation here. The recordings
    # sealed so far are sealed again with the new contents (below), so that an edit of the new
    # columns is seen from now on.
    if seal.has_seals(db.conn):
        seal.seal_all(db.conn, "migrated: 0011_revisions")


# What a correction writes goes into its recording's seal (intercept.store.seal): the revisions,
# which text of a line is current, and where each flag came from.
seal.register(seal.RecordingContent(
    "line_revisions", "line revision",
    "SELECT r.id, r.line_id, r.text_fa, r.text_en, r.reviewer, r.at, r.replaces, r.note FROM line_revisions r "
    "JOIN lines l ON l.id = r.line_id WHERE l.recording_id = ? ORDER BY r.id",
    ("line_revisions", "lines")))
seal.register(seal.RecordingContent(
    "line_corrections", "line",
    "SELECT id, revision_id, text_fa_machine, text_en_machine, text_en_from FROM lines "
    "WHERE recording_id = ? AND revision_id IS NOT NULL ORDER BY id",
    ("line_revisions", "lines")))
seal.register(seal.RecordingContent(
    "flag_provenance", "flag",
    "SELECT f.id, f.source, f.revision_id, f.superseded_by_revision FROM flags f JOIN lines l ON l.id = f.line_id "
    "WHERE l.recording_id = ? AND (f.source IS NOT NULL OR f.superseded_by_revision IS NOT NULL) ORDER BY f.id",
    ("line_revisions", "flags", "lines")))


class CorrectionConflict(ValueError):
    """The line was corrected by someone else after this correction was derived."""


@dataclass
class Correction:
    """One correction, derived and ready to write (intercept.corrections makes it)."""

    line_id: int
    text_fa: str  # the reviewer's Farsi as typed (stored in the revision)
    text_fa_normalised: str  # lines.text_fa from now on
    text_en: Optional[str]  # the reviewer's English, None when not given
    current_en: Optional[str]  # lines.text_en from now on
    en_from: str  # one of EN_SOURCES
    reviewer: str
    suspect: Optional[str]
    flags: Sequence[Any] = field(default_factory=list)  # intercept.types.Flag, derived from the reviewer text
    lexicon_version: str = ""
    replaces: Optional[int] = None  # the line's revision when this was derived (None: the machine's)
    translator: Optional[tuple[str, Optional[str]]] = None  # who made current_en when en_from is corrected_fa
    note: Optional[str] = None


def database(conn: sqlite3.Connection) -> sqlite_utils.Database:
    """This module's view of a connection someone else opened (the review's, on Datasette's
    connections), for the functions here that take a Database."""
    return sqlite_utils.Database(conn)


def _one(db: sqlite_utils.Database, sql: str, params: Sequence[Any]) -> Optional[dict]:
    rows = list(db.query(sql, params))
    return rows[0] if rows else None


def insert_correction(db: sqlite_utils.Database, correction: Correction) -> int:
    """Write one correction; the caller holds the write transaction. Returns the revision id.
    Raises ValueError for an unknown line, CorrectionConflict when the line's revision is no
    longer the one the correction was derived from."""
    line = _one(db, "SELECT id, recording_id, revision_id, text_fa, text_en FROM lines WHERE id = ?",
                [correction.line_id])
    if line is None:
        raise ValueError(f"no line {correction.line_id}")
    if line["revision_id"] != correction.replaces:
        raise CorrectionConflict(
            f"line {correction.line_id} is at revision {line['revision_id']} now, not {correction.replaces}: "
            "someone corrected it meanwhile; look at its text again")
    at = now()
    revision_id = db["line_revisions"].insert({
        "line_id": correction.line_id, "text_fa": correction.text_fa, "text_en": correction.text_en,
        "reviewer": correction.reviewer, "at": at, "replaces": correction.replaces, "note": correction.note,
    }).last_pk
    values: dict[str, Any] = {
        "text_fa": correction.text_fa_normalised, "text_en": correction.current_en or None,
        "text_en_from": correction.en_from, "suspect": correction.suspect, "revision_id": revision_id,
    }
    if line["revision_id"] is None:  # the first correction: keep the machine's text beside it
        values.update(text_fa_machine=line["text_fa"], text_en_machine=line["text_en"])
    if correction.en_from == CORRECTED_FA and correction.translator is not None:
        values.update(translator=correction.translator[0], translator_model=correction.translator[1])
    db["lines"].update(correction.line_id, values)
    db.execute("UPDATE flags SET superseded_by_revision = ? WHERE line_id = ? AND superseded_by_revision IS NULL",
               [revision_id, correction.line_id])
    insert_flags(db, correction.line_id, correction.flags, correction.lexicon_version,
                 source=REVIEWER_TEXT, revision_id=revision_id)
    # The line's recording is sealed again with the correction, in the same transaction.
    seal.seal_recording(db.conn, line["recording_id"], "corrected")
    return revision_id


def insert_flags(db: sqlite_utils.Database, line_id: int, flags, lexicon_version: str,
                 source: Optional[str] = None, revision_id: Optional[int] = None) -> None:
    """A line's flags (intercept.types.Flag) with their provenance."""
    db["flags"].insert_all(
        {
            "line_id": line_id, "concept": f.concept, "category": f.category, "severity": f.severity,
            "kind": f.kind, "score": round(f.score, 4), "span_start": f.span_start, "span_end": f.span_end,
            "matched": f.matched, "term": f.term, "lexicon_version": lexicon_version,
            **{name: getattr(f, name, None) for name in _store._FLAG_EVIDENCE},
            "source": source, "revision_id": revision_id,
        }
        for f in flags
    )


def flag_provenance(db: sqlite_utils.Database, line_id: int) -> dict:
    """source and revision_id for flags derived again now from a line's current text (used by
    re-derivation, intercept flag / translate): a corrected line's are the reviewer text's."""
    row = _one(db, "SELECT revision_id FROM lines WHERE id = ?", [line_id])
    if row and row["revision_id"] is not None:
        return {"source": REVIEWER_TEXT, "revision_id": row["revision_id"]}
    return {"source": None, "revision_id": None}


def derived_english(db: sqlite_utils.Database, line_id: int, from_text: bool) -> dict:
    """What re-translating a stored line (intercept translate) may write for its English: for a
    corrected line, the reviewer's English and an English not made from the text (Whisper's
    translate task hears the audio, not the correction) are kept as they are; a text
    translator's English on the corrected Farsi is marked corrected_fa. {}: nothing to change."""
    row = _one(db, "SELECT revision_id, text_en, text_en_from, translator, translator_model FROM lines "
                   "WHERE id = ?", [line_id])
    if row is None or row["revision_id"] is None:
        return {}
    if row["text_en_from"] == REVIEWER or not from_text:
        return {"text_en": row["text_en"], "translator": row["translator"],
                "translator_model": row["translator_model"]}
    return {"text_en_from": CORRECTED_FA}


def write_correction(conn: sqlite3.Connection, correction: Correction, lexicon_terms: Sequence[Any] = ()) -> int:
    """A correction written on a connection someone else opened (the review desk, in Datasette's
    write queue), one transaction; with the terms of its lexicon version when not stored yet."""
    conn.execute(f"PRAGMA busy_timeout = {int(_store.BUSY_TIMEOUT_S * 1000)}")
    with _store.immediate_transaction(conn):
        db = sqlite_utils.Database(conn)
        if lexicon_terms:
            _store.insert_lexicon_terms(db, correction.lexicon_version, lexicon_terms)
        return insert_correction(db, correction)


# -- reads -----------------------------------------------------------------------------------

def line_for_correction(db: sqlite_utils.Database, line_id: int) -> Optional[dict]:
    """The line with its recording path and transmission index, or None."""
    return _one(
        db,
        "SELECT lines.*, recordings.path AS recording_path, transmissions.idx AS transmission_idx "
        "FROM lines JOIN recordings ON recordings.id = lines.recording_id "
        "LEFT JOIN transmissions ON transmissions.id = lines.transmission_id WHERE lines.id = ?",
        [line_id])


def lines_near(db: sqlite_utils.Database, line: dict, window: int) -> list[dict]:
    """`line` and the lines of its recording within `window` transmissions of it that hold a
    current flag, in time order: what a co-occurrence pattern can see. A neighbour without a flag
    matched nothing of the lexicon, so it cannot complete a pattern (and matching the ~200 lines of
    a full window again took most of a correction's time)."""
    if line.get("transmission_idx") is None:
        return [line]
    return list(db.query(
        "SELECT lines.*, transmissions.idx AS transmission_idx FROM lines "
        "JOIN transmissions ON transmissions.id = lines.transmission_id "
        "WHERE lines.recording_id = ? AND transmissions.recording_id = ? AND transmissions.idx BETWEEN ? AND ? "
        "AND (lines.id = ? OR EXISTS (SELECT 1 FROM flags f WHERE f.line_id = lines.id "
        "AND f.superseded_by_revision IS NULL)) "
        "ORDER BY lines.start_s, lines.id",
        [line["recording_id"], line["recording_id"], line["transmission_idx"] - window,
         line["transmission_idx"] + window, line["id"]]))


def revisions_of(db: sqlite_utils.Database, line_id: int) -> list[dict]:
    """Every revision of a line, oldest first (the last is the current text)."""
    return list(db.query("SELECT * FROM line_revisions WHERE line_id = ? ORDER BY id", [line_id]))


def revisions_of_lines(db: sqlite_utils.Database, line_ids: Sequence[int]) -> dict[int, list[dict]]:
    """line id -> its revisions, oldest first (only lines that have any)."""
    found: dict[int, list[dict]] = {}
    ids = [int(i) for i in line_ids]
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.query(f"SELECT * FROM line_revisions WHERE line_id IN ({marks}) ORDER BY id", chunk):
            found.setdefault(row["line_id"], []).append(row)
    return found


def superseded_count(db: sqlite_utils.Database, revision_id: int) -> int:
    """How many flags the revision `revision_id` superseded."""
    return db["flags"].count_where("superseded_by_revision = ?", [revision_id])


def superseded_flags(db: sqlite_utils.Database, line_id: int) -> list[dict]:
    """A line's flags that a correction superseded, oldest first."""
    return list(db.query("SELECT * FROM flags WHERE line_id = ? AND superseded_by_revision IS NOT NULL "
                         "ORDER BY superseded_by_revision, span_start, id", [line_id]))


# The "correct next" list: lines whose correction is likely to change what the queue shows.
# A flag near the threshold (fuzzy or alternative: the recogniser's doubt decides it), a low
# confidence, and a confirmed coded line within NEIGHBOUR_S seconds in the same recording each
# add to the priority; corrected lines and lines judged false positive are left out.
CORRECT_NEXT_SQL = """
WITH doubtful AS (
  SELECT f.line_id, max(1.0 - abs(f.score - :threshold) / :band) AS near
  FROM flags f
  WHERE f.superseded_by_revision IS NULL AND f.kind IN ('fuzzy', 'alternative')
    AND f.score BETWEEN :threshold - :band AND :threshold + :band
  GROUP BY f.line_id
),
confirmed AS (
  SELECT lr.line_id, lr.recording_id, lr.start_s FROM line_review lr WHERE lr.verdict = 'confirmed'
),
candidates AS (
  SELECT line_id FROM doubtful
  UNION
  SELECT n.id FROM confirmed c JOIN lines n ON n.recording_id = c.recording_id
    AND n.start_s BETWEEN c.start_s - :neighbour_s AND c.start_s + :neighbour_s AND n.id != c.line_id
  UNION
  SELECT lr.line_id FROM line_review lr JOIN lines w ON w.id = lr.line_id
  WHERE lr.verdict IS NULL AND w.confidence < :weak
)
SELECT l.id AS line_id, l.recording_id, r.path AS recording, l.start_s, l.end_s, l.text_fa, l.text_en,
  l.confidence,
  coalesce(d.near, 0.0) AS near_threshold,
  CASE WHEN l.confidence IS NULL THEN 0.0 WHEN l.confidence < :weak THEN (:weak - l.confidence) / :weak ELSE 0.0 END
    AS low_confidence,
  (SELECT count(*) FROM line_review c WHERE c.recording_id = l.recording_id
     AND c.start_s BETWEEN l.start_s - :neighbour_s AND l.start_s + :neighbour_s
     AND c.verdict = 'confirmed' AND c.line_id != l.id) AS confirmed_near,
  lr.concepts, lr.kinds, lr.score, lr.verdict
FROM candidates k
JOIN lines l ON l.id = k.line_id
JOIN recordings r ON r.id = l.recording_id
LEFT JOIN doubtful d ON d.line_id = l.id
LEFT JOIN line_review lr ON lr.line_id = l.id
WHERE l.revision_id IS NULL AND coalesce(lr.verdict, '') != 'false_positive'
"""


def correct_next(db: sqlite_utils.Database, threshold: float, band: float, weak_confidence: float,
                 neighbour_s: float, limit: int = 50, recording_id: Optional[int] = None) -> list[dict]:
    """Lines to correct first, highest priority first (CORRECT_NEXT_SQL), each with the
    parts of its priority: near_threshold (0-1), low_confidence (0-1), confirmed_near (count)."""
    sql = CORRECT_NEXT_SQL
    params: dict[str, Any] = {"threshold": threshold, "band": band, "weak": weak_confidence,
                              "neighbour_s": neighbour_s, "limit": int(limit)}
    if recording_id is not None:
        sql += " AND l.recording_id = :recording_id"
        params["recording_id"] = int(recording_id)
    sql = ("SELECT *, round(near_threshold + low_confidence + min(confirmed_near, 2) * 0.5, 4) AS priority "
           f"FROM ({sql}) WHERE near_threshold + low_confidence + confirmed_near > 0 "
           "ORDER BY priority DESC, score DESC, line_id LIMIT :limit")
    return list(db.query(sql, params))


def lines_for_editing(db: sqlite_utils.Database, line_ids: Sequence[int]) -> dict[int, dict]:
    """For the desk's editor: each line's current and machine text, its revision, where its
    English came from, its revisions (oldest first) and how many of its flags are superseded."""
    ids = sorted({int(i) for i in line_ids})
    found: dict[int, dict] = {}
    history = revisions_of_lines(db, ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.query(
                "SELECT id, text_fa_raw, text_fa, text_en, text_fa_machine, text_en_machine, revision_id, text_en_from, "
                "(SELECT count(*) FROM flags f WHERE f.line_id = lines.id AND f.superseded_by_revision IS NOT NULL) "
                f"AS superseded_flags FROM lines WHERE id IN ({marks})", chunk):
            corrected = row["revision_id"] is not None
            found[row["id"]] = {
                "line_id": row["id"], "text_fa": row["text_fa"], "text_en": row["text_en"],
                "text_fa_machine": row["text_fa_machine"] if corrected else row["text_fa"],
                "text_en_machine": row["text_en_machine"] if corrected else row["text_en"],
                "text_fa_raw": row["text_fa_raw"], "revision_id": row["revision_id"],
                "text_en_from": row["text_en_from"], "superseded_flags": row["superseded_flags"],
                "history": [{key: r[key] for key in ("id", "text_fa", "text_en", "reviewer", "at", "replaces", "note")}
                            for r in history.get(row["id"], [])],
            }
    return found
