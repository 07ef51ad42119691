"""Flag quality on real recognition output: precision/recall per match kind, false flags per 100
non-coded lines.

    .venv/bin/python scripts/eval_flags.py                      # report on tests/data/asr_outputs.tsv
    .venv/bin/python scripts/eval_flags.py --fuzzy-threshold 0.7
    .venv/bin/python scripts/eval_flags.py transcribe           # re-make the TSV (needs the model, CPU-heavy)

The TSV (source, reference, hypothesis, concepts) holds what the embedded Whisper base wrote for
the 10 real Persian clips of /work/shared/eval/fa_virgool and for every transmission of
audio_samples/ (manifest.json times, padded). `concepts` lists the lexicon concepts the
*reference* genuinely says as coded or monitored terms (checked by hand for the real clips:
none of them is coded talk); a line with none is a non-coded line, and every Farsi flag on it
is a false flag.

A flag on a hypothesis counts as right when its concept is in the line's concepts (patterns
count when every concept they join is). Recall per kind is over the (line, concept) pairs the
references hold: a concept is found "by kind K" when K is the strongest kind that found it.
"""
from __future__ import annotations

import argparse
import csv
import functools
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TSV = ROOT / "tests" / "data" / "asr_outputs.tsv"
DEFAULT_CLIPS = Path("/work/shared/eval/fa_virgool")
FARSI_KINDS = ("exact", "morph", "fuzzy", "pattern")
TSV_FIELDS = ("source", "reference", "hypothesis", "concepts")
# Manifest transmissions are cut this much wider than the speech, as a segmenter would.
SAMPLE_PADDING_S = 0.3
# Reference lexicon terms in the real clips that are NOT coded talk (checked by hand):
# "ادامه پرده" is "the rest of the curtain/veil" (an exclude of bird), "سختی‌هایی که ... می‌کشم"
# is "the hardships I endure" (کشیدن shares the present stem کش with کشتن "kill").
REAL_CLIP_CONCEPTS: dict[str, tuple[str, ...]] = {}


@dataclass(frozen=True)
class AsrLine:
    source: str
    reference: str
    hypothesis: str
    concepts: frozenset[str]

    @property
    def coded(self) -> bool:
        return bool(self.concepts)


