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

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import sqlite_utils

from . import seal
from .base import BUSY_TIMEOUT_S, FLAG_EVIDENCE, LINE_REVIEW_SELECT, immediate_transaction, insert_lexicon_terms, now

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


def migrate(db: sqlite_utils.Database) -> None:
    """Migration 0011_revisions (registered in intercept.store): reviewers' corrections
    (line_revisions), the columns saying which text is current and which is the machine's, and
    the provenance of flags (module docstring)."""
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


# The flags table's columns a derived flag fills, in the order of insert_flags' rows.
_FLAG_COLUMNS = ("line_id", "concept", "category", "severity", "kind", "score", "span_start", "span_end", "matched",
                 "term", "lexicon_version", *FLAG_EVIDENCE, "source", "revision_id")
_INSERT_FLAG = (f"INSERT INTO flags ({', '.join(_FLAG_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_FLAG_COLUMNS))})")


def insert_flags(db: sqlite_utils.Database, line_id: int, flags, lexicon_version: str,
                 source: Optional[str] = None, revision_id: Optional[int] = None) -> None:
    """A line's flags (intercept.types.Flag) with their provenance. One prepared statement, not
    sqlite-utils' insert_all, which reads the table's schema on every call: re-flagging a store
    writes the flags of each of its lines (with Table.update, a quarter of `intercept flag`'s time)."""
    rows = [(line_id, f.concept, f.category, f.severity, f.kind, round(f.score, 4), f.span_start, f.span_end,
             f.matched, f.term, lexicon_version, *(getattr(f, name, None) for name in FLAG_EVIDENCE),
             source, revision_id) for f in flags]
    if rows:
        db.conn.executemany(_INSERT_FLAG, rows)


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
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    with immediate_transaction(conn):
        db = sqlite_utils.Database(conn)
        if lexicon_terms:
            insert_lexicon_terms(db, correction.lexicon_version, lexicon_terms)
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
#
# A line is a candidate when it holds a doubtful flag, or lies within neighbour_s of a
# confirmed line of its recording, or is a flagged line awaiting review with a weak
# confidence. Its priority is round(near_threshold + low_confidence + min(confirmed_near, 2) *
# 0.5, 4); the list is the first `limit` by priority, then flag score (NULL last), then line id.
# CORRECT_NEXT_ROWS_SQL is that definition, evaluated for a given set of line ids only; the
# ids it is given are chosen by upper bounds on the priority (correct_next) so that on a large
# store only the few hundred candidates that can still reach the list are looked at, not
# every candidate (tests/test_correct_next.py checks the result against the whole-store query).
# (In CORRECT_NEXT_ROWS_SQL the unary + keeps SQLite from reading all of flags_doubtful for each
# line: there the line's own flags are few.)
_DOUBTFUL_WHERE = """f.superseded_by_revision IS NULL AND f.kind IN ('fuzzy', 'alternative')
    AND f.score BETWEEN :threshold - :band AND :threshold + :band"""
_NEAR = "max(1.0 - abs(f.score - :threshold) / :band)"
_LOW_CONFIDENCE = ("CASE WHEN l.confidence IS NULL THEN 0.0 WHEN l.confidence < :weak "
                   "THEN (:weak - l.confidence) / :weak ELSE 0.0 END")
