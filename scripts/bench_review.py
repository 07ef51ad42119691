#!/usr/bin/env python
"""Benchmark: the review start page (the reviewer's queue of lines awaiting review) on a large store.

Generates a store with the real schema (intercept.store.Store), bulk-loads N lines with a
fraction flagged and some of those judged, then times the start page through Datasette's test
client: `/` and the page it redirects to, several times, median and p95. Target: < 300 ms on
1M lines.

By default it times the store as intercept.store makes it (with the line_review summary table of
migration 0004); --no-review-sql times a copy with the old GROUP BY view, for comparison.

    .venv/bin/python scripts/bench_review.py --lines 1000000 --db /tmp/bench-review.db
    .venv/bin/python scripts/bench_review.py --db /tmp/bench-review.db --reuse     # time again

The generated store is kept at --db; --reuse times an existing one without regenerating.
With --desk (the default) it also times the review desk: the flagged page together with the one
request that marks its flagged words, and a flagged line's context view (target < 300 ms
each); --activity adds the traffic chart; --corrections N times N reviewers' corrections of
flagged lines (target < 1 s each); --correct-next times the reviewers' correct-next list (target
< 300 ms), --correct-next-reference also the whole-store query it replaced:

    .venv/bin/python scripts/bench_review.py --db /tmp/bench-review.db --reuse --no-desk --corrections 20
    .venv/bin/python scripts/bench_review.py --db /tmp/bench-review.db --reuse --no-desk --no-start-page \
        --correct-next --correct-next-reference --repeats 3
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intercept.store import CREATE, Store  # noqa: E402

# What store.py should add (schema version 2) so the review pages need no GROUP BY over all
# lines: one row per flagged line, kept current by triggers whatever writes flags or verdicts.
# The summary table, triggers and view now live in the store (migration 0004_line_review);
# --no-review-sql rebuilds the old GROUP BY view on a copy to time the store without them.
from intercept.store import FLAGGED_LINES_VIEW  # noqa: E402


WORDS = (
    "امشب فردا برویم ببینیم است یا بار جنس مرز ساعت کجا هستی رسید نرسید منتظر باش بگو آماده "
    "ماشین جاده پل کوه شهر خانه دوست برادر پول نفر سه چهار پنج شب صبح زود دیر خبر پیام "
    "تماس بگیر نگران نباش همه چیز خوب است"
).split()
CONCEPTS = [  # concept, category, Farsi word; weighted towards the first (codes repeat)
    ("fox", "animal_code", "روباه"), ("bird", "animal_code", "پرنده"), ("wolf", "animal_code", "گرگ"),
    ("sheep", "animal_code", "گوسفند"), ("horse", "animal_code", "اسب"), ("snake", "animal_code", "مار"),
    ("eagle", "animal_code", "عقاب"), ("dog", "animal_code", "سگ"), ("cat", "animal_code", "گربه"),
    ("fish", "animal_code", "ماهی"), ("border", "place", "مرز"), ("bridge", "place", "پل"),
    ("money", "goods", "پول"), ("cargo", "goods", "بار"), ("weapon", "goods", "سلاح"),
]
KINDS = ("exact", "morph", "fuzzy", "pattern", "english")
VERDICT_VALUES = ("confirmed", "false_positive", "unsure")


def generate(db_path: Path, n_lines: int, flagged_fraction: float, judged_fraction: float,
             lines_per_recording: int, seed: int) -> None:
    rng = random.Random(seed)
    if db_path.exists():
        db_path.unlink()
    store = Store(db_path, CREATE)  # the real schema, view and FTS triggers
    db = store.db
    conn = db.conn
    # Bulk load: FTS triggers and the line_review triggers on flags and verdicts off during the
    # load, one rebuild of each at the end (much faster; the same rows as the triggers make).
    where = "type='trigger' and (tbl_name='lines' or name like 'line_review_flag%' or name like 'line_review_verdict%')"
    triggers = [row[0] for row in conn.execute(f"select sql from sqlite_master where {where}")]
    for (name,) in conn.execute(f"select name from sqlite_master where {where}").fetchall():
        conn.execute(f"drop trigger {name}")
    conn.execute("PRAGMA synchronous = OFF")
    n_recordings = max(1, n_lines // lines_per_recording)
    weights = [1 / (rank + 1) for rank in range(len(CONCEPTS))]
    with conn:
        conn.executemany(
            "insert into recordings (id, path, sha256, duration_s, format, size_bytes, status, processed_at) "
            "values (?, ?, ?, ?, 'mp3', 1000000, 'done', '2024-01-01T00:00:00+00:00')",
            ((rid, f"/data/recordings/2024/channel-{rid % 7}/rec-{rid:06d}.mp3", f"{rid:064x}",
              lines_per_recording * 8.0) for rid in range(1, n_recordings + 1)),
        )
        line_rows, flag_rows, verdict_rows = [], [], []
        flag_id = 0
        for line_id in range(1, n_lines + 1):
            rid = (line_id - 1) // lines_per_recording + 1
            idx = (line_id - 1) % lines_per_recording
            words = rng.choices(WORDS, k=rng.randint(3, 10))
            flags = []
            if rng.random() < flagged_fraction:
                for concept, category, word in rng.choices(CONCEPTS, weights, k=rng.choice((1, 1, 1, 2, 2, 3))):
                    position = rng.randrange(len(words) + 1)
                    words.insert(position, word)
                    flags.append((concept, category, word))
            text = " ".join(words)
            start = idx * 8.0 + rng.random()
            line_rows.append((line_id, rid, idx, start, start + rng.uniform(0.8, 6.0), text, text,
                              "English text " + " ".join(c for c, _, _ in flags), rng.uniform(-1.5, -0.1),
                              rng.uniform(0, 0.6), rng.uniform(0.8, 2.5)))
            for concept, category, word in flags:
                flag_id += 1
                flag_rows.append((flag_id, line_id, concept, category, "high", rng.choice(KINDS),
                                  round(rng.uniform(0.5, 1.0), 4), 0, len(word), word, word, "bench-1"))
            if flags and rng.random() < judged_fraction:
                verdict_rows.append((line_id, rng.choice(VERDICT_VALUES), "maryam", "2024-02-01T10:00:00+00:00"))
            if len(line_rows) >= 50_000:
                _flush(conn, line_rows, flag_rows, verdict_rows)
        _flush(conn, line_rows, flag_rows, verdict_rows)
    with conn:
        for sql in triggers:
            conn.execute(sql)
        conn.execute("insert into lines_fts(lines_fts) values('rebuild')")
        conn.execute("insert or replace into line_review select * from line_review_source")
    conn.execute("ANALYZE")
    store.close()


def _flush(conn, line_rows, flag_rows, verdict_rows) -> None:
    conn.executemany(
        "insert into lines (id, recording_id, idx, start_s, end_s, text_fa_raw, text_fa, text_en, avg_logprob, "
        "no_speech_prob, compression_ratio, engine, model, translator) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'faster-whisper', 'base', 'whisper')",
        line_rows,
    )
    conn.executemany(
        "insert into flags (id, line_id, concept, category, severity, kind, score, span_start, span_end, matched, "
        "term, lexicon_version) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        flag_rows,
    )
    conn.executemany("insert into verdicts (line_id, verdict, reviewer, at) values (?, ?, ?, ?)", verdict_rows)
    for rows in (line_rows, flag_rows, verdict_rows):
        rows.clear()


def apply_review_sql(db_path: Path) -> float:
    import sqlite3

    started = time.perf_counter()
    conn = sqlite3.connect(db_path)
    # The store as intercept.store made it already holds the summary table (migration 0004, and
    # 0012's meaning of a verdict): re-running 0004's SQL would put back its older view.
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - started


def remove_review_sql(db_path: Path) -> None:
    """Put back the store as it was before migration 0004: the GROUP BY view, no summary table."""
    import sqlite3

    conn = sqlite3.connect(db_path)
    names = [r[0] for r in conn.execute("select name from sqlite_master where type='trigger' and name like 'line_review%'")]
    with conn:
        for name in names:
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DROP VIEW IF EXISTS flagged_lines")
        conn.execute("DROP VIEW IF EXISTS line_review_source")
        conn.execute("DROP TABLE IF EXISTS line_review")
        conn.execute(f"CREATE VIEW flagged_lines AS {FLAGGED_LINES_VIEW}")
    conn.execute("ANALYZE")
    conn.close()


class PageFailed(RuntimeError):
    pass


def store_counts(db_path: Path) -> dict:
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        count = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "lines": count("select count(*) from lines"),
            "flagged_lines": count("select count(distinct line_id) from flags"),
            "awaiting_review": count("select count(*) from (select line_id from flags group by line_id) f "
                                     "where not exists (select 1 from verdicts v where v.line_id = f.line_id)"),
            "flags": count("select count(*) from flags"),
            "recordings": count("select count(*) from recordings"),
        }
    finally:
        conn.close()


def time_start_page(db_path: Path, repeats: int) -> dict:
    from intercept.review import ReviewOptions, make_datasette

    ds = make_datasette(db_path, ReviewOptions())

    async def one() -> tuple[float, float, int, str]:
        started = time.perf_counter()
        redirect = await ds.client.get("/")
        assert redirect.status_code == 302, redirect.status_code
        page = await ds.client.get(redirect.headers["location"])
        elapsed = time.perf_counter() - started
        if page.status_code != 200:
            heading = re.search(r"<h1>(.*?)</h1>", page.text, re.S)
            raise PageFailed(f"HTTP {page.status_code}: {heading.group(1).strip() if heading else page.text[:200]} "
                             f"after {elapsed * 1000:.0f} ms")
        return elapsed, page.text.count("data-line-id="), redirect.headers["location"], page.text

    async def scenario():
        first = await one()  # warm-up: schema introspection, page cache
        times = [(await one())[0] for _ in range(repeats)]
        return first, times

    try:
        first, times = asyncio.run(scenario())
    except PageFailed as failure:
        return {"failed": str(failure)}
    # Datasette lists facets that ran out of time (facet_time_limit_ms) under "timed out".
    timed_out = re.findall(r"These facets timed out: ([^<]*)", first[3])
    times_ms = sorted(t * 1000 for t in times)
    p95 = times_ms[min(len(times_ms) - 1, int(round(0.95 * (len(times_ms) - 1))))]
    return {
        "url": first[2],
        "rows_shown": first[1],
        "first_ms": round(first[0] * 1000, 1),
        "median_ms": round(statistics.median(times_ms), 1),
        "p95_ms": round(p95, 1),
        "min_ms": round(times_ms[0], 1),
        "repeats": repeats,
        "facets_timed_out": timed_out[0].strip() if timed_out else "",
    }


def _stats(times: list[float]) -> dict:
    times_ms = sorted(t * 1000 for t in times)
    p95 = times_ms[min(len(times_ms) - 1, int(round(0.95 * (len(times_ms) - 1))))]
    # min: the request's own cost when the machine is busy with other work (the median then
    # measures the queue for the CPU as much as the page).
    return {"median_ms": round(statistics.median(times_ms), 1), "p95_ms": round(p95, 1),
            "min_ms": round(times_ms[0], 1), "max_ms": round(times_ms[-1], 1)}


def time_desk(db_path: Path, repeats: int, with_activity: bool) -> dict:
    """The review desk (issue 15): the flagged page with its marks (the page, then the one
    lines.json request desk.js makes for the lines on it), a line's context view (3 lines either
    side, different flagged lines each time), and, with --activity, the traffic chart."""
    from intercept.review import ReviewOptions, make_datasette

    ds = make_datasette(db_path, ReviewOptions())

    async def timed(url: str) -> tuple[float, str]:
        started = time.perf_counter()
        page = await ds.client.get(url)
        elapsed = time.perf_counter() - started
        if page.status_code != 200:
            raise PageFailed(f"{url}: HTTP {page.status_code} after {elapsed * 1000:.0f} ms: {page.text[:200]}")
        return elapsed, page.text

    async def scenario() -> dict:
        location = (await ds.client.get("/")).headers["location"]
        _, first = await timed(location)
        ids = re.findall(r'data-line-id="(\d+)"', first)
        marks_url = "/-/intercept/lines.json?ids=" + ",".join(dict.fromkeys(ids))
        await timed(marks_url)  # warm-up
        flagged, marks, context = [], [], []
        for index in range(repeats):
            page_s, _ = await timed(location)
            marks_s, _ = await timed(marks_url)
            flagged.append(page_s + marks_s)
            marks.append(marks_s)
            context.append((await timed(f"/-/intercept/context/{ids[index % len(ids)]}"))[0])
        table = (await ds.client.get("/-/intercept/table/flagged_lines")).headers["location"]
        await timed(table)  # warm-up
        table_view = [(await timed(table))[0] for _ in range(repeats)]
        result = {"flagged_page_with_marks": _stats(flagged), "marks_request": _stats(marks),
                  "context_view": _stats(context), "lines_marked": len(set(ids)),
                  "analysts_table_view": _stats(table_view)}
        if with_activity:
            result["activity_by_day"] = _stats([(await timed("/-/intercept/activity?by=day"))[0] for _ in range(3)])
        return result

    try:
        return asyncio.run(scenario())
    except PageFailed as failure:
        return {"failed": str(failure)}


def time_corrections(db_path: Path, count: int, seed: int) -> dict:
    """Reviewers' corrections (issue 24): `count` flagged lines of different recordings corrected
    through intercept.corrections (the library call behind `intercept correct` and the desk):
    the line read with its neighbours (a co-occurrence window of transmissions), normalised,
    flagged and scored again, and written in one transaction (the revision, its earlier flags
    marked superseded, the new flags, the line's text, and with them the FTS index and the
    queue's line_review row through their triggers). English from the reviewer. Target < 1 s each.
    The generated store has no transmissions: the recordings corrected get one per line first
    (setup, not timed), so each correction reads its real neighbourhood."""
    import sqlite3

    from intercept.corrections import PATTERN_WINDOW, Corrector
    from intercept.lexicon import Lexicon, default_lexicon_path
    from intercept.store import WRITE, revisions
    from intercept.text import PersianNormalizer

    rng = random.Random(seed)
    conn = sqlite3.connect(db_path)
    n_lines = conn.execute("select max(id) from lines").fetchone()[0]
    flagged = [row[0] for row in conn.execute(
        "select line_id from line_review where line_id in (%s)" % ",".join(
            str(rng.randint(1, n_lines)) for _ in range(count * 40)))]
    chosen = list(dict.fromkeys(flagged))[:count]
    recordings = sorted({conn.execute("select recording_id from lines where id = ?", [i]).fetchone()[0] for i in chosen})
    with conn:
        for rid in recordings:
            if conn.execute("select count(*) from transmissions where recording_id = ?", [rid]).fetchone()[0]:
                continue
            rows = conn.execute("select id, idx, start_s, end_s from lines where recording_id = ? order by idx",
                                [rid]).fetchall()
            for line_id, idx, start, end in rows:
                tid = conn.execute("insert into transmissions (recording_id, idx, start_s, end_s) values (?, ?, ?, ?)",
                                   [rid, idx, start, end]).lastrowid
                conn.execute("update lines set transmission_id = ? where id = ?", [tid, line_id])
    conn.close()

    started = time.perf_counter()
    normalizer = PersianNormalizer()
    lexicon = Lexicon.load(default_lexicon_path(), normalizer=normalizer)
    corrector = Corrector.build(lexicon, normalizer)
    build_s = time.perf_counter() - started
    times, found, flags_after, neighbours = [], 0, [], []
    with Store(db_path, WRITE) as store:
        store.save_lexicon_terms(lexicon.version, lexicon.terms)
        for n, line_id in enumerate(chosen):
            text = store.rows("select text_fa from lines where id = ?", [line_id])[0]["text_fa"]
            # A word no other line holds (nor an earlier run's correction), to search for: letters,
            # since the normaliser makes digits Persian.
            marker = "بنچ" + "".join(rng.choices("ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهی", k=6))
            corrected = f"{text} گرگ {marker}"
            neighbours.append(len(revisions.lines_near(store.db, revisions.line_for_correction(store.db, line_id),
                                                       PATTERN_WINDOW)))
            began = time.perf_counter()
            result = corrector.correct_line(store, line_id, corrected, f"bench correction {n}", reviewer="bench")
            times.append(time.perf_counter() - began)
            flags_after.append(len(result.flags))
            # searched as the review's search box does: normalised like the stored text
            hits = store.rows("select rowid from lines_fts where lines_fts match ?", [normalizer.normalize(marker)])
            found += [row["rowid"] for row in hits] == [line_id]
    return {"corrections": len(times), "correct_line": _stats(times),
            "corrector_build_s": round(build_s, 2), "found_by_search": found,
            "neighbour_lines_median": statistics.median(neighbours),
            "flags_per_corrected_line_median": statistics.median(flags_after)}


def time_correct_next(db_path: Path, repeats: int, reference: bool) -> dict:
    """The reviewers' "correct next" list (issue 24): `intercept.store.revisions.correct_next` with
    the page's settings (the queue's threshold, its band, the weak confidence, 30 s neighbours,
    50 lines), warm: one call first, untimed, then `repeats` timed (wall and this process's CPU
    time: on a shared machine the wall time is mostly the wait for a core). A store made before
    migration 0013 is given its indexes first, as `intercept migrate` would (timed apart).
    `reference`: also the whole-store query it replaced (tests/test_correct_next.py keeps it),
    timed the same way, and the two lists compared."""
    import os
    import sqlite3

    import sqlite_utils

    from intercept.reliability import WEAK_CONFIDENCE
    from intercept.review.corrections import BAND, NEIGHBOUR_S
    from intercept.scoring import DEFAULT_THRESHOLD
    from intercept.store import revisions

    settings = (DEFAULT_THRESHOLD, BAND, WEAK_CONFIDENCE, NEIGHBOUR_S, 50)
    result: dict = {"settings": dict(zip(("threshold", "band", "weak_confidence", "neighbour_s", "limit"), settings))}
    conn = sqlite3.connect(db_path)
    have = {row[0] for row in conn.execute("select name from sqlite_master where type = 'index'")}
    if not set(revisions.CORRECT_NEXT_INDEXES) <= have:
        started = time.perf_counter()
        with conn:
            revisions.create_correct_next_indexes(sqlite_utils.Database(conn))
        result["indexes_made_s"] = round(time.perf_counter() - started, 1)
    conn.close()
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    db = sqlite_utils.Database(conn)

    def timed(call) -> tuple[dict, list]:
        rows = call()
        walls, cpus = [], []
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            rows = call()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        return {"rows": len(rows), "wall": _stats(walls), "cpu": _stats(cpus)}, rows

    result["load_before"] = [round(x, 1) for x in os.getloadavg()]
    result["correct_next"], rows = timed(lambda: revisions.correct_next(db, *settings))
    if reference:
        sys.path.insert(0, str(ROOT / "tests"))
        from test_correct_next import old_correct_next

        result["whole_store_query"], old_rows = timed(lambda: old_correct_next(conn, *settings))
        result["same_rows"] = rows == old_rows
    result["load_after"] = [round(x, 1) for x in os.getloadavg()]
    conn.close()
    return result


def set_recorded_at(db_path: Path) -> None:
    """Give every generated recording a start time (one recording every 20 minutes from
    2024-01-01), so that the activity chart has something to count."""
    import sqlite3

    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("update recordings set recorded_at = strftime('%Y-%m-%dT%H:%M:%S+00:00', "
                     "'2024-01-01T00:00:00', '+' || (id * 1200) || ' seconds') where recorded_at is null")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--flagged-fraction", type=float, default=0.1)
    parser.add_argument("--judged-fraction", type=float, default=0.2, help="of flagged lines")
    parser.add_argument("--lines-per-recording", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", type=Path, default=Path("/tmp/bench-review.db"))
    parser.add_argument("--reuse", action="store_true", help="time an existing --db, do not generate")
    parser.add_argument("--review-sql", action=argparse.BooleanOptionalAction, default=True,
                        help="time the store as it is (with migration 0004's summary table); --no-review-sql times a copy with the old GROUP BY view")
    parser.add_argument("--desk", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the review desk: flagged page with its marks, context view")
    parser.add_argument("--activity", action="store_true", help="also time the traffic-over-time chart (a full scan)")
    parser.add_argument("--corrections", type=int, default=0, metavar="N",
                        help="also time N reviewers' corrections (intercept.corrections; target < 1 s each)")
    parser.add_argument("--start-page", action=argparse.BooleanOptionalAction, default=True,
                        help="time the start page (--no-start-page: only what else is asked for)")
    parser.add_argument("--correct-next", action="store_true",
                        help="also time the reviewers' correct-next list (store.revisions.correct_next, target < 300 ms); "
                             "a store made before migration 0013 is given its indexes first")
    parser.add_argument("--correct-next-reference", action="store_true",
                        help="with --correct-next: also time the whole-store query it replaced and compare the lists")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    result: dict = {}
    if not args.reuse:
        started = time.perf_counter()
        generate(args.db, args.lines, args.flagged_fraction, args.judged_fraction, args.lines_per_recording,
                 args.seed)
        result["generate_s"] = round(time.perf_counter() - started, 1)
    timed = args.db
    if args.review_sql:
        result["review_sql_migration_s"] = round(apply_review_sql(timed), 1)  # a no-op refresh + ANALYZE
    else:
        timed = args.db.with_name(args.db.stem + "-group-by-view.db")
        if not (args.reuse and timed.exists()):
            shutil.copyfile(args.db, timed)
            remove_review_sql(timed)
    result.update(store_counts(timed))
    result["store"] = str(timed)
    result["review_sql"] = args.review_sql
    if args.start_page:
        result.update(time_start_page(timed, args.repeats))
    if args.desk and args.review_sql:
        if args.activity:
            set_recorded_at(timed)
        result["desk"] = time_desk(timed, args.repeats, args.activity)
    if args.corrections and args.review_sql:
        result["corrections"] = time_corrections(timed, args.corrections, args.seed)
    if args.correct_next and args.review_sql:
        result["correct_next"] = time_correct_next(timed, args.repeats, args.correct_next_reference)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
