#!/usr/bin/env python
"""Side-by-side cost of Whisper's temperature fallback on the shipped radio samples.

faster-whisper's default re-decodes a segment at rising temperatures (0.0 .. 1.0) whenever
its average log-probability is below -1 or its compression ratio above 2.4. Whisper base
on Farsi radio speech is below that log-probability nearly always, so the ladder decodes most
transmissions several times. This script decodes every transmission of audio_samples/ both
ways, interleaved so machine noise hits both alike, and prints time, ratio and how many
transcripts differ.

    python scripts/bench_decode_options.py [--repeat 1]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--beam-size", type=int, default=5)
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    from intercept.audio import decode
    from intercept.models import embedded_model_dir

    model = WhisperModel(str(embedded_model_dir()), device="cpu", compute_type="float32")
    manifest = json.loads((ROOT / "audio_samples" / "manifest.json").read_text())
    chunks = []
    for name, rec in manifest["recordings"].items():
        samples = decode(ROOT / "audio_samples" / name).samples
        for tx in rec["transmissions"]:
            start, end = max(0.0, tx["start"] - 0.3), tx["end"] + 0.3
            chunks.append(samples[int(start * 16000) : int(end * 16000)])
    settings = {
        "single temperature 0.0": dict(temperature=[0.0]),
        "fallback ladder 0.0..1.0 (faster-whisper default)": dict(temperature=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    }
    times = {k: 0.0 for k in settings}
    texts = {k: [] for k in settings}
    for _ in range(args.repeat):
        for chunk in chunks:
            for label, kw in settings.items():
                started = time.perf_counter()
                segments, _ = model.transcribe(
                    chunk, language="fa", beam_size=args.beam_size, condition_on_previous_text=False,
                    vad_filter=False, **kw,
                )
                text = " ".join(s.text.strip() for s in segments)
                times[label] += time.perf_counter() - started
                texts[label].append(text)
    base = times["single temperature 0.0"]
    differ = sum(a != b for a, b in zip(*texts.values()))
    print(f"{len(chunks)} transmissions x {args.repeat}, beam {args.beam_size}, {platform.machine()}, "
          f"Python {platform.python_version()}")
    print("| decoding | seconds | ratio |")
    print("|---|---|---|")
    for label, seconds in times.items():
        print(f"| {label} | {seconds:.1f} | {seconds / base:.2f} |")
    print(f"transcripts that differ: {differ} of {len(texts['single temperature 0.0'])}")


if __name__ == "__main__":
    main()
