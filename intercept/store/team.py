"""The review team's records: verdicts on flags, their withdrawal, disagreement and a lead's
decision; reviewer flags; lexicon suggestions; claims on recordings and hours of traffic.

What a verdict means (one definition, used by the queue, the confirmed view and every export):

- A verdict is on a flag's **concept** on a line (`verdicts.concept`); a verdict on "all of a
  line's flags" is one row per concept, written in one transaction. Rows from before migration
  0012 with no concept (line-level verdicts) apply to every concept of the line.
- Rows are only ever appended. A reviewer's **standing** verdict on (line, concept) is their
  latest row there; `withdrawn` withdraws it (the line goes back to the queue; history stays).
- A concept's **outcome**: a lead's standing decision (`decision = 1`) if there is one; else
  the reviewers' standing verdicts if they agree; `disputed` if they differ; none (awaiting
  review) without any.
- A line's `line_review.verdict`: `disputed` if any concept is disputed, NULL (in the queue) if
  any concept awaits review, else `confirmed` / `unsure` / `false_positive` in that order.
  `line_review.confirmed` is 1 when any concept's outcome is `confirmed`: the view
  `confirmed_lines`, `Store.confirmed_line_ids` and `export --confirmed-only` all read it.

Every write here runs inside the caller's one transaction (Store methods, or the review
plugin through `write_team` on Datasette's write connection).
"""
from __future__ import annotations

import datetime as _dt
import sqlite3
from typing import Any, Optional, Sequence

import sqlite_utils

from . import seal
from .base import BUSY_TIMEOUT_S, VERDICTS, immediate_transaction, now
WITHDRAWN = "withdrawn"
DISPUTED = "disputed"
REVIEWER_KIND = "reviewer"  # flags.kind of a flag a reviewer added by ear
CLAIM_IDLE_S = 30 * 60  # a claim lapses this long after its holder's last verdict or renewal
# The tables this module writes (for a seal over a recording's rows: verdicts and flags are
# keyed by line; claims and suggestions are working notes, not evidence).
TEAM_TABLES = ("verdicts", "flags", "line_notes", "lexicon_suggestions", "claims")


# A reviewer's standing row on (line L, concept C): no later row of theirs, of the same kind
# (verdict or decision), on L for C or for the whole line. {v} is the row's alias, {c} the
# concept expression, {k} the kind (0 verdict, 1 decision).
_STANDING = (
    "{v}.line_id = {l} AND {v}.decision = {k} AND ({v}.concept = {c} OR {v}.concept IS NULL) "
    "AND NOT EXISTS (SELECT 1 FROM verdicts w WHERE w.line_id = {v}.line_id AND w.decision = {v}.decision "
    "AND w.reviewer = {v}.reviewer AND (w.concept = {c} OR w.concept IS NULL) AND w.id > {v}.id)"
)


def _standing(v: str, line: str, concept: str, kind: int) -> str:
    return _STANDING.format(v=v, l=line, c=concept, k=kind)


def _concept_rows(where: str = "") -> str:
    """Per line and flagged concept (of the flags `where` selects): the lead's decision, the
    reviewers' standing verdicts, the outcome, whether reviewers differ."""
    return f"""
SELECT line_id, concept, decision, reviewers,
  CASE WHEN decision IS NOT NULL THEN decision WHEN n_values = 0 THEN NULL WHEN n_values = 1 THEN one_value
       ELSE '{DISPUTED}' END AS outcome,
  CASE WHEN n_values > 1 THEN 1 ELSE 0 END AS differ
FROM (
  SELECT f.line_id, f.concept,
    (SELECT CASE WHEN d.verdict = '{WITHDRAWN}' THEN NULL ELSE d.verdict END FROM verdicts d
       WHERE {_standing('d', 'f.line_id', 'f.concept', 1)} ORDER BY d.id DESC LIMIT 1) AS decision,
    (SELECT count(DISTINCT v.verdict) FROM verdicts v
       WHERE {_standing('v', 'f.line_id', 'f.concept', 0)} AND v.verdict != '{WITHDRAWN}') AS n_values,
    (SELECT max(v.verdict) FROM verdicts v
       WHERE {_standing('v', 'f.line_id', 'f.concept', 0)} AND v.verdict != '{WITHDRAWN}') AS one_value,
    (SELECT count(DISTINCT v.reviewer) FROM verdicts v
       WHERE {_standing('v', 'f.line_id', 'f.concept', 0)} AND v.verdict != '{WITHDRAWN}') AS reviewers
  FROM (SELECT DISTINCT line_id, concept FROM flags WHERE superseded_by_revision IS NULL {where}) f
)"""


