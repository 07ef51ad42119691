#!/usr/bin/env python3
"""How much audio a packed window should hold: speed, loops and WER on pooled real clips (issue 25).

Real Persian clips (scripts/eval_prevalence.py's parts of ../shared/eval: "calibration" is
cv_fa speakers spk001 and spk003, "held-out" the other cv_fa speakers and fa_virgool; the
first N clips in its fixed hash order) are recognised the way `intercept run` recognises a
folder of short recordings (pooled by packing.RecordingPool, joined, packed into shared
windows), once per window length (`TranscribeOptions.pack_window_s`), in one process with the
model loaded once, the settings one after the other. Per setting: CPU and wall seconds of the
recognition, windows decoded (packs, and transmissions decoded again alone), loop retries,
tokens decoded, and the WER over clips with its 95% paired-bootstrap interval against the
first setting.

    .venv/bin/python scripts/bench_pack_window.py --part calibration --clips 300 --windows 29,22,20
    .venv/bin/python scripts/bench_pack_window.py --part held-out --radio --windows 29,22 --json out.json
    .venv/bin/python scripts/bench_pack_window.py --windows 29,29p4   # the pool recognised 4 windows at a time
    .venv/bin/python scripts/bench_pack_window.py --windows 29,29r1.1  # a first-pass repetition penalty of 1.1
    .venv/bin/python scripts/bench_pack_window.py --windows 29,29c200  # first decode calls of at most 200 tokens
    .venv/bin/python scripts/bench_pack_window.py --windows 29,29b8  # the first-pass ban of repeated 8-grams
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("calibration", "held-out"), default="calibration")
    parser.add_argument("--clips", type=int, default=300, help="the part's first N clips in the fixed order (0: all)")
    parser.add_argument("--radio", action="store_true", help="through the simulated radio channel")
    parser.add_argument("--windows", default="29,22,20", help="comma-separated pack_window_s values, each optionally "
                        "with the pool's windows per engine call as 'pN' (29p4: 29 s windows, recognised four "
                        "at a time), a first-pass repetition penalty as 'rX' (29r1.1) and a first-call token "
                        "cap as 'cN' (29c200, TranscribeOptions.first_call_tokens) and a first-pass "
                        "n-gram ban as 'bN' (29b8, TranscribeOptions.no_repeat_ngram); the first is the "
                        "baseline of the intervals")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    windows = [w for w in args.windows.split(",") if w]
    shapes = {w: re.fullmatch(r"(\d+(?:\.\d+)?)(?:p(\d+))?(?:r(\d+(?:\.\d+)?))?(?:c(\d+))?(?:b(\d+))?", w) for w in windows}
    if not all(shapes.values()):
        parser.error(f"--windows: not LENGTH[pN][rX][cN][bN]: {[w for w, m in shapes.items() if not m]}")

    from bench_asr import paired_bootstrap
    from bench_session_decode import CallLog
    from eval_prevalence import all_clips, heard

    from intercept.engines import TranscribeOptions, load_engine, pack_options_for
    from intercept.evaluate import ErrorRateScorer
    from intercept.models import resolve_model
    from intercept.packing import PoolOptions, RecordingPool, join_recordings, split_lines

    clips = [c for c in all_clips() if c.part == args.part]
    clips = clips[: args.clips] if args.clips else clips
    audio = [heard(c, args.radio) for c in clips]
    speech_s = sum(c.duration_s for c in clips)
    base = TranscribeOptions(cpu_threads=args.threads)
    engine = load_engine("faster-whisper", str(resolve_model("base").path), "base", base)
    log = CallLog.attach(engine)
    print(f"{len(clips)} {args.part} clips ({speech_s / 60:.1f} min), {'radio' if args.radio else 'clean'}; "
          f"threads {args.threads}; load average {os.getloadavg()[0]:.1f}", flush=True)

    results = {}
    for window in windows:
        length, per_call, penalty, call_cap, ban = shapes[window].groups()
        options = replace(base, pack_window_s=float(length), repetition_penalty=float(penalty or 1.0),
                          first_call_tokens=int(call_cap) if call_cap else None, no_repeat_ngram=int(ban or 0))
        engine.options, engine.pack_options = options, pack_options_for(options)
        engine._room = None
        log.reset()
        texts: list[str] = [""] * len(clips)
        pool = RecordingPool(PoolOptions(windows=int(per_call or 1)), pack_options_for(options))

        def recognise(group):
            joined = join_recordings([(samples, [tx]) for _, samples, tx in group], 16000)
            found = split_lines(joined, engine.transcribe(joined.samples, joined.transmissions, 16000), len(group))
            for (n, _, _), lines in zip(group, found):
                texts[n] = " ".join(line.text.strip() for line in lines)

        cpu, wall = time.process_time(), time.perf_counter()
        for n, (samples, tx) in enumerate(audio):
            for group in pool.add((n, samples, tx), [tx]):
                recognise(group)
        for group in pool.drain():
            recognise(group)
        results[window] = dict(cpu_s=time.process_time() - cpu, wall_s=time.perf_counter() - wall,
                               encodes=log.calls["encode"], searches=log.calls["generate"], tokens=log.tokens,
                               retries=log.retries, windows=log.windows, texts=texts,
                               pairs=[(c.reference, t) for c, t in zip(clips, texts)])
        print(f"  {window}: {results[window]['cpu_s']:.1f} CPU s, {results[window]['wall_s']:.1f} s, "
              f"load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)

    scorer = ErrorRateScorer()
    first = results[windows[0]]
    print("\n| pack_window_s (pN: N windows per engine call) | CPU s | x first | wall s | encoder passes | beam searches | tokens | windows decoded "
          "| loop retries | WER | CER | WER - first's, 95% |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for window in windows:
        r = results[window]
        counts = scorer.score_corpus(r["pairs"])
        r["wer"], r["cer"] = counts.wer, counts.cer
        interval = "" if r is first else "{:+.3f} .. {:+.3f}".format(*paired_bootstrap(first["pairs"], r["pairs"]))
        print(f"| {window} | {r['cpu_s']:.1f} | {r['cpu_s'] / first['cpu_s']:.2f} | {r['wall_s']:.1f} | {r['encodes']} | "
              f"{r['searches']} | {r['tokens']} | {r['windows']} | {r['retries']} | {r['wer']:.3f} | {r['cer']:.3f} | "
              f"{interval} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=1),
                                   encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
