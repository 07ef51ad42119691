"""What one greedy decoder step of the embedded Whisper model costs, by batch size.

The session benchmark (bench_asr.py) spends most of intercept's time in CTranslate2's
`generate` over 30 s windows. This times `generate` alone on one encoded 30 s window repeated
BATCH times, greedy (beam 1), with the settings intercept's decode loop passes (return_scores,
return_no_speech_prob), and prints milliseconds per step and per row-step. A cost that grows
with the rows rather than staying flat says the step is bound by what each row reads (its
cross-attention over the 1,500 encoder frames), not by the shared weights.

    python scripts/bench_decoder_step.py --threads 2 --batches 1,2,4,8 --steps 60,160
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, default=ROOT / "audio_samples" / "real_speech_work.ogg",
                        help="the window's audio (its first 30 s, padded)")
    parser.add_argument("--model", default="base", help="'base' (embedded) or a CTranslate2 folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", default="1,2,4", help="batch sizes, comma-separated")
    parser.add_argument("--steps", default="60,160", help="max_length of each generate call, comma-separated")
    parser.add_argument("--repeat", type=int, default=2, help="calls per setting; the fastest is shown")
    args = parser.parse_args(argv)

    import ctranslate2
    import numpy as np
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio
    from faster_whisper.tokenizer import Tokenizer

    from intercept.models import resolve_model

    path = str(resolve_model(args.model).path) if args.model == "base" else args.model
    whisper = WhisperModel(path, device="cpu", compute_type="float32", cpu_threads=args.threads)
    samples = decode_audio(str(args.audio))[: 30 * 16000]
    features = whisper.feature_extractor(np.pad(samples, (0, 30 * 16000 - len(samples))))[:, :3000]
    prompt = list(Tokenizer(whisper.hf_tokenizer, True, task="transcribe", language="fa").sot_sequence)
    print(f"{args.audio.name}, model {args.model}, {args.threads} threads, greedy")
    print("| batch | max_length | steps | s per call | ms per step | ms per row-step |")
    print("|---|---|---|---|---|---|")
    for batch in (int(b) for b in args.batches.split(",") if b):
        stacked = np.ascontiguousarray(np.repeat(features[None], batch, axis=0))
        encoded = whisper.model.encode(ctranslate2.StorageView.from_array(stacked), to_cpu=True)
        for length in (int(n) for n in args.steps.split(",") if n):
            best, steps = float("inf"), 0
            for _ in range(max(1, args.repeat)):
                started = time.perf_counter()
                results = whisper.model.generate(encoded, [prompt] * batch, beam_size=1, max_length=length,
                                                 return_scores=True, return_no_speech_prob=True)
                best = min(best, time.perf_counter() - started)
                steps = max(len(r.sequences_ids[0]) for r in results)
            per_step = 1000 * best / max(1, steps)
            print(f"| {batch} | {length} | {steps} | {best:.2f} | {per_step:.1f} | {per_step / batch:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
