#!/usr/bin/env python
"""Lexicon-aware decoding (hotwords or an initial prompt from the lexicon's Farsi forms):
coded-term recall and false flags on radio lines, WER on real Persian speech, side by side.

Radio lines are the manifest transmissions of audio_samples/ and of a generated session
(scripts/make_session.py writes SESSION.wav and SESSION.wav.json).

    python scripts/make_session.py /tmp/session10.wav --minutes 10 --speech-fraction 0.13
    python scripts/bench_hotwords.py none,hotwords,prompt /tmp/session10.wav.json

The corpus path is ../shared/eval/fa_virgool beside the checkout, or $INTERCEPT_EVAL_CORPUS.
"""
import os
import sys, json, time
from pathlib import Path
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / "scripts"))
CORPUS = os.environ.get("INTERCEPT_EVAL_CORPUS", str(ROOT.parent / "shared" / "eval" / "fa_virgool"))
from intercept.audio import decode, clean_radio
from intercept.engines import TranscribeOptions
from intercept.engines.faster_whisper import FasterWhisperEngine
from intercept.evaluate import ErrorRateScorer, read_corpus
from intercept.lexicon import Lexicon, default_lexicon_path
from intercept.text import PersianNormalizer
from intercept.types import Transmission
from eval_wer import lexicon_hint

from intercept.models import embedded_model_dir
MODEL = str(embedded_model_dir())
norm = PersianNormalizer(); lex = Lexicon.load(default_lexicon_path(), normalizer=norm)
scorer = ErrorRateScorer(norm)
def concepts(text): return {f.concept for f in lex.match(norm.normalize(text))}

# radio lines: audio_samples + generated session, transmissions from the manifests (+-0.3 s)
radio = []
for man_path, folder in [(str(ROOT / "audio_samples" / "manifest.json"), str(ROOT / "audio_samples")),
                         (sys.argv[2], None)]:
    man = json.load(open(man_path))["recordings"]
    for name, info in man.items():
        path = f"{folder}/{name}" if folder else man_path[:-5]
        a = decode(path); s = clean_radio(a.samples)
        for t in info["transmissions"]:
            radio.append((s, Transmission(0, max(0, t["start"] - 0.3), min(a.duration, t["end"] + 0.3)), t["text_fa"]))
virgool = [(decode(str(i.path)).samples, i.transcript) for i in read_corpus(CORPUS)]
hint = lexicon_hint()
print("hint words:", len(hint.split()), flush=True)
for cond in sys.argv[1].split(","):
    o = TranscribeOptions(compute_type="float32", pack=False)
    if cond == "hotwords": o.hotwords = hint
    elif cond == "prompt": o.initial_prompt = hint
    e = FasterWhisperEngine(MODEL, "base", o)
    t0 = time.perf_counter()
    expected = found = plain_lines = plain_flagged = coded_lines = 0; pairs = []
    for s, tx, ref in radio:
        hyp = " ".join(l.text for l in e.transcribe(s, [tx]))
        want, got = concepts(ref), concepts(hyp)
        pairs.append((ref, hyp))
        if want:
            coded_lines += 1; expected += len(want); found += len(want & got)
        else:
            plain_lines += 1; plain_flagged += bool(got)
    radio_wer = scorer.score_corpus(pairs)
    vpairs, v_false = [], 0
    for s, ref in virgool:
        hyp = " ".join(l.text for l in e.transcribe(s, [Transmission(0, 0, len(s) / 16000)]))
        vpairs.append((ref, hyp)); v_false += bool(concepts(hyp) - concepts(ref))
    v = scorer.score_corpus(vpairs)
    print(json.dumps({"condition": cond, "coded_recall": f"{found}/{expected}", "coded_lines": coded_lines,
        "plain_radio_lines_flagged": f"{plain_flagged}/{plain_lines}", "radio_wer": round(radio_wer.wer, 3),
        "virgool_wer": round(v.wer, 3), "virgool_cer": round(v.cer, 3), "virgool_clips_with_false_flags": f"{v_false}/{len(virgool)}",
        "wall_s": round(time.perf_counter() - t0, 1)}, ensure_ascii=False), flush=True)
