#!/usr/bin/env python3
"""How well intercept.voices groups transmissions by speaker, and what the embedding costs.

    OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python scripts/bench_voices.py [--per-speaker 15] [--seed 1]
        [--skip-timing] [--skip-quality] [--cache /tmp/voices.pkl]

Quality: real Persian speech with known speakers (../shared/eval/cv_fa, clips_info.tsv gives a
speaker per clip). Speakers with at least 3 clips take part, each with up to --per-speaker clips
(speakers are unbalanced: two have hundreds). The speakers are split in two halves by a seeded
shuffle: the threshold is chosen on the dev half (best mean adjusted Rand index over both
conditions) and the ARI is reported on the held-out half, never seen while choosing. Each clip is
one transmission, embedded
  as recorded   the Common Voice mp3 decoded to 16 kHz;
  radio         through scripts/make_samples.py's radio channel (band-pass 300-3400 Hz,
                compression and clipping, keyed hiss at 18 dB SNR, key clicks, squelch tail).
Grouping is intercept.voices.group, as `intercept voices` runs it, measured both in one go (every
clip at once) and in two runs (half of each speaker's clips first, then the rest placed against
the first run's voices, as when new recordings arrive). The Standardizer's background is made
from the dev speakers only (--write-background writes it to intercept/voice_background.json).
Clips the embedder skips (< 1 s, or < 0.5 s of speech) get no voice and are left out of the ARI;
their number is printed.

Cost: a plain `intercept run` over audio_samples/ (embedded Whisper base) against the time the
voice embedding of the same transmissions takes, side by side in one process.
"""
from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

CV_DIR = ROOT.parent / "shared" / "eval" / "cv_fa"
THRESHOLDS = [round(0.10 + 0.05 * i, 3) for i in range(11)]  # 0.10 .. 0.60, standardised cosine
THRESHOLDS_RAW = [round(0.60 + 0.025 * i, 3) for i in range(9)]  # 0.60 .. 0.80, raw cosine


