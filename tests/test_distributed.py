"""A batch on Ray workers: the same store as a local run, worker deaths retried elsewhere.

One Ray instance (2 CPUs, no dashboard, no usage reporting) serves the module. The slow test
runs the real model once on 2 workers over the inputs of the session's local batch
(conftest.sample_batch) and compares the two stores; the others use a worker without a
model, so they test the driver's scheduling, retries and skips in seconds.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import sqlite_utils

ray = pytest.importorskip("ray")

from intercept.distributed import (  # noqa: E402
    DistributedError,
    RayOptions,
    RecordingWorker,
    WorkerFacts,
    run_batch_ray,
)
from intercept.pipeline import Analysis  # noqa: E402
from intercept.types import Line, Transmission  # noqa: E402

# Ray's workers cannot import this test module: ship its worker classes by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

# Columns that name a row or a moment rather than what was found; rows are compared through
# natural keys (recording path, transmission and line index) instead.
VOLATILE = {"id", "run_id", "processed_at", "first_seen_at", "last_seen_at", "recording_id", "line_id",
            "transmission_id", "supersedes"}


def _rounded(value):
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


# Recogniser evidence stored as JSON (words with probabilities, the N-best with scores): its
# floats are compared to 3 decimals like the other columns (a Ray worker's thread count moves
# a word probability in the 4th).
JSON_FLOATS = ("words", "alternatives")


def _clean(row: dict) -> tuple:
    return tuple(sorted(
        (key, _rounded(json.loads(value) if key in JSON_FLOATS and value else value))
        for key, value in row.items() if key not in VOLATILE
    ))


def store_snapshot(path: Path) -> dict[str, list]:
    """Recordings, transmissions, lines and flags of a store, independent of row ids and
    write order; floats to 3 decimals (times are stored to the millisecond). Sorted by repr:
    failed recordings hold None where done ones hold numbers."""
    db = sqlite_utils.Database(path)

    def rows(sql: str) -> list[dict]:
        return list(db.query(sql))

    recordings = [_clean(r) for r in rows("SELECT * FROM recordings")]
    transmissions = [(r["rec"],) + _clean(r) for r in rows(
        "SELECT t.*, r.path AS rec FROM transmissions t JOIN recordings r ON r.id = t.recording_id")]
    lines = [(r["rec"], r["tx"]) + _clean(r) for r in rows(
        "SELECT l.*, r.path AS rec, t.idx AS tx FROM lines l JOIN recordings r ON r.id = l.recording_id "
        "LEFT JOIN transmissions t ON t.id = l.transmission_id")]
    flags = [(r["rec"], r["line_idx"]) + _clean(r) for r in rows(
        "SELECT f.*, r.path AS rec, l.idx AS line_idx FROM flags f JOIN lines l ON l.id = f.line_id "
        "JOIN recordings r ON r.id = l.recording_id")]
    return {name: sorted(found, key=repr) for name, found in
            [("recordings", recordings), ("transmissions", transmissions), ("lines", lines), ("flags", flags)]}


@pytest.fixture(scope="module")
def local_ray():
    """A private Ray instance for this module, 2 CPUs, nothing reaching out."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def dies_once_on(victim: str, marker: Path, log: Path) -> type:
    """A real worker that kills its own process the first time it is given `victim` (the
    marker file remembers across restarts), and logs which actor analysed what."""

    class DiesOnceWorker(RecordingWorker):
        def analyze_group(self, items):
            actor = ray.get_runtime_context().get_actor_id()
            names = [Path(path).name for path, _ in items]
            if victim in names and not marker.exists():
                marker.write_text(f"{actor}\t{len(names)}")
                os._exit(1)  # as abrupt as a killed process: no exception reaches Ray
            analyses = super().analyze_group(items)
            with log.open("a") as out:
                out.writelines(f"{name}\t{actor}\n" for name in names)
            return analyses

    return DiesOnceWorker


# The recordings the Ray run takes from the local batch's inputs: the coded bird_or_fox (its
# worker dies once), the shortest speech, and both broken files. A subset keeps the suite
# short: the store rows are compared recording by recording, so a subset compares as well.
RAY_SUBSET = ("bird_or_fox.ogg", "short_call.wav", "empty.wav", "notes-renamed.mp3")


