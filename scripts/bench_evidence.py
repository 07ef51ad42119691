#!/usr/bin/env python3
"""Side by side: what the recogniser's evidence costs the whole pipeline.

Two pipelines over the same recordings, in one process, alternated file by file and round
by round so that machine noise hits both alike:

  * before: TranscribeOptions(alternatives=0, word_evidence=False) and no acoustic check, the
    decoding of the releases before flag evidence (the best hypothesis only);
  * after:  the defaults (the beam's N-best kept per line, word probabilities aligned, fuzzy
    matches checked against the audio: intercept.acoustic);
  * no-acoustic: the defaults without the acoustic check;
  * nbest-only: alternatives on, word_evidence off; words-only: the reverse (neither checks).

Each runs the whole analysis (decode, segment, transcribe, normalise, translate, flag)
without a store, and the script checks that the lines' text is the same in all of them
(evidence must never change what is heard). Prints seconds per setting and the ratio to
"before"; the target is at most 1.15 (issue 14).

    .venv/bin/python scripts/bench_evidence.py [--rounds 2] [--threads 0] [PATH ...]
    .venv/bin/python scripts/bench_evidence.py --engine-only --settings before,nbest-only,words-only,after PATH

PATH defaults to audio_samples/.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS = {
    "before": dict(alternatives=0, word_evidence=False, acoustic_check=False),
    "after": {},
    "no-acoustic": dict(acoustic_check=False),
    "nbest-only": dict(word_evidence=False, acoustic_check=False),
    "words-only": dict(alternatives=0, acoustic_check=False),
}


def transcribe_settings(name: str) -> dict:
    """The TranscribeOptions part of a setting (acoustic_check is a RunOptions field)."""
    return {k: v for k, v in SETTINGS[name].items() if k != "acoustic_check"}


def engine_only(args, names) -> None:
    """The recogniser alone (faster-whisper, one engine object, its options switched between
    decodes) on each file's transmissions, after one warm-up decode: what each piece of
    evidence costs the decoding itself."""
    from intercept.audio import decode
    from intercept.engines import TranscribeOptions
    from intercept.engines.faster_whisper import FasterWhisperEngine
    from intercept.models import embedded_model_dir
    from intercept.pipeline import iter_recordings
    from intercept.segment import find_transmissions

    engine = FasterWhisperEngine(str(embedded_model_dir()), "base", TranscribeOptions(cpu_threads=args.threads))
    base = engine.options
    inputs = []
    for path in iter_recordings(args.paths):
        audio = decode(str(path))
        inputs.append((audio.samples, find_transmissions(audio.samples, audio.sample_rate)))
    engine.transcribe(*inputs[0])
    seconds = {name: 0.0 for name in names}
    texts: dict[str, list] = {}
    for round_ in range(args.rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            engine.options = replace(base, **transcribe_settings(name))
            started = time.perf_counter()
            texts[name] = [[line.text for line in engine.transcribe(samples, txs)] for samples, txs in inputs]
            seconds[name] += time.perf_counter() - started
    print(f"engine only: {len(inputs)} recordings x {args.rounds} rounds, threads {args.threads or 'all'}")
    for name in names:
        print(f"{name:<12} {seconds[name]:8.1f} {seconds[name] / seconds[names[0]]:6.3f}")
    same = all(texts[name] == texts[names[0]] for name in names)
    print("same text in every setting:", "yes" if same else "NO")
    print(f"command: python scripts/bench_evidence.py {' '.join(sys.argv[1:])}".rstrip())
    if not same:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=[str(ROOT / "audio_samples")])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads of the recogniser (0: all)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="which of: " + ", ".join(SETTINGS))
    parser.add_argument("--engine-only", action="store_true", help="time the recogniser alone")
    args = parser.parse_args()

    from intercept.config import RunOptions
    from intercept.pipeline import Pipeline, iter_recordings

    names = [name.strip() for name in args.settings.split(",") if name.strip()]
    if args.engine_only:
        return engine_only(args, names)
    pipelines = {}
    for name in names:
        options = RunOptions()
        options.transcribe = replace(options.transcribe, cpu_threads=args.threads, **transcribe_settings(name))
        options.acoustic_check = SETTINGS[name].get("acoustic_check", True)
        pipelines[name] = Pipeline(options)
    files = list(iter_recordings(args.paths))
    # Each pipeline's first recording pays one-off costs (allocations, lazy loads): paid on
    # the smallest file before timing.
    smallest = min(files, key=lambda path: path.stat().st_size)
    for name in names:
        pipelines[name].analyze(smallest)
    seconds = {name: 0.0 for name in names}
    texts: dict[str, dict[str, list[str]]] = {name: {} for name in names}
    evidence = {name: [0, 0, 0, 0, 0] for name in names}  # lines, with words, with alternatives, flags, checked
    for round_ in range(args.rounds):
        for path in files:
            order = names if (round_ + files.index(path)) % 2 == 0 else names[::-1]
            for name in order:
                started = time.perf_counter()
                analysis = pipelines[name].analyze(path)
                seconds[name] += time.perf_counter() - started
                lines = analysis.lines or []
                texts[name][path.name] = [line.text for line in lines]
                if round_ == 0:
                    evidence[name][0] += len(lines)
                    evidence[name][1] += sum(line.words is not None for line in lines)
                    evidence[name][2] += sum(line.alternatives is not None for line in lines)
                    flags = [f for line_flags in analysis.flags or [] for f in line_flags]
                    evidence[name][3] += len(flags)
                    evidence[name][4] += sum(f.acoustic_margin is not None and f.kind == "fuzzy" for f in flags)
    print(f"{len(files)} recordings x {args.rounds} rounds, recogniser threads {args.threads or 'all'}")
    print(f"{'setting':<12} {'seconds':>8} {'ratio':>6}  lines  with words  with alternatives  flags  fuzzy checked")
    for name in names:
        ratio = seconds[name] / seconds[names[0]] if seconds[names[0]] else float("nan")
        lines, words, alternatives, flags, checked = evidence[name]
        print(f"{name:<12} {seconds[name]:8.1f} {ratio:6.3f}  {lines:5d}  {words:10d}  {alternatives:17d}  "
              f"{flags:5d}  {checked:13d}")
    same = all(texts[name] == texts[names[0]] for name in names)
    print("same text in every setting:", "yes" if same else "NO")
    print(f"command: python scripts/bench_evidence.py {' '.join(sys.argv[1:])}".rstrip())
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