CORRECT_NEXT_ROWS_SQL = f"""
WITH ids AS (SELECT DISTINCT value AS id FROM json_each(:ids)),
doubtful AS (
  SELECT f.line_id, {_NEAR} AS near FROM ids CROSS JOIN flags f ON f.line_id = ids.id
  WHERE {_DOUBTFUL_WHERE.replace("f.kind", "+f.kind").replace("f.score BETWEEN", "+f.score BETWEEN")}
  GROUP BY f.line_id
),
parts AS (
  SELECT l.id AS line_id, l.recording_id, r.path AS recording, l.start_s, l.end_s, l.text_fa, l.text_en,
    l.confidence,
    coalesce(d.near, 0.0) AS near_threshold,
    {_LOW_CONFIDENCE} AS low_confidence,
    (SELECT count(*) FROM line_review c WHERE c.recording_id = l.recording_id
       AND c.start_s BETWEEN l.start_s - :neighbour_s AND l.start_s + :neighbour_s
       AND c.verdict = 'confirmed' AND c.line_id != l.id) AS confirmed_near,
    lr.concepts, lr.kinds, lr.score, lr.verdict
  FROM lines l
  JOIN recordings r ON r.id = l.recording_id
  LEFT JOIN doubtful d ON d.line_id = l.id
  LEFT JOIN line_review lr ON lr.line_id = l.id
  WHERE l.id IN (SELECT id FROM ids) AND l.revision_id IS NULL AND coalesce(lr.verdict, '') != 'false_positive'
    AND (d.line_id IS NOT NULL
      OR EXISTS (SELECT 1 FROM line_review c WHERE c.verdict = 'confirmed' AND c.recording_id = l.recording_id
        AND l.start_s BETWEEN c.start_s - :neighbour_s AND c.start_s + :neighbour_s AND l.id != c.line_id)
      OR (lr.line_id IS NOT NULL AND lr.verdict IS NULL AND l.confidence < :weak))
)
SELECT *, round(near_threshold + low_confidence + min(confirmed_near, 2) * 0.5, 4) AS priority
FROM parts WHERE near_threshold + low_confidence + confirmed_near > 0
ORDER BY priority DESC, score DESC, line_id LIMIT :limit
"""
# Migration 0013_correct_next (registered in intercept/store/__init__.py): the indexes the
# bounds read instead of the lines themselves. lines_confidence gives the store's weakest
# confidence at once and the weak lines weakest first; flags_doubtful the doubtful flags by kind
# and score; line_review_confirmed the confirmed lines with their place. On the 1M-line bench
# store they take 15 MB of 400 MB (docs/benchmarks.md).
CORRECT_NEXT_INDEXES = {
    "lines_confidence": "lines(confidence)",
    "flags_doubtful": "flags(kind, score, line_id, superseded_by_revision)",
    "line_review_confirmed": "line_review(verdict, recording_id, start_s)",
}


def create_correct_next_indexes(db: sqlite_utils.Database) -> None:
    for name, on in CORRECT_NEXT_INDEXES.items():
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")


# Bounds: every line with a doubtful flag or near a confirmed line, with the largest
# near_threshold + min(confirmed_near, 2) * 0.5 it can have, largest first. `reach` is
# neighbour_s and a little more, so that rounding (a >= b - n is not always b <= a + n in
# floating point) never hides a neighbour; a count too high only costs a look.
_BOUNDS_SQL = f"""
WITH parts AS (
  SELECT f.line_id, 1.0 - abs(f.score - :threshold) / :band AS near, 0 AS confirmed FROM flags f
  WHERE {_DOUBTFUL_WHERE}
  UNION ALL
  SELECT n.id, NULL, 1 FROM line_review c
  JOIN lines n ON n.recording_id = c.recording_id AND n.start_s BETWEEN c.start_s - :reach AND c.start_s + :reach
    AND n.id != c.line_id
  WHERE c.verdict = 'confirmed'
)
SELECT line_id, coalesce(max(near), 0.0) + min(sum(confirmed), 2) * 0.5 AS bound FROM parts
GROUP BY line_id ORDER BY bound DESC
"""
# The highest low_confidence of any line (the weakest line's), through lines_confidence:
_LOW_CONFIDENCE_MAX_SQL = "SELECT (:weak - min(confidence)) / :weak FROM lines WHERE confidence < :weak"
# Flagged lines awaiting review, weakest first (lines_confidence read in order; CROSS JOIN keeps it
# the outer loop), from the last one looked at on.
_WEAK_SQL = """
SELECT l.id, l.confidence, (:weak - l.confidence) / :weak FROM lines l CROSS JOIN line_review lr ON lr.line_id = l.id
WHERE l.confidence < :weak AND lr.verdict IS NULL
  AND l.confidence >= :after_confidence AND (l.confidence > :after_confidence OR l.id > :after_id)
ORDER BY l.confidence, l.id LIMIT :batch
"""
# A candidate's bound is its exact near_threshold, the store's highest low_confidence and its
# neighbour count (from above, never below); SLACK covers the rounding of the sum and of round(,4).
_SLACK = 1e-3
_BATCH = 256


