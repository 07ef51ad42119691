#!/usr/bin/env python3
"""Speed, memory and accuracy of speech recognition: openai-whisper, raw faster-whisper and
the intercept pipeline, in ONE run, on the same weights, audio and thread count.

    .venv/bin/python scripts/bench_asr.py                 # (a) dense clips + (b) 10 min session
    .venv/bin/python scripts/bench_asr.py --quick         # 4 clips + a 3 min session
    .venv/bin/python scripts/bench_asr.py --long          # peak RSS on a 2 h mostly-silent file
    .venv/bin/python scripts/bench_asr.py --systems fw-raw,intercept --json results.json
    .venv/bin/python scripts/bench_asr.py --corpora folder,dense,session   # + many one-transmission files
    .venv/bin/python scripts/bench_asr.py --corpora none --tiny 300:1 --tiny 1000:5 --baseline-sample 60 \
        --systems openai-whisper,intercept     # scanner folders of tiny files

Systems (each runs in its own subprocess, so its peak RSS is its own):
  openai-whisper  whisper.load_model(converted weights).transcribe(file, language="fa",
                  beam_size=5, fp16=False) per file, as a user would call it (its defaults:
                  temperature fallback, conditioning on previous text). Weights come from
                  intercept.convert.convert_ct2(model_dir, out, to="openai-whisper"); when that
                  does not exist the system is reported as skipped.
  fw-raw          faster_whisper.WhisperModel(...).transcribe(file, language="fa", beam_size=5)
                  per file, whole file, library defaults.
  intercept       intercept.pipeline.run_batch over the files with --translator none (speech
                  recognition only, comparable to the others): what `intercept run` does after
                  start-up, short recordings packed together (RunOptions.pool).
  intercept-retry the same with TranscribeOptions.no_repeat_ngram 0: the loop guard before
                  issue 25 (a looping window decoded again with repeated 3-grams banned).
  intercept-sequential  the same with decode_batch 1 (one window at a time).
  fw-batched      faster_whisper.BatchedInferencePipeline(model).transcribe(file, language="fa",
                  batch_size=8), its defaults (Silero VAD, beam 5, no timestamps).
  intercept-alone the same, each recording recognised alone (pool off: the behaviour before
                  recordings were packed across files).
  intercept-cli   `intercept run FILES --db ... --translator none` as a new process: wall time
                  includes Python start-up, imports and model loading.
  intercept-translate  run_batch with the default translator (Whisper's translate task).
  intercept-translate-before  the same with the translate task as before issue 25's change:
                  its encoder over Whisper's whole 30 s window, timestamp tokens decoded.
  SYSTEM@FIELD=VALUE[+FIELD=VALUE...]  an intercept system with TranscribeOptions fields set
                  (after _run_options, before the system's own), e.g. intercept@decode_batch=8;
                  VALUE is read as JSON where it parses (8, 0.5, true, null), else as text.
  intercept-score-30s  the pipeline with the acoustic check's encoder over Whisper's whole
                  30 s window (TranscribeOptions.score_context_s None), as before the sixteenth
                  session.
  intercept-packed  the same stages with every transmission of a recording given to the
                  engine in one call, so packing applies (what pipeline.py does once it passes
                  all transmissions at once).
  intercept-drop-silence  the pipeline with Whisper's own rule of dropping a window as
                  silence (no-speech probability > 0.6 and average log-probability < -1, the
                  defaults of openai-whisper and faster-whisper), which intercept turns off.
  intercept-cleaned, intercept-raw  the pipeline with the recogniser given the radio-cleaned
                  samples (RunOptions.clean_radio=True) or the decoded ones (False).

Corpora: (folder) many one-transmission files: ~5 s real-speech clips (the validated cv_fa
clips of 4-6.5 s and the fa_virgool clips), each keyed through the simulated radio channel, one
file each, as scanner recorders write them; (a) dense short transmissions: the clips of shared/eval/fa_virgool (when present)
and audio_samples/; (b) a generated radio session (scripts/make_session.py, >= 10 min,
<= 15% speech). Prints wall time, real-time factor (wall / audio), ratio to openai-whisper,
peak RSS and WER/CER (intercept.evaluate) where references exist.
"""
from __future__ import annotations

import argparse
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

VIRGOOL = Path(os.environ.get("INTERCEPT_EVAL_CORPUS", "/work/shared/eval/fa_virgool"))
CV_FA = Path(os.environ.get("INTERCEPT_EVAL_CV", "/work/shared/eval/cv_fa"))
SYSTEMS = ("openai-whisper", "fw-raw", "fw-batched", "intercept", "intercept-sequential", "intercept-retry",
           "intercept-alone",
           "intercept-cli", "intercept-translate", "intercept-translate-before", "intercept-translate-sequential",
           "intercept-score-30s",
           "intercept-packed", "intercept-cleaned", "intercept-raw", "intercept-drop-silence")
WORK = Path(tempfile.gettempdir()) / "intercept-bench"
BASELINE = "openai-whisper"  # --baseline


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