def test_ray_run_stores_what_the_local_run_stores(sample_batch, local_ray, tmp_path):
    local_db, local_result, inputs = sample_batch
    marker, log = tmp_path / "died", tmp_path / "analysed.tsv"
    ray_db = tmp_path / "ray.db"
    summary = run_batch_ray(
        [inputs / name for name in RAY_SUBSET], ray_db, ray_options=RayOptions(workers=2), progress=False,
        worker_class=dies_once_on("bird_or_fox.ogg", marker, log),
    )

    def subset(rows: list) -> list:
        # Each snapshot row names its recording first: a tuple (path, ...) or a recording row.
        return [row for row in rows if Path(row[0] if isinstance(row[0], str) else dict(row)["path"]).name
                in RAY_SUBSET]

    local = {table: subset(rows) for table, rows in store_snapshot(local_db).items()}
    distributed = store_snapshot(ray_db)
    assert local["lines"] and len(local["recordings"]) == len(RAY_SUBSET), "nothing of the subset to compare"
    for table in ("recordings", "transmissions", "lines", "flags"):
        assert distributed[table] == local[table], table

    recordings = [dict(row) for row in local["recordings"]]
    assert (summary.files, summary.done, summary.failed) == (
        len(RAY_SUBSET), sum(r["status"] == "done" for r in recordings), sum(r["status"] == "failed" for r in recordings))
    assert (summary.transmissions, summary.lines) == (len(local["transmissions"]), len(local["lines"]))
    assert summary.flagged_lines == len({(row[0], row[1]) for row in local["flags"]})
    local_failures = [tuple(f) for f in json.loads(local_result.output)["failures"] if Path(f[0]).name in RAY_SUBSET]
    assert sorted(summary.failures) == sorted(local_failures) and len(local_failures) == 2

    # The worker died on bird_or_fox once; it went again, alone, to another worker; stored once.
    assert marker.exists()
    dead_actor, group_size = marker.read_text().split("\t")
    # (retries: every recording on the worker when it died, the dying call's and any queued)
    assert summary.worker_deaths == 1 and summary.retries >= int(group_size) >= 1
    analysed = dict(line.split("\t") for line in log.read_text().splitlines() if line.startswith("bird_or_fox"))
    assert analysed["bird_or_fox.ogg"] != dead_actor
    store = sqlite_utils.Database(ray_db)
    assert store["recordings"].count_where("path LIKE '%bird_or_fox.ogg'") == 1

    run = next(store.query("SELECT * FROM runs"))
    assert run["finished_at"] and json.loads(run["summary"])["workers"] == 2


class ModelFreeWorker(RecordingWorker):
    """A worker without a model, for the driver's logic: one line per recording, and it
    kills its own process on any file named die*.wav."""

    def __init__(self, options):
        self.options = options

    def describe(self) -> WorkerFacts:
        return WorkerFacts("fake-model", "lexicon-v0", [], os.getpid(), os.environ.get("OMP_NUM_THREADS"))

    def analyze(self, path, facts):
        if Path(path).name.startswith("die"):
            os._exit(1)
        facts.duration_s, facts.format = 1.0, "wav"
        line = Line(0.1, 0.9, "سلام", text_fa="سلام", text_en="hello")
        return Analysis(facts, "done", transmissions=[Transmission(0, 0.0, 1.0)], lines=[line], flags=[[]],
                        engine="fake", model="fake-model", translator="none", lexicon_version="lexicon-v0")

    def analyze_group(self, items):
        return [self.analyze(path, facts) for path, facts in items]


