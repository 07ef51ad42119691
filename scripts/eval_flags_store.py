#!/usr/bin/env python
"""Flag recall and precision of a reviewed store against a truth file: what the lexicon found,
and what the lexicon and the reviewers' own flags (kind `reviewer`, "mark as coded" on the desk)
found together. Whisper base never writes about half of the coded words, so a reviewer who hears
one is the only way it is found; this counts those finds.

    .venv/bin/python scripts/eval_flags_store.py STORE TRUTH.tsv [--threshold 0.5]

TRUTH.tsv columns: recording (the file name), start_s (of the line, within 0.5 s), concepts
(`;`-separated, empty for a line with none). Lexicon flags count at or above the queue's
threshold; reviewer flags always count (a person heard them). Lines go through Store.iter_lines,
so this script knows no SQL.
"""
from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intercept.scoring import DEFAULT_THRESHOLD  # noqa: E402
from intercept.store import READ, Store  # noqa: E402
from intercept.store.team import REVIEWER_KIND  # noqa: E402

START_TOLERANCE_S = 0.5


@dataclass
class Counts:
    wanted: int = 0  # (line, concept) pairs in the truth
    found: int = 0  # of those, flagged
    flags: int = 0  # (line, concept) pairs flagged
    right: int = 0  # of those, in the truth

    @property
    def recall(self) -> float:
        return self.found / self.wanted if self.wanted else float("nan")

    @property
    def precision(self) -> float:
        return self.right / self.flags if self.flags else float("nan")


def read_truth(path: Path) -> dict[tuple[str, float], set[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    missing = {"recording", "start_s", "concepts"} - set(rows[0] if rows else {})
    if missing:
        raise SystemExit(f"{path}: needs columns recording, start_s, concepts (missing {', '.join(sorted(missing))})")
    return {(row["recording"], float(row["start_s"])): {c for c in row["concepts"].split(";") if c} for row in rows}


def evaluate(store: Store, truth: dict[tuple[str, float], set[str]], threshold: float = DEFAULT_THRESHOLD) -> dict:
    """{"lexicon": Counts, "lexicon and reviewers": Counts} over the lines the truth names."""
    results = {"lexicon": Counts(), "lexicon and reviewers": Counts()}
    by_recording: dict[str, list[tuple[float, set[str]]]] = {}
    for (name, start), concepts in truth.items():
        by_recording.setdefault(name, []).append((start, concepts))
    for line in store.iter_lines():
        name = Path(line["recording_path"]).name
        match = [c for s, c in by_recording.get(name, []) if abs(s - line["start_s"]) <= START_TOLERANCE_S]
        if not match:
            continue
        wanted = match[0]
        lexicon = {f["concept"] for f in line["flags"]
                   if f["kind"] != REVIEWER_KIND and f["score"] is not None and f["score"] >= threshold}
        reviewers = {f["concept"] for f in line["flags"] if f["kind"] == REVIEWER_KIND}
        for label, flagged in (("lexicon", lexicon), ("lexicon and reviewers", lexicon | reviewers)):
            counts = results[label]
            counts.wanted += len(wanted)
            counts.found += len(wanted & flagged)
            counts.flags += len(flagged)
            counts.right += len(flagged & wanted)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("truth", type=Path)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    args = parser.parse_args()
    with Store(args.store, READ) as store:
        results = evaluate(store, read_truth(args.truth), args.threshold)
    print("| flags from | wanted | found | recall | flags | right | precision |\n|---|---|---|---|---|---|---|")
    for label, c in results.items():
        print(f"| {label} | {c.wanted} | {c.found} | {c.recall:.2f} | {c.flags} | {c.right} | {c.precision:.2f} |")


if __name__ == "__main__":
    main()