# ---------------------------------------------------------------- workers (one per subprocess)
def _worker_openai_whisper(files, args):
    import torch
    import whisper

    try:
        from intercept.convert import convert_ct2
    except ImportError:
        return {"skipped": "intercept.convert.convert_ct2 does not exist yet: no openai-whisper weights "
                           "from the embedded model (no model hub here)"}
    from intercept.models import resolve_model

    torch.set_num_threads(args.threads)
    model_dir = resolve_model(args.model).path
    weights = WORK / "openai-whisper" / f"{Path(model_dir).resolve().name}.pt"
    if not weights.exists():  # converted once, outside the timed part
        weights = convert_ct2(model_dir, WORK / "openai-whisper", to="openai-whisper")
    started = time.perf_counter()
    model = whisper.load_model(str(weights), device="cpu")
    load_s = time.perf_counter() - started
    texts, segments = [], []
    started = time.perf_counter()
    for item in files:
        result = model.transcribe(item["path"], language="fa", beam_size=5, fp16=False)
        texts.append(result["text"])
        segments.append([(seg["start"], seg["end"], seg["text"]) for seg in result["segments"]])
    return {"load_s": load_s, "wall_s": time.perf_counter() - started, "texts": texts, "segments": segments}


def _worker_fw_raw(files, args):
    from faster_whisper import WhisperModel

    from intercept.models import resolve_model

    started = time.perf_counter()
    model = WhisperModel(str(resolve_model(args.model).path), device="cpu", compute_type=args.compute_type,
                         cpu_threads=args.threads)
    load_s = time.perf_counter() - started
    texts, timed = [], []
    started = time.perf_counter()
    for item in files:
        segments, _ = model.transcribe(item["path"], language="fa", beam_size=5)
        segments = list(segments)
        texts.append(" ".join(s.text.strip() for s in segments))
        timed.append([(s.start, s.end, s.text) for s in segments])
    return {"load_s": load_s, "wall_s": time.perf_counter() - started, "texts": texts, "segments": timed}