def load_speakers(cv_dir: Path, per_speaker: int, seed: int) -> dict[str, list[Path]]:
    by_speaker: dict[str, list[Path]] = defaultdict(list)
    with open(cv_dir / "clips_info.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            by_speaker[row["speaker"]].append(cv_dir / row["path"])
    rng = random.Random(seed)
    chosen = {}
    for speaker, clips in sorted(by_speaker.items()):
        if len(clips) >= 3:
            chosen[speaker] = sorted(rng.sample(clips, min(per_speaker, len(clips))))
    return chosen


def through_radio(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import make_samples

    audio, _, _ = make_samples.radio_transmission(speech.astype(np.float64), make_samples.Utterance("", ""), rng)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def ari(truth: list[str], labels: list[int]) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(truth, labels))


def labels_raw(vectors, threshold) -> list[int]:
    from intercept.voices import cluster

    return cluster(np.stack(vectors), threshold)


def labels_of(placement, count: int, first_label: int = 0) -> list[int]:
    labels = [-1] * count
    for label, members in enumerate(placement.new_groups, start=first_label):
        for i in members:
            labels[i] = label
    for i, voice in placement.joined.items():
        labels[i] = voice
    return labels


def one_go(vectors, truth, threshold, background) -> float:
    """Every clip in one run: intercept.voices.group over a store holding just these clips."""
    from intercept.voices import group

    placement = group(np.stack(vectors), [None] * len(vectors), [], threshold, background)
    return ari(truth, labels_of(placement, len(vectors)))


def two_runs(vectors, truth, nth, threshold, background) -> float:
    """Half of each speaker's clips in a first run, the rest in a second run of the same store."""
    from intercept.voices import group

    first = [i for i in range(len(vectors)) if nth[i] % 2 == 0]
    placed = labels_of(group(np.stack([vectors[i] for i in first]), [None] * len(first), [], threshold, background),
                       len(first))
    voice_of = [None] * len(vectors)
    for i, label in zip(first, placed):
        voice_of[i] = label
    second = group(np.stack(vectors), voice_of, set(placed), threshold, background)
    labels = labels_of(second, len(vectors), first_label=max(placed) + 1)
    for i, label in enumerate(voice_of):
        if label is not None:
            labels[i] = label
    return ari(truth, labels)


def embed_all(speakers, embedder, seed, cache: dict):
    """{condition: {vectors, truth, nth (index within speaker), skipped}} for every clip.
    `cache` keeps each clip's VoicePrints (a re-run with --cache skips the embedding)."""
    from intercept.audio import decode

    rng = np.random.default_rng(seed)
    found = {c: {"vectors": [], "truth": [], "nth": [], "skipped": 0} for c in ("as recorded", "radio")}
    seconds = 0.0
    done = 0
    for speaker, clips in speakers.items():
        for nth, clip in enumerate(clips):
            if clip.name not in cache:
                samples = decode(str(clip)).samples
                radio = through_radio(samples, rng)
                cache[clip.name] = (samples.size / 16000, {"as recorded": embedder.embed(samples, 16000),
                                                           "radio": embedder.embed(radio, 16000)})
            duration, prints = cache[clip.name]
            seconds += duration
            done += 1
            if done % 25 == 0:
                print(f"  ... {done} clips", file=sys.stderr, flush=True)
            for condition, vp in prints.items():
                bucket = found[condition]
                if vp.vector is None:
                    bucket["skipped"] += 1
                    continue
                bucket["vectors"].append(vp.vector)
                bucket["truth"].append(speaker)
                bucket["nth"].append(nth)
    return found, seconds


def quality(args, embedder) -> None:
    speakers = load_speakers(args.cv_dir, args.per_speaker, args.seed)
    names = sorted(speakers)
    random.Random(args.seed).shuffle(names)
    dev = {s: speakers[s] for s in names[: len(names) // 2]}
    held = {s: speakers[s] for s in names[len(names) // 2:]}
    import pickle

    cache = {}
    if args.cache and args.cache.exists():
        cache = pickle.loads(args.cache.read_bytes())
    started = time.perf_counter()
    dev_found, dev_s = embed_all(dev, embedder, args.seed, cache)
    held_found, held_s = embed_all(held, embedder, args.seed + 1, cache)
    took = time.perf_counter() - started
    if args.cache:
        args.cache.write_bytes(pickle.dumps(cache))
    print(f"cv_fa: {len(speakers)} speakers with >= 3 clips, up to {args.per_speaker} clips each; "
          f"dev {len(dev)} speakers / {sum(map(len, dev.values()))} clips, held-out {len(held)} speakers / "
          f"{sum(map(len, held.values()))} clips; {dev_s + held_s:.0f} s of speech embedded twice in {took:.0f} s")
    for condition in dev_found:
        print(f"  skipped (no voice) {condition}: dev {dev_found[condition]['skipped']}, "
              f"held-out {held_found[condition]['skipped']}")
    # The background (per-dimension mean and spread, intercept.voices.Standardizer) comes from
    # the dev speakers only, both conditions pooled.
    pooled = np.stack(dev_found["as recorded"]["vectors"] + dev_found["radio"]["vectors"]).astype(np.float64)
    background = (pooled.mean(axis=0), pooled.std(axis=0))
    if args.write_background:
        import json

        from intercept.voices import BACKGROUND_PATH

        BACKGROUND_PATH.write_text(json.dumps({
            "model_version": embedder.version,
            "made_by": "scripts/bench_voices.py --write-background (dev speakers of cv_fa, as recorded and radio)",
            "speakers": len(dev), "embeddings": len(pooled),
            "mean": [round(float(x), 6) for x in background[0]], "std": [round(float(x), 6) for x in background[1]],
        }, indent=None) + "\n", encoding="utf-8")
        print(f"wrote {BACKGROUND_PATH}")
    print("\ndev ARI by threshold (one go):")
    print("threshold  " + "  ".join(f"{c:>12}" for c in dev_found) + "  mean")
    best = None
    for threshold in THRESHOLDS:
        scores = [one_go(b["vectors"], b["truth"], threshold, background) for b in dev_found.values()]
        mean = sum(scores) / len(scores)
        print(f"{threshold:9.3f}  " + "  ".join(f"{s:12.3f}" for s in scores) + f"  {mean:.3f}")
        if best is None or mean > best[1]:
            best = (threshold, mean)
    threshold = best[0]
    print(f"\nchosen threshold (best dev mean): {threshold}")
    print("\nheld-out speakers at the chosen threshold:")
    print(f"{'condition':12}  {'one go':>7}  {'two runs':>8}  {'clips':>5}  {'speakers':>8}")
    for condition, bucket in held_found.items():
        print(f"{condition:12}  {one_go(bucket['vectors'], bucket['truth'], threshold, background):7.3f}  "
              f"{two_runs(bucket['vectors'], bucket['truth'], bucket['nth'], threshold, background):8.3f}  "
              f"{len(bucket['vectors']):5d}  {len(set(bucket['truth'])):8d}")
    from intercept.voices import DEFAULT_THRESHOLD

    print(f"\nheld-out at intercept.voices.DEFAULT_THRESHOLD = {DEFAULT_THRESHOLD}: " + ", ".join(
        f"{c} {one_go(b['vectors'], b['truth'], DEFAULT_THRESHOLD, background):.3f}" for c, b in held_found.items()))
    print("held-out, raw cosine without the Standardizer (background weight 0, store statistics 0): " + ", ".join(
        f"{c} best {max(ari(b['truth'], labels_raw(b['vectors'], t)) for t in THRESHOLDS_RAW):.3f}"
        for c, b in held_found.items()) + " (best threshold chosen on held-out itself: an upper bound)")


def cost(embedder) -> None:
    from intercept.audio import decode
    from intercept.config import RunOptions
    from intercept.pipeline import run_batch
    from intercept.store import Store

    samples_dir = ROOT / "audio_samples"
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        started = time.perf_counter()
        summary = run_batch([samples_dir], db, RunOptions(), progress=False)
        run_s = time.perf_counter() - started
        with Store(db) as store:
            recordings = store.rows("SELECT id, path FROM recordings WHERE status = 'done'")
            spans = {r["path"]: store.rows("SELECT start_s, end_s FROM transmissions WHERE recording_id = ?",
                                           [r["id"]]) for r in recordings}
    audio = {path: decode(path).samples for path in spans}  # the run has the samples already
    first = next(iter(spans))
    started = time.perf_counter()
    # The first embedding of a process pays one-off costs (librosa's numba compilation, torch
    # start-up): timed apart, since a batch pays them once.
    embedder.embed(audio[first][: 3 * 16000], 16000)
    warm_up_s = time.perf_counter() - started
    started = time.perf_counter()
    count = 0
    for path, transmissions in spans.items():
        for t in transmissions:
            embedder.embed(audio[path][int(t["start_s"] * 16000): int(t["end_s"] * 16000)], 16000)
            count += 1
    embed_s = time.perf_counter() - started
    print(f"\ncost on audio_samples/ ({summary.audio_s:.0f} s of audio, {count} transmissions):")
    print(f"  intercept run (Whisper base, no voices): {run_s:.1f} s")
    print(f"  voice embedding of the same transmissions: {embed_s:.2f} s = {100 * embed_s / run_s:.1f}% of the run")
    print(f"  once per process before the first embedding (warm-up): {warm_up_s:.2f} s; with it "
          f"{100 * (embed_s + warm_up_s) / run_s:.1f}% of this run")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cv-dir", type=Path, default=CV_DIR)
    parser.add_argument("--per-speaker", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--write-background", action="store_true",
                        help="write intercept/voice_background.json from the dev speakers")
    parser.add_argument("--cache", type=Path, help="pickle of the clips' embeddings, read and written "
                        "(to try other thresholds without embedding again)")
    args = parser.parse_args()
    from intercept.voices import VoiceEmbedder

    started = time.perf_counter()
    embedder = VoiceEmbedder()
    print(f"{embedder.model} ({embedder.version}) loaded in {time.perf_counter() - started:.1f} s")
    if not args.skip_quality:
        quality(args, embedder)
    if not args.skip_timing:
        cost(embedder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
