#!/usr/bin/env python3
"""How well intercept.voices groups transmissions by speaker, and what the embedding costs.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python scripts/bench_voices.py [--per-speaker 15] [--seed 1]
        [--radio-draws 3] [--variant NAME ...] [--dev-only] [--also-tried] [--write-background]
        [--skip-timing] [--skip-quality] [--cache /tmp/voices.pkl]

Quality: real Persian speech with known speakers (../shared/eval/cv_fa, clips_info.tsv gives a
speaker per clip). Speakers with at least 3 clips take part, each with up to --per-speaker clips
(speakers are unbalanced: two have hundreds). The speakers are split in two halves by a seeded
shuffle. On the dev half, every variant in VARIANTS (a front end before the encoder, and how the
partial embeddings become one) is measured at each threshold; the variant and threshold with the
best mean adjusted Rand index over both conditions are chosen, and only they are measured on the
held-out half. Each clip is one transmission, embedded
  as recorded   the Common Voice mp3 decoded to 16 kHz;
  radio         through scripts/make_samples.py's radio channel (band-pass 300-3400 Hz,
                compression and clipping, keyed hiss at 18 dB SNR, key clicks, squelch tail),
                --radio-draws times with different randomness; the radio ARI is their mean.
Grouping is intercept.voices.group, as `intercept voices` runs it, measured both in one go (every
clip at once) and in two runs (half of each speaker's clips first, then the rest placed against
the first run's voices, as when new recordings arrive). The Standardizer's background is made
from the dev speakers only (--write-background writes the chosen variant's to
intercept/voice_background.json). --also-tried adds, on dev, other ways of placing a second
run's transmissions and a cross-validated learned projection, neither shipped. Clips the embedder
skips (< 1 s, or < 0.5 s of speech) get no voice and are left out of the ARI.

Cost: a plain `intercept run` over audio_samples/ (embedded Whisper base) against the time the
voice embedding (intercept.voices' front end included) of the same transmissions takes, side by
side in one process.
"""
from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

CV_DIR = ROOT.parent / "shared" / "eval" / "cv_fa"
THRESHOLDS = [round(0.10 + 0.05 * i, 3) for i in range(11)]  # 0.10 .. 0.60, standardised cosine


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


# ---- also tried on dev, not shipped (--also-tried): other ways of placing a second run's
# transmissions than intercept.voices.place (each joins the voice whose centroid is most
# similar, when >= threshold; the rest are clustered among themselves), and a learned projection.

def _labels(first: dict, placed: dict) -> list[int]:
    named: dict = {}
    merged = {**first, **placed}
    return [named.setdefault(merged[i], len(named)) for i in range(len(merged))]


def extend_by_members(moved, first: dict, new: list, threshold) -> dict:
    """Join the voice with the highest mean similarity to its members (average linkage)."""
    from intercept.voices import cluster

    voices = sorted(set(first.values()))
    means = np.stack([moved[[i for i, v in first.items() if v == voice]].mean(axis=0) for voice in voices])
    placed, left = {}, []
    for i in new:
        similarity = means @ moved[i]
        best = int(np.argmax(similarity))
        if similarity[best] >= threshold:
            placed[i] = voices[best]
        else:
            left.append(i)
    placed.update({i: ("new", label) for i, label in zip(left, cluster(moved[left], threshold) if left else [])})
    return placed


def extend_by_groups(moved, first: dict, new: list, threshold) -> dict:
    """Cluster the new transmissions first; a group joins the voice it is closest to on
    average (average linkage between group and voice) when >= threshold."""
    from intercept.voices import cluster

    voices = sorted(set(first.values()))
    means = np.stack([moved[[i for i, v in first.items() if v == voice]].mean(axis=0) for voice in voices])
    labels = cluster(moved[new], threshold)
    placed = {}
    for label in set(labels):
        members = [i for i, found in zip(new, labels) if found == label]
        similarity = means @ moved[members].mean(axis=0)
        best = int(np.argmax(similarity))
        placed.update({i: voices[best] if similarity[best] >= threshold else ("new", label) for i in members})
    return placed


