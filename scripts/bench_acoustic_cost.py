#!/usr/bin/env python3
"""What the acoustic check (intercept/acoustic.py) costs a line that holds a fuzzy match, beside
what recognising that line costs: the fa_virgool clips (real speech, one line each), faster-
whisper with the embedded Whisper base on one thread, each clip transcribed, then its line
scored with two substituted texts as the check does (three texts: the line and two forms), in
one process.

    .venv/bin/python scripts/bench_acoustic_cost.py [--clips 5]
"""
from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=5)
    args = parser.parse_args()

    from intercept.audio import decode
    from intercept.engines import TranscribeOptions, load_engine
    from intercept.models import embedded_model_dir
    from intercept.types import Transmission

    engine = load_engine("faster-whisper", str(embedded_model_dir()), "base", TranscribeOptions(cpu_threads=1))
    clips = sorted(glob.glob("/work/shared/eval/fa_virgool/clips/*.mp3"))[: args.clips]
    if not clips:
        sys.exit("no fa_virgool clips under /work/shared/eval/fa_virgool/clips")
    recognise = check = 0.0
    for path in clips:
        audio = decode(path)
        started = time.perf_counter()
        lines = engine.transcribe(audio.samples, [Transmission(0, 0.0, audio.duration)])
        recognise += time.perf_counter() - started
        if not lines:
            continue
        line = lines[0]
        words = line.text.split()
        texts = [line.text, " ".join(["پرنده"] + words[1:]), " ".join(words[:-1] + ["روباه"])]
        started = time.perf_counter()
        engine.score_texts(audio.samples, line.start, line.end, texts)
        check += time.perf_counter() - started
    print(f"{len(clips)} clips: recognition {recognise:.1f} s, acoustic check {check:.1f} s, "
          f"ratio {check / recognise:.2f}")
    print("command: python scripts/bench_acoustic_cost.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