CONCEPT_OUTCOMES_VIEW = "CREATE VIEW concept_outcomes AS " + _concept_rows()
# For one line inside LINE_REVIEW_SELECT: a FROM subquery on that line's flags only (the view,
# correlated, would scan every flag: quadratic when a batch inserts flags).
_LINE_CONCEPTS = "(" + _concept_rows("AND line_id = lines.id") + ")"


# line_review's row for a line (same columns as migration 0004's, then confirmed and reviewers).
LINE_REVIEW_SELECT = f"""
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
  (SELECT CASE WHEN count(*) = 0 THEN NULL
               WHEN sum(o.outcome = '{DISPUTED}') > 0 THEN '{DISPUTED}'
               WHEN sum(o.outcome IS NULL) > 0 THEN NULL
               WHEN sum(o.outcome = 'confirmed') > 0 THEN 'confirmed'
               WHEN sum(o.outcome = 'unsure') > 0 THEN 'unsure'
               ELSE 'false_positive' END
     FROM {_LINE_CONCEPTS} o) AS verdict,
  (SELECT v.reviewer FROM verdicts v WHERE v.line_id = lines.id ORDER BY v.id DESC LIMIT 1) AS reviewer,
  (SELECT v.at FROM verdicts v WHERE v.line_id = lines.id ORDER BY v.id DESC LIMIT 1) AS verdict_at,
  (SELECT count(*) > 0 FROM {_LINE_CONCEPTS} o WHERE o.outcome = 'confirmed') AS confirmed,
  (SELECT count(DISTINCT v.reviewer) FROM verdicts v WHERE v.line_id = lines.id AND v.decision = 0) AS reviewers
FROM lines
JOIN flags ON flags.line_id = lines.id AND flags.superseded_by_revision IS NULL
JOIN recordings ON recordings.id = lines.recording_id
GROUP BY lines.id
"""

FLAGGED_LINES_COLUMNS = ("line_id, recording_id, recording, start_s, end_s, text_fa, text_en, concepts, categories, "
                         "kinds, score, avg_logprob, no_speech_prob, suspect, verdict, reviewer, verdict_at, "
                         "confirmed, reviewers")

TEAM_DESK_SQL = f"""
DROP VIEW IF EXISTS concept_outcomes;
{CONCEPT_OUTCOMES_VIEW};
DROP VIEW IF EXISTS line_review_source;
CREATE VIEW line_review_source AS {LINE_REVIEW_SELECT};
DROP VIEW IF EXISTS flagged_lines;
CREATE VIEW flagged_lines AS SELECT {FLAGGED_LINES_COLUMNS} FROM line_review;
-- The one confirmed set: the page's confirmed view, Store.confirmed_line_ids, --confirmed-only.
DROP VIEW IF EXISTS confirmed_lines;
CREATE VIEW confirmed_lines AS SELECT {FLAGGED_LINES_COLUMNS} FROM line_review WHERE confirmed = 1;
DROP VIEW IF EXISTS disputed_lines;
CREATE VIEW disputed_lines AS SELECT {FLAGGED_LINES_COLUMNS} FROM line_review WHERE verdict = '{DISPUTED}';
-- One row per reviewer and line they judged (the reviewer facet counts lines, not rows).
DROP VIEW IF EXISTS reviewer_lines;
CREATE VIEW reviewer_lines AS
SELECT reviewer, line_id, count(*) AS verdicts, max(at) AS last_at FROM verdicts GROUP BY reviewer, line_id;
CREATE INDEX IF NOT EXISTS verdicts_line_reviewer ON verdicts(line_id, reviewer, id);
CREATE INDEX IF NOT EXISTS verdicts_reviewer_at ON verdicts(reviewer, at);
CREATE INDEX IF NOT EXISTS line_review_confirmed ON line_review(confirmed);
CREATE TABLE IF NOT EXISTS lexicon_suggestions (
  id INTEGER PRIMARY KEY,
  line_id INTEGER REFERENCES lines(id),
  flag_id INTEGER,
  concept TEXT NOT NULL,
  form TEXT NOT NULL,
  lang TEXT NOT NULL DEFAULT 'fa',
  note TEXT,
  suggested_by TEXT NOT NULL,
  suggested_at TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'open'
);
-- A reviewer's note on a line, apart from any verdict (an unflagged line takes notes, no verdict).
CREATE TABLE IF NOT EXISTS line_notes (
  id INTEGER PRIMARY KEY,
  line_id INTEGER NOT NULL REFERENCES lines(id),
  note TEXT NOT NULL,
  reviewer TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS line_notes_line ON line_notes(line_id);
CREATE TABLE IF NOT EXISTS claims (
  id INTEGER PRIMARY KEY,
  reviewer TEXT NOT NULL,
  recording_id INTEGER REFERENCES recordings(id),
  hour TEXT,
  claimed_at TEXT NOT NULL,
  renewed_at TEXT NOT NULL,
  released_at TEXT
);
CREATE INDEX IF NOT EXISTS claims_open ON claims(released_at, renewed_at)
"""