def extend_by_reclustering(moved, first: dict, new: list, threshold) -> dict:
    """Cluster old and new together; a new transmission in a cluster holding old voices joins
    the one of them it is closest to on average; the others form new voices."""
    from intercept.voices import cluster

    everyone = sorted(first) + list(new)
    label_of = dict(zip(everyone, cluster(moved[everyone], threshold)))
    placed = {}
    for i in new:
        old = sorted({first[j] for j in first if label_of[j] == label_of[i]})
        placed[i] = max(old, key=lambda voice: float((moved[[j for j, v in first.items() if v == voice]] @ moved[i]).mean())) \
            if old else ("new", label_of[i])
    return placed


def two_runs_extended(bucket, threshold, background, extend) -> float:
    from intercept.voices import Standardizer, cluster

    vectors, nth = np.stack(bucket["vectors"]), bucket["nth"]
    first = [i for i in range(len(vectors)) if nth[i] % 2 == 0]
    first_labels = dict(zip(first, cluster(Standardizer(vectors[first], background)(vectors[first]), threshold)))
    moved = Standardizer(vectors, background)(vectors)
    placed = extend(moved, first_labels, [i for i in range(len(vectors)) if nth[i] % 2 == 1], threshold)
    return ari(bucket["truth"], _labels(first_labels, placed))


def nuisance_projection_cv(found, thresholds, ks=(0, 4, 8, 16, 32), folds=3, seed=7):
    """Nuisance attribute projection: take out of the standardised space the k directions in
    which one speaker's transmissions through the radio vary most, learned on half of the dev
    speakers and measured (one go) on the other half, both ways, `folds` seeded splits.
    Returns {k: (threshold, as recorded, radio)} at each k's best mean."""
    from intercept.voices import Standardizer, _normalised, cluster

    speakers = sorted(set(found["as recorded"]["truth"]))
    radio = [c for c in found if c.startswith("radio")]
    rng = random.Random(seed)
    splits = []
    for _ in range(folds):
        shuffled = speakers[:]
        rng.shuffle(shuffled)
        half = len(shuffled) // 2
        splits += [(set(shuffled[:half]), set(shuffled[half:])), (set(shuffled[half:]), set(shuffled[:half]))]

    def part(condition, keep):
        bucket = found[condition]
        rows = [i for i, s in enumerate(bucket["truth"]) if s in keep]
        return np.stack([bucket["vectors"][i] for i in rows]), [bucket["truth"][i] for i in rows]

    out = {}
    for k in ks:
        sums = {t: np.zeros(2) for t in thresholds}
        for train, test in splits:
            pooled = np.concatenate([part("as recorded", train)[0], part("radio 0", train)[0]]).astype(np.float64)
            background = (pooled.mean(axis=0), pooled.std(axis=0))
            basis = None
            if k:
                fixed = Standardizer(np.zeros((0, 256)), background)
                scatter = []
                for condition in radio:
                    vectors, truth = part(condition, train)
                    moved = fixed(vectors)
                    for speaker in train:
                        mine = moved[[i for i, s in enumerate(truth) if s == speaker]]
                        scatter.append(mine - mine.mean(axis=0))
                basis = np.linalg.svd(np.concatenate(scatter), full_matrices=False)[2][:k]
            for t in thresholds:
                scores = []
                for condition in ["as recorded"] + radio:
                    vectors, truth = part(condition, test)
                    moved = Standardizer(vectors, background)(vectors)
                    if basis is not None:
                        moved = _normalised(moved - (moved @ basis.T) @ basis)
                    scores.append(ari(truth, cluster(moved, t)))
                sums[t] += [scores[0], float(np.mean(scores[1:]))]
        best = max(thresholds, key=lambda t: sums[t].sum())
        out[k] = (best, *(sums[best] / len(splits)))
    return out


