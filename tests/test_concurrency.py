"""Concurrent use of one store: two batches at once, and reviewers recording verdicts through
the review UI meanwhile. Everything completes, nothing says "database is locked", and every
row is there afterwards.

Two variants: two real `intercept run` batches (the embedded model, one short sample each,
without translation to keep them short),
and a heavier one where two processes store many recordings as fast as they can.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from intercept.review import ReviewOptions, hash_password, make_datasette
from intercept.store import CREATE, READ, RecordingFacts, Store
from intercept.types import Flag, Line, Transmission

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "audio_samples"
REVIEWER, PASSWORD = "maryam", "a long reviewer password"


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _seed(db: Path) -> int:
    """A store with one flagged line for reviewers to judge; returns its id."""
    with Store(db, CREATE) as store:
        lines = [Line(0.0, 1.0, "پرنده آمد", text_fa="پرنده آمد", text_en="the bird came")]
        store.save_recording(RecordingFacts(path="/seed/a.wav", sha256="0" * 64), [Transmission(0, 0.0, 1.0)], lines,
                             [[Flag("bird", "animal_code", "exact", 1.0, 0, 5, "پرنده")]], run_id=None, engine="e",
                             model="m", translator="none", lexicon_version="v0")
        return store.rows("SELECT id FROM lines")[0]["id"]


async def _review_while(db: Path, line_id: int, processes: list[subprocess.Popen], at_least: int,
                        pause_s: float) -> int:
    """Log in to the review UI and record verdicts on `line_id` until every process has
    ended (and at least `at_least` verdicts); each must be accepted. Returns how many."""
    ds = make_datasette(db, ReviewOptions(accounts={REVIEWER: hash_password(PASSWORD, iterations=1000)},
                                          secret="test"))
    form = await ds.client.get("/-/login")
    token = form.cookies["ds_csrftoken"]
    login = await ds.client.post("/-/login", data={"username": REVIEWER, "password": PASSWORD, "csrftoken": token},
                                 cookies={"ds_csrftoken": token})
    cookies = {"ds_actor": login.cookies["ds_actor"], "ds_csrftoken": token}
    posted = 0
    while posted < at_least or any(p.poll() is None for p in processes):
        response = await ds.client.post(
            "/-/intercept/verdict", cookies=cookies,
            data={"line_id": str(line_id), "verdict": "unsure", "note": f"look {posted}", "csrftoken": token})
        assert response.status_code == 200, response.text
        assert response.json()["ok"]
        posted += 1
        await asyncio.sleep(pause_s)
    return posted


def _finish(processes: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    results = []
    for process in processes:
        out, err = process.communicate(timeout=900)
        results.append((process.returncode, out, err))
        assert "locked" not in err.lower(), err
    return results


def test_two_real_batches_and_a_reviewer_at_once(tmp_path, embedded_model_dir):
    db = tmp_path / "traffic.db"
    line_id = _seed(db)
    # The shortest sample twice, the second copy with its last sample's lowest bit flipped:
    # other content (SHA-256), so each batch stores a recording of its own.
    audio = (SAMPLES / "short_call.wav").read_bytes()
    folders = []
    for name, content in (("a", audio), ("b", audio[:-1] + bytes([audio[-1] ^ 1]))):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "short_call.wav").write_bytes(content)
        folders.append(folder)
    processes = [
        subprocess.Popen([sys.executable, "-m", "intercept.cli", "run", str(folder), "--db", str(db), "--json",
                          "--no-progress", "--translator", "none"],
                         cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for folder in folders
    ]
    # A reviewer's pace: the batches need the CPU more than the test needs verdicts.
    verdicts = asyncio.run(_review_while(db, line_id, processes, at_least=10, pause_s=0.5))
    results = _finish(processes)
    summaries = []
    for code, out, err in results:
        assert code == 0, err
        summaries.append(json.loads(out))
    assert [s["done"] for s in summaries] == [1, 1]
    with Store(db, READ) as store:
        assert store.count("recordings", "status = 'done'") == 3
        assert store.count("lines") == 1 + sum(s["lines"] for s in summaries)
        assert store.count("verdicts") == verdicts
        assert store.count("runs", "finished_at IS NOT NULL") == 2
        assert store.check_integrity() == []


WRITER = textwrap.dedent("""
    import sys
    from intercept.store import CREATE, RecordingFacts, Store
    from intercept.types import Flag, Line, Transmission

    db, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with Store(db, CREATE) as store:
        for n in range(count):
            txs = [Transmission(i, i * 2.0, i * 2.0 + 1.5) for i in range(10)]
            lines = [Line(i * 2.0, i * 2.0 + 1.0, "پرنده", text_fa="پرنده", transmission_idx=i) for i in range(10)]
            flags = [[Flag("bird", "animal_code", "exact", 1.0, 0, 5, "پرنده")] for _ in lines]
            store.save_recording(RecordingFacts(path=f"/{name}/{n}.wav", sha256=f"{name}-{n}"), txs, lines, flags,
                                 run_id=None, engine="e", model="m", translator="none", lexicon_version="v0")
""")


def test_two_writers_storing_as_fast_as_they_can_and_a_reviewer(tmp_path):
    db = tmp_path / "busy.db"
    line_id = _seed(db)
    count = 60
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), name, str(count)], cwd=ROOT, env=_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for name in ("a", "b")]
    verdicts = asyncio.run(_review_while(db, line_id, processes, at_least=20, pause_s=0.02))
    for code, _, err in _finish(processes):
        assert code == 0, err
    with Store(db, READ) as store:
        assert store.count("recordings") == 1 + 2 * count
        assert store.count("lines") == 1 + 2 * count * 10
        assert store.count("flags") == 1 + 2 * count * 10
        assert store.count("verdicts") == verdicts
        assert store.count("line_review") == 1 + 2 * count * 10
        assert store.check_integrity() == []