def _statements(script: str) -> list[str]:
    """`script` split into statements (trigger bodies hold ';'), so a migration can run them in
    its own transaction: executescript would commit."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return [s for s in statements if s.rstrip(";").strip()]


def migrate(db: sqlite_utils.Database) -> None:
    """Migration 0012_team_desk: verdicts on concepts (withdrawal, lead decisions), reviewer
    flags, lexicon suggestions, claims; line_review re-derived with the new meaning."""
    columns = db["verdicts"].columns_dict
    if "concept" not in columns:
        db.execute("ALTER TABLE verdicts ADD COLUMN concept TEXT")
    if "decision" not in columns:
        db.execute("ALTER TABLE verdicts ADD COLUMN decision INTEGER NOT NULL DEFAULT 0")
    if "withdraws" not in columns:
        db.execute("ALTER TABLE verdicts ADD COLUMN withdraws INTEGER")
    # A verdict on a flag is on that flag's concept (flag ids change when a line is re-flagged).
    db.execute("UPDATE verdicts SET concept = (SELECT concept FROM flags WHERE flags.id = verdicts.flag_id) "
               "WHERE concept IS NULL AND flag_id IS NOT NULL")
    for name, kind in (("flagged_by", "TEXT"), ("flagged_at", "TEXT"), ("note", "TEXT")):
        if name not in db["flags"].columns_dict:
            db.execute(f"ALTER TABLE flags ADD COLUMN {name} {kind}")
    for name in ("confirmed", "reviewers"):
        if name not in db["line_review"].columns_dict:
            db.execute(f"ALTER TABLE line_review ADD COLUMN {name} INTEGER NOT NULL DEFAULT 0")
    for statement in _statements(TEAM_DESK_SQL):
        db.execute(statement)
    # Only lines someone judged change; every other row's new columns are 0 already.
    db.execute("INSERT OR REPLACE INTO line_review SELECT * FROM line_review_source "
               "WHERE line_id IN (SELECT line_id FROM verdicts)")
    # Recordings sealed so far are sealed again with the team's contents (below).
    if seal.has_seals(db.conn):
        seal.seal_all(db.conn, "migrated: 0012_team_desk")


# ---------------------------------------------------------------- writes (caller holds the transaction)


class TeamError(ValueError):
    """A team write that cannot be done; the message says why (shown to the reviewer)."""


def line_concepts(db: sqlite_utils.Database, line_id: int) -> list[str]:
    return [row[0] for row in db.execute(
        "SELECT DISTINCT concept FROM flags WHERE line_id = ? AND superseded_by_revision IS NULL ORDER BY concept",
        [line_id]).fetchall()]


def _concepts_for(db, line_id: int, flag_id: Optional[int], concept: Optional[str]) -> list[tuple[Optional[int], str]]:
    """(flag id, concept) pairs a verdict goes on: one flag's concept, or every concept of the line."""
    if db.execute("SELECT 1 FROM lines WHERE id = ?", [line_id]).fetchone() is None:
        raise TeamError(f"no line {line_id}")
    if flag_id is not None:
        row = db.execute("SELECT concept FROM flags WHERE id = ? AND line_id = ?", [flag_id, line_id]).fetchone()
        if row is None:
            raise TeamError(f"flag {flag_id} is not a flag of line {line_id}")
        return [(flag_id, row[0])]
    concepts = line_concepts(db, line_id)
    if not concepts:
        raise TeamError(f"line {line_id} has no flag: a verdict is on a flag (add a reviewer flag instead)")
    if concept is not None:
        if concept not in concepts:
            raise TeamError(f"line {line_id} has no flag of concept {concept!r}")
        concepts = [concept]
    pairs = []
    for name in concepts:
        first = db.execute("SELECT min(id) FROM flags WHERE line_id = ? AND concept = ? "
                           "AND superseded_by_revision IS NULL", [line_id, name]).fetchone()[0]
        pairs.append((first, name))
    return pairs