def _ranked_rows(db: sqlite_utils.Database, params: dict[str, Any], ids: Sequence[int], limit: int) -> list[dict]:
    """CORRECT_NEXT_ROWS_SQL over the candidates among `ids`: their first `limit` rows."""
    if not ids:
        return []
    return list(db.query(CORRECT_NEXT_ROWS_SQL, {**params, "ids": json.dumps([int(i) for i in ids]),
                                                 "limit": int(limit)}))


def correct_next(db: sqlite_utils.Database, threshold: float, band: float, weak_confidence: float,
                 neighbour_s: float, limit: int = 50, recording_id: Optional[int] = None) -> list[dict]:
    """Lines to correct first, highest priority first (CORRECT_NEXT_ROWS_SQL), each with the
    parts of its priority: near_threshold (0-1), low_confidence (0-1), confirmed_near (count).

    The candidates are many on a large store (a 1M-line store has ~50,000), and reading each
    one's line for its confidence is what took the time. So each is first given an upper bound
    on its priority from narrow reads (its doubtful flags, its confirmed neighbours, the
    weakest confidence in the store), and candidates are ranked exactly, best bound first, only
    until no bound left can reach the list (a threshold algorithm; ties with the last row are
    still looked at). Lines whose only claim is a weak confidence are read weakest first."""
    limit = int(limit)
    params: dict[str, Any] = {"threshold": threshold, "band": band, "weak": weak_confidence,
                              "neighbour_s": neighbour_s}
    if limit == 0:
        return []
    if recording_id is not None:  # one recording: few lines, each looked at
        ids = [row[0] for row in db.execute("SELECT id FROM lines WHERE recording_id = ?", [int(recording_id)])]
        return _ranked_rows(db, params, ids, limit)
    if limit < 0 or not (weak_confidence > 0 and band > 0 and neighbour_s >= 0):
        # No limit (SQL's LIMIT -1), or settings the bounds do not hold for (SQL divides by
        # band and weak; x / 0 is NULL): rank every candidate.
        ids = {row[0] for row in db.execute(_BOUNDS_SQL, {**params, "reach": neighbour_s})}
        ids |= {row[0] for row in db.execute("SELECT l.id FROM line_review lr JOIN lines l ON l.id = lr.line_id "
                                             "WHERE lr.verdict IS NULL AND l.confidence < :weak", params)}
        return _ranked_rows(db, params, sorted(ids), limit)
    low_max = max(0.0, db.execute(_LOW_CONFIDENCE_MAX_SQL, params).fetchone()[0] or 0.0)
    priorities: list[float] = []  # of the ranked rows that may still be in the list, highest first
    kept: dict[int, float] = {}

    def last_priority() -> float:
        return priorities[limit - 1] if len(priorities) >= limit else float("-inf")

    def rank(ids: Sequence[int]) -> None:
        for row in _ranked_rows(db, params, ids, len(ids)):
            kept[row["line_id"]] = row["priority"]
        priorities[:] = sorted(kept.values(), reverse=True)
        floor = last_priority()
        for line_id in [i for i, p in kept.items() if p < floor]:
            del kept[line_id]
        del priorities[len(kept):]

    # The store's highest low_confidence stands in for each line's own (read only when ranked).
    reach = neighbour_s + 1e-3 + abs(neighbour_s) * 1e-9
    bounds = db.execute(_BOUNDS_SQL, {**params, "reach": reach})
    try:
        while True:
            batch = bounds.fetchmany(_BATCH)
            if not batch or batch[0][1] + low_max + _SLACK < last_priority():
                break
            rank([line_id for line_id, _ in batch])
    finally:
        bounds.close()
    # The rest: lines with no doubtful flag and no confirmed neighbour, so their priority is
    # their low_confidence alone; weakest first, until that is below the list's last. (Lines
    # ranked above may come again: ranking is exact, so once more changes nothing.)
    next_bound = low_max + _SLACK
    after: tuple[float, int] = (float("-inf"), -1)
    while next_bound >= last_priority():
        weakest = db.execute(_WEAK_SQL, {**params, "after_confidence": after[0], "after_id": after[1],
                                         "batch": _BATCH}).fetchall()
        if not weakest:
            break
        rank([line_id for line_id, _, _ in weakest])
        line_id, confidence, low = weakest[-1]
        after, next_bound = (confidence, line_id), low + _SLACK
    return _ranked_rows(db, params, sorted(kept), limit)


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
