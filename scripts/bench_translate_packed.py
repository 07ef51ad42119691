#!/usr/bin/env python3
"""Can Whisper's translate task be packed like transcription? Per-line translation (what the
`whisper` translator does: one decode per line) against packed translation (the lines of
several recordings laid into shared 30 s windows, decoded once with timestamps, and the English
split back per line by its segments' times; a segment across a gap is decoded again per line).

    .venv/bin/python scripts/bench_translate_packed.py [--corpus folder|dense] [--threads 2]

Prints wall time of each, how many lines the packed English could be split back to, how many
lines got no English, and how close the packed English is to the per-line English (word error
rate of one against the other; no English reference exists for these clips).

A prototype: it drives the engines' shared Decoder (intercept/engines/core.py) directly (the
Engine interface has no packed translate call), so it measures whether it should get one.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="folder", choices=["folder", "dense"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)

    import bench_asr

    from intercept.audio import decode
    from intercept.config import RunOptions
    from intercept.engines import load_engine
    from intercept.engines.core import Decoder
    from intercept.evaluate import ErrorRateScorer
    from intercept.models import resolve_model
    from intercept.packing import PackOptions, assign_spans, join_recordings, pack_samples, plan_packs
    from intercept.segment import SegmentOptions, find_transmissions
    from intercept.translate import WhisperTranslator
    from intercept.types import Transmission

    files = bench_asr.corpus_folder(args.quick) if args.corpus == "folder" else bench_asr.corpus_dense(args.quick)
    options = RunOptions(translator="whisper")
    options.transcribe.cpu_threads = args.threads
    engine = load_engine("faster-whisper", str(resolve_model("base").path), "base", options.transcribe)
    decoder = Decoder(engine, engine.options, engine.pack_options)  # the engines' shared decoding policy
    translator = WhisperTranslator(engine)

    recordings = []  # (samples, lines)
    for item in files:
        samples = decode(item["path"]).samples
        transmissions = find_transmissions(samples, 16000, SegmentOptions())
        recordings.append((samples, engine.transcribe(samples, transmissions, 16000)))
    count = sum(len(lines) for _, lines in recordings)

    started = time.perf_counter()
    for samples, lines in recordings:
        translator.translate(lines, samples, 16000)
    per_line_s = time.perf_counter() - started
    per_line = [line.text_en for _, lines in recordings for line in lines]

    # Packed: each line's stretch (widened to 1 s as the translator does) is a "transmission".
    pack_options = PackOptions(gap_s=options.transcribe.pack_gap_s)
    started = time.perf_counter()
    parts = []
    for samples, lines in recordings:
        spans = []
        for i, line in enumerate(lines):
            start, end = line.start, line.end
            if end - start < 1.0:
                pad = (1.0 - (end - start)) / 2
                start, end = max(0.0, start - pad), min(samples.size / 16000, end + pad)
            spans.append(Transmission(i, start, end))
        parts.append((samples, spans))
    joined = join_recordings(parts, 16000)
    english = [[] for _ in joined.transmissions]
    redone = 0
    windows = 0
    for pack in plan_packs(joined.transmissions, pack_options):
        windows += 1
        window = pack_samples(joined.samples, pack, 16000)
        segments = decoder.decode(window, "translate",
                                  decoder.max_new_tokens(pack.speech_s, len(pack.placements), "translate")).segments
        owners = assign_spans(pack, [(seg.start, seg.end) for seg in segments], pack_options)
        redo = set()
        for seg, owner in zip(segments, owners):
            if owner is None:
                redo.update(i for i, p in enumerate(pack.placements) if p.offset_s < seg.end and seg.start < p.end_s)
        for seg, owner in zip(segments, owners):
            if owner is not None and owner not in redo:
                english[pack.placements[owner].transmission.idx].append(seg.text.strip())
        for i in redo:
            tx = pack.placements[i].transmission
            english[tx.idx] = [engine.translate_audio(joined.samples, tx.start, tx.end, 16000)]
            redone += 1
    packed_s = time.perf_counter() - started
    packed = [" ".join(texts).strip() for texts in english]

    scorer = ErrorRateScorer()
    agreement = scorer.score_corpus(zip(per_line, packed))
    print(f"corpus {args.corpus}: {len(files)} files, {count} lines, threads {args.threads}; "
          f"command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    print("| translation | wall s | x per line | windows decoded | lines decoded again alone | lines without English |")
    print("|---|---|---|---|---|---|")
    print(f"| per line (the whisper translator) | {per_line_s:.1f} | 1.00 | {count} | | "
          f"{sum(1 for t in per_line if not t.strip())} |")
    print(f"| packed across recordings | {packed_s:.1f} | {per_line_s / packed_s:.2f} | {windows} + {redone} | "
          f"{redone} | {sum(1 for t in packed if not t)} |")
    print(f"\npacked English against per-line English: WER {agreement.wer:.3f} "
          f"({agreement.reference_words} per-line words)")
    for a, b in list(zip(per_line, packed))[:8]:
        print(f"  per line: {a!r}\n  packed:   {b!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
