"""Translation speed, lines per second, of each path on this machine, side by side in one run:

* whisper: Whisper's translate task (the embedded base) on the transmissions of the synthetic
  (espeak-ng) recordings of audio_samples/;
* transformers (PyTorch) and the same model through CTranslate2, on the Farsi of those lines.

    .venv/bin/python scripts/bench_translate.py                      # tiny + 418M-size random M2M100
    .venv/bin/python scripts/bench_translate.py --sizes tiny         # quick
    .venv/bin/python scripts/bench_translate.py --mt-model facebook/m2m100_418M   # a real model (online)

Offline no real MT model can be fetched, so the MT rows use randomly initialised M2M100
models built here: "tiny" (d_model 16) checks the plumbing; "418M-size" has the architecture of
facebook/m2m100_418M (d_model 1024, 12+12 layers, 128,112-token vocabulary), so its speed is
the real model's for the same number of tokens. A random model never ends a sentence, so
every MT line is held to --new-tokens English tokens (typical radio lines are 5-20). Its
tokenizer is a tiny one trained here, so inputs are longer in tokens than with the real one:
a slight handicap for the MT rows. With --mt-model, a real model is measured as it decodes.
Prints a markdown table with the command that produced it.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intercept.translate import MTOptions, TransformersTranslator  # noqa: E402
from intercept.types import Line  # noqa: E402

SIZES = {
    "tiny": dict(d_model=16, layers=1, heads=2, ffn=32, vocab_size=0),
    "418M-size": dict(d_model=1024, layers=12, heads=16, ffn=4096, vocab_size=128112),
}


def sample_lines() -> list[tuple[str, float, float, str]]:
    """(recording, start, end, Farsi) for every transmission in the samples' manifest."""
    manifest = json.loads((ROOT / "audio_samples" / "manifest.json").read_text(encoding="utf-8"))
    return [
        (name, tx["start"], tx["end"], tx["text_fa"])
        for name, rec in manifest["recordings"].items()
        if rec.get("speech", "espeak-ng") == "espeak-ng"  # the synthetic ones, as docs/translation.md counts
        for tx in rec["transmissions"]
    ]


def builder():
    # The model builder lives with the tests that need it; loaded by path, as tests/ is no package.
    spec = importlib.util.spec_from_file_location("test_translate", ROOT / "tests" / "test_translate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_tiny_m2m100


def bench_whisper(lines, threads: int) -> tuple[float, int]:
    from intercept.audio import CleanupOptions, clean_radio, decode
    from intercept.engines import TranscribeOptions, load_engine
    from intercept.models import embedded_model_dir
    from intercept.translate import WhisperTranslator

    engine = load_engine("faster-whisper", str(embedded_model_dir()), "whisper-base (embedded)",
                         TranscribeOptions(cpu_threads=threads))
    translator = WhisperTranslator(engine)
    by_file: dict[str, list[Line]] = {}
    for name, start, end, text in lines:
        by_file.setdefault(name, []).append(Line(start, end, text=text, text_fa=text))
    audio = {}
    for name in by_file:
        decoded = decode(ROOT / "audio_samples" / name)
        audio[name] = clean_radio(decoded.samples, decoded.sample_rate, CleanupOptions())
    started = time.perf_counter()
    for name, file_lines in by_file.items():
        translator.translate(file_lines, audio[name], 16000)
    return time.perf_counter() - started, sum(len(v) for v in by_file.values())


def bench_mt(model: str, backend: str, texts: list[str], args, cache_dir: str) -> tuple[float, float, str]:
    options = MTOptions(
        backend=backend, batch_size=args.batch_size, beam_size=args.beam_size, threads=args.threads,
        cache_lines=0, cache_dir=cache_dir, compute_type=args.compute_type,
    )
    if args.new_tokens:
        # Held to a fixed English length (see the module docstring).
        options.max_new_tokens = args.new_tokens
        options.new_tokens_per_input_token = 1000.0
        options.no_repeat_ngram_size = 0
    started = time.perf_counter()
    translator = TransformersTranslator(model, options)
    load_s = time.perf_counter() - started
    translator.translate_texts(texts[: args.batch_size])  # warm-up
    started = time.perf_counter()
    translator.translate_texts(texts)
    return time.perf_counter() - started, load_s, translator.model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="tiny,418M-size", help="random M2M100 sizes to build: tiny, 418M-size")
    parser.add_argument("--mt-model", help="a real MT model (directory or hub id) instead of random ones")
    parser.add_argument("--lines", type=int, default=96, help="MT lines per measurement (sample lines cycled)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compute-type", default="default", help="CTranslate2 compute type (default, int8, float32)")
    parser.add_argument("--new-tokens", type=int, default=None,
                        help="hold every MT line to this many English tokens (default: 16 for random models, off for --mt-model)")
    parser.add_argument("--no-whisper", action="store_true", help="skip the Whisper translate row")
    args = parser.parse_args()
    if args.new_tokens is None and not args.mt_model:
        args.new_tokens = 16
    command = "python scripts/bench_translate.py " + " ".join(sys.argv[1:])

    lines = sample_lines()
    texts = [lines[i % len(lines)][3] for i in range(args.lines)]
    # Cycled lines repeat; the MT cache is off (cache_lines=0) so every line is translated.
    rows = []
    if not args.no_whisper:
        wall, count = bench_whisper(lines, args.threads)
        rows.append(("whisper translate (faster-whisper, CTranslate2)", "whisper-base (embedded)", count, wall, None))
    with tempfile.TemporaryDirectory(prefix="bench-translate-") as work:
        models = []
        if args.mt_model:
            models.append((args.mt_model, args.mt_model))
        else:
            build = builder()
            for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
                print(f"building random M2M100 ({size}) ...", file=sys.stderr)
                models.append((f"random M2M100 {size}", str(build(Path(work) / size, **SIZES[size]))))
        for label, path in models:
            for backend in ("torch", "ctranslate2"):
                print(f"{label}: {backend} ...", file=sys.stderr)
                wall, load_s, _model = bench_mt(path, backend, texts, args, str(Path(work) / "ct2-cache"))
                rows.append((f"transformers MT ({backend})", label, len(texts), wall, load_s))

    print(f"\n`{command}`  \n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"threads={args.threads}, batch={args.batch_size}, beams={args.beam_size}, "
          f"English tokens per MT line={args.new_tokens or 'as decoded'}\n")
    print("| path | model | lines | seconds | lines/s | load (+convert) s |")
    print("|---|---|---:|---:|---:|---:|")
    for path, model, count, wall, load_s in rows:
        load = "" if load_s is None else f"{load_s:.1f}"
        print(f"| {path} | {model} | {count} | {wall:.2f} | {count / wall:.2f} | {load} |")


if __name__ == "__main__":
    main()