def _worker_fw_batched(files, args):
    """faster-whisper's BatchedInferencePipeline, batch 8, its defaults (Silero VAD on)."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from intercept.models import resolve_model

    started = time.perf_counter()
    model = WhisperModel(str(resolve_model(args.model).path), device="cpu", compute_type=args.compute_type,
                         cpu_threads=args.threads)
    pipeline = BatchedInferencePipeline(model)
    load_s = time.perf_counter() - started
    texts, timed = [], []
    started = time.perf_counter()
    for item in files:
        segments, _ = pipeline.transcribe(item["path"], language="fa", batch_size=8)
        segments = list(segments)
        texts.append(" ".join(s.text.strip() for s in segments))
        timed.append([(s.start, s.end, s.text) for s in segments])
    return {"load_s": load_s, "wall_s": time.perf_counter() - started, "texts": texts, "segments": timed}


def _run_options(args, pack: bool, clean_radio=None):
    from intercept.config import RunOptions

    options = RunOptions(model=args.model, translator="none", force=True)
    if clean_radio is not None:
        options.clean_radio = clean_radio
    options.transcribe.compute_type = args.compute_type
    options.transcribe.cpu_threads = args.threads
    options.transcribe.pack = pack
    for name, value in getattr(args, "settings", {}).items():  # SYSTEM@FIELD=VALUE
        setattr(options.transcribe, name, value)
    return options


def parse_system(spec: str) -> tuple[str, dict]:
    """'intercept@decode_batch=8+beam_size=5' -> ('intercept', {'decode_batch': 8, 'beam_size': 5})."""
    from dataclasses import fields

    from intercept.engines import TranscribeOptions

    name, _, rest = spec.partition("@")
    settings = {}
    known = {f.name for f in fields(TranscribeOptions)}
    for item in (part for part in rest.split("+") if part):
        field, equals, text = item.partition("=")
        if not equals or field not in known:
            raise ValueError(f"{spec}: {item!r} is not FIELD=VALUE with a TranscribeOptions field")
        try:
            settings[field] = json.loads(text)
        except ValueError:
            settings[field] = text
    if settings and not name.startswith("intercept"):
        raise ValueError(f"{spec}: only intercept systems take TranscribeOptions settings")
    return name, settings


def _worker_intercept(files, args, clean_radio=None, drop_silence=False, pool=True, translator="none",
                      decode_batch=None, no_repeat_ngram=None, **transcribe):
    """What `intercept run` does once started: run_batch over the files into a new store."""
    from intercept.pipeline import run_batch
    from intercept.store import CREATE, Store

    with tempfile.TemporaryDirectory() as tmp:
        options = _run_options(args, pack=True, clean_radio=clean_radio)
        options.translator = translator
        if decode_batch is not None:
            options.transcribe.decode_batch = decode_batch
        if no_repeat_ngram is not None:
            options.transcribe.no_repeat_ngram = no_repeat_ngram
        for name, value in transcribe.items():  # other TranscribeOptions fields
            setattr(options.transcribe, name, value)
        if drop_silence:
            options.transcribe.no_speech_threshold, options.transcribe.log_prob_threshold = 0.6, -1.0
        if not pool:
            options.pool.short_s = 0.0
        summary = run_batch([item["path"] for item in files], Path(tmp) / "bench.db", options, progress=False)
        if summary.failed:
            raise RuntimeError(f"{summary.failures[0][0]}: {summary.failures[0][1]}")
        with Store(Path(tmp) / "bench.db", CREATE) as store:
            result = _store_texts(store, files)
    result.update(load_s=summary.load_s, wall_s=summary.wall_s)
    return result


def _store_texts(store, files) -> dict:
    texts, flagged, segments, english = [], [], [], []
    by_path: dict[str, list] = {}
    for row in store.iter_lines():
        by_path.setdefault(row["recording_path"], []).append(row)
    for item in files:
        rows = by_path.get(str(Path(item["path"]).absolute()), [])
        texts.append(" ".join(row["text_fa_raw"] for row in rows))
        segments.append([(row["start_s"], row["end_s"], row["text_fa_raw"]) for row in rows])
        flagged.append(sum(1 for row in rows if row["flags"]))
        english.append([row["text_en"] for row in rows])
    return {"texts": texts, "flagged_lines": flagged, "segments": segments, "english": english}


def _worker_intercept_cli(files, args):
    """`intercept run` as a user starts it: a new process, timed from its start to its exit."""
    from intercept.store import CREATE, Store

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        command = [sys.executable, "-m", "intercept.cli", "run", *[item["path"] for item in files], "--db", str(db),
                   "--translator", "none", "--threads", str(args.threads), "--compute-type", args.compute_type,
                   "--model", args.model, "--json", "--no-progress", "--force"]
        started = time.perf_counter()
        process = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - started
        if process.returncode != 0:
            raise RuntimeError(f"intercept run exited {process.returncode}: {process.stderr.strip()[-300:]}")
        summary = json.loads(process.stdout)
        with Store(db, CREATE) as store:
            result = _store_texts(store, files)
    # The whole command is the wall time here; load_s is the part of it the summary reports.
    result.update(load_s=summary["load_s"], wall_s=wall)
    return result


def _worker_intercept_packed(files, args):
    """The pipeline's stages, all transmissions of a recording given to the engine at once."""
    from intercept.audio import CleanupOptions, clean_radio, decode
    from intercept.engines import load_engine
    from intercept.models import resolve_model
    from intercept.segment import SegmentOptions, find_transmissions

    options = _run_options(args, pack=True)
    started = time.perf_counter()
    engine = load_engine(options.engine, str(resolve_model(args.model).path), args.model, options.transcribe)
    load_s = time.perf_counter() - started
    texts = []
    started = time.perf_counter()
    for item in files:
        audio = decode(item["path"])
        samples = clean_radio(audio.samples, audio.sample_rate, CleanupOptions())
        del audio
        transmissions = find_transmissions(samples, 16000, SegmentOptions(method=options.segment_method))
        lines = engine.transcribe(samples, transmissions, 16000)
        texts.append(" ".join(line.text for line in lines))
    return {"load_s": load_s, "wall_s": time.perf_counter() - started, "texts": texts}


def _worker_long(files, args):
    """Peak RSS of the stages on one long recording: decode, clean, segment (+ transcribe)."""
    from intercept.audio import CleanupOptions, clean_radio, decode
    from intercept.segment import SegmentOptions, find_transmissions

    marks = {}
    started = time.perf_counter()
    audio = decode(files[0]["path"])
    marks["decode"] = (time.perf_counter() - started, peak_rss_mb())
    if args.long_no_clean:  # what pipeline.py does by default: the recogniser hears the decoded samples
        samples = audio.samples
    elif args.long_in_place:  # what pipeline.py does with --clean: clean the decoded samples in place
        samples = clean_radio(audio.samples, audio.sample_rate, CleanupOptions(), out=audio.samples)
    else:  # a cleaned copy beside the decoded samples
        samples = clean_radio(audio.samples, audio.sample_rate, CleanupOptions())
    marks["clean_radio"] = (time.perf_counter() - started, peak_rss_mb())
    transmissions = find_transmissions(samples, 16000, SegmentOptions())
    marks["segment"] = (time.perf_counter() - started, peak_rss_mb())
    texts = []
    if args.long_transcribe:
        from intercept.engines import load_engine
        from intercept.models import resolve_model

        options = _run_options(args, pack=True)
        engine = load_engine("faster-whisper", str(resolve_model(args.model).path), args.model, options.transcribe)
        lines = engine.transcribe(samples, transmissions, 16000)
        texts.append(" ".join(line.text for line in lines))
        marks["transcribe"] = (time.perf_counter() - started, peak_rss_mb())
    return {"load_s": 0.0, "wall_s": time.perf_counter() - started, "texts": texts or [""],
            "transmissions": len(transmissions),
            "marks": {k: {"at_s": round(t, 1), "peak_rss_mb": round(m, 1)} for k, (t, m) in marks.items()}}


