"""What the segmenter's silence and steadiness checks (SegmentOptions.min_level_dbfs,
min_level_spread_db) change: real speech must segment exactly as without them, and silence and
steady tones must give nothing.

    .venv/bin/python scripts/eval_segment_checks.py                 # audio_samples/ + eval clips
    .venv/bin/python scripts/eval_segment_checks.py --clips 10      # fewer Common Voice clips

For each recording (audio_samples/, the fa_virgool clips and --clips random Common Voice clips
from ../shared/eval when present) and each detector, the transmissions found with the checks off
(the code before them) and on; then synthetic hostile signals. Prints one line per difference and
a summary, and each kept speech span's lowest level spread (the margin to the 3 dB limit).
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intercept.audio import decode  # noqa: E402
from intercept.segment import SegmentOptions, find_transmissions, span_level_db  # noqa: E402

SAMPLE_RATE = 16000
EVAL = ROOT.parent.parent / "shared" / "eval"
if not EVAL.is_dir():
    EVAL = ROOT.parent / "shared" / "eval"


def recordings(clips: int) -> list[Path]:
    found = sorted(p for p in (ROOT / "audio_samples").iterdir() if p.suffix in (".wav", ".mp3", ".ogg"))
    found += sorted((EVAL / "fa_virgool" / "clips").glob("*.mp3"))
    common_voice = sorted((EVAL / "cv_fa" / "clips").glob("*.mp3"))
    found += random.Random(1).sample(common_voice, min(clips, len(common_voice)))
    return found


def hostile(seconds: float = 120.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(23)
    time = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    dither = rng.integers(-1, 2, time.size) / 32767.0  # what `sox -n -b 16` writes for silence
    return {name: (signal + dither).astype(np.float32) for name, signal in {
        "dithered silence": np.zeros(time.size),
        "1 kHz sine": 0.3 * np.sin(2 * np.pi * 1000 * time),
        "DC offset": np.full(time.size, 0.2),
        "mains hum": sum(0.1 / k * np.sin(2 * np.pi * 50 * k * time) for k in (1, 3, 5, 7, 9)),
        "carrier hiss": 0.05 * rng.standard_normal(time.size),
    }.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=25, help="random Common Voice clips (default 25)")
    args = parser.parse_args()
    methods = ("silero", "energy")
    changed, spans, spreads = 0, 0, []
    paths = recordings(args.clips)
    for path in paths:
        samples = decode(str(path)).samples
        for method in methods:
            off = find_transmissions(samples, SAMPLE_RATE,
                                     SegmentOptions(method=method, min_level_dbfs=None, min_level_spread_db=None))
            on = find_transmissions(samples, SAMPLE_RATE, SegmentOptions(method=method))
            spans += len(off)
            spreads += [span_level_db(samples, SAMPLE_RATE, (t.start, t.end))[1] for t in on]
            if on != off:
                changed += 1
                print(f"CHANGED {path.name} {method}: {[(t.start, t.end) for t in off]} -> "
                      f"{[(t.start, t.end) for t in on]}")
    print(f"speech: {len(paths)} recordings x {len(methods)} detectors, {spans} transmissions without the checks; "
          f"{changed} segmentations changed by them; lowest level spread of a kept span "
          f"{min(spreads):.1f} dB (median {np.median(spreads):.1f})")
    for name, samples in hostile().items():
        counts = []
        for method in ("silero", "energy", "auto"):
            off = find_transmissions(samples, SAMPLE_RATE,
                                     SegmentOptions(method=method, min_level_dbfs=None, min_level_spread_db=None))
            on = find_transmissions(samples, SAMPLE_RATE, SegmentOptions(method=method))
            counts.append(f"{method} {len(off)} -> {len(on)}")
        print(f"{name} (2 min): " + ", ".join(counts))


if __name__ == "__main__":
    main()