def _standing_row(db, line_id: int, concept: str, reviewer: str, decision: int) -> Optional[dict]:
    row = db.execute(
        "SELECT id, verdict FROM verdicts WHERE line_id = ? AND reviewer = ? AND decision = ? "
        "AND (concept = ? OR concept IS NULL) ORDER BY id DESC LIMIT 1",
        [line_id, reviewer, decision, concept]).fetchone()
    if row is None or row[1] == WITHDRAWN:
        return None
    return {"id": row[0], "verdict": row[1]}


def add_verdicts(db: sqlite_utils.Database, line_id: int, verdict: str, reviewer: str, note: str = "",
                 flag_id: Optional[int] = None, concept: Optional[str] = None, decision: bool = False) -> list[int]:
    """Append `reviewer`'s verdict (or, `verdict="withdrawn"`, the withdrawal of their standing
    verdict) on one flag's concept, on one concept, or on every concept of the line. `decision`:
    a lead's decision rather than a reviewer's verdict. Returns the new rows' ids."""
    if verdict not in VERDICTS + (WITHDRAWN,):
        raise TeamError(f"verdict must be one of {', '.join(VERDICTS + (WITHDRAWN,))}, not {verdict!r}")
    kind = 1 if decision else 0
    at, ids = now(), []
    for first_flag, name in _concepts_for(db, line_id, flag_id, concept):
        withdraws = None
        if verdict == WITHDRAWN:
            standing = _standing_row(db, line_id, name, reviewer, kind)
            if standing is None:
                continue  # nothing of theirs stands on this concept
            withdraws = standing["id"]
        ids.append(db["verdicts"].insert({
            "line_id": line_id, "flag_id": flag_id if flag_id is not None else first_flag, "concept": name,
            "verdict": verdict, "note": note or None, "reviewer": reviewer, "at": at, "decision": kind,
            "withdraws": withdraws}).last_pk)
    if verdict == WITHDRAWN and not ids:
        what = "decision" if decision else "verdict"
        raise TeamError(f"{reviewer} has no standing {what} on line {line_id} to withdraw")
    if ids:
        _renew_claims(db, reviewer, line_id, at)
        _seal_line(db, line_id, "verdict")
    return ids


def add_reviewer_flag(db: sqlite_utils.Database, line_id: int, concept: str, reviewer: str, note: str = "",
                      category: Optional[str] = None, severity: Optional[str] = None,
                      heard_form: Optional[str] = None, suggest: bool = False,
                      lexicon_version: Optional[str] = None) -> dict:
    """A reviewer marks a line as coded: a flag of kind `reviewer` (who, when, note), which
    re-flagging never removes, and the reviewer's `confirmed` verdict on its concept. `heard_form`
    is the word as heard; with `suggest` it is proposed to the lexicon's editor (listed in
    lexicon_suggestions, never applied)."""
    concept = (concept or "").strip()
    if not concept or "," in concept:
        raise TeamError("a reviewer flag needs a concept (a lexicon concept or a new term, without commas)")
    if db.execute("SELECT 1 FROM lines WHERE id = ?", [line_id]).fetchone() is None:
        raise TeamError(f"no line {line_id}")
    known = db.execute("SELECT category, severity, lexicon_version FROM lexicon_terms WHERE concept = ? "
                       "ORDER BY id DESC LIMIT 1", [concept]).fetchone()
    at = now()
    flag_id = db["flags"].insert({
        "line_id": line_id, "concept": concept,
        "category": category or (known[0] if known else "reviewer"),
        "severity": severity or (known[1] if known else None),
        "kind": REVIEWER_KIND, "score": None, "span_start": None, "span_end": None,
        "matched": heard_form or None, "term": heard_form or concept,
        "lexicon_version": lexicon_version or (known[2] if known else None),
        "flagged_by": reviewer, "flagged_at": at, "note": note or None}).last_pk
    verdict_ids = add_verdicts(db, line_id, "confirmed", reviewer, note, flag_id=flag_id)
    suggestion_id = None
    if suggest:
        if not (heard_form and heard_form.strip()):
            raise TeamError("to propose a form to the lexicon, give the form as heard")
        suggestion_id = db["lexicon_suggestions"].insert({
            "line_id": line_id, "flag_id": flag_id, "concept": concept, "form": heard_form.strip(),
            "lang": "fa", "note": note or None, "suggested_by": reviewer, "suggested_at": at,
            "status": "open"}).last_pk
    return {"flag_id": flag_id, "verdict_ids": verdict_ids, "suggestion_id": suggestion_id}