WORKERS = {"openai-whisper": _worker_openai_whisper, "fw-raw": _worker_fw_raw, "fw-batched": _worker_fw_batched,
           "intercept": _worker_intercept,
           "intercept-sequential": lambda files, args: _worker_intercept(files, args, decode_batch=1),
           # the loop guard before issue 25: only a retry of a looping window bans repeated 3-grams
           "intercept-retry": lambda files, args: _worker_intercept(files, args, no_repeat_ngram=0),
           "intercept-translate-sequential": lambda files, args: _worker_intercept(
               files, args, translator="whisper", decode_batch=1),
           "intercept-packed": _worker_intercept_packed, "long": _worker_long,
           # the pipeline with the recogniser given the radio-cleaned or the decoded samples
           # (segmentation cleans its own copy either way)
           "intercept-cleaned": lambda files, args: _worker_intercept(files, args, clean_radio=True),
           "intercept-raw": lambda files, args: _worker_intercept(files, args, clean_radio=False),
           "intercept-drop-silence": lambda files, args: _worker_intercept(files, args, drop_silence=True),
           "intercept-alone": lambda files, args: _worker_intercept(files, args, pool=False),
           "intercept-translate": lambda files, args: _worker_intercept(files, args, translator="whisper"),
           "intercept-translate-before": lambda files, args: _worker_intercept(
               files, args, translator="whisper", translate_context_s=None, translate_timestamps=True),
           "intercept-score-30s": lambda files, args: _worker_intercept(files, args, score_context_s=None),
           "intercept-cli": _worker_intercept_cli}


def worker_main(args) -> int:
    files = json.loads(Path(args.files).read_text(encoding="utf-8"))
    name, args.settings = parse_system(args.worker)
    result = WORKERS[name](files, args)
    result["peak_rss_mb"] = peak_rss_mb()
    # CPU seconds of the whole worker (and its ffmpeg/CLI children), load included: on a shared
    # machine they say what a system costs better than wall seconds do.
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu_s"] = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    Path(args.result).write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return 0


# ---------------------------------------------------------------- parent
def corpus_dense(quick: bool) -> list[dict]:
    files = []
    if (VIRGOOL / "metadata.tsv").exists():
        from intercept.evaluate import read_corpus

        items = read_corpus(VIRGOOL)
        for item in items[: 4 if quick else None]:
            files.append({"path": str(item.path), "reference": item.transcript, "duration": item.duration_s,
                          "corpus": "fa_virgool", "transmissions": [(0.0, item.duration_s, item.transcript)]})
    manifest = json.loads((ROOT / "audio_samples" / "manifest.json").read_text(encoding="utf-8"))
    for name, info in sorted(manifest["recordings"].items()):
        if (quick and name == "session_long.mp3") or info.get("speech", "espeak-ng") != "espeak-ng":
            continue  # the real-speech samples are fa_virgool clips: measured as that corpus
        files.append({"path": str(ROOT / "audio_samples" / name), "duration": info["duration"],
                      "corpus": "audio_samples (espeak-ng)",
                      "transmissions": [(t["start"], t["end"], t["text_fa"]) for t in info["transmissions"]],
                      "reference": " ".join(t["text_fa"] for t in info["transmissions"])})
    return files + corpus_radio_real(quick)


def corpus_radio_real(quick: bool, seed: int = 5) -> list[dict]:
    """The fa_virgool clips, each keyed through the simulated radio channel of
    scripts/make_samples.py (band-pass, compression, hiss at 10-18 dB, clicks, squelch tail)
    with a second of squelched near-silence either side: real speech as radio traffic."""
    if not (VIRGOOL / "metadata.tsv").exists():
        return []
    from intercept.evaluate import read_corpus

    return keyed_through_radio(read_corpus(VIRGOOL)[: 4 if quick else None], "fa_virgool via radio",
                               WORK / f"virgool_radio_{seed}", seed)


def corpus_folder(quick: bool, seed: int = 5) -> list[dict]:
    """Many one-transmission files, as trunk-recorder and SDRTrunk write them: the validated
    cv_fa clips of 4-6.5 s and the fa_virgool clips, each keyed through the radio channel."""
    from intercept.evaluate import read_corpus

    files = []
    if (CV_FA / "metadata.tsv").exists():
        status = {}
        with open(CV_FA / "clips_info.tsv", encoding="utf-8") as info:
            next(info)
            for row in info:
                fields = row.rstrip("\n").split("\t")
                status[fields[0]] = fields[1]
        items = [item for item in read_corpus(CV_FA)
                 if status.get(item.path.relative_to(CV_FA).as_posix()) == "validated" and 4.0 <= item.duration_s <= 6.5]
        files += keyed_through_radio(items[: 4 if quick else None], "cv_fa ~5 s via radio",
                                     WORK / f"cv_fa_radio_{seed}", seed)
    return files + [dict(f, corpus="fa_virgool via radio") for f in corpus_radio_real(quick, seed)]


