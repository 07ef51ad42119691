"""What the store's modules share, below all of them: the verdicts and the line-review query
the schema is built on, the clock, the write transaction and its busy timeout, and the few
writes and reads more than one of them makes.

intercept/store/__init__.py (the `Store`, the migrations), team.py and revisions.py import
this module; it imports none of them, so the store's modules import each other without a
cycle (tests/test_store_rule.py). `intercept.store` re-exports every name here.
"""
from __future__ import annotations

import datetime as _dt
import json
import sqlite3
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Optional

import sqlite_utils

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


# How long a writer waits for another writer's transaction (two batches, a batch and a
# reviewer's verdict) before SQLite says "database is locked". Every write transaction is
# short (one recording, one verdict), so a wait this long means something is stuck.
BUSY_TIMEOUT_S = 60.0

# Flag attributes stored as they are (None: unknown); the scorer fills them.
FLAG_EVIDENCE = ("match_score", "word_prob", "nbest_share", "prior", "prior_reason", "hypothesis", "scorer_version",
                 "acoustic_margin")


@contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One short write transaction. BEGIN IMMEDIATE takes the write lock first, waiting (busy
    timeout) while another writer holds it; a deferred BEGIN that read first fails at once
    with "database is locked" when another writer committed meanwhile. Inside a transaction
    the caller opened, it is a savepoint of that transaction."""
    if conn.in_transaction:
        conn.execute("SAVEPOINT intercept_write")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK TO SAVEPOINT intercept_write")
                conn.execute("RELEASE SAVEPOINT intercept_write")
            raise
        conn.execute("RELEASE SAVEPOINT intercept_write")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def insert_lexicon_terms(db: sqlite_utils.Database, version: str, terms: Iterable[Any]) -> None:
    """The terms of a lexicon version, unless stored already; the caller holds the write transaction."""
    if db["lexicon_terms"].count_where("lexicon_version = ?", [version]):
        return
    db["lexicon_terms"].insert_all(
        {
            "concept": t.concept,
            "category": t.category,
            "severity": t.severity,
            "form": t.form,
            "lang": t.lang,
            "notes": getattr(t, "notes", None) or None,
            "lexicon_version": version,
        }
        for t in terms
    )


def run_settings(db, recording_id: Optional[int] = None, *, line_id: Optional[int] = None) -> Optional[dict]:
    """The settings (RunOptions.to_dict()) of the run that stored recording `recording_id` (or
    line `line_id`), or None when it was stored outside a run or its run kept none. `db`: a
    sqlite_utils Database or a sqlite3 connection (the review's, on Datasette's connections)."""
    if line_id is not None:
        sql = ("SELECT runs.settings FROM lines JOIN recordings ON recordings.id = lines.recording_id "
               "JOIN runs ON runs.id = recordings.run_id WHERE lines.id = ?")
    else:
        sql = "SELECT runs.settings FROM recordings JOIN runs ON runs.id = recordings.run_id WHERE recordings.id = ?"
    # fetchall: no statement left open across the caller's writes.
    row = db.execute(sql, [line_id if line_id is not None else recording_id]).fetchall()
    row = row[0] if row else None
    if row is None or not row[0]:
        return None
    try:
        settings = json.loads(row[0])
    except ValueError:
        return None
    return settings if isinstance(settings, dict) else None
