"""False flags at real prevalence: the shipped lexicon over all the development speech.

    nice -n 5 .venv/bin/python scripts/eval_prevalence.py transcribe --part calibration            # CPU heavy
    nice -n 5 .venv/bin/python scripts/eval_prevalence.py transcribe --part held-out --radio
    .venv/bin/python scripts/eval_prevalence.py calibrate   # confusion priors from the calibration part
    .venv/bin/python scripts/eval_prevalence.py fit         # the flag scorer, calibration part, real prevalence
    .venv/bin/python scripts/eval_prevalence.py report      # false flags / 10 min and recall, held-out part

Data: every clip of ../shared/eval/cv_fa and ../shared/eval/fa_virgool (no selection by length).
  calibration  cv_fa speakers spk001 and spk003 (1,766 clips; the split helper 24adapt trains its
               adapted model on). Priors, the scorer and every setting are chosen here only.
  held-out     the other 40 cv_fa speakers and fa_virgool. Reported, never fitted on.
Each clip is heard as recorded ("clean") and through the project's simulated radio channel
(scripts/make_samples.radio_transmission: band-pass, compression, hiss at 10-18 dB, a second of
squelched near-silence either side), and recognised by the product's engine the way the
pipeline recognises a folder of short recordings: pooled (packing.RecordingPool) and joined
into shared 30 s windows (packing.join_recordings), with the engine's default options. The
engine's lines (text, words, N-best) are cached once per (part, condition, model) as JSON
lines outside git (--cache, default /work/wt/_cache/28), so that calibrating, fitting and
reporting re-run in seconds.

Truth: a coded mention is a (clip, concept) whose concept the lexicon's own matcher (exact,
morph and pattern; no fuzzy) finds in the clip's normalised reference transcript. Everything
else the queue holds is a false flag on ordinary speech.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
CV = Path("/work/shared/eval/cv_fa")
VIRGOOL = Path("/work/shared/eval/fa_virgool")
CACHE = Path(os.environ.get("INTERCEPT_PREVALENCE_CACHE", "/work/wt/_cache/28"))
CALIBRATION_SPEAKERS = ("spk001", "spk003")
SEED = 28
PARTS = ("calibration", "held-out")


@dataclass
class Clip:
    source: str  # corpus/path, the clip's name in the caches
    part: str
    path: Path
    reference: str
    duration_s: float
    speaker: str


def _order(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def all_clips() -> list[Clip]:
    """Every development clip with its part, in a fixed hash order (so a partial cache is a
    fair sample of its part)."""
    speakers = {}
    with (CV / "clips_info.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            speakers[row["path"]] = row["speaker"]
    clips = []
    with (CV / "metadata.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            speaker = speakers[row["path"]]
            part = "calibration" if speaker in CALIBRATION_SPEAKERS else "held-out"
            clips.append(Clip("cv_fa/" + row["path"], part, CV / row["path"], row["transcript"],
                              float(row["duration_s"]), speaker))
    with (VIRGOOL / "metadata.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            clips.append(Clip("fa_virgool/" + row["path"], "held-out", VIRGOOL / row["path"], row["transcript"],
                              float(row["duration_s"]), "virgool"))
    clips.sort(key=lambda c: _order(c.source))
    return clips


# ---------------------------------------------------------------- recognition (cached)


def heard(clip: Clip, radio: bool):
    """(16 kHz samples, the transmission) of a clip as recorded or keyed through the radio
    channel; the channel's randomness is seeded by the clip's name, so the same clip always
    sounds the same (the acoustic check re-creates it)."""
    import numpy as np

    from intercept.audio import decode
    from intercept.types import Transmission

    if not radio:
        samples = decode(str(clip.path)).samples.astype(np.float32)
        return samples, Transmission(0, 0.0, round(samples.size / 16000, 3))
    from make_samples import WORK_RATE, Utterance, near_silence, radio_transmission
    from make_session import clip_speech

    rng = np.random.default_rng(int(_order(clip.source)[:8], 16) ^ SEED)
    audio, _offset, _length = radio_transmission(clip_speech(clip.path),
                                                 Utterance(clip.reference, "", snr_db=float(rng.uniform(10, 18))), rng)
    signal = np.concatenate([near_silence(rng, 1.0), audio, near_silence(rng, 1.0)]).astype(np.float32)
    return signal, Transmission(0, 1.0, round(1.0 + audio.size / WORK_RATE, 3))


def line_json(line) -> dict:
    words = getattr(line, "words", None)
    alternatives = getattr(line, "alternatives", None)
    return {"start": line.start, "end": line.end, "text": line.text, "avg_logprob": line.avg_logprob,
            "confidence": getattr(line, "confidence", None),
            "words": None if words is None else [[w.text, w.start, w.end, w.probability] for w in words],
            "alternatives": None if alternatives is None else [[h.text, h.avg_logprob, h.tokens]
                                                               for h in alternatives]}


def cache_path(folder: Path, part: str, radio: bool, model: str) -> Path:
    return folder / f"{part}.{'radio' if radio else 'clean'}.{model}.jsonl"


def read_cache(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def model_label(model: str) -> str:
    return "base" if model in ("base", "") else Path(model).name


def transcribe(clips: list[Clip], cache: Path, radio: bool, model: str, threads: int) -> None:
    """The clips through the product's engine, pooled as the pipeline pools short recordings;
    one JSON line per clip appended to `cache` (clips already there are skipped: an
    interrupted run resumes)."""
    from intercept.engines import TranscribeOptions, load_engine
    from intercept.models import resolve_model
    from intercept.packing import PackOptions, PoolOptions, RecordingPool, join_recordings, split_lines

    done = {row["source"] for row in read_cache(cache)}
    todo = [c for c in clips if c.source not in done]
    if not todo:
        return
    options = TranscribeOptions(cpu_threads=threads)
    path = str(resolve_model(model).path) if model == "base" else model
    engine = load_engine("faster-whisper", path, model_label(model), options)
    pool = RecordingPool(PoolOptions(), PackOptions(gap_s=options.pack_gap_s))
    cache.parent.mkdir(parents=True, exist_ok=True)
    began, count = time.time(), 0
    with cache.open("a", encoding="utf-8") as out:
        def recognise(group):
            nonlocal count
            joined = join_recordings([(samples, [tx]) for _, samples, tx in group], 16000)
            found = split_lines(joined, engine.transcribe(joined.samples, joined.transmissions, 16000), len(group))
            for (clip, _, _), lines in zip(group, found):
                out.write(json.dumps({"source": clip.source, "part": clip.part, "speaker": clip.speaker,
                                      "reference": clip.reference, "duration_s": clip.duration_s,
                                      "radio": radio, "model": model_label(model),
                                      "lines": [line_json(line) for line in lines]}, ensure_ascii=False) + "\n")
            out.flush()
            count += len(group)
            print(f"{count}/{len(todo)} clips, {time.time() - began:.0f} s", file=sys.stderr, flush=True)

        for clip in todo:
            samples, tx = heard(clip, radio)
            for group in pool.add((clip, samples, tx), [tx]):
                recognise(group)
        for group in pool.drain():
            recognise(group)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("transcribe", "list"))
    parser.add_argument("--cache", type=Path, default=CACHE, help="folder of the recogniser-output caches")
    parser.add_argument("--part", choices=PARTS + ("both",), default="both")
    parser.add_argument("--radio", action="store_true", help="transcribe: through the simulated radio channel")
    parser.add_argument("--model", default="base", help="transcribe: 'base' (embedded) or a CTranslate2 folder")
    parser.add_argument("--threads", type=int, default=2, help="transcribe: CPU threads of the engine")
    parser.add_argument("--limit", type=int, default=0, help="transcribe: at most this many clips per part (0: all)")
    args = parser.parse_args(argv)
    clips = all_clips()
    parts = PARTS if args.part == "both" else (args.part,)
    if args.action == "list":
        for part in PARTS:
            own = [c for c in clips if c.part == part]
            print(f"{part}: {len(own)} clips, {sum(c.duration_s for c in own) / 60:.1f} min, "
                  f"{len({c.speaker for c in own})} speakers")
        return 0
    for part in parts:
        own = [c for c in clips if c.part == part]
        if args.limit:
            own = own[: args.limit]
        transcribe(own, cache_path(args.cache, part, args.radio, args.model), args.radio, args.model, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
