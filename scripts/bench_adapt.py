#!/usr/bin/env python3
"""Adaptation on the development data, and the speed of the adapted model (issue 24).

    nice -n 5 .venv/bin/python scripts/bench_adapt.py --out /work/wt/_models/adapted-cvfa \
        --results bench_adapt.json

1. `intercept adapt` on cv_fa speakers spk001 and spk003 (1,766 clips) with --augment-radio,
   the other 40 speakers of cv_fa given as the held-out corpus (--held-out), settings fixed
   in advance (AdaptOptions' defaults: the feasibility run's lr 1e-4, batch 8, 3 epochs); nothing
   is chosen on the held-out speakers or on fa_virgool.
2. Base and adapted model scored with the product's engine (intercept.adapt.score_model:
   faster-whisper, beam 5, clips packed as transmissions) on fa_virgool, and on the held-out
   cv_fa clips and fa_virgool put through the radio channel (intercept/channel.py, the channel
   of audio_samples/; the same draw for both models).
3. `intercept run audio_samples/` with the base and with the adapted model, side by side
   (alternating, --speed-rounds times each): wall and CPU seconds.

Results go to --results (JSON, written after every step, so a slow machine still leaves
the finished parts) and are printed.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TRAIN_SPEAKERS = ("spk001", "spk003")


def write_corpora(cv_fa: Path, work: Path) -> tuple[Path, Path]:
    """Two corpus folders (metadata.tsv with absolute clip paths and a speaker column):
    the training speakers, and every other speaker."""
    info = {r["path"]: r for r in csv.DictReader(open(cv_fa / "clips_info.tsv", encoding="utf-8"),
                                                  delimiter="\t", quoting=csv.QUOTE_NONE)}
    rows = list(csv.DictReader(open(cv_fa / "metadata.tsv", encoding="utf-8"), delimiter="\t",
                               quoting=csv.QUOTE_NONE))
    folders = {"train": work / "cv_fa_spk001_spk003", "held_out": work / "cv_fa_other_speakers"}
    handles = {}
    for part, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        handles[part] = open(folder / "metadata.tsv", "w", encoding="utf-8")
        handles[part].write("path\tduration_s\ttranscript\tspeaker\n")
    for row in rows:
        speaker = info[row["path"]]["speaker"]
        part = "train" if speaker in TRAIN_SPEAKERS else "held_out"
        handles[part].write(f"{cv_fa / row['path']}\t{row['duration_s']}\t{row['transcript']}\t{speaker}\n")
    for handle in handles.values():
        handle.close()
    return folders["train"], folders["held_out"]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def markdown(results: dict) -> str:
    """The results as the table of docs/benchmarks.md."""
    rows = ["| held-out speech | clips | WER base | WER adapted | drop | CER base | CER adapted |",
            "|---|---|---|---|---|---|---|"]
    card = results.get("card")
    if card:
        rows.append(f"| cv_fa, 40 other speakers | {card['held_out_split']['held_out_clips']} | {card['wer_before']:.3f} "
                    f"| {card['wer_after']:.3f} | {card['wer_before'] - card['wer_after']:.3f} | "
                    f"{card['cer_before']:.3f} | {card['cer_after']:.3f} |")
    for name, label in (("fa_virgool", "fa_virgool"), ("cv_fa_other_speakers_radio", "cv_fa, 40 other speakers, radio channel"),
                        ("fa_virgool_radio", "fa_virgool, radio channel")):
        if name in results:
            r = results[name]
            rows.append(f"| {label} | {r['base']['utterances']} | {r['base']['wer']:.3f} | {r['adapted']['wer']:.3f} | "
                        f"{r['wer_drop']:.3f} | {r['base']['cer']:.3f} | {r['adapted']['cer']:.3f} |")
    lines = ["\n".join(rows)]
    if card:
        t = card["training"]
        lines.append(f"Training: {t['windows']} windows, {t['steps']} steps, losses {t['epoch_losses']}; encoder pass "
                     f"{t['encode_s']} s wall / {t['encode_cpu_s']} s CPU, training {t['train_s']} s wall / "
                     f"{t['train_cpu_s']} s CPU.")
    speed = results.get("speed_audio_samples")
    if speed:
        lines.append(f"`run audio_samples/`: base {[r['wall_s'] for r in speed['base']]} s, adapted "
                     f"{[r['wall_s'] for r in speed['adapted']]} s wall; adapted/base wall "
                     f"{speed['adapted_over_base_wall']}, CPU {speed['adapted_over_base_cpu']}.")
    return "\n\n".join(lines)


def score_blend(args, out: Path, eval_root: Path, held_corpus: Path, results: dict, save) -> int:
    """The blend of --out's last checkpoint with the base, as `adapt --blend` writes it, scored
    on every held-out set; the base's scores come from the results of the training run."""
    from transformers import WhisperForConditionalGeneration

    from intercept.adapt import blend_with_base, load_base, read_labelled, score_model, to_ctranslate2, weights_of

    checkpoint = max((out / "checkpoints").glob("epoch-*"), key=lambda p: int(p.name.split("-")[1]))
    base_model, processor, base_dir, _hash = load_base("base")
    model = WhisperForConditionalGeneration.from_pretrained(checkpoint)
    blend_with_base(model, weights_of(base_model), args.blend, args.blend_audio_attention)
    label = f"{args.blend:g}" + (f"-audio{args.blend_audio_attention:g}" if args.blend_audio_attention is not None else "")
    target = out.with_name(f"{out.name}-blend{label}")
    target.mkdir(parents=True, exist_ok=True)
    to_ctranslate2(model.eval(), processor, base_dir, target)
    held = read_labelled(held_corpus)
    virgool = read_labelled(eval_root / "fa_virgool")
    key = f"blend_{label}"
    found = results.setdefault(key, {"checkpoint": str(checkpoint), "model": str(target),
                                     "uptime_start": uptime()})
    for name, clips, radio in (("fa_virgool", virgool, None), ("cv_fa_other_speakers", held, None),
                               ("cv_fa_other_speakers_radio", held, args.radio_seed),
                               ("fa_virgool_radio", virgool, args.radio_seed)):
        started = time.perf_counter()
        counts = score_model(target, clips, radio_seed=radio, desc=f"{name}, blend {label}")
        scores = {**counts.to_dict(), "wall_s": round(time.perf_counter() - started, 1)}
        base_wer = (results.get(name, {}).get("base", {}).get("wer") if name != "cv_fa_other_speakers"
                    else results.get("card", {}).get("wer_before"))
        if base_wer is not None:
            scores["wer_drop"] = round(base_wer - scores["wer"], 4)
        found[name] = scores
        found["uptime_after_" + name] = uptime()
        save()
        print(name, json.dumps(scores))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="/work/wt/_models/adapted-cvfa", help="where the adapted model goes")
    parser.add_argument("--eval-root", default=str(ROOT.parent / "shared" / "eval"))
    parser.add_argument("--results", default="bench_adapt.json")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--skip-train", action="store_true", help="score an already adapted --out")
    parser.add_argument("--speed-rounds", type=int, default=1)
    parser.add_argument("--radio-seed", type=int, default=7)
    parser.add_argument("--report", action="store_true", help="only print --results as markdown")
    parser.add_argument("--blend", type=float, default=None,
                        help="also score the blend `adapt --blend` writes (FRACTION of the trained weights, the rest "
                             "the base's), made from --out's last checkpoint with intercept.adapt.blend_with_base; "
                             "with --skip-train, the base's scores are read back from --results")
    parser.add_argument("--adapt-option", action="append", default=[], metavar="ARG",
                        help="passed on to `intercept adapt` (repeatable), e.g. --adapt-option=--train "
                             "--adapt-option=audio --adapt-option=--blend --adapt-option=1")
    parser.add_argument("--blend-audio-attention", type=float, default=None,
                        help="with --blend: the share for the decoder's attention to the audio "
                             "(`adapt --blend-audio-attention`)")
    args = parser.parse_args(argv)
    if args.report:
        print(markdown(json.loads(Path(args.results).read_text(encoding="utf-8"))))
        return 0

    from intercept.adapt import read_labelled, score_model
    from intercept.models import resolve_model

    eval_root = Path(args.eval_root).resolve()
    out = Path(args.out)
    results: dict = {"uptime_start": uptime(), "command": " ".join([sys.executable] + sys.argv)}
    results_path = Path(args.results)

    def save() -> None:
        results_path.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")

    work = Path(tempfile.mkdtemp(prefix="bench-adapt-"))
    train_corpus, held_corpus = write_corpora(eval_root / "cv_fa", work)
    if not args.skip_train:
        command = [sys.executable, "-m", "intercept.cli", "adapt", str(train_corpus), "--held-out", str(held_corpus),
                   "--out", str(out), "--augment-radio", "--epochs", str(args.epochs), *args.adapt_option]
        results["adapt_command"] = " ".join(command)
        started, cpu = time.perf_counter(), children_cpu()
        done = subprocess.run(command, cwd=ROOT)
        results["adapt"] = {"exit": done.returncode, "wall_s": round(time.perf_counter() - started, 1),
                            "cpu_s": round(children_cpu() - cpu, 1), "uptime_after": uptime()}
        save()
        if done.returncode != 0:
            print(json.dumps(results, indent=1))
            return done.returncode
    if args.blend is not None:
        if results_path.exists():
            # the training run's results (its command and times stay); this command goes with the blend's
            command = results["command"]
            results = json.loads(results_path.read_text(encoding="utf-8"))
            label = f"{args.blend:g}" + (f"-audio{args.blend_audio_attention:g}"
                                         if args.blend_audio_attention is not None else "")
            results[f"blend_{label}_command"] = command
        return score_blend(args, out, eval_root, held_corpus, results, save)
    card = json.loads((out / "model_card.json").read_text(encoding="utf-8"))
    results["card"] = {k: card[k] for k in ("wer_before", "wer_after", "cer_before", "cer_after",
                                            "held_out_split", "training")}
    save()

    base = resolve_model("base").path
    held = read_labelled(held_corpus)
    virgool = read_labelled(eval_root / "fa_virgool")
    for name, clips, radio in (("fa_virgool", virgool, None), ("cv_fa_other_speakers_radio", held, args.radio_seed),
                               ("fa_virgool_radio", virgool, args.radio_seed)):
        scores = {}
        for label, model in (("base", base), ("adapted", out)):
            started = time.perf_counter()
            counts = score_model(model, clips, radio_seed=radio, desc=f"{name}, {label}")
            scores[label] = {**counts.to_dict(), "wall_s": round(time.perf_counter() - started, 1)}
        scores["wer_drop"] = round(scores["base"]["wer"] - scores["adapted"]["wer"], 4)
        scores["cer_drop"] = round(scores["base"]["cer"] - scores["adapted"]["cer"], 4)
        results[name] = scores
        results[f"uptime_after_{name}"] = uptime()
        save()
        print(name, json.dumps(scores))

    speed = {"base": [], "adapted": []}
    for _ in range(args.speed_rounds):
        for label, model in (("base", "base"), ("adapted", str(out))):
            with tempfile.TemporaryDirectory() as tmp:
                started, cpu = time.perf_counter(), children_cpu()
                done = subprocess.run([sys.executable, "-m", "intercept.cli", "run", str(ROOT / "audio_samples"),
                                       "--db", f"{tmp}/s.db", "--model", model], cwd=ROOT,
                                      capture_output=True, text=True)
                speed[label].append({"exit": done.returncode, "wall_s": round(time.perf_counter() - started, 1),
                                     "cpu_s": round(children_cpu() - cpu, 1)})
    speed["adapted_over_base_wall"] = round(sum(r["wall_s"] for r in speed["adapted"]) /
                                            max(sum(r["wall_s"] for r in speed["base"]), 1e-9), 3)
    speed["adapted_over_base_cpu"] = round(sum(r["cpu_s"] for r in speed["adapted"]) /
                                           max(sum(r["cpu_s"] for r in speed["base"]), 1e-9), 3)
    results["speed_audio_samples"] = speed
    results["uptime_end"] = uptime()
    save()
    print(json.dumps(results, ensure_ascii=False, indent=1))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