def also_tried(found, threshold, background) -> None:
    print(f"\nalso tried on dev (chosen variant): placing a second run's transmissions, threshold {threshold}")
    for name, extend in (("centroid (intercept.voices.place, shipped)", None), ("mean similarity to members", extend_by_members),
                         ("cluster the new ones, then join groups", extend_by_groups),
                         ("re-cluster old and new together", extend_by_reclustering)):
        measure = two_runs_of if extend is None else (lambda b, t, bg: two_runs_extended(b, t, bg, extend))
        recorded, radio, spread = scores(found, measure, threshold, background)
        print(f"  {name:45} two runs: as recorded {recorded:.3f}, radio {radio:.3f} +-{spread:.3f}, "
              f"mean {(recorded + radio) / 2:.3f}", flush=True)
    print("nuisance attribute projection, 2-fold cross-validation inside dev (3 seeded splits), one go, "
          "each k at its best threshold:")
    for k, (t, recorded, radio) in nuisance_projection_cv(found, THRESHOLDS[1:9]).items():
        print(f"  k {k:2d}  threshold {t:.2f}  as recorded {recorded:.3f}  radio {radio:.3f}  mean {(recorded + radio) / 2:.3f}",
              flush=True)


def narrowband(wav: np.ndarray) -> np.ndarray:
    """The radio voice band, as make_samples.radio_transmission filters it (300-3400 Hz)."""
    from scipy.signal import butter, sosfilt

    sos = butter(4, [300.0, 3400.0], btype="bandpass", fs=16000, output="sos")
    return sosfilt(sos, np.asarray(wav, dtype=np.float64)).astype(np.float32)


def gate(strength: float, floor: float):
    from intercept.voices import hiss_gate

    return lambda wav: hiss_gate(wav, strength, floor)


def front_ends() -> dict:
    """Front ends tried before the encoder: cache key -> (name in the embeddings' version, function)."""
    from intercept.voices import FRONT_END, hiss_gate

    return {
        "wideband": ("none", None),
        "narrowband": ("narrowband 300-3400 Hz", narrowband),
        "gate": ("hiss gate 0.5/0.3", gate(0.5, 0.3)),
        "gate-strong": ("hiss gate 1.0/0.1", gate(1.0, 0.1)),
        "gate-03": (FRONT_END, hiss_gate),  # shipped: intercept.voices.FRONT_END
        "gate-0": ("hiss gate 1.0/0.0", gate(1.0, 0.0)),
    }


# What is tried on the dev speakers: (front end, how a transmission's partial embeddings become
# one). Shipped: intercept.voices.FRONT_END (hiss gate, strength 1.0, floor 0.03) with the mean.
VARIANTS = {
    "wideband, mean of partials (before)": ("wideband", "mean"),
    "narrowband 300-3400 Hz, mean of partials": ("narrowband", "mean"),
    "wideband, median of partials": ("wideband", "median"),
    "narrowband 300-3400 Hz, median of partials": ("narrowband", "median"),
    "hiss gate (strength 0.5, floor 0.3), mean": ("gate", "mean"),
    "hiss gate (strength 1.0, floor 0.1), mean": ("gate-strong", "mean"),
    "hiss gate (strength 1.0, floor 0.1), median": ("gate-strong", "median"),
    "hiss gate (strength 1.0, floor 0.03), mean": ("gate-03", "mean"),
    "hiss gate (strength 1.0, floor 0), mean": ("gate-0", "mean"),
}


def aggregate(partials: np.ndarray, how: str) -> np.ndarray:
    from intercept.voices import _normalised, centroid

    return centroid(partials) if how == "mean" else _normalised(np.median(partials, axis=0))


