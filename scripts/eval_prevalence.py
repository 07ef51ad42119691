"""False flags at real prevalence: the shipped lexicon over all the development speech.

    nice -n 5 .venv/bin/python scripts/eval_prevalence.py transcribe --part calibration            # CPU heavy
    nice -n 5 .venv/bin/python scripts/eval_prevalence.py transcribe --part held-out --radio
    .venv/bin/python scripts/eval_prevalence.py calibrate   # confusion priors from the calibration part
    .venv/bin/python scripts/eval_prevalence.py fit         # the flag scorer, calibration part, real prevalence
    .venv/bin/python scripts/eval_prevalence.py report      # false flags / 10 min and recall, held-out part
    .venv/bin/python scripts/eval_prevalence.py --beam-size 3 transcribe ...   # another decoding beam, its own caches
    .venv/bin/python scripts/eval_prevalence.py --repetition-penalty 1.1 transcribe ...   # a first-pass penalty, ditto
    .venv/bin/python scripts/eval_prevalence.py --first-call-tokens 200 transcribe ...    # a first-call token cap, ditto

`report` prints, per part, condition and model, issue 28's targets met or not, and the recall
bound: the coded mentions with any candidate at all in what the recogniser wrote.

Data: every clip of ../shared/eval/cv_fa and ../shared/eval/fa_virgool (no selection by length).
  calibration  cv_fa speakers spk001 and spk003 (1,766 clips; the split helper 24adapt trains its
               adapted model on). Priors, the scorer and every setting are chosen here only.
  held-out     the other 40 cv_fa speakers and fa_virgool. Reported, never fitted on.
Each clip is heard as recorded ("clean") and through the project's simulated radio channel
(scripts/make_samples.radio_transmission: band-pass, compression, hiss at 10-18 dB, a second of
squelched near-silence either side), and recognised by the product's engine the way the
pipeline recognises a folder of short recordings: pooled (packing.RecordingPool) and joined
into shared 30 s windows (packing.join_recordings), with the engine's default options. The
engine's lines (text, words, N-best) are cached once per (part, condition, model, decoding settings) as JSON
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
from dataclasses import asdict, dataclass
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
# Issue 28's targets: the queue's false flags on ordinary speech, and the low end of the recall
# the issue measured (0.35-0.56, on 40 recordings this project does not have).
MAX_FALSE_PER_10MIN = 3.0
ISSUE_RECALL_FLOOR = 0.35
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


@dataclass(frozen=True)
class Decoding:
    """The decoding settings a cache was made with (TranscribeOptions' fields of those names);
    each has its own caches, named by `label`."""
    beam_size: int = 5
    repetition_penalty: float = 1.0
    first_call_tokens: Optional[int] = None
    no_repeat_ngram: int = 0

    @classmethod
    def of(cls, args) -> "Decoding":
        return cls(args.beam_size, args.repetition_penalty, args.first_call_tokens, args.no_repeat_ngram)

    @property
    def label(self) -> str:
        return (f"beam{self.beam_size}" + (f".rp{self.repetition_penalty:g}" if self.repetition_penalty != 1.0 else "")
                + (f".call{self.first_call_tokens}" if self.first_call_tokens else "")
                + (f".ban{self.no_repeat_ngram}" if self.no_repeat_ngram else ""))

    @property
    def args(self) -> str:
        """As a command line gives them."""
        return (f"--beam-size {self.beam_size}"
                + (f" --repetition-penalty {self.repetition_penalty:g}" if self.repetition_penalty != 1.0 else "")
                + (f" --first-call-tokens {self.first_call_tokens}" if self.first_call_tokens else "")
                + (f" --no-repeat-ngram {self.no_repeat_ngram}" if self.no_repeat_ngram else ""))


def cache_path(folder: Path, part: str, radio: bool, model: str, decoding: Decoding) -> Path:
    """The cache of one (part, condition, model, decoding settings)."""
    return folder / f"{part}.{'radio' if radio else 'clean'}.{model_label(model)}.{decoding.label}.jsonl"


def read_cache(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def model_label(model: str) -> str:
    return "base" if model in ("base", "") else Path(model).name


def transcribe(clips: list[Clip], cache: Path, radio: bool, model: str, threads: int, decoding: Decoding) -> None:
    """The clips through the product's engine, pooled as the pipeline pools short recordings;
    one JSON line per clip appended to `cache` (clips already there are skipped: an
    interrupted run resumes)."""
    from intercept.engines import TranscribeOptions, load_engine
    from intercept.models import resolve_model
    from intercept.engines import pack_options_for
    from intercept.packing import PoolOptions, RecordingPool, join_recordings, split_lines

    done = {row["source"] for row in read_cache(cache)}
    todo = [c for c in clips if c.source not in done]
    if not todo:
        return
    options = TranscribeOptions(cpu_threads=threads, **asdict(decoding))
    path = str(resolve_model(model).path) if model == "base" else model
    engine = load_engine("faster-whisper", path, model_label(model), options)
    pool = RecordingPool(PoolOptions(), pack_options_for(options))
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
                                      "beam": decoding.beam_size, "repetition_penalty": decoding.repetition_penalty,
                                      "first_call_tokens": decoding.first_call_tokens,
                                      "no_repeat_ngram": decoding.no_repeat_ngram,
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


# ---------------------------------------------------------------- the evaluation lexicon

# Held back: coded-sounding concepts that no calibration reference holds (checked on the
# calibration references only, by prefix), so their priors are the calibration's base rates,
# as a new analyst's term would be. Chosen by that rule from military words before any result.
HELD_BACK = (
    ("hb_battery", "weapon", "آتشبار", "artillery battery"),
    ("hb_night_raid", "operation", "شبیخون", "night raid"),
    ("hb_trench", "place", "سنگر", "trench"),
    ("hb_garrison", "place", "پادگان", "garrison"),
    ("hb_spy", "operation", "جاسوس", "spy"),
    ("hb_hostage", "operation", "گروگان", "hostage"),
)


def held_back_file(folder: Path) -> Path:
    import yaml

    path = folder / "held_back.yaml"
    path.write_text(yaml.safe_dump({"name": "held_back", "concepts": [
        {"id": cid, "category": category, "severity": "medium", "fa": [form], "en": [gloss]}
        for cid, category, form, gloss in HELD_BACK]}, allow_unicode=True), encoding="utf-8")
    return path


def lexicons(normalizer, calibration) -> dict:
    """{"shipped": the shipped lexicon, "evaluation": shipped + held-back terms}, with
    `calibration` attached (None: the hand-set priors alone)."""
    import tempfile

    from intercept.lexicon import Lexicon, default_lexicon_path

    folder = Path(tempfile.mkdtemp(prefix="eval_prevalence_"))
    shipped = Lexicon.load(default_lexicon_path(), normalizer=normalizer, calibrated=False)
    evaluation = Lexicon.load(default_lexicon_path(), held_back_file(folder), normalizer=normalizer, calibrated=False)
    return {"shipped": shipped.with_calibration(calibration), "evaluation": evaluation.with_calibration(calibration)}


# ---------------------------------------------------------------- margins (acoustic check), cached


class CachedMargins:
    """intercept.acoustic's margins through the product's engine on each clip's audio (as
    recorded or re-created through the radio channel, seeded as when it was transcribed),
    cached in CACHE/margins.jsonl by (condition, model, clip, span, text); with the check's
    encoder context cut (`TranscribeOptions.score_context_s`), in CACHE/margins.ctxN.jsonl."""

    def __init__(self, cache: Path, model: str = "base", context_s: Optional[float] = None):
        self.path = cache / ("margins.jsonl" if context_s is None else f"margins.ctx{context_s:g}.jsonl")
        self.model = model
        self.context_s = context_s
        self.known: dict[tuple, Optional[list]] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    item = json.loads(line)
                    self.known[tuple(item["key"])] = item["score"]
        self.engine = None
        self.clips = {c.source: c for c in all_clips()}
        self.offline = False  # True: never decode, unknown margins stay None

    def for_row(self, row: dict):
        from intercept.acoustic import EngineMargins

        self.row, self.samples = row, None
        return EngineMargins(self, _Length(row), 16000)

    def score_texts(self, _samples, start, end, texts, sample_rate=16000):
        from intercept.types import Hypothesis

        tag = ("radio" if self.row.get("radio") else "clean", self.row.get("model", "base"), self.row["source"])
        keys = [tag + (round(start, 3), round(end, 3), text) for text in texts]
        missing = [(key, text) for key, text in zip(keys, texts) if key not in self.known]
        if missing and not self.offline:
            if self.samples is None:
                self.samples, _ = heard(self.clips[self.row["source"]], bool(self.row.get("radio")))
            found = self._engine().score_texts(self.samples, start, end, [t for _, t in missing], sample_rate)
            with self.path.open("a", encoding="utf-8") as out:
                for (key, _), hyp in zip(missing, found):
                    self.known[key] = None if hyp is None else [hyp.avg_logprob, hyp.tokens]
                    out.write(json.dumps({"key": list(key), "score": self.known[key]}, ensure_ascii=False) + "\n")
        return [None if self.known.get(key) is None else Hypothesis(text, *self.known[key])
                for key, text in zip(keys, texts)]

    def _engine(self):
        if self.engine is None:
            from intercept.engines import TranscribeOptions, load_engine
            from intercept.models import resolve_model

            path = str(resolve_model(self.model).path) if self.model == "base" else self.model
            self.engine = load_engine("faster-whisper", path, model_label(self.model),
                                      TranscribeOptions(cpu_threads=2, score_context_s=self.context_s))
        return self.engine


class _Length:
    """All EngineMargins reads of the samples is their length: the audio is made only when a
    text is not cached."""

    def __init__(self, row: dict):
        self.n = int(round((row["duration_s"] + (2.6 if row.get("radio") else 0.0)) * 16000))

    def __len__(self):
        return self.n


# ---------------------------------------------------------------- candidates and scores


@dataclass
class Found:
    """One clip: its truth and every candidate flag with evidence."""

    source: str
    seconds: float
    truth: set
    candidates: list


def candidates_of(rows: list[dict], lexicon, normalizer, margins: Optional[CachedMargins]) -> list[Found]:
    from eval_flags_real import cached_lines

    from intercept.acoustic import AcousticCheck
    from intercept.lexicon.calibration import reference_concepts
    from intercept.scoring import flag_evidence

    check = AcousticCheck(lexicon)
    out = []
    for row in rows:
        lines = cached_lines(row, normalizer)
        per_line = lexicon.flag_lines(lines)
        if margins is not None:
            per_line = check.check(lines, per_line, margins.for_row(row))
        candidates = [c for line in flag_evidence(lines, per_line, lexicon, normalizer) for c in line]
        out.append(Found(row["source"], row["duration_s"], reference_concepts(lexicon, row["reference"], normalizer),
                         candidates))
    return out


def queue(found: list[Found], score, threshold: float) -> list[tuple]:
    """(clip, concept, score, right, best candidate) per (clip, concept) at or above the threshold."""
    out = []
    for clip in found:
        best = {}
        for c in clip.candidates:
            value = score(c)
            if c.flag.concept not in best or value > best[c.flag.concept][0]:
                best[c.flag.concept] = (value, c)
        out += [(clip.source, concept, value, concept in clip.truth, c)
                for concept, (value, c) in best.items() if value >= threshold]
    return out


def summary(found: list[Found], shown: list[tuple]) -> dict:
    minutes = sum(f.seconds for f in found) / 60.0
    wanted = sum(len(f.truth) for f in found)
    right = sum(1 for q in shown if q[3])
    false = len(shown) - right
    return {"clips": len(found), "minutes": minutes, "wanted": wanted, "shown": len(shown), "right": right,
            "false": false, "false_per_10min": 10.0 * false / minutes if minutes else float("nan"),
            "recall": right / wanted if wanted else float("nan"),
            "precision": right / len(shown) if shown else float("nan")}


def _form_of(c) -> str:
    return c.flag.term if c.flag.kind != "pattern" else c.flag.concept


# ---------------------------------------------------------------- calibration and fit


def calibration_rows(cache: Path, decoding: Decoding, radio: bool = False) -> list[dict]:
    return read_cache(cache_path(cache, "calibration", radio, "base", decoding))


def calibrate_action(args, normalizer) -> int:
    from intercept.calibration import model_identity
    from intercept.lexicon.calibration import Calibration, count_confusions, default_calibration_path

    from eval_flags_real import cached_lines

    rows = calibration_rows(args.cache, Decoding.of(args))
    lexicon = lexicons(normalizer, None)["shipped"]
    counts = count_confusions(((r["reference"], cached_lines(r, normalizer), r["duration_s"]) for r in rows),
                              lexicon, normalizer)
    identity = model_identity("base")
    command = f"python scripts/eval_prevalence.py {Decoding.of(args).args} calibrate"
    calibration = Calibration.from_counts(counts, identity, lexicon.version,
                                          [f"cv_fa speakers {' and '.join(CALIBRATION_SPEAKERS)}: {len(rows)} clips, as "
                                           f"recorded, decoded with beam {args.beam_size} (scripts/eval_prevalence.py, "
                                           "calibration part)"], command)
    path = calibration.save(args.out or default_calibration_path(lexicon.files, identity))
    worst = sorted(calibration.forms.values(), key=lambda c: (-c.written_wrong, c.prior))[:15]
    print(f"{len(rows)} clips, {counts.seconds / 60:.1f} min; base rates {calibration.base}; wrote {path}")
    for c in worst:
        print(f"  {c.concept:14} {c.form:10} {c.kind:7} wrong {c.written_wrong:3} right {c.written_right:3} "
              f"prior {c.prior:.3f}{'  invented' if c.invented else ''}")
    return 0


def _leave_one_out(total, clip_counts):
    """The calibration without one clip's counts (the fit must not see a prior that counted its own flag)."""
    from intercept.lexicon.calibration import Calibration, Confusions, FormCounts

    rest = Confusions()
    for key, c in total.forms.items():
        own = clip_counts.forms.get(key)
        wrong = c.written_wrong - (own.written_wrong if own else 0)
        right = c.written_right - (own.written_right if own else 0)
        if wrong + right:
            rest.forms[key] = FormCounts(c.concept, c.form, c.kind, wrong, right)
    rest.clips = total.clips - 1
    return Calibration.from_counts(rest, {"name": "leave-one-out"}, "")


