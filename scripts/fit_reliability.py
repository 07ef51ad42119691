"""Fit the confidence below which a line's English is marked unreliable (intercept.reliability),
on real Persian speech, and check it on speech it was not fitted on.

    .venv/bin/python scripts/eval_flags_real.py transcribe     # recogniser outputs (CPU heavy, once)
    .venv/bin/python scripts/fit_reliability.py                # threshold from dev, report on held-out

It reads the recogniser outputs that scripts/eval_flags_real.py caches (out/eval_flags/
recognised_<split>*.jsonl: per clip the reference and the lines with their words), so it runs
in seconds. A clip's recognition is *weak* when its character error rate is above --weak-cer
(default 0.5: more than half of what was said is wrong, so the translation can only be
invention); its confidence is the mean word probability of its lines, as intercept stores it in
lines.confidence. The threshold maximises Youden's J (true-positive rate minus false-positive
rate of "confidence < t" as a detector of weak recognition) on dev; held-out is only reported.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intercept.evaluate import ErrorRateScorer  # noqa: E402

CACHE = ROOT / "out" / "eval_flags"


def read_split(folder: Path, split: str, scorer: ErrorRateScorer) -> list[tuple[float, float]]:
    """(confidence, CER) per clip that has words, from every cache shard of the split."""
    found = []
    for path in sorted(folder.glob(f"recognised_{split}*.jsonl")):
        for raw in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(raw)
            words = [w for line in row["lines"] for w in (line.get("words") or [])]
            if not words:
                continue
            hypothesis = " ".join(line["text"] for line in row["lines"])
            found.append((sum(w[3] for w in words) / len(words), scorer.score(row["reference"], hypothesis).cer))
    return found


def rates(clips: list[tuple[float, float]], threshold: float, weak_cer: float) -> tuple[float, float, float]:
    """(share of weak clips caught, share of good clips marked, share of clips marked)."""
    weak = [c for c in clips if c[1] > weak_cer]
    good = [c for c in clips if c[1] <= weak_cer]
    caught = sum(c[0] < threshold for c in weak) / len(weak) if weak else 0.0
    wrongly = sum(c[0] < threshold for c in good) / len(good) if good else 0.0
    return caught, wrongly, sum(c[0] < threshold for c in clips) / len(clips)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=CACHE, help="folder of eval_flags_real.py's caches")
    parser.add_argument("--weak-cer", type=float, default=0.5, help="CER above which recognition is weak")
    args = parser.parse_args()
    scorer = ErrorRateScorer()
    dev, held_out = (read_split(args.cache, split, scorer) for split in ("dev", "held-out"))
    if not dev or not held_out:
        print(f"no recogniser outputs under {args.cache}: run scripts/eval_flags_real.py transcribe first",
              file=sys.stderr)
        return 2
    candidates = [round(0.30 + 0.01 * i, 2) for i in range(41)]
    best = max(candidates, key=lambda t: (lambda r: r[0] - r[1])(rates(dev, t, args.weak_cer)))
    print(f"weak recognition: CER > {args.weak_cer}; dev {len(dev)} clips "
          f"({sum(c[1] > args.weak_cer for c in dev)} weak), held-out {len(held_out)} "
          f"({sum(c[1] > args.weak_cer for c in held_out)} weak)")
    print("| threshold | part | weak caught | good marked | all marked |")
    print("|---|---|---|---|---|")
    for threshold in sorted({0.37, best}):
        for name, clips in (("dev", dev), ("held-out", held_out)):
            caught, wrongly, marked = rates(clips, threshold, args.weak_cer)
            print(f"| {threshold:.2f}{' (fitted)' if threshold == best else ''} | {name} | {caught:.2f} | "
                  f"{wrongly:.2f} | {marked:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
