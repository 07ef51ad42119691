"""The reviewers' "correct next" list (intercept.store.revisions.correct_next): the same rows, in
the same order, with the same parts of their priority, as the whole-store query it replaced
(OLD_CORRECT_NEXT_SQL below, kept as the reference), on generated stores with ties, corrected
lines, false positives, confirmed neighbours, weak lines and a recording filter."""
from __future__ import annotations

import random
import sqlite3

import pytest

from intercept.store import CREATE, MIGRATIONS, SCHEMA_VERSION, Store, WRITE
from intercept.store import revisions

# The query before the bounds (commit a51caaf), ranking every candidate of the store.
OLD_CORRECT_NEXT_SQL = """
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


def old_correct_next(conn, threshold, band, weak_confidence, neighbour_s, limit=50, recording_id=None):
    conn.row_factory = sqlite3.Row
    sql = OLD_CORRECT_NEXT_SQL
    params = {"threshold": threshold, "band": band, "weak": weak_confidence, "neighbour_s": neighbour_s,
              "limit": int(limit)}
    if recording_id is not None:
        sql += " AND l.recording_id = :recording_id"
        params["recording_id"] = int(recording_id)
    sql = ("SELECT *, round(near_threshold + low_confidence + min(confirmed_near, 2) * 0.5, 4) AS priority "
           f"FROM ({sql}) WHERE near_threshold + low_confidence + confirmed_near > 0 "
           "ORDER BY priority DESC, score DESC, line_id LIMIT :limit")
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.row_factory = None


def _generate(store: Store, seed: int) -> None:
    """Four recordings of 70 lines: start times on a 7.5 s grid (neighbours exactly 30 s apart)
    and some 0.1 s off it (30.1 - 30 is not 0.1 in floating point), confidences and flag scores
    from short lists (ties), flags of every kind, verdicts from reviewers, corrected lines with
    their flags superseded."""
    rng = random.Random(seed)
    db = store.db
    concepts = ["fox", "bird", "wolf", "eagle"]
    with db.conn:
        for rec in range(1, 5):
            db.execute("INSERT INTO recordings (id, path, sha256, status) VALUES (?, ?, ?, 'done')",
                       [rec, f"/r/{rec}.wav", f"{rec:064d}"])
            for idx in range(70):
                start = idx * 7.5 + rng.choice([0.0, 0.0, 0.0, 0.1, 0.3])
                confidence = rng.choice([None, 0.0, 0.1, 0.255, 0.3, 0.5, 0.51, 0.9, 0.9])
                line_id = db.execute(
                    "INSERT INTO lines (recording_id, idx, start_s, end_s, text_fa_raw, text_fa, text_en, confidence) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [rec, idx, start, start + 3.0, f"خط {rec} {idx}", f"خط {rec} {idx}", f"line {rec} {idx}",
                     confidence]).lastrowid
                for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
                    db.execute("INSERT INTO flags (line_id, concept, kind, score, span_start, span_end) "
                               "VALUES (?, ?, ?, ?, 0, 1)",
                               [line_id, rng.choice(concepts), rng.choice(["fuzzy", "alternative", "exact", "morph"]),
                                rng.choice([0.2, 0.35, 0.36, 0.4, 0.5, 0.5, 0.6, 0.64, 0.65, 0.8, 0.95])])
    flagged = [row[0] for row in db.execute("SELECT line_id FROM line_review ORDER BY line_id")]
    for line_id in flagged:
        draw = rng.random()
        if draw < 0.2:
            store.add_verdict(line_id, "confirmed", rng.choice(["maryam", "reza"]))
        elif draw < 0.3:
            store.add_verdict(line_id, "false_positive", "maryam")
        elif draw < 0.35:
            store.add_verdict(line_id, "unsure", "reza")
    with db.conn:  # corrections: a revision, the line's text from it, its flags superseded
        for line_id in rng.sample(range(1, 281), 15):
            revision = db.execute("INSERT INTO line_revisions (line_id, text_fa, reviewer, at) "
                                  "VALUES (?, 'درست', 'maryam', '2026-12-02T08:00:00')", [line_id]).lastrowid
            db.execute("UPDATE lines SET revision_id = ?, text_fa = 'درست' WHERE id = ?", [revision, line_id])
            if rng.random() < 0.5:
                db.execute("UPDATE flags SET superseded_by_revision = ? WHERE line_id = ?", [revision, line_id])


@pytest.fixture(scope="module", params=[1, 7])
def generated(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("correct-next") / "traffic.db"
    with Store(path, CREATE) as store:
        _generate(store, request.param)
    return path


SETTINGS = [  # threshold, band, weak, neighbour_s
    (0.5, 0.15, 0.51, 30.0),
    (0.5, 0.2, 0.51, 15.0),
    (0.6, 0.1, 0.3, 7.5),
    (0.5, 0.15, 0.0, 30.0),  # no line is weak: the bounds' assumptions fail, every candidate is ranked
    (0.5, 0.0, 0.51, 30.0),  # band 0: near_threshold divides by zero (NULL)
]


@pytest.mark.parametrize("batch", [1, 4, 256])
@pytest.mark.parametrize("settings", SETTINGS)
def test_the_same_rows_in_the_same_order_as_the_whole_store_query(generated, settings, batch, monkeypatch):
    monkeypatch.setattr(revisions, "_BATCH", batch)
    with Store(generated, WRITE) as store:
        for limit in (1, 3, 10, 50, 1000, 0, -1):  # -1: SQL's no limit
            expected = old_correct_next(store.db.conn, *settings, limit=limit)
            assert revisions.correct_next(store.db, *settings, limit=limit) == expected, (settings, limit)
        for recording_id in (1, 3, 99):
            expected = old_correct_next(store.db.conn, *settings, limit=10, recording_id=recording_id)
            assert revisions.correct_next(store.db, *settings, limit=10, recording_id=recording_id) == expected


def test_the_generated_store_has_what_the_comparison_needs(generated):
    """Ties, corrected and false-positive lines that would otherwise be candidates, lines near two
    confirmed lines, weak lines: the comparison above is only worth as much as these."""
    with Store(generated, WRITE) as store:
        everything = old_correct_next(store.db.conn, 0.5, 0.15, 0.51, 30.0, limit=10_000)
        priorities = [row["priority"] for row in everything]
        assert len(set(priorities)) < len(priorities) / 2  # many ties, broken by score then line id
        assert any(a["priority"] == b["priority"] and a["score"] == b["score"]
                   for a, b in zip(everything, everything[1:]))
        assert any(row["confirmed_near"] >= 2 for row in everything)
        assert any(row["low_confidence"] > 0 and row["near_threshold"] == 0 and row["confirmed_near"] == 0
                   for row in everything)
        assert any(row["near_threshold"] > 0 for row in everything)
        ids = {row["line_id"] for row in everything}
        corrected = {row[0] for row in store.db.execute("SELECT id FROM lines WHERE revision_id IS NOT NULL")}
        false_positive = {row[0] for row in store.db.execute(
            "SELECT line_id FROM line_review WHERE verdict = 'false_positive'")}
        assert corrected and false_positive and not (ids & (corrected | false_positive))
        store.db.execute("UPDATE lines SET revision_id = NULL")
        store.db.execute("DELETE FROM verdicts WHERE verdict = 'false_positive'")
        unfiltered = {row["line_id"] for row in old_correct_next(store.db.conn, 0.5, 0.15, 0.51, 30.0, limit=10_000)}
        store.db.conn.rollback()
        assert unfiltered & corrected and unfiltered & false_positive  # they were left out, not absent


def test_only_the_candidates_that_can_reach_the_list_are_ranked(generated, monkeypatch):
    monkeypatch.setattr(revisions, "_BATCH", 4)
    looked_at = []
    ranked_rows = revisions._ranked_rows

    def counting(db, params, ids, limit):
        looked_at.extend(ids)
        return ranked_rows(db, params, ids, limit)

    monkeypatch.setattr(revisions, "_ranked_rows", counting)
    with Store(generated, WRITE) as store:
        candidates = len(old_correct_next(store.db.conn, 0.5, 0.15, 0.51, 30.0, limit=10_000))
        revisions.correct_next(store.db, 0.5, 0.15, 0.51, 30.0, limit=3)
    assert len(set(looked_at)) < candidates / 3


def test_the_indexes_come_with_migration_0013_on_an_older_store(tmp_path):
    path = tmp_path / "old.db"
    with Store(path, CREATE) as store:
        for name in ("lines_confidence", "flags_doubtful", "line_review_confirmed"):
            assert store.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", [name]).fetchone()
        # As a store of the version before: without the indexes nor the record of 0013.
        for name in ("lines_confidence", "flags_doubtful", "line_review_confirmed"):
            store.db.execute(f"DROP INDEX {name}")
        store.db.execute("DELETE FROM _sqlite_migrations WHERE name = '0013_correct_next'")
        store.db.conn.commit()
    conn = sqlite3.connect(path)
    MIGRATIONS.apply(__import__("sqlite_utils").Database(conn))
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"lines_confidence", "flags_doubtful", "line_review_confirmed"} <= names
    assert "0013_correct_next" in {row[0] for row in conn.execute("SELECT name FROM _sqlite_migrations")}
    assert SCHEMA_VERSION >= 13
    conn.close()
