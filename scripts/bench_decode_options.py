#!/usr/bin/env python3
"""Side by side: how Whisper base is kept out of decoding loops, on the shipped radio samples
and on real Persian speech.

Whisper decodes repetition loops ("که که که ..."). faster-whisper's answer is a fallback
ladder: a window whose compression ratio is above 2.4 (or whose average log-probability is
below -1) is decoded again at rising temperatures, by sampling. intercept's answer is a
deterministic retry: beam search again, with repeated n-grams forbidden and repeated tokens
penalised (TranscribeOptions.loop_retry_*), because sampling made the same file come out
differently from one run to the next. This script runs every variant through
intercept's own FasterWhisperEngine (one transmission per decode, no packing, so each variant
sees the same windows), interleaved so that machine noise hits all alike, and prints time,
ratio, WER and CER on each corpus, and whether two decodes of the same audio agree.

    .venv/bin/python scripts/bench_decode_options.py [--repeat 1] [--variants a,b,...]
    .venv/bin/python scripts/bench_decode_options.py --engine transformers --variants single,retry-n3
    .venv/bin/python scripts/bench_decode_options.py --engine openai-whisper --variants single,retry-n3

--engine transformers / openai-whisper run the same variants through intercept's
TransformersEngine / OpenAIWhisperEngine (on the embedded weights, rebuilt in memory, unless
--model names another directory).

Corpora: the 15 transmissions of the synthetic (espeak-ng) recordings of audio_samples/
(manifest times +- 0.3 s, manifest text as reference) and, when present, the clips of shared/eval/fa_virgool (whole clip, reference
transcript).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VIRGOOL = Path(os.environ.get("INTERCEPT_EVAL_CORPUS", ROOT.parent / "shared" / "eval" / "fa_virgool"))

LADDER = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
VARIANTS = {
    "single": ("single temperature 0.0, no retry", dict(loop_retry_ngram=0, loop_retry_penalty=1.0)),
    "ladder": ("fallback ladder 0.0..1.0, log-prob trigger -1 (faster-whisper's default)",
               dict(temperatures=LADDER, log_prob_threshold=-1.0, loop_retry_ngram=0, loop_retry_penalty=1.0)),
    "ladder-loops": ("fallback ladder on loops only (log-prob trigger off)",
                     dict(temperatures=LADDER, loop_retry_ngram=0, loop_retry_penalty=1.0)),
    "retry-n3": ("retry: no repeated 3-gram (intercept's default)", dict(loop_retry_ngram=3, loop_retry_penalty=1.0)),
    "retry-n4-p1.2": ("retry: no repeated 4-gram, penalty 1.2",
                      dict(loop_retry_ngram=4, loop_retry_penalty=1.2)),
    "retry-p1.5": ("retry: penalty 1.5 only", dict(loop_retry_ngram=0, loop_retry_penalty=1.5)),
    "prompt-fa": ("retry-n3 + prompt: a plain Persian sentence",
                  dict(loop_retry_ngram=3, initial_prompt="سلام. این یک گفتگوی رادیویی به زبان فارسی است.")),
    "prompt-fa2": ("retry-n3 + prompt: formal Persian, punctuated",
                   dict(loop_retry_ngram=3, initial_prompt="خب، گوش کن. ما امشب ساعت ده به آنجا می‌رویم و بعد خبر می‌دهیم.")),
}


def corpora() -> dict[str, list[tuple[object, str]]]:
    """{corpus: [(samples, reference)]}"""
    from intercept.audio import decode
    from intercept.evaluate import read_corpus

    found: dict[str, list] = {"audio_samples (radio, synthetic)": []}
    manifest = json.loads((ROOT / "audio_samples" / "manifest.json").read_text(encoding="utf-8"))
    for name, rec in sorted(manifest["recordings"].items()):
        if rec.get("speech", "espeak-ng") != "espeak-ng":
            continue  # the real-speech samples are fa_virgool clips: measured as that corpus
        samples = decode(str(ROOT / "audio_samples" / name)).samples
        for tx in rec["transmissions"]:
            start, end = max(0.0, tx["start"] - 0.3), tx["end"] + 0.3
            found["audio_samples (radio, synthetic)"].append(
                (samples[int(start * 16000): int(end * 16000)], tx["text_fa"]))
    if (VIRGOOL / "metadata.tsv").exists():
        found["fa_virgool (real speech)"] = [(decode(str(item.path)).samples, item.transcript)
                                             for item in read_corpus(VIRGOOL)]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"from: {', '.join(VARIANTS)}")
    parser.add_argument("--engine", default="faster-whisper", choices=("faster-whisper", "transformers", "openai-whisper"))
    parser.add_argument("--model", help="model directory (default: the embedded model; needed for transformers)")
    parser.add_argument("--length-penalty", type=float, default=None,
                        help="faster-whisper engine only: beam search's length penalty (faster-whisper's default 1)")
    args = parser.parse_args()
    chosen = [v for v in args.variants.split(",") if v]
    unknown = set(chosen) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")

    from intercept.engines import TranscribeOptions, load_engine
    from intercept.evaluate import ErrorRateScorer
    from intercept.models import embedded_model_dir
    from intercept.types import Transmission

    base = TranscribeOptions(beam_size=args.beam_size, compute_type="float32", pack=False)
    first = load_engine(args.engine, str(args.model or embedded_model_dir()), "base", base)
    engines = {}
    for key in chosen:  # one loaded model shared by every variant: only the options differ
        engine = object.__new__(type(first))
        engine.__dict__.update(first.__dict__)
        engine.options = replace(base, **VARIANTS[key][1])
        if hasattr(engine, "_room"):
            engine._room = None  # faster-whisper's cached token room depends on the options
        if args.length_penalty is not None:
            if args.engine != "faster-whisper":
                parser.error("--length-penalty is for the faster-whisper engine")
            settings = engine._settings  # not a TranscribeOptions field: measured, not offered
            engine._settings = lambda task, tokens, settings=settings: {**settings(task, tokens),
                                                                         "length_penalty": args.length_penalty}
        engines[key] = engine
    data = corpora()
    times = {c: {k: 0.0 for k in chosen} for c in data}
    texts = {c: {k: [] for k in chosen} for c in data}
    for _ in range(args.repeat):
        for corpus, items in data.items():
            for samples, _reference in items:
                tx = Transmission(0, 0.0, len(samples) / 16000)
                for key, engine in engines.items():
                    started = time.perf_counter()
                    text = " ".join(line.text for line in engine.transcribe(samples, [tx]))
                    times[corpus][key] += time.perf_counter() - started
                    texts[corpus][key].append(text)
    scorer = ErrorRateScorer()
    print(f"command: python scripts/bench_decode_options.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"engine {args.engine}, beam {args.beam_size}, repeat {args.repeat}"
          + ("" if args.length_penalty is None else f", length penalty {args.length_penalty}")
          + f", {platform.machine()}, Python {platform.python_version()}")
    for corpus, items in data.items():
        references = [reference for _, reference in items] * args.repeat
        single = times[corpus].get("single") or next(iter(times[corpus].values()))
        print(f"\n{corpus}: {len(items)} transmissions\n")
        print("| decoding | seconds | × single | WER | CER | repeats agree |")
        print("|---|---|---|---|---|---|")
        for key in chosen:
            errors = scorer.score_corpus(zip(references, texts[corpus][key]))
            found = texts[corpus][key]
            agree = "" if args.repeat < 2 else \
                f"{sum(a == b for a, b in zip(found, found[len(items):]))}/{len(found) - len(items)}"
            print(f"| {VARIANTS[key][0]} | {times[corpus][key]:.1f} | {times[corpus][key] / single:.2f} | "
                  f"{errors.wer:.3f} | {errors.cer:.3f} | {agree} |")


if __name__ == "__main__":
    main()
