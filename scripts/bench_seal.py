#!/usr/bin/env python3
"""Side by side: what sealing (intercept.store.seal) costs a run.

The recordings are analysed once (decode, segment, transcribe, normalise, translate, flag:
the run without its store), timed. Then the same analyses are stored again and again into
fresh stores, rounds alternating which setting goes first so that machine noise hits both
alike:

  * sealed:   the store as it ships (each recording's rows sealed in its transaction);
  * unsealed: `seal_recording` replaced by a no-op (the store before issue 23).

Prints the analysis time, the median time to store every recording per setting, and the
cost of sealing as a share of the whole run: (sealed - unsealed) / (analysis + unsealed).
The target is under 5% (issue 23). Also times `verify`'s seal check on the sealed store.

    .venv/bin/python scripts/bench_seal.py [--rounds 15] [--copies 1] [--translator none] [PATH ...]

PATH defaults to audio_samples/. `--translator none` makes the analysis cheaper, so the cost
it reports is an upper bound of the cost in a run with translation. --copies N stores each analysis N times per round (as
other recordings), for a store with more rows than the samples give.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "audio_samples"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--translator", default=None, choices=["whisper", "transformers", "none"],
                        help="as `intercept run --translator` (default: run's default)")
    args = parser.parse_args()

    from intercept.pipeline import Pipeline, Recorder, RunOptions, iter_recordings
    from intercept.store import CREATE, Store, seal

    options = RunOptions() if args.translator is None else replace(RunOptions(), translator=args.translator)
    pipeline = Pipeline(options)
    files = list(iter_recordings(args.paths))
    analyses, analysis_s = [], 0.0
    for path in files:
        started = time.perf_counter()
        analyses.append(pipeline.analyze(path))
        analysis_s += time.perf_counter() - started
        print(f"  analysed {path.name}: {len(analyses[-1].lines)} lines, {analysis_s:.1f} s so far", flush=True)
    done = [a for a in analyses if a.status == "done"]
    lines = sum(len(a.lines) for a in done)
    flags = sum(len(f) for a in done for f in a.flags)
    print(f"{len(files)} recordings ({len(done)} done), {lines} lines, {flags} flags; "
          f"analysis {analysis_s:.2f} s", flush=True)

    real_seal = seal.seal_recording
    times: dict[str, list[float]] = {"sealed": [], "unsealed": []}
    verify_s = []
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            order = ["sealed", "unsealed"] if round_ % 2 == 0 else ["unsealed", "sealed"]
            for setting in order:
                seal.seal_recording = real_seal if setting == "sealed" else (lambda *a, **k: None)
                path = Path(folder) / f"{setting}-{round_}.db"
                with Store(path, CREATE) as store:
                    recorder = Recorder(store, options)
                    recorder.start(pipeline.model_name, pipeline.lexicon.version, pipeline.lexicon.terms)
                    started = time.perf_counter()
                    for copy in range(args.copies):
                        for analysis in done:
                            facts = replace(analysis.facts, path=f"{analysis.facts.path}#{copy}",
                                            sha256=f"{analysis.facts.sha256}-{copy}")
                            recorder.record(replace(analysis, facts=facts))
                    times[setting].append(time.perf_counter() - started)
                    if setting == "sealed":
                        started = time.perf_counter()
                        assert store.check_seals() == []
                        verify_s.append(time.perf_counter() - started)
    seal.seal_recording = real_seal
    sealed, unsealed = statistics.median(times["sealed"]), statistics.median(times["unsealed"])
    run_s = analysis_s + unsealed / args.copies
    print(f"store every recording (median of {args.rounds}, x{args.copies}): sealed {sealed * 1000:.1f} ms, "
          f"unsealed {unsealed * 1000:.1f} ms (ratio {sealed / unsealed:.2f})")
    print(f"sealing per recording: {(sealed - unsealed) / (len(done) * args.copies) * 1000:.2f} ms; "
          f"cost of sealing in a run: {(sealed - unsealed) / args.copies / run_s * 100:.3f}% "
          f"(target < 5%)")
    print(f"verify's seal check of the sealed store: {statistics.median(verify_s) * 1000:.1f} ms median")


if __name__ == "__main__":
    main()
