"""The review desk's reads (intercept.review), on any connection to a store: Datasette runs
them on its read connections through `execute_fn`, so the review holds no SQL.

Also here: the SQL pieces the review's facets and filters hand to Datasette, which puts them
around or into its own table query (`flag_facet_sql`, `flag_filter_sql`, `voice_facet_sql`,
`voice_filter_sql`). Columns added by later migrations (flag evidence, recorded_at, lexicon
notes) are used when the store has them.
"""
from __future__ import annotations

import sqlite3
from typing import Any, Optional, Sequence

from .team import DISPUTED

# ?show= of the review queue -> which lines of line_review it lists, and their order.
QUEUE_SHOWS = {
    "queue": ("verdict IS NULL AND score >= :threshold", "score DESC, line_id"),
    "disputed": (f"verdict = '{DISPUTED}'", "verdict_at DESC, line_id"),
    "confirmed": ("confirmed = 1", "verdict_at DESC, line_id"),
    "judged": ("verdict IS NOT NULL", "verdict_at DESC, line_id"),
}
PERIOD_SHOWS = {"all": "1", "flagged": "line_review.line_id is not null",
                "confirmed": "line_review.verdict = 'confirmed'"}


def _dicts(conn: sqlite3.Connection, sql: str, params: Any = ()) -> list[dict]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def table_names(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("select name from sqlite_master where type in ('table', 'view')")}


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    # PRAGMA takes no parameters; `table` is one of this module's own table names.
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


# ---------------------------------------------------------------- one line


def line_exists(conn: sqlite3.Connection, line_id: int) -> bool:
    return conn.execute("select 1 from lines where id = ?", [line_id]).fetchone() is not None


def clip_source(conn: sqlite3.Connection, line_id: int) -> Optional[tuple]:
    """(start_s, end_s, recording path) of a line, for its audio clip; None: no such line."""
    return conn.execute(
        "select lines.start_s, lines.end_s, recordings.path from lines "
        "join recordings on recordings.id = lines.recording_id where lines.id = ?", [line_id]).fetchone()


def line_state(conn: sqlite3.Connection, line_id: int) -> Optional[dict]:
    """The line's verdict and confirmed mark in line_review; None for a line without flags."""
    rows = _dicts(conn, "select verdict, confirmed from line_review where line_id = ?", [line_id])
    return rows[0] if rows else None


def lines_with_flags(conn: sqlite3.Connection, line_ids: Sequence[int]) -> tuple[list[dict], dict[int, list[dict]], bool]:
    """(lines, their current flags by line id, whether flags carry trust evidence) for the
    desk's description of lines (intercept.review.desk.describe_lines), in three queries.
    Each line has recording_path, recorded_at and its line_review verdict; each flag the gloss
    (the concept's English forms) and notes of its lexicon version. A correction's superseded
    flags are left out (they are kept in the store, marked on no text)."""
    ids = sorted({int(i) for i in line_ids})
    if not ids:
        return [], {}, False
    marks = ",".join("?" * len(ids))
    recorded = "recordings.recorded_at" if "recorded_at" in columns(conn, "recordings") else "null"
    lines = _dicts(conn,
        f"select lines.*, recordings.path as recording_path, {recorded} as recorded_at, "
        "line_review.verdict as verdict "
        "from lines join recordings on recordings.id = lines.recording_id "
        f"left join line_review on line_review.line_id = lines.id where lines.id in ({marks})", ids)
    flags = _dicts(conn, f"select * from flags where line_id in ({marks}) order by line_id, span_start, id", ids)
    lexicon = _lexicon_notes(conn, flags)
    by_line: dict[int, list[dict]] = {}
    for flag in flags:
        if flag.get("superseded_by_revision") is not None:
            continue
        flag.update(lexicon.get((flag.get("concept"), flag.get("lexicon_version")), {}))
        by_line.setdefault(flag["line_id"], []).append(flag)
    return lines, by_line, "match_score" in columns(conn, "flags")


def _lexicon_notes(conn: sqlite3.Connection, flags: list[dict]) -> dict[tuple, dict]:
    """(concept, lexicon version) -> gloss (the concept's English forms) and notes, from the
    lexicon terms stored with each version."""
    keys = sorted({(f.get("concept"), f.get("lexicon_version")) for f in flags if f.get("concept")}, key=str)
    if not keys:
        return {}
    notes = "notes" if "notes" in columns(conn, "lexicon_terms") else "null"
    concepts = sorted({concept for concept, _ in keys})
    rows = _dicts(conn,
        f"select concept, lexicon_version, lang, form, {notes} as notes from lexicon_terms "
        f"where concept in ({','.join('?' * len(concepts))}) order by id", concepts)
    found: dict[tuple, dict] = {}
    for row in rows:
        entry = found.setdefault((row["concept"], row["lexicon_version"]), {"gloss": [], "notes": None})
        if row["lang"] == "en" and row["form"] not in entry["gloss"]:
            entry["gloss"].append(row["form"])
        entry["notes"] = entry["notes"] or row["notes"]
    return {key: {"gloss": ", ".join(value["gloss"]) or None, "notes": value["notes"]} for key, value in found.items()}