def embed_all(speakers, embedders, seed, draws, cache: dict):
    """Each clip's partial embeddings, per front end, as recorded and through `draws` radio
    channels (each draw seeded by (seed, draw, clip) so every front end hears the same radio
    audio). Returns ({front end: [(speaker, nth, {condition: partials or None})]}, seconds).
    `cache` is keyed by (front end, clip name, condition): a re-run with --cache embeds nothing."""
    from intercept.audio import decode

    conditions = ["as recorded"] + [f"radio {d}" for d in range(draws)]
    found = {front_end: [] for front_end in embedders}
    seconds = 0.0
    for done, (speaker, nth, clip) in enumerate(
            [(speaker, nth, clip) for speaker, clips in speakers.items() for nth, clip in enumerate(clips)], 1):
        missing = [(f, c) for f in embedders for c in conditions if (f, clip.name, c) not in cache]
        samples = decode(str(clip)).samples if missing else None
        if samples is not None:
            cache[("duration", clip.name)] = samples.size / 16000
        heard = {}
        for front_end, condition in missing:
            if condition not in heard:
                draw = None if condition == "as recorded" else int(condition.split()[1])
                heard[condition] = samples if draw is None else through_radio(
                    samples, np.random.default_rng([seed, draw, zlib.crc32(clip.name.encode())]))
            status, _, partials = embedders[front_end].partials(heard[condition], 16000)
            cache[(front_end, clip.name, condition)] = partials
        seconds += cache[("duration", clip.name)]
        if done % 25 == 0:
            print(f"  ... {done} clips", file=sys.stderr, flush=True)
        for front_end in embedders:
            found[front_end].append((speaker, nth, {c: cache[(front_end, clip.name, c)] for c in conditions}))
    return found, seconds


def buckets(rows, how: str) -> dict:
    """{condition: {vectors, truth, nth, skipped}} from embed_all's rows for one front end."""
    out = {}
    for speaker, nth, by_condition in rows:
        for condition, partials in by_condition.items():
            bucket = out.setdefault(condition, {"vectors": [], "truth": [], "nth": [], "skipped": 0})
            if partials is None:
                bucket["skipped"] += 1
                continue
            bucket["vectors"].append(aggregate(partials, how))
            bucket["truth"].append(speaker)
            bucket["nth"].append(nth)
    return out


def background_of(found: dict) -> tuple[np.ndarray, np.ndarray]:
    """intercept.voices.Standardizer's background: per-dimension mean and spread of the dev
    speakers' embeddings, as recorded and through the first radio draw, pooled."""
    pooled = np.stack(found["as recorded"]["vectors"] + found["radio 0"]["vectors"]).astype(np.float64)
    return pooled.mean(axis=0), pooled.std(axis=0)


def scores(found: dict, measure, *args) -> tuple[float, float, float]:
    """(as recorded, radio = mean over the draws, spread of radio over the draws) of measure()."""
    recorded = measure(found["as recorded"], *args)
    radio = [measure(b, *args) for c, b in found.items() if c.startswith("radio")]
    return recorded, float(np.mean(radio)), float(np.std(radio))


def one_go_of(bucket, threshold, background) -> float:
    return one_go(bucket["vectors"], bucket["truth"], threshold, background)


def two_runs_of(bucket, threshold, background) -> float:
    return two_runs(bucket["vectors"], bucket["truth"], bucket["nth"], threshold, background)