def keyed_through_radio(items, corpus: str, folder: Path, seed: int) -> list[dict]:
    """Each clip as one radio transmission with a second of squelched near-silence either
    side, written once to `folder`."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import numpy as np
    from make_samples import WORK_RATE, Utterance, near_silence, radio_transmission
    from make_session import clip_speech

    from intercept.audio import wav_bytes

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    files = []
    for item in items:
        path = folder / (item.path.stem + ".wav")
        speech = clip_speech(item.path)
        audio, offset, length = radio_transmission(speech, Utterance(item.transcript, "", snr_db=float(rng.uniform(10, 18))),
                                                   rng)
        signal = np.concatenate([near_silence(rng, 1.0), audio, near_silence(rng, 1.0)])
        start = 1.0 + offset / WORK_RATE
        if not path.exists():
            pcm = (np.clip(signal, -1.0, 1.0) * 32767).astype("<i2")
            path.write_bytes(wav_bytes(pcm, WORK_RATE))
        files.append({"path": str(path), "reference": item.transcript, "duration": signal.size / WORK_RATE,
                      "corpus": corpus,
                      "transmissions": [(round(start, 3), round(start + length / WORK_RATE, 3), item.transcript)]})
    return files


def corpus_tiny(count: int, seconds: float, seed: int = 25) -> list[dict]:
    """`count` files of exactly `seconds` each, as a scanner folder of key-ups holds them: the
    speech of cv_fa clips (taken in turn) cut to fit, keyed through the radio channel, with
    squelched near-silence to the file's length. The cut speech no longer matches its
    transcript, so these files measure speed and memory only (no WER)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import numpy as np
    from make_samples import WORK_RATE, Utterance, near_silence, radio_transmission
    from make_session import clip_speech

    from intercept.audio import wav_bytes
    from intercept.evaluate import read_corpus

    folder = WORK / f"tiny_{count}x{seconds:g}s_{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    clips = read_corpus(CV_FA)
    rng = np.random.default_rng(seed)
    total = int(round(seconds * WORK_RATE))
    files = []
    for index in range(count):
        path = folder / f"{index:05d}.wav"
        if not path.exists():
            item = clips[index % len(clips)]
            speech = clip_speech(item.path)[: max(int((seconds - 0.5) * WORK_RATE), WORK_RATE // 4)]
            audio, _offset, _length = radio_transmission(speech, Utterance("", "", snr_db=float(rng.uniform(10, 18))), rng)
            lead = near_silence(rng, 0.2)
            signal = np.concatenate([lead, audio, near_silence(rng, seconds)])[:total]
            pcm = (np.clip(signal, -1.0, 1.0) * 32767).astype("<i2")
            path.write_bytes(wav_bytes(pcm, WORK_RATE))
        files.append({"path": str(path), "duration": seconds, "corpus": f"{count} x {seconds:g} s"})
    return files


def generated_session(minutes: float, speech_fraction: float, seed: int = 7, speech_corpus=None) -> list[dict]:
    WORK.mkdir(parents=True, exist_ok=True)
    source = "_real" if speech_corpus else ""
    path = WORK / f"session_{minutes:g}min_{speech_fraction:g}_{seed}{source}.wav"
    manifest_path = Path(str(path) + ".json")
    if not manifest_path.exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_session.py"), str(path), "--minutes",
                        str(minutes), "--speech-fraction", str(speech_fraction), "--seed", str(seed)]
                       + (["--speech-corpus", str(speech_corpus)] if speech_corpus else []), check=True)
    info = next(iter(json.loads(manifest_path.read_text(encoding="utf-8"))["recordings"].values()))
    return [{"path": str(path), "duration": info["duration"],
             "corpus": "session, real speech (fa_virgool)" if speech_corpus else "session, espeak-ng",
             "transmissions": [(t["start"], t["end"], t["text_fa"]) for t in info["transmissions"]],
             "reference": " ".join(t["text_fa"] for t in info["transmissions"])}]