def add_note(db: sqlite_utils.Database, line_id: int, note: str, reviewer: str) -> int:
    """A reviewer's note on any line (flagged or not); notes never change a verdict."""
    note = (note or "").strip()
    if not note:
        raise TeamError("the note is empty")
    if db.execute("SELECT 1 FROM lines WHERE id = ?", [line_id]).fetchone() is None:
        raise TeamError(f"no line {line_id}")
    at = now()
    note_id = db["line_notes"].insert({"line_id": line_id, "note": note, "reviewer": reviewer, "at": at}).last_pk
    _renew_claims(db, reviewer, line_id, at)
    _seal_line(db, line_id, "note")
    return note_id


def _seal_line(db, line_id: int, reason: str) -> None:
    """The line's recording is sealed again with a reviewer's write, in the same transaction
    (a reviewer flag is sealed by the verdict that comes with it)."""
    seal.seal_recording(db.conn, db.execute("SELECT recording_id FROM lines WHERE id = ?", [line_id]).fetchone()[0],
                        reason)


# What reviewers write goes into the seal of the line's recording (intercept.store.seal): the
# team's columns of verdicts and reviewer flags, and notes. Claims and lexicon suggestions are
# working notes, not evidence.
seal.register(seal.RecordingContent(
    "verdict_details", "verdict",
    "SELECT v.id, v.concept, v.decision, v.withdraws FROM verdicts v JOIN lines l ON l.id = v.line_id "
    "WHERE l.recording_id = ? ORDER BY v.id",
    ("verdicts", "lines", "line_notes")))
seal.register(seal.RecordingContent(
    "reviewer_flags", "flag",
    "SELECT f.id, f.flagged_by, f.flagged_at, f.note FROM flags f JOIN lines l ON l.id = f.line_id "
    "WHERE l.recording_id = ? AND f.kind = 'reviewer' ORDER BY f.id",
    ("flags", "lines", "line_notes")))
seal.register(seal.RecordingContent(
    "line_notes", "note",
    "SELECT n.id, n.line_id, n.note, n.reviewer, n.at FROM line_notes n JOIN lines l ON l.id = n.line_id "
    "WHERE l.recording_id = ? ORDER BY n.id",
    ("line_notes", "lines")))


def _renew_claims(db, reviewer: str, line_id: int, at: str) -> None:
    """A verdict keeps its reviewer's claim on the line's recording (and hour) alive."""
    db.execute("UPDATE claims SET renewed_at = ? WHERE reviewer = ? AND released_at IS NULL "
               "AND (recording_id = (SELECT recording_id FROM lines WHERE id = ?) OR hour IS NOT NULL)",
               [at, reviewer, line_id])


def _lapsed_before(idle_s: float) -> str:
    moment = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=idle_s)
    return moment.isoformat(timespec="seconds")


