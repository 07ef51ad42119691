#!/usr/bin/env python3
"""Check that each recognition engine runs on this machine's NVIDIA GPU and writes what it
writes on the CPU.

For every engine (faster-whisper, openai-whisper, transformers), the same model transcribes
the 15 transmissions of audio_samples/' synthetic recordings (cut at the manifest's times) with
intercept's default options, once on the CPU in float32 and then on CUDA in each compute type asked for. It
prints load and transcription time per run, the GPU's speed-up, and the character error rate
between the GPU's text and the CPU's (letters only). An engine that cannot use the GPU prints
intercept's one-line reason. Exit status 0 only when every engine ran on CUDA and agreed with
its CPU run (CER <= --max-cer); 1 otherwise.

    .venv/bin/python scripts/check_cuda.py                    # embedded base, all engines
    .venv/bin/python scripts/check_cuda.py --model DIR --engines transformers --compute-types float16

A GPU machine without ffmpeg can take the audio decoded elsewhere:
    .venv/bin/python scripts/check_cuda.py --save-samples samples.npz   # where ffmpeg is
    python scripts/check_cuda.py --samples samples.npz --model DIR     # on the GPU machine

Results from one run: docs/benchmarks.md ("Engines on a GPU").
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
import unicodedata
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAMPLE_RATE = 16000
PAD_S = 0.3  # around the manifest's times, as scripts/bench_decode_options.py cuts them


def synthetic_recordings() -> dict[str, dict]:
    """The espeak-ng recordings of the samples' manifest (the real-speech ones would add
    decoding time to this check and nothing it measures)."""
    manifest = json.loads((ROOT / "audio_samples" / "manifest.json").read_text(encoding="utf-8"))
    return {name: info for name, info in manifest["recordings"].items()
            if info.get("speech", "espeak-ng") == "espeak-ng"}


def save_samples(path: Path) -> None:
    from intercept.audio import decode

    arrays = {}
    for name in sorted(synthetic_recordings()):
        samples = decode(str(ROOT / "audio_samples" / name)).samples
        arrays[name] = np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16)  # half the size
    np.savez_compressed(path, **arrays)


def load_recordings(npz: Path | None) -> list[tuple[str, np.ndarray, list]]:
    """[(name, samples, transmissions)] of audio_samples/' synthetic recordings, transmissions at
    the manifest's times."""
    from intercept.types import Transmission

    stored = np.load(npz) if npz else None
    recordings = []
    for name, info in sorted(synthetic_recordings().items()):
        if stored is not None:
            samples = stored[name].astype(np.float32) / 32767
        else:
            from intercept.audio import decode

            samples = decode(str(ROOT / "audio_samples" / name)).samples
        duration = len(samples) / SAMPLE_RATE
        transmissions = [Transmission(i, max(0.0, tx["start"] - PAD_S), min(duration, tx["end"] + PAD_S))
                         for i, tx in enumerate(info["transmissions"])]
        recordings.append((name, samples, transmissions))
    return recordings


def letters(text: str) -> str:
    """Letters only, Arabic/Persian look-alikes unified (as tests/test_engines.py compares)."""
    text = unicodedata.normalize("NFKC", text).replace("ي", "ی").replace("ك", "ک")
    return re.sub(r"[\W_]+", "", text)


def character_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    from rapidfuzz.distance import Levenshtein

    edits = sum(Levenshtein.distance(letters(r), letters(h)) for r, h in zip(reference, hypothesis))
    return edits / max(1, sum(len(letters(r)) for r in reference))