def run_system(system: str, files: list[dict], args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        files_path, result_path = Path(tmp) / "files.json", Path(tmp) / "result.json"
        files_path.write_text(json.dumps(files, ensure_ascii=False), encoding="utf-8")
        command = [sys.executable, __file__, "--worker", system, "--files", str(files_path), "--result",
                   str(result_path), "--threads", str(args.threads), "--compute-type", args.compute_type,
                   "--model", args.model] + (["--long-transcribe"] if args.long_transcribe else []) \
            + (["--long-in-place"] if args.long_in_place else []) + (["--long-no-clean"] if args.long_no_clean else [])
        started = time.perf_counter()
        sample = args.baseline_sample if system == "openai-whisper" else 0
        if sample and len(files) > sample:
            # openai-whisper file by file over thousands of files takes hours here: it runs on an
            # even sample of them, and its time per file is scaled to the whole folder.
            step = len(files) / sample
            files_path.write_text(json.dumps([files[int(i * step)] for i in range(sample)], ensure_ascii=False),
                                  encoding="utf-8")
        process = subprocess.run(command, capture_output=True, text=True)
        total = time.perf_counter() - started
        if process.returncode != 0:
            tail = (process.stderr or process.stdout).strip().splitlines()[-1:] or ["no output"]
            return {"system": system, "error": tail[0]}
        result = json.loads(result_path.read_text(encoding="utf-8"))
    result["system"] = system
    result["process_s"] = total
    if "skipped" in result:
        return result
    if sample and len(files) > sample:
        scale = len(files) / sample
        result.update(sampled=f"{sample} of {len(files)} files, times scaled x{scale:.2f}",
                      wall_s=result["wall_s"] * scale, cpu_s=result["cpu_s"] * scale,
                      process_s=result["load_s"] + (total - result["load_s"]) * scale)
        result.pop("texts", None)
    audio_s = sum(f["duration"] for f in files)
    result["audio_s"] = audio_s
    result["rtf"] = result["wall_s"] / audio_s
    if "texts" in result and all(f.get("reference") for f in files):
        from intercept.evaluate import ErrorRateScorer

        scorer = ErrorRateScorer()
        counts = scorer.score_corpus((f["reference"], text) for f, text in zip(files, result["texts"]))
        result["wer"], result["cer"] = counts.wer, counts.cer
        by_corpus, written = {}, {}
        for f, text in zip(files, result["texts"]):
            name = f.get("corpus", "all")
            one = scorer.score(f["reference"], text)
            by_corpus[name] = by_corpus[name] + one if name in by_corpus else one
            written[name] = written.get(name, 0) + len(scorer.words(text))
        if "segments" in result and all("transmissions" in f for f in files):
            aligned = by_transmission(files, result["segments"])
            aligned["wer"] = scorer.score_corpus(aligned["pairs"]).wer
            result["transmissions"] = aligned
        result["by_corpus"] = {name: {"wer": c.wer, "cer": c.cer, "reference_words": c.reference_words,
                                      "hypothesis_words": written[name]} for name, c in by_corpus.items()}
    return result


def by_transmission(files: list[dict], segments: list[list], slack_s: float = 1.0) -> dict:
    """Each timed segment a system wrote goes to the reference transmission it overlaps most
    (times widened by slack_s, for timestamps that run a little early or late), or counts as
    written in silence. Returns per-transmission (reference, hypothesis) pairs, the number of
    transmissions that got no words, and the words written in silence: what a reviewer meets
    as missed traffic and as invented lines."""
    from intercept.evaluate import ErrorRateScorer

    scorer = ErrorRateScorer()
    pairs, corpora, silent_words = [], [], 0
    for item, timed in zip(files, segments):
        spans = item["transmissions"]
        heard = [[] for _ in spans]
        for start, end, text in timed:
            overlaps = [min(end, t_end + slack_s) - max(start, t_start - slack_s) for t_start, t_end, _ in spans]
            best = max(range(len(spans)), key=overlaps.__getitem__) if spans else None
            if best is not None and overlaps[best] > 0:
                heard[best].append(text)
            else:
                silent_words += len(scorer.words(text))
        pairs.extend((reference, " ".join(texts)) for (_, _, reference), texts in zip(spans, heard))
        corpora.extend(item.get("corpus", "all") for _ in spans)
    missed = sum(1 for _, hypothesis in pairs if not scorer.words(hypothesis))
    return {"pairs": pairs, "corpora": corpora, "missed": missed, "silent_words": silent_words}


def paired_bootstrap(pairs_a: list, pairs_b: list, rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% interval of WER(b) - WER(a) over transmissions resampled with replacement (the same
    transmissions for both systems): how much of a difference the sample can tell apart."""
    import numpy as np

    from intercept.evaluate import ErrorRateScorer

    scorer = ErrorRateScorer()
    a = np.array([(c.word_edits, c.reference_words) for c in (scorer.score(r, h) for r, h in pairs_a)], float)
    b = np.array([(c.word_edits, c.reference_words) for c in (scorer.score(r, h) for r, h in pairs_b)], float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(a), size=(rounds, len(a)))
    diffs = b[picks, 0].sum(1) / b[picks, 1].sum(1) - a[picks, 0].sum(1) / a[picks, 1].sum(1)
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def report(title: str, results: list[dict]) -> None:
    print(f"\n### {title}\n")
    base = next((r for r in results if r["system"] == BASELINE and "wall_s" in r), None)
    # wall s: transcribing after the model is loaded (intercept-cli: the whole command);
    # process s: the system's whole process (Python start-up, imports, model load, scoring).
    # CPU s: the worker process's CPU seconds (model load included): on a shared machine the
    # figure the other jobs' load moves least.
    print(f"| system | load s | wall s | RTF | x {BASELINE} | process s | x {BASELINE} (process) "
          f"| CPU s | x {BASELINE} (CPU) | peak RSS MB | WER | CER |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "wall_s" not in r:
            print(f"| {r['system']} | {r.get('skipped') or r.get('error')} |||||||||||")
            continue
        ratio = f"{base['wall_s'] / r['wall_s']:.2f}" if base else "n/a"
        process_ratio = f"{base['process_s'] / r['process_s']:.2f}" if base else "n/a"
        cpu_ratio = f"{base['cpu_s'] / r['cpu_s']:.2f}" if base else "n/a"
        wer = f"{r['wer']:.3f}" if "wer" in r else ""
        cer = f"{r['cer']:.3f}" if "cer" in r else ""
        print(f"| {r['system']} | {r['load_s']:.1f} | {r['wall_s']:.1f} | {r['rtf']:.3f} | {ratio} | "
              f"{r['process_s']:.1f} | {process_ratio} | {r['cpu_s']:.1f} | {cpu_ratio} | "
              f"{r['peak_rss_mb']:.0f} | {wer} | {cer} |")
        if r.get("sampled"):
            print(f"|  {r['system']}: {r['sampled']} |||||||||||")
        if r.get("marks"):
            print(f"|  stages: {json.dumps(r['marks'])}; transmissions {r.get('transmissions')} |||||||")
    corpora = sorted({name for r in results for name in r.get("by_corpus", {})})
    if len(corpora) > 1:
        # WER depends on how many words a system writes when it hears nothing it knows, so
        # the words written are shown beside it.
        print("\nWER / CER (words written / reference words) by corpus:\n")
        print("| system | " + " | ".join(corpora) + " |")
        print("|---" * (len(corpora) + 1) + "|")
        for r in results:
            if "by_corpus" not in r:
                continue
            cells = []
            for name in corpora:
                c = r["by_corpus"].get(name)
                cells.append(f"{c['wer']:.3f} / {c['cer']:.3f} ({c['hypothesis_words']}/{c['reference_words']})"
                             if c else "")
            print(f"| {r['system']} | " + " | ".join(cells) + " |")
    timed = [r for r in results if "transmissions" in r]
    if timed:
        base_pairs = base["transmissions"]["pairs"] if base and "transmissions" in base else None
        total = len(timed[0]["transmissions"]["pairs"])
        print(f"\nBy transmission ({total} in the references; each system's timed segments assigned by overlap):\n")
        print("| system | WER over transmissions | missed (no words) | words written in silence "
              f"| WER minus {BASELINE}'s, 95% interval |")
        print("|---|---|---|---|---|")
        for r in timed:
            t = r["transmissions"]
            interval = ""
            if base_pairs is not None and r is not base:
                low, high = paired_bootstrap(base_pairs, t["pairs"])
                interval = f"{low:+.3f} .. {high:+.3f}"
            print(f"| {r['system']} | {t['wer']:.3f} | {t['missed']} | {t['silent_words']} | {interval} |")
        names = sorted(set(timed[0]["transmissions"]["corpora"]))
        if base_pairs is not None:
            print("\nWER over transmissions by corpus; in brackets the 95% paired-bootstrap interval of the "
                  f"difference to {BASELINE}'s (below zero: better):\n")
            print("| system | " + " | ".join(f"{name} ({timed[0]['transmissions']['corpora'].count(name)})"
                                           for name in names) + " |")
            print("|---" * (len(names) + 1) + "|")
            from intercept.evaluate import ErrorRateScorer

            scorer = ErrorRateScorer()
            for r in timed:
                t, cells = r["transmissions"], []
                for name in names:
                    mine = [pair for pair, c in zip(t["pairs"], t["corpora"]) if c == name]
                    theirs = [pair for pair, c in zip(base_pairs, t["corpora"]) if c == name]
                    cell = f"{scorer.score_corpus(mine).wer:.3f}"
                    if r is not base:
                        low, high = paired_bootstrap(theirs, mine)
                        cell += f" [{low:+.3f} .. {high:+.3f}]"
                    cells.append(cell)
                print(f"| {r['system']} | " + " | ".join(cells) + " |")
    targets(title, results)
    sys.stdout.flush()


def targets(title: str, results: list[dict]) -> None:
    """Issue 25's targets that these results can say something about, each met or not."""
    done = {r["system"]: r for r in results if "wall_s" in r}
    lines = []
    session, tiny = "real speech" in title and "session" in title, "(tiny)" in title

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    mine, batched = done.get("intercept"), done.get("fw-batched")
    if session and mine and batched:
        ratio = mine["wall_s"] / batched["wall_s"]
        heard = ""
        if "transmissions" in mine:
            t = mine["transmissions"]
            heard = f"; intercept missed {t['missed']} transmissions and wrote {t['silent_words']} words in silence"
        lines.append(f"- intercept at least as fast as `BatchedInferencePipeline`: {ratio:.2f}x its wall time "
                     f"({mine['wall_s']:.1f} s against {batched['wall_s']:.1f} s; CPU {mine['cpu_s'] / batched['cpu_s']:.2f}x)"
                     f"{heard}: {verdict(ratio <= 1.0)}")
    translated = done.get("intercept-translate")
    if session and mine and translated:
        extra = translated["wall_s"] / mine["wall_s"] - 1.0
        lines.append(f"- translation on adds at most 40 %: {100 * extra:+.0f} % wall: {verdict(extra <= 0.40)}")
    whisper = done.get("openai-whisper")
    if tiny and mine and whisper:
        ratio = whisper["wall_s"] / mine["wall_s"]
        lines.append(f"- at least 5x faster than openai-whisper file by file: {ratio:.1f}x: {verdict(ratio >= 5.0)}")
    if tiny and mine:
        lines.append(f"- peak memory under 1.5 GB: {mine['peak_rss_mb']:.0f} MB: {verdict(mine['peak_rss_mb'] < 1536)}")
    if lines:
        print("\nIssue 25's targets (ratios of runs made one after the other in this command):\n")
        print("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 clips and a 3 min session")
    parser.add_argument("--long", action="store_true", help="only the 2 h mostly-silent memory benchmark")
    parser.add_argument("--long-minutes", type=float, default=120.0)
    parser.add_argument("--long-transcribe", action="store_true", help="with --long: transcribe too")
    parser.add_argument("--long-in-place", action="store_true",
                        help="with --long: clean the samples in place (clean_radio(..., out=samples))")
    parser.add_argument("--long-no-clean", action="store_true",
                        help="with --long: no radio clean-up before recognition (the pipeline's default)")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--corpora", default="dense,session", help="any of folder, dense, session (comma-separated)")
    parser.add_argument("--tiny", action="append", default=[], metavar="COUNT:SECONDS",
                        help="also a folder of COUNT files of SECONDS each (repeatable), e.g. 300:1 1000:5")
    parser.add_argument("--baseline-sample", type=int, default=0,
                        help="openai-whisper only on an even sample of this many files, its times scaled")
    parser.add_argument("--real-session-only", action="store_true",
                        help="of the 10-minute sessions, only the one made of real speech")
    parser.add_argument("--session-minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--compute-type", default="float32",
                        help="CTranslate2 type for fw-raw and intercept (float32: the weights openai-whisper runs)")
    parser.add_argument("--model", default="base")
    parser.add_argument("--json", help="also write all results to this file")
    parser.add_argument("--baseline", default="openai-whisper",
                        help="the system the ratios and WER intervals compare with (default: openai-whisper)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # SYSTEM[@FIELD=VALUE...], checked by parse_system
    parser.add_argument("--files", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args)
    global BASELINE
    BASELINE = args.baseline

    print(f"threads {args.threads}, compute type {args.compute_type}, model {args.model}; "
          f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    everything = {}
    if args.long:
        files = generated_session(args.long_minutes, 0.02, seed=11)
        results = [run_system("long", files, args)]
        report(f"long recording: {files[0]['duration'] / 60:.0f} min, 2% speech", results)
        everything["long"] = results
    else:
        systems = [s for s in args.systems.split(",") if s]
        try:
            unknown = {parse_system(s)[0] for s in systems} - set(SYSTEMS)
        except ValueError as exc:
            parser.error(str(exc))
        if unknown:
            parser.error(f"unknown systems: {', '.join(sorted(unknown))} (choose from {', '.join(SYSTEMS)})")
        corpora = {}
        if "folder" in args.corpora:
            corpora["(folder) one ~5 s transmission per file, real speech via radio"] = corpus_folder(args.quick)
        if "dense" in args.corpora:
            corpora["(a) dense short transmissions"] = corpus_dense(args.quick)
        if "session" in args.corpora:
            minutes = 3.0 if args.quick else args.session_minutes
            if not args.real_session_only:
                corpora[f"(b) radio session {minutes:g} min"] = generated_session(minutes, 0.13)
            if (VIRGOOL / "metadata.tsv").exists():
                corpora[f"(b) radio session {minutes:g} min, real speech"] = generated_session(
                    minutes, 0.13, speech_corpus=VIRGOOL)
            if args.real_session_only:
                corpora = {title: files for title, files in corpora.items() if "radio session" not in title
                           or "real speech" in title}
        for spec in args.tiny:
            count, seconds = spec.split(":")
            corpora[f"(tiny) {count} files of {seconds} s, real speech via radio"] = corpus_tiny(int(count), float(seconds))
        for title, files in corpora.items():
            results = everything[title] = []
            for system in systems:
                results.append(run_system(system, files, args))
                print(f"  {title}: {system} done", file=sys.stderr, flush=True)
                if args.json:  # as it goes, so a long run's results survive an interruption
                    Path(args.json).write_text(json.dumps(everything, ensure_ascii=False, indent=1), encoding="utf-8")
            audio_s = sum(f["duration"] for f in files)
            report(f"{title}: {len(files)} files, {audio_s:.0f} s audio", results)
    if args.json:
        Path(args.json).write_text(json.dumps(everything, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