def open_claims(conn, idle_s: float = CLAIM_IDLE_S) -> list[dict]:
    """Claims held now: not released, renewed within `idle_s`."""
    cursor = conn.execute("SELECT * FROM claims WHERE released_at IS NULL AND renewed_at >= ? ORDER BY id",
                          [_lapsed_before(idle_s)])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def claim(db: sqlite_utils.Database, reviewer: str, recording_id: Optional[int] = None, hour: Optional[str] = None,
          idle_s: float = CLAIM_IDLE_S) -> int:
    """`reviewer` claims a recording or an hour of traffic (ISO, 'YYYY-MM-DDTHH'); refused while
    someone else holds it. Claiming again renews one's own claim."""
    if (recording_id is None) == (hour is None):
        raise TeamError("claim either a recording or an hour of traffic")
    if recording_id is not None and db.execute("SELECT 1 FROM recordings WHERE id = ?", [recording_id]).fetchone() is None:
        raise TeamError(f"no recording {recording_id}")
    if hour is not None:
        try:
            hour = _dt.datetime.fromisoformat(hour).strftime("%Y-%m-%dT%H")
        except ValueError:
            raise TeamError(f"hour must be an ISO time such as 2019-11-12T21, got {hour!r}") from None
    at = now()
    for held in open_claims(db.conn, idle_s):
        if held["recording_id"] == recording_id and held["hour"] == hour:
            if held["reviewer"] != reviewer:
                what = f"recording {recording_id}" if recording_id is not None else f"hour {hour}"
                raise TeamError(f"{what} is claimed by {held['reviewer']} (since {held['claimed_at']})")
            db.execute("UPDATE claims SET renewed_at = ? WHERE id = ?", [at, held["id"]])
            return held["id"]
    return db["claims"].insert({"reviewer": reviewer, "recording_id": recording_id, "hour": hour,
                                "claimed_at": at, "renewed_at": at, "released_at": None}).last_pk


def release(db: sqlite_utils.Database, reviewer: str, claim_id: int) -> None:
    row = db.execute("SELECT reviewer, released_at FROM claims WHERE id = ?", [claim_id]).fetchone()
    if row is None or row[1] is not None:
        raise TeamError(f"no open claim {claim_id}")
    if row[0] != reviewer:
        raise TeamError(f"claim {claim_id} is {row[0]}'s")
    db.execute("UPDATE claims SET released_at = ? WHERE id = ?", [now(), claim_id])


def write_team(conn: sqlite3.Connection, action, *args, **kwargs):
    """Run one of this module's writes on a connection someone else opened (the review plugin,
    in Datasette's write queue), in one immediate transaction."""
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    with immediate_transaction(conn):
        return action(sqlite_utils.Database(conn), *args, **kwargs)


# ---------------------------------------------------------------- reads (any connection)


def _dicts(conn, sql: str, params: Sequence[Any] = ()) -> list[dict]:
    cursor = conn.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def confirmed_line_ids(conn) -> set[int]:
    """The confirmed set (see the module's docstring): the view `confirmed_lines`."""
    return {row[0] for row in conn.execute("SELECT line_id FROM confirmed_lines").fetchall()}