def test_recording_that_kills_every_worker_fails_after_max_attempts(local_ray, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.wav").write_bytes(b"content A")
    (inputs / "b.wav").write_bytes(b"content A")  # same content as a.wav: skipped as locally
    (inputs / "c.wav").write_bytes(b"content C")
    (inputs / "die.wav").write_bytes(b"content D")
    missing = inputs / "gone.wav"  # named directly, never created: fails on the driver
    db = tmp_path / "s.db"
    options = RayOptions(workers=2, max_attempts=2, max_worker_restarts=5)

    summary = run_batch_ray([inputs, missing], db, ray_options=options, progress=False,
                            worker_class=ModelFreeWorker)

    assert (summary.files, summary.done, summary.skipped, summary.failed) == (5, 2, 1, 2)
    # die.wav kills its worker on each of its max_attempts tries; a recording queued on the
    # same worker may die with it and be retried too, so these are lower bounds.
    assert summary.worker_deaths >= 2 and summary.retries >= 1
    store = sqlite_utils.Database(db)
    rows = {Path(r["path"]).name: r for r in store.query("SELECT * FROM recordings")}
    assert set(rows) == {"a.wav", "c.wav", "die.wav", "gone.wav"}
    assert rows["die.wav"]["status"] == "failed"
    assert "die.wav" in rows["die.wav"]["error"] and "a worker died 2 times" in rows["die.wav"]["error"]
    assert rows["gone.wav"]["status"] == "failed" and "gone.wav" in rows["gone.wav"]["error"]
    assert store["lines"].count == 2
    assert [Path(p).name for p, _ in summary.failures] == ["die.wav", "gone.wav"]  # input order

    # Resumable as a local run: a second pass skips what is stored and retries the failures.
    again = run_batch_ray([inputs, missing], db, ray_options=options, progress=False,
                          worker_class=ModelFreeWorker)
    assert (again.done, again.skipped, again.failed) == (0, 3, 2)
    assert store["lines"].count == 2
    assert store["recordings"].count_where("status = 'failed'") == 2


class GroupingWorker(ModelFreeWorker):
    """Logs each call's group, and dies on any group holding a *-die.wav."""

    log: Path

    def analyze_group(self, items):
        names = [Path(path).name for path, _ in items]
        with self.log.open("a") as out:
            out.write(" ".join(names) + "\n")
        if any(name.endswith("-die.wav") for name in names):
            os._exit(1)
        return super().analyze_group(items)


def test_small_files_go_to_workers_in_groups_and_a_fatal_one_fails_alone(local_ray, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    names = [f"{n:02d}.wav" for n in range(9)] + ["04-die.wav"]
    for name in names:
        (inputs / name).write_bytes(name.encode())
    (inputs / "big.wav").write_bytes(b"b" * 2000)  # over group_max_bytes below: always alone
    log = tmp_path / "groups.txt"
    worker = type("Grouping", (GroupingWorker,), {"log": log})
    options = RayOptions(workers=2, files_per_task=4, group_max_bytes=1000, max_attempts=2, max_worker_restarts=5)
    summary = run_batch_ray([inputs], tmp_path / "s.db", ray_options=options, progress=False, worker_class=worker)

    assert (summary.files, summary.done, summary.failed) == (11, 10, 1), summary.failures
    assert [Path(p).name for p, _ in summary.failures] == ["04-die.wav"]
    groups = [line.split() for line in log.read_text().splitlines()]
    assert ["big.wav"] in groups and max(map(len, groups)) == 4
    # The group holding 04-die.wav died and went again one by one (4 retries); then 04-die.wav
    # alone killed workers until it failed: only those deaths count against it. (Lower bounds:
    # a death the driver sees before the result of the call ahead of it is not counted.)
    assert ["04-die.wav", "04.wav", "05.wav", "06.wav"] in groups and groups.count(["04-die.wav"]) >= 2
    assert summary.worker_deaths >= 3 and summary.retries >= 5
    store = sqlite_utils.Database(tmp_path / "s.db")
    assert store["recordings"].count == 11 and store["lines"].count == 10
    assert "a worker died 2 times" in next(store.query("SELECT error FROM recordings WHERE path LIKE '%-die.wav'"))["error"]


def test_workers_default_to_the_free_cpus_and_get_one_thread_each(local_ray, tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    summary = run_batch_ray([tmp_path / "a.wav"], tmp_path / "s.db", progress=False, worker_class=ModelFreeWorker)
    assert summary.workers == 2 and summary.done == 1
    assert summary.worker_threads == "1"  # CTranslate2 then runs one thread per worker


def test_bad_ray_options_are_refused(local_ray, tmp_path):
    with pytest.raises(DistributedError, match="workers must be at least 1"):
        run_batch_ray([], tmp_path / "s.db", ray_options=RayOptions(workers=0), worker_class=ModelFreeWorker)
    with pytest.raises(DistributedError, match="no free GPUs"):
        run_batch_ray([], tmp_path / "s.db", ray_options=RayOptions(gpus_per_worker=1),
                      worker_class=ModelFreeWorker)


class BrokenFirstWorker(ModelFreeWorker):
    """The first worker to start cannot load (as on a machine without the model)."""

    marker: Path

    def __init__(self, options):
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return super().__init__(options)
        raise RuntimeError("no model on this machine")


class BrokenWorker(ModelFreeWorker):
    def __init__(self, options):
        raise RuntimeError("no model on this machine")


def test_a_worker_that_cannot_start_is_dropped_and_its_recordings_go_elsewhere(local_ray, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in "abcd":
        (inputs / f"{name}.wav").write_bytes(name.encode())
    worker = type("Broken", (BrokenFirstWorker,), {"marker": tmp_path / "first"})
    summary = run_batch_ray([inputs], tmp_path / "s.db", ray_options=RayOptions(workers=2), progress=False,
                            worker_class=worker)
    assert (summary.done, summary.failed, summary.worker_deaths) == (4, 0, 0)


def test_no_worker_can_start_is_one_clear_error(local_ray, tmp_path):
    (tmp_path / "a.wav").write_bytes(b"a")
    with pytest.raises(DistributedError, match="could not start: .*no model on this machine"):
        run_batch_ray([tmp_path], tmp_path / "s.db", ray_options=RayOptions(workers=2), progress=False,
                      worker_class=BrokenWorker)
