"""The sealed store: a digest of each recording's rows, chained like a transparency log.

Whenever intercept commits rows of a recording (a batch stores it, `flag` or `translate`
derives its lines again, a reviewer's verdict lands on one of its lines, a migration), it
appends a row to `seals` in the same transaction:

    seals(id, recording_id, digest, rows, contents, prev, chain, reason, at)

- `rows`: JSON {content name: [[row id, sha256 of the row's values], ...]} for every content
  below, so `verify` can name the very line, flag or verdict that changed;
- `digest`: SHA-256 of `rows` (canonical JSON), what the chain commits to;
- `contents`: the content names that went into it (JSON list), so seals made before a content
  was added still check against what they sealed;
- `prev`: the `chain` of the seal before it ('' for the first); `chain`: SHA-256 of
  [prev, recording_id, digest, contents, reason, at]. A seal edited, removed or inserted out
  of order breaks every `chain` after it.

A recording's current seal is its latest. `verify_store` recomputes every done (or sealed)
recording's rows against its current seal and walks the whole chain; `chain_head` is the last
seal (exported in evidence bundles, so a bundle can be tied to its store).

What this proves and what it cannot is written down in docs/recovery.md: anyone who can run
intercept's own code on the file (or copy it) can re-seal an edit; the chain head noted
elsewhere (a bundle, a report) is what shows the history was rewritten afterwards.

Adding a table (or columns) to a recording's digest
----------------------------------------------------
Append a `RecordingContent` with `register(...)` (for example in the module that owns the
table, at import time, or below in CONTENTS):

    register(RecordingContent(
        name="line_revisions",          # unique, never renamed: stored seals name it
        noun="line revision",           # how verify names one row: "line revision 12 ..."
        sql="SELECT r.id, r.line_id, r.text, r.reviewer, r.at FROM line_revisions r "
            "JOIN lines l ON l.id = r.line_id WHERE l.recording_id = ? ORDER BY r.id",
        tables=("line_revisions",),     # skipped (not sealed) while one of these is missing
    ))

The SQL takes the recording id as its only parameter and returns the row's id first; every
other column is hashed. Then every store method that writes that table must call
`seal_recording(conn, recording_id, reason)` inside its write transaction (the Store does this
in `_writing` blocks through `Store._reseal`). Seals made before the content existed do not
name it and are checked without it; to bring existing recordings under it, the table's
migration calls `seal_all(conn, "migrated: <migration name>")` (after 0010_seal; harmless when
seals does not exist yet, since 0010 seals everything then).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable, Optional

SEALS_SQL = """
CREATE TABLE IF NOT EXISTS seals (
  id INTEGER PRIMARY KEY,
  recording_id INTEGER NOT NULL,
  digest TEXT NOT NULL,
  rows TEXT NOT NULL,
  contents TEXT NOT NULL,
  prev TEXT NOT NULL,
  chain TEXT NOT NULL,
  reason TEXT NOT NULL,
  at TEXT NOT NULL
)
"""
SEALS_INDEX_SQL = "CREATE INDEX IF NOT EXISTS seals_recording ON seals(recording_id, id)"


@dataclass(frozen=True)
class RecordingContent:
    """One kind of row that belongs to a recording and goes into its digest."""

    name: str
    noun: str
    sql: str  # one parameter, the recording id; the row id comes first
    tables: tuple[str, ...] = ()


CONTENTS: list[RecordingContent] = [
    RecordingContent(
        "recordings", "recording",
        "SELECT id, path, sha256, duration_s, format, size_bytes, status, error, run_id, processed_at, version, "
        "supersedes, transmission_count, line_count, recorded_at FROM recordings WHERE id = ?",
        ("recordings",)),
    RecordingContent(
        "transmissions", "transmission",
        "SELECT id, recording_id, idx, start_s, end_s FROM transmissions WHERE recording_id = ? ORDER BY id",
        ("transmissions",)),
    RecordingContent(
        "lines", "line",
        "SELECT id, recording_id, transmission_id, idx, start_s, end_s, text_fa_raw, text_fa, text_en, avg_logprob, "
        "no_speech_prob, compression_ratio, suspect, engine, model, translator, translator_model, confidence, words, "
        "alternatives FROM lines WHERE recording_id = ? ORDER BY id",
        ("lines",)),
    RecordingContent(
        "flags", "flag",
        "SELECT f.id, f.line_id, f.concept, f.category, f.severity, f.kind, f.score, f.span_start, f.span_end, "
        "f.matched, f.term, f.lexicon_version, f.match_score, f.word_prob, f.nbest_share, f.prior, f.prior_reason, "
        "f.hypothesis, f.scorer_version, f.acoustic_margin FROM flags f JOIN lines l ON l.id = f.line_id "
        "WHERE l.recording_id = ? ORDER BY f.id",
        ("flags", "lines")),
    RecordingContent(
        "verdicts", "verdict",
        "SELECT v.id, v.line_id, v.flag_id, v.verdict, v.note, v.reviewer, v.at FROM verdicts v "
        "JOIN lines l ON l.id = v.line_id WHERE l.recording_id = ? ORDER BY v.id",
        ("verdicts", "lines")),
]


def register(content: RecordingContent) -> None:
    """Add a content to every recording's digest from now on (see the module's docstring)."""
    if any(c.name == content.name for c in CONTENTS):
        raise ValueError(f"a recording content named {content.name!r} is registered already")
    CONTENTS.append(content)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    # bytes (recording_paths-like columns) are not JSON: hex, marked so they differ from text.
    return {"hex": value.hex()} if isinstance(value, (bytes, memoryview)) else value


def _canonical(value: Any) -> str:
    # Python's float repr round-trips SQLite's REAL exactly, so a number hashes the same every time.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _content_rows(conn: sqlite3.Connection, content: RecordingContent, recording_id: int) -> list[list]:
    return [[row[0], _sha256(_canonical([content.name, *map(_plain, row)]))]
            for row in conn.execute(content.sql, [recording_id])]


def recording_rows(conn: sqlite3.Connection, recording_id: int,
                   contents: Optional[Iterable[RecordingContent]] = None) -> dict[str, list[list]]:
    """{content name: [[row id, row hash], ...]} of one recording, for the given contents
    (default: every registered content whose tables exist)."""
    if contents is None:
        have = _tables(conn)
        contents = [c for c in CONTENTS if set(c.tables) <= have]
    return {c.name: _content_rows(conn, c, recording_id) for c in contents}


def _chain(prev: str, recording_id: int, digest: str, contents: str, reason: str, at: str) -> str:
    return _sha256(_canonical([prev, recording_id, digest, contents, reason, at]))


def has_seals(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seals'").fetchone() is not None


def create_table(conn: sqlite3.Connection) -> None:
    conn.execute(SEALS_SQL)
    conn.execute(SEALS_INDEX_SQL)


def seal_recording(conn: sqlite3.Connection, recording_id: int, reason: str) -> Optional[int]:
    """Seal the recording's rows as they are now; the caller holds the write transaction (so
    no other writer appends between reading the chain's head and appending to it). Returns
    the seal's id, or None on a store without the seals table (made before 0010_seal)."""
    if not has_seals(conn):
        return None
    rows = recording_rows(conn, recording_id)
    rows_text = _canonical(rows)
    digest = _sha256(rows_text)
    contents = _canonical(list(rows))
    last = conn.execute("SELECT chain FROM seals ORDER BY id DESC LIMIT 1").fetchone()
    prev = last[0] if last else ""
    at = _now()
    cursor = conn.execute(
        "INSERT INTO seals (recording_id, digest, rows, contents, prev, chain, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [recording_id, digest, rows_text, contents, prev, _chain(prev, recording_id, digest, contents, reason, at),
         reason, at])
    return cursor.lastrowid