def run_engine(engine_name: str, model_dir: str, options, recordings) -> dict:
    """Load once, transcribe every recording; texts per transmission in manifest order."""
    from intercept.engines import load_engine

    started = time.perf_counter()
    engine = load_engine(engine_name, model_dir, "check", options)
    loaded = time.perf_counter() - started
    # One untimed transmission first: the first CUDA run of a process otherwise pays for
    # kernel loading and autotuning (6-10 s on an H200), which is no property of the engine.
    _name, samples, transmissions = recordings[0]
    engine.transcribe(samples, transmissions[:1], SAMPLE_RATE)
    texts, started = [], time.perf_counter()
    for _name, samples, transmissions in recordings:
        lines = engine.transcribe(samples, transmissions, SAMPLE_RATE)
        for tx in transmissions:
            texts.append(" ".join(line.text for line in lines if line.transmission_idx == tx.idx).strip())
    if getattr(engine, "device", "cpu") == "cuda":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    return {"device": getattr(engine, "device", options.device), "load_s": loaded,
            "transcribe_s": time.perf_counter() - started, "texts": texts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="CTranslate2 Whisper directory (default: the embedded base)")
    parser.add_argument("--engines", default="faster-whisper,openai-whisper,transformers")
    parser.add_argument("--compute-types", default="float32,float16",
                        help="CUDA compute types to run, comma-separated (the CPU run is float32)")
    parser.add_argument("--max-cer", type=float, default=0.1,
                        help="largest CER between a GPU run's text and the CPU's that counts as agreeing")
    parser.add_argument("--samples", type=Path, help="audio_samples/ decoded by --save-samples")
    parser.add_argument("--save-samples", type=Path, metavar="NPZ", help="decode audio_samples/ into NPZ and stop")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--recordings", type=int, default=0,
                        help="only the first N synthetic recordings (0: all; the tests use 1)")
    args = parser.parse_args()
    if args.save_samples:
        save_samples(args.save_samples)
        print(f"wrote {args.save_samples}")
        return 0

    from intercept.engines import TranscribeOptions
    from intercept.models import ModelError

    if args.model:
        model_dir = args.model
    else:
        from intercept.models import embedded_model_dir

        model_dir = str(embedded_model_dir())
    recordings = load_recordings(args.samples)
    if args.recordings:
        recordings = recordings[: args.recordings]
    count = sum(len(t) for _, _, t in recordings)
    audio_s = sum((tx.end - tx.start) for _, _, t in recordings for tx in t)
    print(f"command: python scripts/check_cuda.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"{count} transmissions, {audio_s:.0f} s of audio; Python {platform.python_version()}")
    try:
        import torch

        if torch.cuda.is_available():
            print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__} (CUDA {torch.version.cuda})")
    except ImportError:
        pass
    print()
    print("| engine | device | compute type | load s | transcribe s | x CPU | CER to CPU | result |")
    print("|---|---|---|---|---|---|---|---|")
    results, ok = [], True
    for engine_name in [e for e in args.engines.split(",") if e]:
        base = TranscribeOptions(compute_type="float32", device="cpu")
        runs = [("cpu", "float32")] + [("cuda", ct) for ct in args.compute_types.split(",") if ct]
        cpu = None
        for device, compute_type in runs:
            row = {"engine": engine_name, "device": device, "compute_type": compute_type}
            try:
                row.update(run_engine(engine_name, model_dir, replace(base, device=device, compute_type=compute_type),
                                      recordings))
            except (ModelError, ImportError) as exc:
                row["error"] = str(exc).splitlines()[0]
            if "error" in row:
                result = f"cannot run: {row['error']}"
                ok = False
            elif device == "cpu":
                cpu = row
                result = "reference"
            elif cpu is None:
                result = "ran; no CPU run to compare"
                ok = False
            else:
                row["cer_to_cpu"] = character_error_rate(cpu["texts"], row["texts"])
                row["speedup"] = cpu["transcribe_s"] / row["transcribe_s"]
                agrees = row["device"] == "cuda" and row["cer_to_cpu"] <= args.max_cer
                result = "agrees" if agrees else ("ran on " + row["device"] if row["device"] != "cuda" else "differs")
                ok = ok and agrees
            results.append(row)
            timing = ("", "", "") if "error" in row else (
                f"{row['load_s']:.1f}", f"{row['transcribe_s']:.1f}",
                f"{row['speedup']:.1f}" if "speedup" in row else "1.0")
            cer = f"{row['cer_to_cpu']:.3f}" if "cer_to_cpu" in row else ""
            print(f"| {engine_name} | {device} | {compute_type} | {timing[0]} | {timing[1]} | {timing[2]} | {cer} | {result} |",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    print("\nevery engine ran on CUDA and agreed with its CPU run" if ok else
          "\nnot every engine ran on CUDA in agreement with its CPU run (see the table)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
