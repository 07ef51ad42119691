#!/usr/bin/env python3
"""What Whisper's translate task costs on real speech, and what its settings buy (issue 25).

The 10-minute real-speech session of `scripts/bench_asr.py --corpora session` (and, with
--cv N, N Common Voice clips of /work/shared/eval/cv_fa, each a recording: the first validated
ones, or with --cv-status other unvoted ones spread over the corpus, which no rule used before
the twenty-second session) is
transcribed once as `intercept run` does; then the `whisper` translator (WhisperTranslator,
one translate decode per line, batched as the pipeline batches them) translates those lines
under each setting, the settings alternated round by round in one process (the model loaded
once), so that the load of a shared machine hits all alike. The transcription's own time is
measured too, as the yardstick of "+N % for translation".

Per setting: CPU and wall seconds, and where they went (CTranslate2 encoder passes and beam
searches, their counts, seconds and batch sizes, tokens decoded), the loop retries, and how far
the English moves from the shipped setting's (the first): character similarity (rapidfuzz's
normalised Indel similarity, 0-1) and WER of one against the other. No English reference exists
for these clips, so the noise floor is the setting "widened": the first setting's English with
each line's audio cut widened by 0.25 s either side. A setting whose English moves less than
that moves it less than any other cut of the same audio would.

    .venv/bin/python scripts/bench_session_translate.py --variants beam5,widened,beam1,beam2,beam3
    .venv/bin/python scripts/bench_session_translate.py --cv 40 --threads 2 --json out.json
    .venv/bin/python scripts/bench_session_translate.py --cv 40 --cv-status other --no-session --variants shipped,widened,shipped@translate_compute_type=auto
    .venv/bin/python scripts/bench_session_translate.py --variants shipped,widened,shipped@translate_beam_size=1
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

# TranscribeOptions overrides of the translation per setting, over the options as they were
# before issue 25's change ("before": the encoder over Whisper's whole 30 s window, timestamps
# decoded, the recogniser's beam); "shipped": the code's defaults, whatever they are; "widened":
# the first setting's options with every line's stretch widened by --shift-s either side.
VARIANTS = {
    "shipped": {},  # the defaults of the code run (before the change: "before")
    "before": dict(translate_context_s=None, translate_timestamps=True, translate_beam_size=5),
    "widened": {},  # the first setting's options
    "beam1": dict(translate_beam_size=1),
    "beam2": dict(translate_beam_size=2),
    "beam3": dict(translate_beam_size=3),
    "beam5": dict(translate_beam_size=5),
    "notime": dict(translate_timestamps=False),
    "time": dict(translate_timestamps=True),
    "notime-beam1": dict(translate_timestamps=False, translate_beam_size=1),
    "notime-beam2": dict(translate_timestamps=False, translate_beam_size=2),
    "notime-beam3": dict(translate_timestamps=False, translate_beam_size=3),
    "time-beam5": dict(translate_timestamps=True, translate_beam_size=5),
    # the encoder sees the line's audio padded to N s (to the audio plus 1 s when longer), not 30 s
    "ctx0": dict(translate_context_s=0.0),
    "ctx5": dict(translate_context_s=5.0),
    "ctx10": dict(translate_context_s=10.0),
    "ctx15": dict(translate_context_s=15.0),
    "notime-ctx0": dict(translate_timestamps=False, translate_context_s=0.0),
    "notime-ctx5": dict(translate_timestamps=False, translate_context_s=5.0),
    "notime-ctx10": dict(translate_timestamps=False, translate_context_s=10.0),
    "notime-ctx10-beam2": dict(translate_timestamps=False, translate_context_s=10.0, translate_beam_size=2),
    "sequential": dict(decode_batch=1),
    "batch8": dict(decode_batch=8),
    "no-retry": dict(loop_retry_ngram=0),
}


class CallLog:
    """The CTranslate2 model under faster-whisper's batching, each call counted and timed. A
    second model's log (the translate task's own, translate_compute_type) counts into the
    first's (`sink`)."""

    def __init__(self, model, sink: "CallLog" = None):
        self._model = model
        self._sink = sink or self
        if sink is None:
            self.reset()

    def reset(self) -> None:
        self.count = {"encode": 0, "generate": 0, "align": 0}
        self.seconds = {"encode": 0.0, "generate": 0.0, "align": 0.0}
        self.rows = []  # windows per beam search
        self.tokens = 0
        self.retries = 0

    def __getattr__(self, name):
        return getattr(self._model, name)

    def _timed(self, kind, call, *args, **kwargs):
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            self._sink.count[kind] += 1
            self._sink.seconds[kind] += time.perf_counter() - started

    def encode(self, features, to_cpu=False):
        return self._timed("encode", self._model.encode, features, to_cpu=to_cpu)

    def generate(self, encoder_output, prompts, **kwargs):
        self._sink.rows.append(len(prompts))
        results = self._timed("generate", self._model.generate, encoder_output, prompts, **kwargs)
        self._sink.tokens += sum(len(r.sequences_ids[0]) for r in results)
        return results

    def align(self, *args, **kwargs):
        return self._timed("align", self._model.align, *args, **kwargs)