def context_ids(conn: sqlite3.Connection, line_id: int, whole: bool, around: int,
                limit: int) -> Optional[tuple[dict, list[int]]]:
    """(the line's row, the ids of the lines around it in recording order): `around` each side,
    or every line of the recording (up to `limit`) when `whole`. None: no such line."""
    found = _dicts(conn, "select id, recording_id, start_s from lines where id = ?", [line_id])
    if not found:
        return None
    line = found[0]
    if whole:
        ids = [r[0] for r in conn.execute(
            "select id from lines where recording_id = ? order by start_s, id limit ?", [line["recording_id"], limit])]
        return line, ids
    # Both directions walk the (recording_id, start_s) index from the line.
    where = {"r": line["recording_id"], "s": line["start_s"], "i": line_id, "n": around}
    before = [r[0] for r in conn.execute(
        "select id from lines where recording_id = :r and (start_s < :s or (start_s = :s and id < :i)) "
        "order by start_s desc, id desc limit :n", where)]
    after = [r[0] for r in conn.execute(
        "select id from lines where recording_id = :r and (start_s > :s or (start_s = :s and id > :i)) "
        "order by start_s, id limit :n", where)]
    return line, before[::-1] + [line_id] + after


# ---------------------------------------------------------------- traffic over time


def activity_counts(conn: sqlite3.Connection, size: int) -> Optional[dict[int, dict]]:
    """{bucket: {lines, flagged, confirmed}}, a bucket being (Unix seconds of a line's absolute
    time) // size. None when the store records no recording times (before migration 0006)."""
    if "recorded_at" not in columns(conn, "recordings"):
        return None
    # Per recording, each bucket it spans is one range of offsets, counted on the
    # (recording_id, start_s) indexes of lines and line_review: 6x faster on a million lines
    # than a GROUP BY on the computed bucket (docs/benchmarks.md).
    found: dict[int, dict] = {}
    for recording_id, epoch, last in conn.execute(
            "select id, cast(strftime('%s', recorded_at) as integer), "
            "(select max(start_s) from lines where recording_id = recordings.id) "
            "from recordings where recorded_at is not null").fetchall():
        if epoch is None or last is None:
            continue
        for bucket in range(epoch // size, int((epoch + last) // size) + 1):
            low, high = bucket * size - epoch, (bucket + 1) * size - epoch
            (lines,) = conn.execute("select count(*) from lines where recording_id = ? and start_s >= ? "
                                    "and start_s < ?", [recording_id, low, high]).fetchone()
            flagged, confirmed = conn.execute(
                "select count(*), coalesce(sum(verdict = 'confirmed'), 0) from line_review "
                "where recording_id = ? and start_s >= ? and start_s < ?", [recording_id, low, high]).fetchone()
            if lines:
                total = found.setdefault(bucket, {"lines": 0, "flagged": 0, "confirmed": 0})
                total["lines"] += lines
                total["flagged"] += flagged
                total["confirmed"] += confirmed
    return found


def period_ids(conn: sqlite3.Connection, start: str, end: str, show: str, limit: int) -> list[int]:
    """Ids of the lines whose absolute time lies in [start, end) ('YYYY-MM-DD HH:MM:SS', UTC):
    all, flagged or confirmed (PERIOD_SHOWS)."""
    if "recorded_at" not in columns(conn, "recordings"):
        return []
    condition = PERIOD_SHOWS[show]
    # Recordings first (CROSS JOIN keeps that order): only those that overlap the period, then
    # their lines through the (recording_id, start_s) index.
    rows = conn.execute(
        "select lines.id from recordings cross join lines on lines.recording_id = recordings.id "
        "left join line_review on line_review.line_id = lines.id "
        "where recordings.recorded_at is not null and datetime(recordings.recorded_at) < :end "
        "and (recordings.duration_s is null "
        "     or datetime(recordings.recorded_at, '+' || (recordings.duration_s + 1) || ' seconds') >= :start) "
        "and datetime(recordings.recorded_at, '+' || lines.start_s || ' seconds') >= :start "
        "and datetime(recordings.recorded_at, '+' || lines.start_s || ' seconds') < :end "
        f"and {condition} order by recordings.recorded_at, lines.recording_id, lines.start_s limit :n",
        {"start": start, "end": end, "n": limit})
    return [row[0] for row in rows]


# ---------------------------------------------------------------- the team's queue and pages


def queue_ids(conn: sqlite3.Connection, show: str, threshold: float, limit: int, offset: int = 0,
              recording_id: Optional[int] = None, leave_out: Sequence[int] = (),
              concept: Optional[str] = None, leave_out_hours: Sequence[str] = ()) -> list[int]:
    """Line ids of the review queue's `show` (QUEUE_SHOWS), in its order: of one recording, or
    leaving out the recordings `leave_out` and the lines whose absolute time falls in one of the
    hours `leave_out_hours` ('YYYY-MM-DDTHH', UTC; both claimed by others); with a flag of
    `concept`."""
    where, order = QUEUE_SHOWS[show]
    conditions = [where]
    params: dict[str, Any] = {"threshold": threshold, "n": limit, "skip": offset}
    if recording_id is not None:
        conditions.append("recording_id = :recording_id")
        params["recording_id"] = recording_id
    elif leave_out:
        conditions.append(f"recording_id NOT IN ({','.join(str(int(r)) for r in leave_out)})")
    if recording_id is None and leave_out_hours and "recorded_at" in columns(conn, "recordings"):
        marks = ",".join(f":hour{i}" for i in range(len(leave_out_hours)))
        params.update({f"hour{i}": hour for i, hour in enumerate(leave_out_hours)})
        # A line's hour is its recording's time plus its offset (recorded_at.absolute_time).
        conditions.append("NOT EXISTS (SELECT 1 FROM recordings r WHERE r.id = line_review.recording_id "
                          "AND r.recorded_at IS NOT NULL AND strftime('%Y-%m-%dT%H', r.recorded_at, "
                          f"'+' || line_review.start_s || ' seconds') IN ({marks}))")
    if concept:
        conditions.append("line_id IN (SELECT line_id FROM flags WHERE concept = :concept)")
        params["concept"] = concept
    sql = f"select line_id from line_review where {' and '.join(conditions)} order by {order} limit :n offset :skip"
    return [row[0] for row in conn.execute(sql, params)]


def queue_counts(conn: sqlite3.Connection, threshold: float) -> tuple[int, int]:
    """(lines awaiting review at `threshold`, disputed lines)."""
    return tuple(conn.execute(
        "select (select count(*) from line_review where verdict is null and score >= :t), "
        f"(select count(*) from line_review where verdict = '{DISPUTED}')", {"t": threshold}).fetchone())


def known_concepts(conn: sqlite3.Connection, limit: int = 2000) -> list[str]:
    """The concepts of every stored lexicon version (what a reviewer flag may name)."""
    return [row[0] for row in conn.execute(
        "select distinct concept from lexicon_terms order by concept limit ?", [limit]) if row[0]]


def timeline_recordings(conn: sqlite3.Connection, limit: int = 2000) -> list[dict]:
    """The recordings done, by path, each with its number of flagged lines."""
    return _dicts(conn,
        "select recordings.id as recording_id, recordings.path as recording, "
        "(select count(*) from line_review r where r.recording_id = recordings.id) as flagged "
        "from recordings where status = 'done' order by recordings.path limit ?", [limit])


# ---------------------------------------------------------------- facets and filters (SQL for Datasette)


def flag_facet_sql(table_sql: str, list_column: str) -> str:
    """Count each distinct comma list of `list_column` (concepts, categories, kinds) in the
    rows of Datasette's `table_sql`."""
    if list_column not in ("concepts", "categories", "kinds"):
        raise ValueError(f"no flag list column {list_column!r}")
    return (f"select {list_column} as value, count(*) as count from ({table_sql}) "
            f"where {list_column} is not null group by {list_column}")


def flag_filter_sql(line_id_column: str, flag_column: str, parameter: str) -> str:
    """Rows whose line has a current flag with `flag_column` = :parameter."""
    if line_id_column not in ("line_id", "id") or flag_column not in ("concept", "category", "kind"):
        raise ValueError(f"no flag filter on {line_id_column!r}, {flag_column!r}")
    return (f"{line_id_column} in (select line_id from flags where {flag_column} = :{parameter} "
            "and superseded_by_revision is null)")


def voice_facet_sql(table_sql: str) -> str:
    """Lines per voice (id, name, count) of the flagged_lines rows of Datasette's `table_sql`."""
    return (f"select t.voice_id as value, v.name as name, count(*) as count from ({table_sql}) fl "
            "join lines l on l.id = fl.line_id join transmissions t on t.id = l.transmission_id "
            "join voices v on v.id = t.voice_id group by t.voice_id order by count(*) desc, t.voice_id")


def voice_filter_sql(parameter: str) -> str:
    """flagged_lines rows whose line's transmission has the voice :parameter."""
    return (f"line_id in (select l.id from lines l join transmissions t on t.id = l.transmission_id "
            f"where t.voice_id = :{parameter})")