def seal_all(conn: sqlite3.Connection, reason: str) -> int:
    """Seal every done recording once (a migration); returns how many."""
    if not has_seals(conn):
        return 0
    ids = [row[0] for row in conn.execute("SELECT id FROM recordings WHERE status = 'done' ORDER BY id")]
    for recording_id in ids:
        seal_recording(conn, recording_id, reason)
    return len(ids)


def chain_head(conn: sqlite3.Connection) -> Optional[dict]:
    """The last seal: {"id", "chain", "at", "seals"} (seals: how many), or None."""
    if not has_seals(conn):
        return None
    row = conn.execute("SELECT id, chain, at FROM seals ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    count = conn.execute("SELECT count(*) FROM seals").fetchone()[0]
    return {"id": row[0], "chain": row[1], "at": row[2], "seals": count}


def head_problem(conn: sqlite3.Connection, head: dict) -> Optional[str]:
    """None when the seal `head` ({"id", "chain"}, as a bundle records it) is in this store's
    chain, else why not."""
    if not has_seals(conn):
        return "the store has no seals"
    row = conn.execute("SELECT chain FROM seals WHERE id = ?", [head.get("id")]).fetchone()
    if row is None:
        return f"seal {head.get('id')} is not in the store (another store, or its chain was cut)"
    if row[0] != head.get("chain"):
        return (f"seal {head.get('id')} of the store has chain {row[0][:16]}…, the bundle's is "
                f"{str(head.get('chain'))[:16]}… (another store, or the chain was rewritten)")
    return None


def verify_store(conn: sqlite3.Connection) -> list[str]:
    """Every problem with the seals, one line each: a seal edited, removed or inserted out of
    order; a recording, transmission, line, flag or verdict whose content no longer matches
    its recording's current seal, removed since, or added without a seal; a recording never
    sealed. Empty when every sealed row is as intercept last wrote it."""
    if not has_seals(conn):
        return ["the store has no seals table (made before 0010_seal): run `intercept migrate`"]
    problems: list[str] = []
    known = {c.name: c for c in CONTENTS}
    latest: dict[int, tuple[int, dict, list[str]]] = {}
    prev, prev_id = "", None
    for seal_id, recording_id, digest, rows_text, contents, seal_prev, chain, reason, at in conn.execute(
            "SELECT id, recording_id, digest, rows, contents, prev, chain, reason, at FROM seals ORDER BY id"):
        label = f"seal {seal_id} (recording {recording_id})"
        if seal_prev != prev:
            problems.append(f"{label}: does not follow " + (f"seal {prev_id}" if prev_id else "the chain's start")
                            + ": a seal before it was removed or edited, or this one was added from outside")
        if chain != _chain(seal_prev, recording_id, digest, contents, reason, at):
            problems.append(f"{label}: edited (its chain hash does not match its fields)")
        if _sha256(rows_text) != digest:
            problems.append(f"{label}: edited (its rows do not hash to its digest)")
        try:
            rows = json.loads(rows_text)
            names = json.loads(contents)
            assert isinstance(rows, dict) and isinstance(names, list)
        except (ValueError, AssertionError):
            problems.append(f"{label}: unreadable")
            rows, names = {}, []
        latest[recording_id] = (seal_id, rows, names)
        prev, prev_id = chain, seal_id
    recordings = {row[0]: row[1] for row in conn.execute("SELECT id, path FROM recordings")}
    done = [row[0] for row in conn.execute("SELECT id FROM recordings WHERE status = 'done' ORDER BY id")]
    for recording_id in sorted(set(done) | set(latest)):
        where = f"recording {recording_id} ({recordings.get(recording_id, 'removed')})"
        if recording_id not in latest:
            problems.append(f"{where}: not sealed (stored from outside intercept, or its seals were removed)")
            continue
        seal_id, sealed, names = latest[recording_id]
        unknown = [n for n in names if n not in known]
        if unknown:
            problems.append(f"{where}: seal {seal_id} covers {', '.join(unknown)}, unknown to this intercept")
        contents = [known[n] for n in names if n in known]
        now = recording_rows(conn, recording_id, contents)
        for content in contents:
            then = {int(i): h for i, h in sealed.get(content.name, [])}
            current = {int(i): h for i, h in now[content.name]}
            noun = content.noun
            for row_id in sorted(set(then) | set(current)):
                if row_id not in current:
                    problems.append(f"{noun} {row_id} of {where}: removed since seal {seal_id}")
                elif row_id not in then:
                    problems.append(f"{noun} {row_id} of {where}: not sealed (added from outside intercept)")
                elif then[row_id] != current[row_id]:
                    problems.append(f"{noun} {row_id} of {where}: changed since seal {seal_id}")
    return problems
