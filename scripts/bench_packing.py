#!/usr/bin/env python
"""Packing versus one-by-one versus faster-whisper's batched pipeline, side by side.

The 10 fa_virgool clips (real Persian speech) are laid end to end with 3 s silences and
decoded as transmissions by each mode in turn, after a warm-up, in one process; prints wall
and CPU seconds, WER/CER (hazm-normalised) and whether every line stayed inside its
transmission. Add "samples" as a third argument to also decode audio_samples/.

    python scripts/bench_packing.py [COMPUTE_TYPE] [MODES] [samples]
    python scripts/bench_packing.py float32 single,pack,pack2.0,batched

The corpus path is ../shared/eval/fa_virgool beside the checkout, or $INTERCEPT_EVAL_CORPUS.
"""
import os
import sys, time, resource, json
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = os.environ.get("INTERCEPT_EVAL_CORPUS", str(ROOT.parent / "shared" / "eval" / "fa_virgool"))
from intercept.audio import decode
from intercept.segment import find_transmissions, SegmentOptions
from intercept.engines import TranscribeOptions
from intercept.engines.faster_whisper import FasterWhisperEngine
from intercept.evaluate import ErrorRateScorer, read_corpus
from intercept.types import Transmission

from intercept.models import embedded_model_dir
MODEL = str(embedded_model_dir())
compute = sys.argv[1] if len(sys.argv) > 1 else "float32"
modes = sys.argv[2].split(",") if len(sys.argv) > 2 else ["single", "pack", "batched"]
scorer = ErrorRateScorer()

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime

# corpus A: fa_virgool clips laid end to end with 3 s silences
items = read_corpus(CORPUS)
pieces, txs, t = [], [], 0.0
for i, it in enumerate(items):
    a = decode(str(it.path)).samples
    pieces += [a, np.zeros(3 * 16000, np.float32)]
    txs.append(Transmission(i, round(t, 3), round(t + len(a) / 16000, 3))); t += len(a) / 16000 + 3
virgool = np.concatenate(pieces)
# corpus B: audio_samples with found transmissions
man = json.load(open(str(ROOT / "audio_samples" / "manifest.json")))["recordings"]
samples_b = {}
print("loaded", flush=True)
for name in (sorted(man) if "samples" in sys.argv[3:] else []):
    a = decode(str(ROOT / "audio_samples" / name)).samples
    samples_b[name] = (a, find_transmissions(a, 16000, SegmentOptions()))

engines = {}
def engine(mode):
    o = TranscribeOptions(compute_type=compute)
    if mode == "single": o.pack = False
    elif mode.startswith("pack"):
        o.pack = True
        if mode != "pack": o.pack_gap_s = float(mode[4:])
    elif mode.startswith("batched"): o.batch_size = 8
    return FasterWhisperEngine(MODEL, "base", o)

results = {}
for mode in modes:
    e = engine(mode)
    e.transcribe(virgool[: 40 * 16000], txs[:3])  # warm-up: first calls pay allocations
    w0, c0 = time.perf_counter(), cpu()
    lines = e.transcribe(virgool, txs)
    wa, ca = time.perf_counter() - w0, cpu() - c0
    hyp = {tx.idx: " ".join(l.text for l in lines if l.transmission_idx == tx.idx) for tx in txs}
    inside = all(txs[l.transmission_idx].start <= l.start <= l.end <= txs[l.transmission_idx].end for l in lines)
    va = scorer.score_corpus((it.transcript, hyp[i]) for i, it in enumerate(items))
    print(json.dumps({"mode": mode, "virgool_wall": round(wa, 1), "virgool_cpu": round(ca, 1), "virgool_wer": round(va.wer, 3), "virgool_cer": round(va.cer, 3), "lines_inside": inside, "lines": len(lines)}), flush=True)
    if "samples" not in sys.argv[3:]: continue
    w0, c0 = time.perf_counter(), cpu()
    pairs = []
    for name, (a, found) in samples_b.items():
        ls = e.transcribe(a, found)
        ref = " ".join(t["text_fa"] for t in man[name]["transmissions"])
        pairs.append((ref, " ".join(l.text for l in ls)))
    wb, cb = time.perf_counter() - w0, cpu() - c0
    vb = scorer.score_corpus(pairs)
    print(json.dumps({"mode": mode, "compute": compute, "virgool_wall": round(wa, 1), "virgool_cpu": round(ca, 1),
                      "virgool_wer": round(va.wer, 3), "virgool_cer": round(va.cer, 3), "lines_inside": inside,
                      "samples_wall": round(wb, 1), "samples_cpu": round(cb, 1), "samples_wer": round(vb.wer, 3), "samples_cer": round(vb.cer, 3)}), flush=True)