def options_of(name: str, threads: int, first: str):
    """The TranscribeOptions of a setting (see VARIANTS)."""
    from intercept.engines import TranscribeOptions

    if name == "widened":
        name = first
    if name == "shipped":
        return TranscribeOptions(cpu_threads=threads)
    if name.startswith("shipped@"):
        # "shipped@FIELD=VALUE[@FIELD=VALUE...]": the code's defaults with these TranscribeOptions changed
        changes = {}
        for part in name.split("@")[1:]:
            field, _, value = part.partition("=")
            try:
                changes[field] = json.loads(value) if value not in ("None", "none") else None
            except ValueError:  # a bare word: a string (translate_compute_type=auto)
                changes[field] = value
        return replace(TranscribeOptions(cpu_threads=threads), **changes)
    return replace(TranscribeOptions(cpu_threads=threads), **{**VARIANTS["before"], **VARIANTS[name]})


def similarity(a: str, b: str) -> float:
    from rapidfuzz import fuzz

    a, b = " ".join(a.lower().split()), " ".join(b.lower().split())
    if not a and not b:
        return 1.0
    return fuzz.ratio(a, b) / 100.0


def cv_recordings(count: int, status_wanted: str = "validated") -> list[tuple]:
    """`count` cv_fa clips of 3-8 s (real read speech, many speakers), each a recording: the
    first validated ones (45 exist), or ("other") clips spread evenly over the 1,100 not yet
    voted on, which no translation rule used before the twenty-second session."""
    from bench_asr import CV_FA

    from intercept.audio import decode
    from intercept.evaluate import read_corpus

    status = {}
    with open(CV_FA / "clips_info.tsv", encoding="utf-8") as info:
        header = info.readline().rstrip("\n").split("\t")
        for row in info:
            cells = dict(zip(header, row.rstrip("\n").split("\t")))
            status[cells.get("path", "")] = cells.get("cv_status", "")
    items = [item for item in read_corpus(CV_FA)
             if status.get(item.path.relative_to(CV_FA).as_posix()) == status_wanted and 3.0 <= item.duration_s <= 8.0]
    if status_wanted != "validated" and count:
        items = items[::max(1, len(items) // count)]
    return [(str(item.path), decode(str(item.path)).samples) for item in items[:count]]


def proxy(args) -> int:
    """English has no reference here, but Farsi has: what cutting the encoder's input does to
    what Whisper hears, measured as the WER of the transcribe task on cv_fa clips (each clip one
    window, its encoder input cut as translate_context_s cuts a translate window), against the
    whole 30 s window, with the 95 % paired-bootstrap interval of the difference."""
    from bench_asr import CV_FA, paired_bootstrap

    from intercept.engines import TranscribeOptions, load_engine
    from intercept.evaluate import ErrorRateScorer, read_corpus
    from intercept.models import resolve_model
    from intercept.types import Transmission

    names = [v for v in args.variants.split(",") if v]
    contexts = [options_of(name, args.threads, names[0]).translate_context_s for name in names]
    references = {item.path.as_posix(): item.transcript for item in read_corpus(CV_FA)}
    clips = cv_recordings(args.proxy)
    base = TranscribeOptions(cpu_threads=args.threads, alternatives=0, word_evidence=False)
    engine = load_engine("faster-whisper", str(resolve_model("base").path), "base", base)
    frames_of = engine._encoder_frames
    engine._encoder_frames = lambda audio, task: frames_of(audio, "translate")
    pairs = {name: [] for name in names}
    seconds = {name: 0.0 for name in names}
    for path, samples in clips:
        for name, context in zip(names, contexts):
            engine.options = replace(base, translate_context_s=context)
            cpu = time.process_time()
            lines = engine.transcribe(samples, [Transmission(0, 0.0, samples.size / 16000)], 16000)
            seconds[name] += time.process_time() - cpu
            pairs[name].append((references[Path(path).as_posix()], " ".join(line.text for line in lines)))
    scorer = ErrorRateScorer()
    print(f"{len(clips)} cv_fa clips, each one window, transcribe task; threads {args.threads}; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| encoder input | WER | CER | CPU s | WER - first's, 95 % |")
    print("|---|---|---|---|---|")
    for name, context in zip(names, contexts):
        score = scorer.score_corpus(pairs[name])
        interval = "" if name == names[0] else "{:+.3f} .. {:+.3f}".format(*paired_bootstrap(pairs[names[0]], pairs[name]))
        what = "30 s (Whisper's window)" if context is None else f"audio padded to {context:g} s (audio + 1 s when longer)"
        print(f"| {name}: {what} | {score.wer:.3f} | {score.cer:.3f} | {seconds[name]:.1f} | {interval} |")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="shipped,widened,beam1,beam2,beam3,notime",
                        help=f"from: {', '.join(VARIANTS)}, or shipped@FIELD=VALUE[@FIELD=VALUE] (the defaults with "
                             "these TranscribeOptions changed, VALUE as JSON); the first is the reference")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cpu-workers", type=int, default=1, help="TranscribeOptions.cpu_workers of the engine")
    parser.add_argument("--cv", type=int, default=0, help="also this many cv_fa clips (each a recording)")
    parser.add_argument("--cv-status", choices=("validated", "other"), default="validated",
                        help="which cv_fa clips --cv takes: the first validated, or unvoted ones spread evenly")
    parser.add_argument("--no-session", action="store_true", help="only the cv_fa clips")
    parser.add_argument("--shift-s", type=float, default=0.25)
    parser.add_argument("--show", type=int, default=6, help="print the English of this many lines that moved most")
    parser.add_argument("--proxy", type=int, default=0,
                        help="instead: this many cv_fa clips transcribed (Farsi, against their references) with "
                             "the encoder cut as each variant's translate_context_s cuts a translate window")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.proxy:
        return proxy(args)
    names = [v for v in args.variants.split(",") if v]
    unknown = {name for name in names if name not in VARIANTS and not name.startswith("shipped@")}
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}")

    from bench_session_decode import session_transmissions

    from intercept.engines import TranscribeOptions, load_engine
    from intercept.evaluate import ErrorRateScorer
    from intercept.models import resolve_model
    from intercept.pipeline import TRANSMISSIONS_PER_CALL
    from intercept.translate import WhisperTranslator
    from intercept.types import Transmission

    base = TranscribeOptions(cpu_threads=args.threads, cpu_workers=args.cpu_workers)
    engine = load_engine("faster-whisper", str(resolve_model("base").path), "base", base)
    log = CallLog(engine._batching._model)
    engine._batching._model = log
    # The translate task's own model (translate_compute_type), logged into the same counts.
    translate_model, logged = engine.translate_model, {}

    def logged_translate_model():
        model = translate_model()
        if model is None:
            return None
        if id(model) not in logged:
            logged[id(model)] = CallLog(model, sink=log)
        return logged[id(model)]

    engine.translate_model = logged_translate_model
    decode = engine.decode

    def counted(audio, task, max_new_tokens, loop_retry=False, **kwargs):
        log.retries += bool(loop_retry)
        return decode(audio, task, max_new_tokens, loop_retry=loop_retry, **kwargs)

    engine.decode = counted

    # Recordings: (name, samples, lines), transcribed once with the shipped options.
    recordings = []
    log.reset()
    cpu, wall = time.process_time(), time.perf_counter()
    if not args.no_session:
        item, samples, transmissions = session_transmissions(10.0)
        lines = []
        for first in range(0, len(transmissions), TRANSMISSIONS_PER_CALL):
            lines.extend(engine.transcribe(samples, transmissions[first: first + TRANSMISSIONS_PER_CALL], 16000))
        recordings.append((item["path"], samples, lines))
    for path, samples in cv_recordings(args.cv, args.cv_status):
        recordings.append((path, samples, engine.transcribe(samples, [Transmission(0, 0.0, samples.size / 16000)], 16000)))
    transcribe_cpu, transcribe_wall = time.process_time() - cpu, time.perf_counter() - wall
    count = sum(len(lines) for _, _, lines in recordings)
    print(f"{len(recordings)} recordings, {count} lines; threads {args.threads}; transcribed in "
          f"{transcribe_wall:.1f} s wall, {transcribe_cpu:.1f} CPU s ({log.count['encode']} encodes, "
          f"{log.count['generate']} beam searches, {log.tokens} tokens); load average {os.getloadavg()[0]:.1f}",
          flush=True)
    translator = WhisperTranslator(engine)

    def english(name: str) -> list[str]:
        engine.options = options_of(name, args.threads, names[0])
        if name != "widened":
            for _, samples, lines in recordings:
                translator.translate(lines, samples, 16000)
            return [line.text_en or "" for _, _, lines in recordings for line in lines]
        from intercept.translate import stretch

        out = []
        for _, samples, lines in recordings:
            limit = samples.size / 16000
            spans = []
            for i, line in enumerate(lines):
                start, end = stretch(line, limit)
                spans.append(Transmission(i, max(0.0, start - args.shift_s), min(limit, end + args.shift_s)))
            out.extend(engine.translate_spans(samples, spans, 16000))
        return out

    results = {name: {"cpu_s": [], "wall_s": []} for name in names}
    for round_ in range(args.rounds):
        for name in names:
            log.reset()
            cpu, wall = time.process_time(), time.perf_counter()
            texts = english(name)
            r = results[name]
            r["cpu_s"].append(time.process_time() - cpu)
            r["wall_s"].append(time.perf_counter() - wall)
            r.update(english=texts, count=dict(log.count), seconds={k: round(v, 2) for k, v in log.seconds.items()},
                     rows=list(log.rows), tokens=log.tokens, retries=log.retries)
            print(f"  round {round_ + 1} {name}: {r['cpu_s'][-1]:.1f} CPU s, {r['wall_s'][-1]:.1f} s "
                  f"(encode {log.seconds['encode']:.1f} s x{log.count['encode']}, generate "
                  f"{log.seconds['generate']:.1f} s x{log.count['generate']}, {log.tokens} tokens, "
                  f"{log.retries} retries), load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)

    scorer = ErrorRateScorer()
    reference = results[names[0]]["english"]
    print(f"\ntranscription alone: {transcribe_wall:.1f} s wall, {transcribe_cpu:.1f} CPU s\n")
    print("| translation | wall s | CPU s | x first (wall / CPU) | + % of transcription (wall) | encoder passes (s) "
          "| beam searches (s; windows each) | tokens | loop retries | empty | similarity to first, mean / median "
          "| WER against first |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    first = results[names[0]]
    for name in names:
        r = results[name]
        wall, cpu = min(r["wall_s"]), min(r["cpu_s"])
        sims = [similarity(a, b) for a, b in zip(reference, r["english"])]
        wer = scorer.score_corpus(zip(reference, r["english"])).wer
        r["similarity_mean"], r["similarity_median"], r["wer_vs_first"] = statistics.fmean(sims), statistics.median(sims), wer
        rows = ",".join(map(str, r["rows"])) if len(r["rows"]) <= 16 else f"{len(r['rows'])} calls"
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {min(first['wall_s']) / wall:.2f} / {min(first['cpu_s']) / cpu:.2f} "
              f"| +{100 * wall / transcribe_wall:.0f} % | {r['count']['encode']} ({r['seconds']['encode']:.1f}) "
              f"| {r['count']['generate']} ({r['seconds']['generate']:.1f}; {rows}) | {r['tokens']} | {r['retries']} "
              f"| {sum(1 for t in r['english'] if not t.strip())} | {r['similarity_mean']:.3f} / "
              f"{r['similarity_median']:.3f} | {wer:.3f} |")
    flat = [line for _, _, lines in recordings for line in lines]
    for name in names[1:]:
        moved = sorted(range(count), key=lambda i: similarity(reference[i], results[name]["english"][i]))[: args.show]
        print(f"\n{name}: the lines that moved most")
        for i in moved:
            print(f"  {flat[i].end - flat[i].start:.1f} s  {names[0]}: {reference[i]!r}\n         {name}: "
                  f"{results[name]['english'][i]!r}")
    if args.json:
        Path(args.json).write_text(json.dumps({"transcribe_s": [transcribe_wall, transcribe_cpu], "variants": results,
                                               "farsi": [line.text for line in flat]},
                                              ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