def quality(args) -> None:
    import pickle

    from intercept.voices import VoiceEmbedder

    speakers = load_speakers(args.cv_dir, args.per_speaker, args.seed)
    names = sorted(speakers)
    random.Random(args.seed).shuffle(names)
    dev = {s: speakers[s] for s in names[: len(names) // 2]}
    held = {s: speakers[s] for s in names[len(names) // 2:]}
    cache = {}
    if args.cache and args.cache.exists():
        cache = pickle.loads(args.cache.read_bytes())
    variants = {name: VARIANTS[name] for name in (args.variants or VARIANTS)}
    embedders = {f: VoiceEmbedder(front_end=front_ends()[f]) for f in sorted({f for f, _ in variants.values()})}
    started = time.perf_counter()
    dev_rows, dev_s = embed_all(dev, embedders, args.seed, args.radio_draws, cache)
    took = time.perf_counter() - started
    if args.cache:
        args.cache.write_bytes(pickle.dumps(cache))
    print(f"cv_fa: {len(speakers)} speakers with >= 3 clips, up to {args.per_speaker} clips each; "
          f"dev {len(dev)} speakers / {sum(map(len, dev.values()))} clips, held-out {len(held)} speakers / "
          f"{sum(map(len, held.values()))} clips; radio: {args.radio_draws} draws of the channel per clip; "
          f"dev: {dev_s:.0f} s of speech, embedding took {took:.0f} s")
    print("\ndev ARI (one go) by variant, each at its best threshold (best mean of as recorded and radio; "
          "radio is the mean over the draws, +- their spread):")
    print(f"{'variant':48}  {'threshold':>9}  {'as recorded':>11}  {'radio':>13}  {'mean':>5}  {'two runs':>15}")
    chosen = None
    for name, (front_end, how) in variants.items():
        found = buckets(dev_rows[front_end], how)
        background = background_of(found)
        best = None
        for threshold in THRESHOLDS:
            recorded, radio, spread = scores(found, one_go_of, threshold, background)
            if best is None or (recorded + radio) / 2 > best[1]:
                best = (threshold, (recorded + radio) / 2, recorded, radio, spread)
        threshold, mean, recorded, radio, spread = best
        two_recorded, two_radio, _ = scores(found, two_runs_of, threshold, background)
        skipped = sum(b["skipped"] for b in found.values())
        print(f"{name:48}  {threshold:9.2f}  {recorded:11.3f}  {radio:7.3f} +-{spread:.3f}  {mean:5.3f}  "
              f"{two_recorded:.3f} / {two_radio:.3f}" + (f"  ({skipped} skipped)" if skipped else ""), flush=True)
        if chosen is None or mean > chosen[1]:
            chosen = (name, mean, threshold, background)
    name, _, threshold, background = chosen
    front_end, how = variants[name]
    found = buckets(dev_rows[front_end], how)
    from intercept.voices import DEFAULT_THRESHOLD, FRONT_END

    shipped = embedders[front_end].version.endswith(f"front end {FRONT_END}") and threshold == DEFAULT_THRESHOLD
    print(f"\nchosen on dev: {name}, threshold {threshold}" + (
        " (as shipped)" if shipped else f" (NOT what intercept.voices ships: {FRONT_END}, {DEFAULT_THRESHOLD})"))
    print("dev ARI of the chosen variant by threshold (one go):")
    print("threshold  as recorded  radio  mean")
    for t in THRESHOLDS:
        recorded, radio, _ = scores(found, one_go_of, t, background)
        print(f"{t:9.2f}  {recorded:11.3f}  {radio:5.3f}  {(recorded + radio) / 2:.3f}")
    if args.write_background:
        import json

        from intercept.voices import BACKGROUND_PATH

        BACKGROUND_PATH.write_text(json.dumps({
            "model_version": embedders[front_end].version,
            "made_by": "scripts/bench_voices.py --write-background (dev speakers of cv_fa, as recorded and radio)",
            "speakers": len(dev), "embeddings": len(found["as recorded"]["vectors"]) + len(found["radio 0"]["vectors"]),
            "mean": [round(float(x), 6) for x in background[0]], "std": [round(float(x), 6) for x in background[1]],
        }, indent=None) + "\n", encoding="utf-8")
        print(f"wrote {BACKGROUND_PATH}")
    if args.also_tried:
        also_tried(found, threshold, background)
    if args.dev_only:
        return
    held_rows, _ = embed_all(held, {front_end: embedders[front_end]}, args.seed + 1, args.radio_draws, cache)
    if args.cache:
        args.cache.write_bytes(pickle.dumps(cache))
    held_found = buckets(held_rows[front_end], how)
    print(f"\nheld-out speakers, {name}, threshold {threshold} (background from dev):")
    print(f"{'condition':12}  {'one go':>7}  {'two runs':>8}  {'clips':>5}  {'speakers':>8}")
    for condition, bucket in held_found.items():
        print(f"{condition:12}  {one_go_of(bucket, threshold, background):7.3f}  "
              f"{two_runs_of(bucket, threshold, background):8.3f}  {len(bucket['vectors']):5d}  "
              f"{len(set(bucket['truth'])):8d}")
    recorded, radio, spread = scores(held_found, one_go_of, threshold, background)
    two_recorded, two_radio, two_spread = scores(held_found, two_runs_of, threshold, background)
    print(f"held-out summary: one go as recorded {recorded:.3f}, radio {radio:.3f} +-{spread:.3f}; "
          f"two runs as recorded {two_recorded:.3f}, radio {two_radio:.3f} +-{two_spread:.3f}")


def cost(embedder) -> None:
    from intercept.audio import decode
    from intercept.config import RunOptions
    from intercept.pipeline import run_batch
    from intercept.store import CREATE, Store

    samples_dir = ROOT / "audio_samples"
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        started = time.perf_counter()
        summary = run_batch([samples_dir], db, RunOptions(), progress=False)
        run_s = time.perf_counter() - started
        with Store(db, CREATE) as store:
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
    pieces = [audio[path][int(t["start_s"] * 16000): int(t["end_s"] * 16000)]
              for path, transmissions in spans.items() for t in transmissions]

    def embed_all_pieces() -> float:
        started = time.perf_counter()
        for piece in pieces:
            embedder.embed(piece, 16000)
        return time.perf_counter() - started

    import torch

    import intercept.voices as voices

    embed_s = embed_all_pieces()
    shipped, voices.ENCODER_THREADS = voices.ENCODER_THREADS, torch.get_num_threads()
    all_threads_s = embed_all_pieces()  # what the encoder cost before it was held to one thread
    voices.ENCODER_THREADS = shipped
    print(f"\ncost on audio_samples/ ({summary.audio_s:.0f} s of audio, {len(pieces)} transmissions):")
    print(f"  intercept run (Whisper base, no voices): {run_s:.1f} s")
    print(f"  voice embedding of the same transmissions: {embed_s:.2f} s = {100 * embed_s / run_s:.1f}% of the run "
          f"(hiss gate included; the encoder on {shipped} torch thread)")
    print(f"  the same on torch's {torch.get_num_threads()} threads: {all_threads_s:.2f} s = "
          f"{100 * all_threads_s / run_s:.1f}%")
    print(f"  once per process before the first embedding (warm-up): {warm_up_s:.2f} s; with it "
          f"{100 * (embed_s + warm_up_s) / run_s:.1f}% of this run")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cv-dir", type=Path, default=CV_DIR)
    parser.add_argument("--per-speaker", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--radio-draws", type=int, default=3,
                        help="radio channels per clip (the radio ARI is their mean)")
    parser.add_argument("--variant", dest="variants", action="append", choices=sorted(VARIANTS),
                        help="try only this variant (repeatable; default: all)")
    parser.add_argument("--also-tried", action="store_true",
                        help="on dev: other ways of extending a grouping, and a learned projection")
    parser.add_argument("--dev-only", action="store_true", help="choose on dev, do not embed or report held-out")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--write-background", action="store_true",
                        help="write intercept/voice_background.json from the dev speakers (chosen variant)")
    parser.add_argument("--cache", type=Path, help="pickle of the clips' embeddings, read and written "
                        "(to try other thresholds without embedding again)")
    args = parser.parse_args()
    if not args.skip_quality:
        quality(args)
    if not args.skip_timing:
        from intercept.voices import VoiceEmbedder

        started = time.perf_counter()
        embedder = VoiceEmbedder()
        print(f"{embedder.model} ({embedder.version}) loaded in {time.perf_counter() - started:.1f} s")
        cost(embedder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