def read_tsv(path: Path) -> list[AsrLine]:
    """The labelled lines; a malformed file is one clear error naming it."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            if reader.fieldnames is None or tuple(reader.fieldnames) != TSV_FIELDS:
                raise ValueError(f"{path}: header must be {' '.join(TSV_FIELDS)} (tab-separated), "
                                 f"got {reader.fieldnames}")
            return [AsrLine(row["source"], row["reference"], row["hypothesis"] or "",
                            frozenset(c for c in (row["concepts"] or "").split(",") if c))
                    for row in reader]
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from exc


# ---------------------------------------------------------------- scoring


@dataclass
class KindCounts:
    produced: int = 0
    right: int = 0
    found: int = 0  # (line, concept) pairs whose strongest finding kind is this one


@dataclass
class FlagReport:
    lines: int
    coded_lines: int
    wanted: int  # (line, concept) pairs in the references
    by_kind: dict[str, KindCounts]
    false_on_plain: Counter  # kind -> flags on non-coded lines
    false_examples: list[tuple[str, str, str, str]]  # (source, concept, kind, matched)
    missed: list[tuple[str, str, str]]  # (source, concept, hypothesis)

    @property
    def plain_lines(self) -> int:
        return self.lines - self.coded_lines

    def false_per_100(self, kind: Optional[str] = None) -> float:
        count = sum(self.false_on_plain.values()) if kind is None else self.false_on_plain[kind]
        return 100.0 * count / self.plain_lines if self.plain_lines else float("nan")


def score(lexicon, normalizer, lines: list[AsrLine]) -> FlagReport:
    from intercept.lexicon import KINDS

    strength = {kind: n for n, kind in enumerate(("fuzzy", "pattern", "morph", "exact"))}
    by_kind = {kind: KindCounts() for kind in FARSI_KINDS}
    false_on_plain: Counter = Counter()
    false_examples, missed = [], []
    wanted = 0
    for line in lines:
        flags = [f for f in lexicon.match(normalizer.normalize(line.hypothesis)) if f.kind in KINDS
                 and f.kind != "english"]
        best: dict[str, str] = {}
        for flag in flags:
            if flag.kind == "pattern":
                parts = set(flag.term.replace("+", " ").split()) & {c for c in _concept_ids(lexicon)}
                right = bool(parts) and parts <= line.concepts
            else:
                right = flag.concept in line.concepts
                if right and strength[flag.kind] > strength.get(best.get(flag.concept, ""), -1):
                    best[flag.concept] = flag.kind
            by_kind[flag.kind].produced += 1
            by_kind[flag.kind].right += right
            if not line.coded:
                false_on_plain[flag.kind] += 1
                false_examples.append((line.source, flag.concept, flag.kind, flag.matched))
        for concept in line.concepts & _concept_ids(lexicon):
            wanted += 1
            if concept in best:
                by_kind[best[concept]].found += 1
            else:
                missed.append((line.source, concept, line.hypothesis))
    return FlagReport(len(lines), sum(line.coded for line in lines), wanted, by_kind, false_on_plain,
                      false_examples, missed)


def _concept_ids(lexicon) -> set[str]:
    return {term.concept for term in lexicon.terms}


def format_report(title: str, report: FlagReport) -> str:
    out = [f"### {title}", "",
           f"{report.lines} lines of real ASR output ({report.coded_lines} with coded terms in the reference, "
           f"{report.plain_lines} without); {report.wanted} (line, concept) pairs to find.", "",
           "| kind | flags | right | precision | found | recall share |", "|---|---|---|---|---|---|"]
    for kind in FARSI_KINDS:
        counts = report.by_kind[kind]
        precision = f"{counts.right / counts.produced:.2f}" if counts.produced else "-"
        share = f"{counts.found / report.wanted:.2f}" if report.wanted and kind != "pattern" else "-"
        out.append(f"| {kind} | {counts.produced} | {counts.right} | {precision} | {counts.found} | {share} |")
    found = sum(c.found for c in report.by_kind.values())
    produced = sum(c.produced for c in report.by_kind.values())
    right = sum(c.right for c in report.by_kind.values())
    out.append(f"| all | {produced} | {right} | {right / produced if produced else float('nan'):.2f} | "
               f"{found} | {found / report.wanted if report.wanted else float('nan'):.2f} |")
    out += ["", f"False flags per 100 non-coded lines: {report.false_per_100():.1f} "
            + "(" + ", ".join(f"{k} {report.false_per_100(k):.1f}" for k in FARSI_KINDS) + ")"]
    for source, concept, kind, matched in report.false_examples:
        out.append(f"- false: {source}: {concept} {kind} on {matched!r}")
    for source, concept, hypothesis in report.missed:
        out.append(f"- missed: {source}: {concept} in {hypothesis!r}")
    return "\n".join(out)


# ---------------------------------------------------------------- making the TSV


def transcribe(clips_dir: Path, samples_dir: Path, out: Path, model: Optional[str]) -> None:
    """Run the embedded model (language fa, beam 5, temperature 0, loop retry: the pipeline's defaults) over
    the real clips and the sample transmissions; write the TSV."""
    import json

    from intercept.audio import decode
    from intercept.engines import TranscribeOptions, load_engine
    from intercept.models import embedded_model_dir
    from intercept.types import Transmission

    options = TranscribeOptions(language="fa", beam_size=5, temperatures=(0.0,))
    engine = load_engine("faster-whisper", str(model or embedded_model_dir()), "base", options)
    rows: list[dict] = []
    metadata = clips_dir / "metadata.tsv"
    with metadata.open(encoding="utf-8", newline="") as handle:
        for clip in csv.DictReader(handle, delimiter="\t"):
            audio = decode(str(clips_dir / clip["path"]))
            lines = engine.transcribe(audio.samples, [Transmission(0, 0.0, audio.duration)], audio.sample_rate)
            rows.append({"source": f"fa_virgool/{clip['path']}", "reference": clip["transcript"].strip(),
                         "hypothesis": " ".join(line.text for line in lines),
                         "concepts": ",".join(REAL_CLIP_CONCEPTS.get(clip["path"], ()))})
            print(rows[-1]["source"], rows[-1]["hypothesis"], file=sys.stderr)
    manifest = json.loads((samples_dir / "manifest.json").read_text(encoding="utf-8"))
    for name, recording in manifest["recordings"].items():
        if recording.get("speech", "espeak-ng") != "espeak-ng":
            continue  # the real-speech samples are the fa_virgool clips above, keyed through a radio
        audio = decode(str(samples_dir / name))
        samples = audio.samples  # as the pipeline's recogniser hears it (no --clean)
        for n, tx in enumerate(recording["transmissions"]):
            span = Transmission(n, max(0.0, tx["start"] - SAMPLE_PADDING_S),
                                min(audio.duration, tx["end"] + SAMPLE_PADDING_S))
            lines = engine.transcribe(samples, [span], audio.sample_rate)
            concepts = sorted(set(tx["concepts"]) | _reference_terms(tx["text_fa"]))
            rows.append({"source": f"audio_samples/{name}@{tx['start']:.1f}", "reference": tx["text_fa"],
                         "hypothesis": " ".join(line.text for line in lines), "concepts": ",".join(concepts)})
            print(rows[-1]["source"], rows[-1]["hypothesis"], file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=TSV_FIELDS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} lines to {out}", file=sys.stderr)


def _reference_terms(reference: str) -> set[str]:
    """Lexicon concepts an espeak sample's reference says outright (امشب beside the coded
    animals): the manifest lists only the coded ones. Exact/morph only, on the clean text."""
    lexicon, normalizer = _exact_lexicon()
    return {f.concept for f in lexicon.match(normalizer.normalize(reference))}


@functools.lru_cache(maxsize=1)
def _exact_lexicon():
    from intercept.lexicon import Lexicon, MatchOptions, default_lexicon_path
    from intercept.text import PersianNormalizer

    normalizer = PersianNormalizer()
    return Lexicon.load(default_lexicon_path(), normalizer=normalizer,
                        options=MatchOptions(fuzzy=False, english=False, patterns=False)), normalizer


# ---------------------------------------------------------------- command line


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", nargs="?", choices=("report", "transcribe"), default="report")
    parser.add_argument("--tsv", type=Path, default=DEFAULT_TSV)
    parser.add_argument("--lexicon", type=Path, default=None, help="lexicon file or folder (default: lexicons/)")
    parser.add_argument("--fuzzy-threshold", type=float, default=None)
    parser.add_argument("--clips", type=Path, default=DEFAULT_CLIPS, help="real clips folder (transcribe)")
    parser.add_argument("--samples", type=Path, default=ROOT / "audio_samples", help="samples folder (transcribe)")
    parser.add_argument("--model", default=None, help="CTranslate2 Whisper folder (transcribe; default: embedded)")
    args = parser.parse_args(argv)
    if args.action == "transcribe":
        transcribe(args.clips, args.samples, args.tsv, args.model)
        return 0

    from intercept.lexicon import Lexicon, MatchOptions, default_lexicon_path
    from intercept.text import PersianNormalizer

    try:
        lines = read_tsv(args.tsv)
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")
    normalizer = PersianNormalizer()
    lexicon = Lexicon.load(args.lexicon or default_lexicon_path(), normalizer=normalizer,
                           options=MatchOptions(english=False, fuzzy_threshold=args.fuzzy_threshold))
    command = "python scripts/eval_flags.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(format_report(f"Flags on real ASR output, lexicon {lexicon.version} (`{command.strip()}`)",
                        score(lexicon, normalizer, lines)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