def review_of_lines(conn, line_ids: Sequence[int]) -> dict[int, dict]:
    """Per line: every verdict row (oldest first) and each concept's outcome, decision and
    whether reviewers differ."""
    ids = sorted({int(i) for i in line_ids})
    found: dict[int, dict] = {i: {"verdict": None, "confirmed": False, "verdicts": [], "concepts": {}, "notes": []}
                              for i in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in _dicts(conn, f"SELECT id, line_id, flag_id, concept, verdict, note, reviewer, at, decision, "
                                f"withdraws FROM verdicts WHERE line_id IN ({marks}) ORDER BY id", chunk):
            found[row["line_id"]]["verdicts"].append(row)
        for row in _dicts(conn, f"SELECT line_id, concept, outcome, decision, reviewers, differ FROM concept_outcomes "
                                f"WHERE line_id IN ({marks})", chunk):
            found[row["line_id"]]["concepts"][row["concept"]] = row
        for row in _dicts(conn, f"SELECT line_id, verdict, confirmed FROM line_review WHERE line_id IN ({marks})", chunk):
            found[row["line_id"]].update(verdict=row["verdict"], confirmed=bool(row["confirmed"]))
        for row in _dicts(conn, f"SELECT id, line_id, note, reviewer, at FROM line_notes WHERE line_id IN ({marks}) "
                                "ORDER BY id", chunk):
            found[row["line_id"]]["notes"].append(row)
    return found


def review_record(review: dict) -> dict:
    """A line's review (review_of_lines) as exports and bundles carry it: the line's verdict
    (confirmed, false_positive, unsure, disputed, or None awaiting review), and per concept its
    outcome, whether reviewers differed, the lead's decision, and every verdict in order."""
    verdicts = review.get("verdicts", [])
    concepts = {}
    for concept, outcome in sorted(review.get("concepts", {}).items()):
        concepts[concept] = {
            "outcome": outcome["outcome"], "reviewers_differ": bool(outcome["differ"]),
            "decision": outcome["decision"],
            "verdicts": [{"verdict": v["verdict"], "reviewer": v["reviewer"], "at": v["at"], "note": v["note"],
                          "lead_decision": bool(v["decision"])}
                         for v in verdicts if v["concept"] in (concept, None)]}
    return {"verdict": review.get("verdict"), "confirmed": bool(review.get("confirmed")), "concepts": concepts,
            "notes": [{"reviewer": n["reviewer"], "at": n["at"], "note": n["note"]} for n in review.get("notes", [])]}


def lexicon_suggestions(conn, status: Optional[str] = "open") -> list[dict]:
    where = "WHERE s.status = ?" if status else ""
    return _dicts(conn, "SELECT s.*, lines.text_fa FROM lexicon_suggestions s LEFT JOIN lines ON lines.id = s.line_id "
                        f"{where} ORDER BY s.concept, s.form, s.id", [status] if status else [])


def progress(conn, reviewer: Optional[str] = None, today: Optional[str] = None, threshold: float = 0.0) -> dict:
    """The queue's (or one reviewer's) progress: lines judged today and in all, what remains
    (flagged lines awaiting a verdict whose best flag scores at least `threshold`: the queue),
    what is disputed, by recording and by hour of the verdicts."""
    today = today or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    who = "AND reviewer = ?" if reviewer else ""
    args = [reviewer] if reviewer else []
    total = conn.execute(f"SELECT count(DISTINCT line_id) FROM verdicts WHERE decision = 0 {who}", args).fetchone()[0]
    on_day = conn.execute(f"SELECT count(DISTINCT line_id) FROM verdicts WHERE decision = 0 AND substr(at, 1, 10) = ? "
                          f"{who}", [today] + args).fetchone()[0]
    flagged, remaining, disputed, confirmed = conn.execute(
        "SELECT count(*), coalesce(sum(verdict IS NULL AND score >= ?), 0), coalesce(sum(verdict = ?), 0), "
        "coalesce(sum(confirmed), 0) FROM line_review", [threshold, DISPUTED]).fetchone()
    by_recording = _dicts(conn,
        "SELECT r.recording_id, r.recording, count(*) AS flagged, sum(r.verdict IS NULL AND r.score >= ?) AS remaining, "
        f"sum(r.verdict = '{DISPUTED}') AS disputed, sum(r.confirmed) AS confirmed, "
        "(SELECT count(DISTINCT v.line_id) FROM verdicts v JOIN lines l ON l.id = v.line_id "
        f" WHERE l.recording_id = r.recording_id AND v.decision = 0 {who.replace('reviewer', 'v.reviewer')}) AS reviewed "
        "FROM line_review r GROUP BY r.recording_id ORDER BY r.recording", [threshold] + args)
    by_hour = _dicts(conn,
        "SELECT substr(at, 1, 13) AS hour, count(*) AS verdicts, count(DISTINCT line_id) AS lines, "
        f"count(DISTINCT reviewer) AS reviewers FROM verdicts WHERE 1 = 1 {who} GROUP BY hour ORDER BY hour DESC "
        "LIMIT 48", args)
    reviewers = _dicts(conn,
        "SELECT reviewer, count(DISTINCT line_id) AS lines, "
        "count(DISTINCT CASE WHEN substr(at, 1, 10) = ? THEN line_id END) AS today, max(at) AS last_at "
        "FROM verdicts WHERE decision = 0 GROUP BY reviewer ORDER BY reviewer", [today])
    return {"reviewer": reviewer, "today": today, "reviewed_today": on_day, "reviewed": total, "flagged": flagged,
            "remaining": remaining, "disputed": disputed, "confirmed": confirmed, "by_recording": by_recording,
            "by_hour": by_hour, "reviewers": reviewers}