def _loo_candidates(rows, clip_input, lexicon, normalizer, margins):
    """(evidence, agreed) of every supported candidate of the clips, each clip's priors
    calibrated on the other clips (leave one clip out), with this lexicon."""
    from intercept.lexicon.calibration import count_confusions

    total = count_confusions(clip_input, lexicon, normalizer)
    evidence, agreed = [], []
    for row, one in zip(rows, clip_input):
        own = count_confusions([one], lexicon, normalizer)
        calibrated = lexicon.with_calibration(_leave_one_out(total, own))
        for clip in candidates_of([row], calibrated, normalizer, margins):
            for c in clip.candidates:
                if not c.unsupported:  # capped below the threshold whatever the fit says
                    evidence.append(c.evidence)
                    agreed.append(c.flag.concept in clip.truth)
    return evidence, agreed


def fit_action(args, normalizer) -> int:
    """Refit the flag scorer on the calibration part, moved to the prevalence reviewers meet.

    Real coded mentions are too rare in the calibration part to fit on alone, so the rows are the
    candidates of the shipped lexicon plus STAND_INS stand-in code words drawn from the
    calibration references (eval_flags_real.stand_in_words: frequent content words, right far
    more often than a real code word). The model is fitted there without the prior, and the
    prevalence is then moved per form (FlagScorer.prior_shift): logit(score) = fitted -
    logit(right share of the fitting rows) + logit(the form's calibrated prior), the calibrated
    prior being that form's right share at the speech's own prevalence. Each candidate's prior
    is calibrated leave-one-clip-out; unsupported short or invented forms are left out (they
    are capped below the threshold anyway)."""
    import math
    import tempfile
    from dataclasses import replace

    from eval_flags_real import build_lexicon, cached_lines, stand_in_words

    from intercept.scoring import DEFAULT_SCORER_PATH, fit

    rows = calibration_rows(args.cache, Decoding.of(args))
    shipped = lexicons(normalizer, None)["shipped"]
    clip_input = [(r["reference"], cached_lines(r, normalizer), r["duration_s"]) for r in rows]
    margins = CachedMargins(args.cache, context_s=args.score_context)
    margins.offline = args.offline_margins
    real_evidence, real_agreed = _loo_candidates(rows, clip_input, shipped, normalizer, margins)
    known = {t.form.replace("\u200c", "") for t in shipped.terms}
    words = stand_in_words([r["reference"] for r in rows], normalizer, known)
    stand_in = build_lexicon(words, Path(tempfile.mkdtemp(prefix="eval_prevalence_")), normalizer, "calibration")
    evidence, agreed = _loo_candidates(rows, clip_input, stand_in.with_calibration(None), normalizer, margins)
    rate = sum(agreed) / len(agreed)
    command = f"python scripts/eval_prevalence.py {Decoding.of(args).args} fit"
    minutes = sum(r["duration_s"] for r in rows) / 60.0
    fitted = fit([e.without("prior") for e in evidence], agreed, version="", fitted_on="", command=command)
    scorer = replace(fitted, version=args.version, prior_shift=round(math.log(rate / (1.0 - rate)), 6),
                     fitted_on=(f"scripts/eval_prevalence.py calibration part: {len(rows)} real clips "
                                f"({minutes:.1f} min; cv_fa speakers {' and '.join(CALIBRATION_SPEAKERS)}) as "
                                f"recorded, embedded Whisper base, beam {args.beam_size}; shipped lexicon + {len(words)} stand-in words "
                                f"({sum(agreed)} right of {len(agreed)} candidates; the shipped lexicon's own: "
                                f"{sum(real_agreed)} of {len(real_agreed)}), fitted without the prior and moved "
                                f"to each form's calibrated prior (prior_shift); priors leave-one-clip-out; "
                                f"unsupported short/invented forms left out"))
    out = args.out or DEFAULT_SCORER_PATH
    Path(out).write_text(json.dumps(scorer.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"shipped lexicon: {sum(real_agreed)} right of {len(real_agreed)} candidates; with stand-ins: "
          f"{sum(agreed)} of {len(agreed)} (prior shift {scorer.prior_shift:+.2f}); wrote {out} ({scorer.version})")
    print("weights: " + ", ".join(f"{k} {v:+.2f}" for k, v in scorer.to_dict()["weights"].items())
          + f", bias {scorer.bias:+.2f}")
    return 0


# ---------------------------------------------------------------- the report


def report_action(args, normalizer) -> int:
    from collections import Counter

    from intercept.calibration import model_identity
    from intercept.lexicon.calibration import Calibration, default_calibration_path
    from intercept.scoring import DEFAULT_SCORER_PATH, DEFAULT_THRESHOLD, FlagScorer

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    identity = model_identity("base")
    lex_plain = lexicons(normalizer, None)
    cal_path = args.calibration or default_calibration_path(lex_plain["shipped"].files, identity)
    calibration = Calibration.load(cal_path)
    lex_cal = lexicons(normalizer, calibration)
    lex_old_cal = (lexicons(normalizer, Calibration.load(args.before_calibration))
                   if args.before_calibration else None)
    new = FlagScorer.load(args.scorer or DEFAULT_SCORER_PATH)
    old = FlagScorer.from_dict(json.loads(args.before.read_text(encoding="utf-8"))) if args.before else None
    margins = CachedMargins(args.cache, context_s=args.score_context)
    margins.offline = args.offline_margins
    print(f"Threshold {threshold}; scorer {new.version}; calibration {cal_path.name} ({calibration.clips} clips); "
          f"lexicon = shipped + {len(HELD_BACK)} held-back terms ({', '.join(h[2] for h in HELD_BACK)})\n")
    conditions = [(part, radio, model) for part in args.parts for radio in (False, True) for model in args.models]
    for part, radio, model in conditions:
        rows = read_cache(cache_path(args.cache, part, radio, model, Decoding.of(args)))
        if not rows:
            continue
        where = f"{part}, {'radio channel' if radio else 'as recorded'}, {model_label(model)}"
        plain = candidates_of(rows, lex_plain["evaluation"], normalizer, margins)
        calib = candidates_of(rows, lex_cal["evaluation"], normalizer, margins)
        variants = []
        if lex_old_cal is not None:
            old_calib = candidates_of(rows, lex_old_cal["evaluation"], normalizer, margins)
            before_at = args.before_threshold or threshold
            variants.append((f"scorer {new.version}, calibration {args.before_calibration.name} + support rule, "
                             f"threshold {before_at:g}", old_calib, lambda c: c.score(new), before_at))
        if old is not None:
            variants.append((f"before: scorer {old.version}, hand-set priors, no support rule",
                             plain, lambda c, s=old: s.score(c.evidence)))
        variants += [
            (f"scorer {new.version}, hand-set priors, no support rule", plain, lambda c: new.score(c.evidence)),
            (f"scorer {new.version}, calibrated priors, no support rule", calib, lambda c: new.score(c.evidence)),
            (f"scorer {new.version}, hand-set priors + support rule", plain, lambda c: c.score(new)),
            (f"**shipped now: scorer {new.version}, calibrated priors + support rule**", calib, lambda c: c.score(new)),
        ]
        print(f"### {where}: {len(rows)} clips, {sum(r['duration_s'] for r in rows) / 60:.1f} min, "
              f"{sum(len(f.truth) for f in calib)} coded mentions in the references\n")
        print("| variant | in queue | right | false | false / 10 min | recall | precision |")
        print("|---|---|---|---|---|---|---|")
        measured = {}
        for name, found, score, *at in variants:
            m = measured[name] = summary(found, queue(found, score, at[0] if at else threshold))
            print(f"| {name} | {m['shown']} | {m['right']} | {m['false']} | {m['false_per_10min']:.1f} | "
                  f"{m['recall']:.2f} | {m['precision']:.2f} |")
        # What no score or threshold can pass: a coded mention with no candidate of its concept
        # in what the recogniser wrote (its text and N-best) is missed by any queue.
        bound = summary(calib, queue(calib, lambda c: 1.0, 0.0))
        print(f"| recall bound: every candidate of any score (what the recogniser wrote) | {bound['shown']} | "
              f"{bound['right']} | {bound['false']} | {bound['false_per_10min']:.1f} | {bound['recall']:.2f} | "
              f"{bound['precision']:.2f} |")
        shipped_row = measured[variants[-1][0]]
        before_row = next((measured[n] for n in measured if n.startswith("before:")), None)
        print(f"\nTargets (issue 28), {where}:")
        print(f"- at most {MAX_FALSE_PER_10MIN:g} false flags / 10 min in the queue: "
              f"{shipped_row['false_per_10min']:.1f}: {'met' if shipped_row['false_per_10min'] <= MAX_FALSE_PER_10MIN else 'NOT met'}")
        if before_row is not None:
            print(f"- recall no lower than before ({old.version}, hand-set priors, on these clips: "
                  f"{before_row['right']} of {before_row['wanted']}): {shipped_row['right']} of {shipped_row['wanted']}: "
                  f"{'met' if shipped_row['right'] >= before_row['right'] else 'NOT met'}")
        floor_met = "met" if shipped_row["recall"] >= ISSUE_RECALL_FLOOR else "NOT met"
        why = "" if bound["recall"] >= ISSUE_RECALL_FLOOR else f" (no score can meet it here: the bound is {bound['recall']:.2f})"
        print(f"- recall at least {ISSUE_RECALL_FLOOR:g} (the low end of the issue's 0.35-0.56, measured on other "
              f"speech): {shipped_row['recall']:.2f}: {floor_met}{why}")
        shown = queue(calib, lambda c: c.score(new), threshold)
        false_by = Counter((q[4].flag.kind, _form_of(q[4])) for q in shown if not q[3])
        kinds = Counter(q[4].flag.kind for q in shown if not q[3])
        print("\nFalse flags in the queue (shipped now) by kind: " + (", ".join(f"{k} {n}" for k, n in kinds.most_common()) or "none")
              + "; by form: " + (", ".join(f"{f} ({k}) {n}" for (k, f), n in false_by.most_common()) or "none"))
        wanted = Counter(c for f in calib for c in f.truth)
        got = Counter(q[1] for q in shown if q[3])
        print("Coded mentions (found/present): " + ", ".join(f"{c} {got[c]}/{n}" for c, n in wanted.most_common()) + "\n")
        if args.thresholds:  # the shipped queue by threshold (how the queue threshold is chosen)
            print("| threshold | in queue | right | false | false / 10 min | recall |")
            print("|---|---|---|---|---|---|")
            for at in args.thresholds:
                m = summary(calib, queue(calib, lambda c: c.score(new), at))
                print(f"| {at:g} | {m['shown']} | {m['right']} | {m['false']} | {m['false_per_10min']:.1f} | "
                      f"{m['recall']:.2f} |")
            print()
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    from eval_flags_real import score_context

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("transcribe", "list", "calibrate", "fit", "report"))
    parser.add_argument("--cache", type=Path, default=CACHE, help="folder of the recogniser-output caches")
    parser.add_argument("--part", choices=PARTS + ("both",), default="both")
    parser.add_argument("--radio", action="store_true", help="transcribe: through the simulated radio channel")
    parser.add_argument("--model", default="base", help="transcribe: 'base' (embedded) or a CTranslate2 folder")
    parser.add_argument("--threads", type=int, default=2, help="transcribe: CPU threads of the engine")
    parser.add_argument("--limit", type=int, default=0, help="transcribe: at most this many clips per part (0: all)")
    parser.add_argument("--out", type=Path, default=None,
                        help="calibrate: the calibration file; fit: the scorer file  [default: the shipped ones]")
    parser.add_argument("--version", default="2026-12-02-prevalence1", help="fit: the scorer's version")
    parser.add_argument("--scorer", type=Path, default=None, help="report: the scorer  [default: the shipped one]")
    parser.add_argument("--before", type=Path, default=None, help="report: an older scorer file to show beside it")
    parser.add_argument("--before-calibration", type=Path, default=None,
                        help="report: an older calibration file to show beside the shipped one")
    parser.add_argument("--thresholds", type=lambda v: [float(x) for x in v.split(",") if x], default=[],
                        help="report: also the shipped queue at each of these comma-separated thresholds")
    parser.add_argument("--before-threshold", type=float, default=None,
                        help="report: the queue threshold of the --before-calibration row [default: the shipped one]")
    parser.add_argument("--parts", nargs="+", default=["held-out"], choices=PARTS, help="report: which parts")
    parser.add_argument("--models", nargs="+", default=["base"], help="report: models whose caches to report")
    parser.add_argument("--beam-size", type=int, default=None,
                        help="the decoding beam: transcribe decodes with it, every action reads and writes its "
                             "caches  [default: the engine's, TranscribeOptions.beam_size]")
    parser.add_argument("--repetition-penalty", type=float, default=None,
                        help="the first-pass repetition penalty: transcribe decodes with it, every action reads "
                             "and writes its caches  [default: TranscribeOptions.repetition_penalty]")
    parser.add_argument("--first-call-tokens", type=int, default=None,
                        help="the first decode's token cap per call: transcribe decodes with it, every action reads "
                             "and writes its caches  [default: TranscribeOptions.first_call_tokens]")
    parser.add_argument("--no-repeat-ngram", type=int, default=None,
                        help="transcribe/calibrate/fit/report: the first-pass n-gram ban (0: off), with caches of "
                             "its own  [default: TranscribeOptions.no_repeat_ngram]")
    parser.add_argument("--calibration", type=Path, default=None,
                        help="report: the calibration file  [default: the shipped one]")
    parser.add_argument("--threshold", type=float, default=None,
                        help="report: the queue threshold  [default: intercept.scoring.DEFAULT_THRESHOLD]")
    # argparse passes a string default through `type` too, so the default is resolved there.
    parser.add_argument("--score-context", type=score_context, default="default",
                        help="fit/report: the acoustic check's encoder context in seconds ('none': 30 s), each "
                             "with its own margins cache  [default: TranscribeOptions.score_context_s]")
    parser.add_argument("--offline-margins", action="store_true",
                        help="fit/report: only cached acoustic margins (unknown otherwise), never decode")
    args = parser.parse_args(argv)
    from intercept.engines import TranscribeOptions
    from intercept.text import PersianNormalizer

    if args.beam_size is None:
        args.beam_size = TranscribeOptions().beam_size
    if args.repetition_penalty is None:
        args.repetition_penalty = TranscribeOptions().repetition_penalty
    if args.first_call_tokens is None:
        args.first_call_tokens = TranscribeOptions().first_call_tokens
    if args.no_repeat_ngram is None:
        args.no_repeat_ngram = TranscribeOptions().no_repeat_ngram

    if args.action in ("calibrate", "fit", "report"):
        normalizer = PersianNormalizer()
        return {"calibrate": calibrate_action, "fit": fit_action, "report": report_action}[args.action](args, normalizer)
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
        decoding = Decoding.of(args)
        transcribe(own, cache_path(args.cache, part, args.radio, args.model, decoding),
                   args.radio, args.model, args.threads, decoding)
    return 0


if __name__ == "__main__":
    sys.exit(main())
