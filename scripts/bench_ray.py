#!/usr/bin/env python
"""Benchmark a batch on Ray: 1 and 2 workers side by side, and the single SQLite writer's
ceiling in lines per second.

    .venv/bin/python scripts/bench_ray.py                     # both parts, audio_samples/
    .venv/bin/python scripts/bench_ray.py --workers 1,2,4 --num-cpus 4 /data/clips
    .venv/bin/python scripts/bench_ray.py --writer-only       # just the writer's ceiling
    .venv/bin/python scripts/bench_ray.py --local             # also a local run_batch, for reference

Each run writes a fresh store in a temporary folder; timings on a shared machine are noisy,
so compare the rows of one invocation (ratios) rather than figures across invocations.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench_workers(inputs: list[str], counts: list[int], num_cpus: int, address: str | None, local: bool) -> list[dict]:
    import ray

    from intercept.distributed import RayOptions, run_batch_ray
    from intercept.pipeline import run_batch

    rows = []
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with tempfile.TemporaryDirectory() as tmp:
        if local:
            started = time.perf_counter()
            summary = run_batch(inputs, Path(tmp) / "local.db", progress=False)
            rows.append(_row("local run_batch", summary, time.perf_counter() - started))
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        try:
            for count in counts:
                started = time.perf_counter()
                summary = run_batch_ray(inputs, Path(tmp) / f"ray{count}.db",
                                        ray_options=RayOptions(workers=count), progress=False)
                rows.append(_row(f"ray, {count} worker{'s' if count > 1 else ''}", summary,
                                 time.perf_counter() - started))
        finally:
            ray.shutdown()
    return rows


def _row(name: str, summary, total_s: float) -> dict:
    return {
        "run": name,
        "files": summary.files,
        "lines": summary.lines,
        "audio_s": round(summary.audio_s, 1),
        # wall_s: from the first loaded worker to the last saved recording; total_s adds
        # starting the workers (model loads).
        "wall_s": summary.wall_s,
        "total_s": round(total_s, 1),
        "x_real_time": round(summary.audio_s / summary.wall_s, 2) if summary.wall_s else None,
    }


def bench_writer(recordings: int, lines_per_recording: int, flag_every: int = 5) -> dict:
    """Lines per second the driver can store: Store.save_recording (one transaction per
    recording, FTS triggers, indexes), with lines shaped like real ones."""
    from intercept.store import CREATE, RecordingFacts, Store
    from intercept.types import Flag, Line, Transmission

    farsi = "امشب برویم ببینیم پرنده است یا روباه و بعد به خانه برگردیم"
    english = "Tonight let's go and see whether it is a bird or a fox, then come home."
    flag = Flag("bird", "animal-code", "exact", 1.0, 17, 22, "پرنده", "high", "پرنده")
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "writer.db", CREATE) as store:
        run_id = store.start_run("bench", "bench", {}, {})
        started = time.perf_counter()
        for r in range(recordings):
            facts = RecordingFacts(path=f"/data/rec{r:06d}.wav", sha256=f"{r:064x}", duration_s=600.0,
                                   format="wav", size_bytes=19_200_000)
            txs = [Transmission(i, i * 10.0, i * 10.0 + 8.0) for i in range(lines_per_recording)]
            lines = [Line(t.start + 0.5, t.end - 0.5, farsi, t.idx, -0.8, 0.1, 1.4, farsi, english)
                     for t in txs]
            flags = [[flag] if i % flag_every == 0 else [] for i in range(lines_per_recording)]
            store.save_recording(facts, txs, lines, flags, run_id=run_id, engine="bench", model="bench",
                                 translator="bench", lexicon_version="bench")
        elapsed = time.perf_counter() - started
        stored = store.count("lines")
        flagged = store.count("flags")
    return {
        "recordings": recordings,
        "lines_per_recording": lines_per_recording,
        "lines": stored,
        "flags": flagged,
        "seconds": round(elapsed, 2),
        "lines_per_s": round(stored / elapsed),
        "recordings_per_s": round(recordings / elapsed, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", default=[str(ROOT / "audio_samples")])
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts [1,2]")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray instance [2]")
    parser.add_argument("--address", default=None, help="a running Ray cluster instead of a local instance")
    parser.add_argument("--local", action="store_true", help="also time a local run_batch")
    parser.add_argument("--writer-only", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    results: dict = {}
    if not args.writer_only:
        counts = [int(c) for c in args.workers.split(",")]
        results["workers"] = bench_workers(args.inputs, counts, args.num_cpus, args.address, args.local)
    results["writer"] = [bench_writer(200, 10), bench_writer(40, 100)]

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for key, rows in results.items():
        print(f"\n{key}:")
        header = list(rows[0])
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(str(row[h]) for h in header) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
