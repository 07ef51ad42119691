#!/usr/bin/env python3
"""What each decoding setting costs and buys on the 10-minute real-speech session (issue 25).

The session of `scripts/bench_asr.py --corpora session` (scripts/make_session.py
--speech-corpus fa_virgool: 11 transmissions of real Persian speech keyed through the
simulated radio channel, squelch tails and key-ups between them) is decoded and cut into
transmissions once, as `intercept run` does; then intercept's FasterWhisperEngine
transcribes those transmissions under each setting, the settings alternated round by round in
one process (the model loaded once), so that the load of a shared machine hits all alike.

Per setting: process CPU seconds and wall seconds of the transcription, the CTranslate2
calls made (encoder passes, beam searches and their batch sizes, tokens decoded, alignments),
how many windows were decoded again by the loop guard, how many windows were decoded at all
(packs, and transmissions decoded again alone), and the WER over transmissions (each
line credited to the reference transmission it overlaps, as bench_asr.py does), transmissions
missed, words written in silence, and the 95% paired-bootstrap interval of the WER difference
to the first setting.

    .venv/bin/python scripts/bench_session_decode.py --variants default,beam3,no-words --rounds 1
    .venv/bin/python scripts/bench_session_decode.py --threads 2 --json out.json
    .venv/bin/python scripts/bench_session_decode.py --threads 1 --variants retry,ban8,ban12 \
        --also audio_samples/bird_or_fox.ogg   # and each recording's lines against the first setting's
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

# TranscribeOptions overrides per setting ("default": the shipped options; "banN": every
# transcribe decode bans repeated N-grams, TranscribeOptions.no_repeat_ngram, off by default).
VARIANTS = {
    "default": {},
    "sequential": dict(decode_batch=1),
    "beam1": dict(beam_size=1),
    "beam2": dict(beam_size=2),
    "beam3": dict(beam_size=3),
    "beam4": dict(beam_size=4),
    "beam5": dict(beam_size=5),
    "beam3-alt5": dict(beam_size=3, alternatives=5),
    "no-nbest": dict(alternatives=0),
    "no-words": dict(word_evidence=False),
    "no-evidence": dict(alternatives=0, word_evidence=False),
    "no-retry": dict(loop_retry_ngram=0),
    "rp1.02": dict(repetition_penalty=1.02),
    "rp1.05": dict(repetition_penalty=1.05),
    "rp1.1": dict(repetition_penalty=1.1),
    "rp1.2": dict(repetition_penalty=1.2),
    # capN: the first decode asks for at most N tokens per CTranslate2 call (first_call_tokens)
    "cap48": dict(first_call_tokens=48),
    "cap64": dict(first_call_tokens=64),
    "cap96": dict(first_call_tokens=96),
    "cap128": dict(first_call_tokens=128),
    "cap160": dict(first_call_tokens=160),
    "cap200": dict(first_call_tokens=200),
    "ban3": dict(no_repeat_ngram=3),
    "ban4": dict(no_repeat_ngram=4),
    "ban5": dict(no_repeat_ngram=5),
    "ban6": dict(no_repeat_ngram=6),
    "ban8": dict(no_repeat_ngram=8),
    "ban10": dict(no_repeat_ngram=10),
    "ban12": dict(no_repeat_ngram=12),
    "ban16": dict(no_repeat_ngram=16),
    "ban20": dict(no_repeat_ngram=20),
    "ban24": dict(no_repeat_ngram=24),
    # ...without decoding again alone a transmission where the ban acted because of another
    # transmission of its window (core.Decoder._split_pack), as before that existed
    "ban6-windowwide": dict(no_repeat_ngram=6, per_transmission=False),
    "ban8-windowwide": dict(no_repeat_ngram=8, per_transmission=False),
    "ban12-windowwide": dict(no_repeat_ngram=12, per_transmission=False),
    "ban3-beam3": dict(no_repeat_ngram=3, beam_size=3),
    "ban3-beam2": dict(no_repeat_ngram=3, beam_size=2),
    "ban4-beam3": dict(no_repeat_ngram=4, beam_size=3),
    "ban4-beam2": dict(no_repeat_ngram=4, beam_size=2),
    # per_call: transmissions per engine call (pipeline.TRANSMISSIONS_PER_CALL), so windows per batch
    "ban4-call64": dict(no_repeat_ngram=4, per_call=64),
    "ban4-call64-seq": dict(no_repeat_ngram=4, per_call=64, decode_batch=1),
    "call64": dict(per_call=64),
    "retry": dict(no_repeat_ngram=0),  # the loop guard as before issue 25: ban only on a retry
    # faster-whisper's BatchedInferencePipeline over the whole session (its own Silero VAD),
    # batch 8, its defaults: not intercept's transmissions
    "fw-batched": None,
    "tps20": dict(tokens_per_second=20.0),
    "tps15": dict(tokens_per_second=15.0),
    "no-timestamps": dict(transcribe_timestamps=False),
    # how transmissions are laid out in a window (PackOptions): the silence between them, the
    # window's length, or no packing at all
    "gap0.5": dict(pack_gap_s=0.5),
    "gap1": dict(pack_gap_s=1.0),
    "gap3": dict(pack_gap_s=3.0),
    "window20": dict(pack_window_s=20.0),
    "window25": dict(pack_window_s=25.0),
    "window22": dict(pack_window_s=22.0),
    "window18": dict(pack_window_s=18.0),
    "window15": dict(pack_window_s=15.0),
    "no-pack": dict(pack=False),
}


class CallLog:
    """The CTranslate2 model under faster-whisper, each call counted (kind, batch, tokens)."""

    def __init__(self, model):
        self._model = model
        self.reset()

    def reset(self) -> None:
        self.calls = {"encode": 0, "generate": 0, "align": 0}
        self.generate_rows = []  # windows per beam search
        self.tokens = 0
        self.retries = 0
        self.windows = 0  # first decodes of a window (packs, and transmissions alone)

    @classmethod
    def attach(cls, engine) -> "CallLog":
        """A log of a FasterWhisperEngine's CTranslate2 calls and of its window decodes (first
        decodes and loop retries), installed on the engine."""
        log = cls(engine._batching._model)
        engine._batching._model = log
        decode = engine.decode

        def counted(audio, task, max_new_tokens, loop_retry=False, **kwargs):
            log.retries += bool(loop_retry)
            log.windows += not loop_retry
            return decode(audio, task, max_new_tokens, loop_retry=loop_retry, **kwargs)

        engine.decode = counted
        return log

    def __getattr__(self, name):
        return getattr(self._model, name)

    def encode(self, features, to_cpu=False):
        self.calls["encode"] += 1
        return self._model.encode(features, to_cpu=to_cpu)

    def generate(self, encoder_output, prompts, **kwargs):
        self.calls["generate"] += 1
        self.generate_rows.append(len(prompts))
        results = self._model.generate(encoder_output, prompts, **kwargs)
        self.tokens += sum(len(r.sequences_ids[0]) for r in results)
        return results

    def align(self, *args, **kwargs):
        self.calls["align"] += 1
        return self._model.align(*args, **kwargs)


def session_transmissions(minutes: float, session: str = ""):
    from bench_asr import VIRGOOL, generated_session

    from intercept.audio import decode
    from intercept.config import RunOptions
    from intercept.segment import SegmentOptions, find_transmissions

    if session:  # a session written by make_session.py, its manifest beside it
        info = next(iter(json.loads(Path(session + ".json").read_text(encoding="utf-8"))["recordings"].values()))
        item = {"path": session, "transmissions": [(t["start"], t["end"], t["text_fa"]) for t in info["transmissions"]]}
    else:
        item = generated_session(minutes, 0.13, speech_corpus=VIRGOOL)[0]
    audio = decode(item["path"])
    transmissions = list(find_transmissions(audio.samples, audio.sample_rate,
                                            SegmentOptions(method=RunOptions().segment_method)))
    return item, audio.samples, transmissions


def recording_transmissions(path: str):
    """A recording's samples and its transmissions, as `intercept run` finds them."""
    from intercept.audio import decode
    from intercept.config import RunOptions
    from intercept.segment import SegmentOptions, find_transmissions

    audio = decode(path)
    return audio.samples, list(find_transmissions(audio.samples, audio.sample_rate,
                                                  SegmentOptions(method=RunOptions().segment_method)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="retry,default,sequential,no-evidence,beam3,fw-batched",
                        help=f"from: {', '.join(VARIANTS)}")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--session", default="", help="another make_session.py session (OUT.wav, OUT.wav.json "
                        "beside it); default: bench_asr.py's real-speech session")
    parser.add_argument("--also", default="", help="comma-separated recordings (e.g. audio_samples/bird_or_fox.ogg) "
                        "also transcribed under each setting: their lines compared with the first setting's")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    names = [v for v in args.variants.split(",") if v]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}")

    from bench_asr import by_transmission, paired_bootstrap

    from intercept.engines import TranscribeOptions, load_engine, pack_options_for
    from intercept.evaluate import ErrorRateScorer
    from intercept.models import resolve_model
    from intercept.pipeline import TRANSMISSIONS_PER_CALL
    from intercept.types import Line

    item, samples, transmissions = session_transmissions(args.minutes, args.session)
    extra = {path: recording_transmissions(path) for path in args.also.split(",") if path}
    base = TranscribeOptions(compute_type="float32", cpu_threads=args.threads)
    engine = load_engine("faster-whisper", str(resolve_model("base").path), "base", base)
    log = CallLog.attach(engine)
    ban_spans = engine._ban_spans
    print(f"session {item['path']}: {len(item['transmissions'])} reference transmissions, "
          f"{len(transmissions)} found; threads {args.threads}; load average {os.getloadavg()[0]:.1f}", flush=True)

    results = {name: {"cpu_s": [], "wall_s": []} for name in names}
    for round_ in range(args.rounds):
        for name in names:
            settings = dict(VARIANTS[name] or {})
            per_call = settings.pop("per_call", TRANSMISSIONS_PER_CALL)
            engine._ban_spans = ban_spans if settings.pop("per_transmission", True) else (lambda *args: [])
            engine.options = replace(base, **settings)
            engine.pack_options = pack_options_for(engine.options)
            engine._room = None
            log.reset()
            cpu, wall = time.process_time(), time.perf_counter()
            if VARIANTS[name] is None:
                from faster_whisper import BatchedInferencePipeline

                segments, _ = BatchedInferencePipeline(engine.model).transcribe(samples, language="fa", batch_size=8)
                lines = [Line(s.start, s.end, s.text.strip()) for s in segments]
            else:
                lines = []
                for first in range(0, len(transmissions), per_call):  # as pipeline.py groups them
                    lines.extend(engine.transcribe(samples, transmissions[first: first + per_call], 16000))
            r = results[name]
            r["cpu_s"].append(time.process_time() - cpu)
            r["wall_s"].append(time.perf_counter() - wall)
            r.update(calls=dict(log.calls), rows=list(log.generate_rows), tokens=log.tokens, retries=log.retries,
                     windows=log.windows,
                     lines=[(line.start, line.end, line.text) for line in lines],
                     with_words=sum(1 for line in lines if line.words),
                     with_nbest=sum(1 for line in lines if line.alternatives))
            print(f"  round {round_ + 1} {name}: {r['cpu_s'][-1]:.1f} CPU s, {r['wall_s'][-1]:.1f} s, "
                  f"load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
            if VARIANTS[name] is not None and round_ == 0:
                r["also"] = {}
                for path, (audio, found) in extra.items():
                    log.reset()
                    cpu = time.process_time()
                    got = [(line.start, line.end, line.text) for line in engine.transcribe(audio, found, 16000)]
                    r["also"][path] = dict(lines=got, cpu_s=time.process_time() - cpu, retries=log.retries,
                                           windows=log.windows, tokens=log.tokens)

    scorer = ErrorRateScorer()
    first = None
    print("\n| setting | CPU s | x first | wall s | encodes | beam searches (windows each) | tokens | loop retries "
          "| windows decoded | aligns | WER over transmissions | missed | words in silence | WER - first's, 95% |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        r = results[name]
        aligned = by_transmission([item], [r["lines"]])
        r["wer"] = scorer.score_corpus(aligned["pairs"]).wer
        r["missed"], r["silent_words"], r["pairs"] = aligned["missed"], aligned["silent_words"], aligned["pairs"]
        cpu = min(r["cpu_s"])
        if first is None:
            first = r
            interval, ratio = "", 1.0
        else:
            low, high = paired_bootstrap(first["pairs"], r["pairs"])
            interval, ratio = f"{low:+.3f} .. {high:+.3f}", cpu / min(first["cpu_s"])
        print(f"| {name} | {cpu:.1f} | {ratio:.2f} | {min(r['wall_s']):.1f} | {r['calls']['encode']} | "
              f"{r['calls']['generate']} ({','.join(map(str, r['rows']))}) | {r['tokens']} | {r['retries']} | {r['windows']} | "
              f"{r['calls']['align']} | {r['wer']:.3f} | {r['missed']} | {r['silent_words']} | {interval} |")
    for path in extra:
        print(f"\n{path}, against {names[0]}:")
        reference = results[names[0]].get("also", {}).get(path, {}).get("lines", [])
        for name in names:
            got = results[name].get("also", {}).get(path)
            if got is None:
                continue
            same = sum(1 for line in got["lines"] if line in reference)
            print(f"  {name}: {len(got['lines'])} lines, {same} identical; {got['tokens']} tokens, "
                  f"{got['retries']} loop retries, {got['windows']} windows decoded, {got['cpu_s']:.1f} CPU s")
            for line in got["lines"]:
                if line not in reference:
                    print(f"    {line[0]:.2f}-{line[1]:.2f} {line[2]}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
