#!/usr/bin/env python
"""Lexicon-aware decoding (hotwords or an initial prompt from the lexicon's Farsi forms):
coded-term recall and false flags on radio lines, WER on real Persian speech, side by side.

Radio lines are the manifest transmissions of audio_samples/ and of a generated session
(scripts/make_session.py writes SESSION.wav and SESSION.wav.json), each decoded alone (manifest
times +- 0.3 s) from the decoded audio, as the pipeline's recogniser hears it.

    python scripts/make_session.py /tmp/session10.wav --minutes 10 --speech-fraction 0.13
    python scripts/bench_hotwords.py none,hotwords,prompt /tmp/session10.wav.json

The corpus path is ../shared/eval/fa_virgool beside the checkout, or $INTERCEPT_EVAL_CORPUS.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
CORPUS = os.environ.get("INTERCEPT_EVAL_CORPUS", str(ROOT.parent / "shared" / "eval" / "fa_virgool"))
CONDITIONS = ("none", "hotwords", "prompt")


def radio_lines(session_manifest: Path) -> list[tuple]:
    """[(samples, Transmission, reference text)] from audio_samples/ and one generated session."""
    from intercept.audio import decode
    from intercept.types import Transmission

    found = []
    for manifest_path, folder in [(ROOT / "audio_samples" / "manifest.json", ROOT / "audio_samples"),
                                  (session_manifest, None)]:
        recordings = json.loads(manifest_path.read_text(encoding="utf-8"))["recordings"]
        for name, info in recordings.items():
            if info.get("speech", "espeak-ng") != "espeak-ng":
                continue  # the real-speech samples are fa_virgool clips, not radio traffic with coded lines
            path = folder / name if folder else Path(str(manifest_path)[: -len(".json")])
            audio = decode(str(path))
            for tx in info["transmissions"]:
                span = Transmission(0, max(0.0, tx["start"] - 0.3), min(audio.duration, tx["end"] + 0.3))
                found.append((audio.samples, span, tx["text_fa"]))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("conditions", help=f"comma-separated, from: {', '.join(CONDITIONS)}")
    parser.add_argument("session_manifest", type=Path, help="SESSION.wav.json from scripts/make_session.py")
    args = parser.parse_args()

    from eval_wer import lexicon_hint

    from intercept.audio import decode
    from intercept.engines import TranscribeOptions
    from intercept.engines.faster_whisper import FasterWhisperEngine
    from intercept.evaluate import ErrorRateScorer, read_corpus
    from intercept.lexicon import Lexicon, default_lexicon_path
    from intercept.models import embedded_model_dir
    from intercept.text import PersianNormalizer
    from intercept.types import Transmission

    normalizer = PersianNormalizer()
    lexicon = Lexicon.load(default_lexicon_path(), normalizer=normalizer)
    scorer = ErrorRateScorer(normalizer)

    def concepts(text: str) -> set[str]:
        return {flag.concept for flag in lexicon.match(normalizer.normalize(text))}

    radio = radio_lines(args.session_manifest)
    virgool = [(decode(str(item.path)).samples, item.transcript) for item in read_corpus(CORPUS)]
    hint = lexicon_hint()
    print(f"command: python scripts/bench_hotwords.py {args.conditions} {args.session_manifest}")
    print(f"hint words: {len(hint.split())}; radio lines: {len(radio)}; fa_virgool clips: {len(virgool)}", flush=True)
    for condition in args.conditions.split(","):
        if condition not in CONDITIONS:
            parser.error(f"unknown condition '{condition}'")
        options = TranscribeOptions(compute_type="float32", pack=False)
        if condition == "hotwords":
            options.hotwords = hint
        elif condition == "prompt":
            options.initial_prompt = hint
        engine = FasterWhisperEngine(str(embedded_model_dir()), "base", options)
        started = time.perf_counter()
        expected = found = plain_lines = plain_flagged = 0
        pairs = []
        for samples, tx, reference in radio:
            hypothesis = " ".join(line.text for line in engine.transcribe(samples, [tx]))
            want, got = concepts(reference), concepts(hypothesis)
            pairs.append((reference, hypothesis))
            if want:
                expected += len(want)
                found += len(want & got)
            else:
                plain_lines += 1
                plain_flagged += bool(got)
        virgool_pairs, virgool_false = [], 0
        for samples, reference in virgool:
            hypothesis = " ".join(line.text for line in engine.transcribe(samples, [Transmission(0, 0, len(samples) / 16000)]))
            virgool_pairs.append((reference, hypothesis))
            virgool_false += bool(concepts(hypothesis) - concepts(reference))
        virgool_errors = scorer.score_corpus(virgool_pairs)
        print(json.dumps({
            "condition": condition, "coded_recall": f"{found}/{expected}",
            "plain_radio_lines_flagged": f"{plain_flagged}/{plain_lines}",
            "radio_wer": round(scorer.score_corpus(pairs).wer, 3),
            "virgool_wer": round(virgool_errors.wer, 3), "virgool_cer": round(virgool_errors.cer, 3),
            "virgool_clips_with_false_flags": f"{virgool_false}/{len(virgool)}",
            "wall_s": round(time.perf_counter() - started, 1),
        }, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
