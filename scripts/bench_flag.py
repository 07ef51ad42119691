#!/usr/bin/env python
"""Benchmark: `intercept flag` over a large store, the shipped lexicon against one grown to
thousands of Farsi terms, side by side (issue 25: a 10,000-term lexicon flags 1M stored lines at
no less than half the shipped lexicon's speed).

    .venv/bin/python scripts/bench_flag.py --lines 1000000 --terms 10000 --workdir /tmp/bench-flag

The store has the real schema (intercept.store.Store) and --lines lines in recordings of
--per-recording lines, their text made as scripts/bench_lexicon.py makes lines (hazm's 5,000
commonest words, a fifth of the lines holding one of the shipped lexicon's forms, plain or
inflected, a tenth a garbled one), stored raw and normalised as a run stores them, without
recogniser evidence. The grown lexicon is bench_lexicon's `generate_lexicon`: the shipped one
plus hazm nouns up to --terms Farsi forms. Each timed run is the whole command in a new process
(`intercept flag STORE --lexicon L --json`: Python, hazm's normaliser, the lexicon read back from
its compile cache, every line normalised, matched and scored again, each recording's lines and
flags replaced in one transaction) on a fresh copy of the same store; the lexicons alternate,
and their compile caches are warmed first (compiling is paid once per lexicon edit, measured by
bench_lexicon.py). Wall, CPU (user + system) and peak RSS per run come from the kernel (wait4).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_lexicon import CorpusOptions, generate_lexicon, generate_lines  # noqa: E402

from intercept.lexicon import Lexicon, default_lexicon_path  # noqa: E402
from intercept.store import CREATE, Store  # noqa: E402
from intercept.text import PersianNormalizer  # noqa: E402

INTERCEPT = [sys.executable, "-m", "intercept.cli"]


def build_store(path: Path, n_lines: int, per_recording: int, seed: int) -> None:
    """The store, bulk-loaded: the FTS triggers are dropped during the load and the index rebuilt
    once at the end (the same rows as the triggers make, as scripts/bench_review.py does)."""
    normalizer = PersianNormalizer()
    raw = generate_lines(Lexicon.load(default_lexicon_path(), normalizer=normalizer),
                         CorpusOptions(lines=n_lines, seed=seed))
    normalised: dict[str, str] = {}  # the lines cycle a block of distinct ones
    if path.exists():
        path.unlink()
    store = Store(path, CREATE)
    conn = store.db.conn
    where = "type='trigger' and tbl_name='lines'"
    triggers = [row[0] for row in conn.execute(f"select sql from sqlite_master where {where}")]
    for (name,) in conn.execute(f"select name from sqlite_master where {where}").fetchall():
        conn.execute(f"drop trigger {name}")
    conn.execute("PRAGMA synchronous = OFF")
    n_recordings = -(-n_lines // per_recording)
    with conn:
        conn.executemany(
            "insert into recordings (id, path, sha256, duration_s, format, size_bytes, status, processed_at) "
            "values (?, ?, ?, ?, 'ogg', 1000000, 'done', '2026-01-01T00:00:00+00:00')",
            ((rid, f"/data/recordings/channel-{rid % 7}/rec-{rid:06d}.ogg", f"{rid:064x}", per_recording * 8.0)
             for rid in range(1, n_recordings + 1)))
        rows = []
        for n, text in enumerate(raw):
            if text not in normalised:
                normalised[text] = normalizer.normalize(text)
            rid, idx = n // per_recording + 1, n % per_recording
            rows.append((n + 1, rid, idx, idx * 8.0, idx * 8.0 + 4.0, text, normalised[text]))
            if len(rows) >= 50_000:
                _insert(conn, rows)
        _insert(conn, rows)
    with conn:
        for sql in triggers:
            conn.execute(sql)
        conn.execute("insert into lines_fts(lines_fts) values('rebuild')")
    conn.execute("ANALYZE")
    store.close()


def _insert(conn, rows: list) -> None:
    conn.executemany(
        "insert into lines (id, recording_id, idx, start_s, end_s, text_fa_raw, text_fa, text_en, avg_logprob, "
        "no_speech_prob, compression_ratio, engine, model, translator) "
        "values (?, ?, ?, ?, ?, ?, ?, '', -0.3, 0.1, 1.5, 'faster-whisper', 'base', 'none')", rows)
    rows.clear()


def run_flag(store: Path, lexicon: Path) -> dict:
    """`intercept flag STORE --lexicon LEXICON --json` in a new process: wall, CPU, peak RSS, result."""
    started = time.perf_counter()
    process = subprocess.Popen([*INTERCEPT, "flag", str(store), "--lexicon", str(lexicon), "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    # wait4 on the pid gives this child's own rusage; the pipes are read in threads meanwhile.

    chunks: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda name=name, pipe=pipe: chunks.__setitem__(name, pipe.read()))
               for name, pipe in (("out", process.stdout), ("err", process.stderr))]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    for reader in readers:
        reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"intercept flag failed ({process.returncode}): {chunks.get('err', b'').decode()[-2000:]}")
    result = json.loads(chunks["out"].decode())
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            "lines": result["lines"], "flags": result["flags_after"], "flagged_lines": result["flagged_lines"],
            "by_kind": result["by_kind"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--terms", type=int, default=10_000, help="Farsi forms of the grown lexicon")
    parser.add_argument("--per-recording", type=int, default=200, help="lines per recording")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per lexicon, alternating")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-flag"))
    parser.add_argument("--reuse", action="store_true", help="keep a store and grown lexicon already in --workdir")
    parser.add_argument("--json", type=Path, help="write the runs here too")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    command = "python scripts/bench_flag.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.workdir.mkdir(parents=True, exist_ok=True)
    base, grown = args.workdir / "store.db", args.workdir / "grown"
    if not (args.reuse and base.exists() and grown.exists()):
        started = time.perf_counter()
        generate_lexicon(args.terms, grown)
        build_store(base, args.lines, args.per_recording, args.seed)
        print(f"store of {args.lines:,} lines and lexicon of {args.terms:,} forms built in "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    lexicons = {"shipped": default_lexicon_path(), f"{args.terms:,} forms": grown}
    for path in lexicons.values():  # compile caches warm: compiling is paid once per edit
        subprocess.run([*INTERCEPT, "match", "x", "--lexicon", str(path)], check=True, capture_output=True, cwd=ROOT)
    runs: dict[str, list[dict]] = {label: [] for label in lexicons}
    order = list(lexicons)
    copy = args.workdir / f"run-{os.getpid()}.db"  # its own: two benchmarks may share a workdir
    for repeat in range(args.repeats):
        for label in (order if repeat % 2 == 0 else order[::-1]):
            shutil.copyfile(base, copy)
            for suffix in ("-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)
            run = run_flag(copy, lexicons[label])
            run["load"] = os.getloadavg()[0]
            runs[label].append(run)
            print(f"{label}: {run['wall_s']:.1f} s wall, {run['cpu_s']:.1f} CPU s, {run['peak_rss_mb']:.0f} MB, "
                  f"{run['flags']:,} flags (load {run['load']:.1f})", file=sys.stderr)
    for leftover in (copy, Path(f"{copy}-wal"), Path(f"{copy}-shm")):
        leftover.unlink(missing_ok=True)
    if args.json:
        args.json.write_text(json.dumps({"command": command, "runs": runs}, indent=2))
    print(f"command: `{command.strip()}`\n")
    print("| lexicon | Farsi terms | lines | wall s (runs) | CPU s (runs) | lines/s (CPU) | peak RSS MB | flags | flagged lines |")
    print("|---|---|---|---|---|---|---|---|---|")
    speeds = {}
    for label, path in lexicons.items():
        rs = runs[label]
        terms = sum(t.lang == "fa" for t in Lexicon.load(path).terms)
        cpu = statistics.median(r["cpu_s"] for r in rs)
        speeds[label] = rs[0]["lines"] / cpu
        walls = ", ".join(f"{r['wall_s']:.1f}" for r in rs)
        cpus = ", ".join(f"{r['cpu_s']:.1f}" for r in rs)
        print(f"| {label} | {terms:,} | {rs[0]['lines']:,} | {walls} | {cpus} | {speeds[label]:,.0f} | "
              f"{max(r['peak_rss_mb'] for r in rs):.0f} | {rs[0]['flags']:,} | {rs[0]['flagged_lines']:,} |")
    shipped, big = list(speeds.values())
    print(f"\ngrown lexicon's speed against the shipped one's (median CPU s): {big / shipped:.2f}x (target >= 0.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
