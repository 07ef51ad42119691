"""Flags a reviewer can trust, measured on real Persian speech with STAND-IN code words: precision,
recall, false flags per 10 minutes and precision of the top-scored half, at the default
threshold, with an ablation of each piece of recogniser evidence.

What it measures: how the flag score ranks flags when the "code words" are the references' 40
most frequent content words, i.e. at a prevalence far above real traffic (frequent words are
well recognised and dense, so easy hits swamp the false alarms). For false flags at the
prevalence a reviewer meets, and for the shipped scorer's fit, see scripts/eval_prevalence.py
(issue 28); `report --write-scorer` here writes the older, stand-in fit.

    .venv/bin/python scripts/eval_flags_real.py transcribe        # recogniser outputs -> out/eval_flags/ (CPU heavy)
    .venv/bin/python scripts/eval_flags_real.py report            # tables (dev and held-out)
    .venv/bin/python scripts/eval_flags_real.py report --write-scorer   # re-fit intercept/data/flag_scorer.json on dev

    .venv/bin/python scripts/eval_flags_real.py check-engine --clips 20   # cached outputs vs the engine now

Data (real speech as recorded, one transmission per clip; with --radio each clip is first keyed
through the simulated radio channel of scripts/make_samples.py, hiss at 10-18 dB, a second of
squelched near-silence either side):
  dev       cv_fa clips of speaker spk001 (at least 3 words, in a fixed hash order, about 5 min)
            plus the 10 fa_virgool clips;
  held-out  cv_fa clips of the 40 smaller speakers (neither spk001 nor spk003), whose sentence
            does not occur in dev (about 5 min; 21 speakers). Nothing is fitted or chosen on it.
Lexicon: the shipped lexicons/ plus stand-in code words, one concept per word, chosen by one rule
from each part's OWN references (40 content words, most frequent first, ties in a fixed hash
order; hazm stop words, digits, shipped lexicon forms and words under 3 letters left out), so
the held-out check runs on terms the scorer never saw. Truth for a clip = the concepts this lexicon flags (exact, morph, pattern;
no fuzzy: the reference has no recognition noise) on its normalised reference. A flag counts per
(clip, concept): right when the concept is in the clip's truth.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
CV = Path("/work/shared/eval/cv_fa")
VIRGOOL = Path("/work/shared/eval/fa_virgool")
CACHE = ROOT / "out" / "eval_flags"  # recognised_dev.jsonl, recognised_held-out.jsonl (git-ignored)
SPLIT_SECONDS = 300.0  # per part: the recogniser runs at about 10 s a clip on the shared 2-core machine
STAND_INS = 40
LOOSE_THRESHOLD = 0.5  # the acoustic check's looser matching, reported beside the default (off)
MIN_CLIPS_PER_STAND_IN = 1
DEV_SPEAKER = "spk001"
UNUSED_SPEAKER = "spk003"  # the other big speaker: in neither part
SEED = 14
EVIDENCE = ("word_prob", "nbest_share", "prior", "confidence")
MODEL: Optional[str] = None  # --model: a CTranslate2 folder (an adapted model); None: the embedded base


def model_path() -> str:
    """The recogniser every step uses (transcription and the acoustic check's text scores)."""
    from intercept.models import embedded_model_dir

    return MODEL or str(embedded_model_dir())


@dataclass
class Clip:
    source: str
    split: str
    path: Path
    reference: str
    duration_s: float
    speaker: str = ""
    lines: list = field(default_factory=list)


# ---------------------------------------------------------------- data selection


def _order(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def select_clips(normalizer) -> list[Clip]:
    """The dev and held-out clips (see the module's docstring)."""
    info = {}
    with (CV / "clips_info.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            info[row["path"]] = row
    rows = []
    with (CV / "metadata.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            text = normalizer.normalize(row["transcript"])
            if len(text.split()) >= 3:
                rows.append((row, text, info[row["path"]]["speaker"]))
    rows.sort(key=lambda r: _order(r[0]["path"]))
    clips: list[Clip] = []
    dev_seconds, dev_sentences = 0.0, set()
    for row, text, speaker in rows:
        if speaker == DEV_SPEAKER and dev_seconds < SPLIT_SECONDS:
            clips.append(Clip("cv_fa/" + row["path"], "dev", CV / row["path"], row["transcript"],
                              float(row["duration_s"]), speaker))
            dev_seconds += float(row["duration_s"])
            dev_sentences.add(text)
    with (VIRGOOL / "metadata.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            clips.append(Clip("fa_virgool/" + row["path"], "dev", VIRGOOL / row["path"], row["transcript"],
                              float(row["duration_s"]), "virgool"))
            dev_sentences.add(normalizer.normalize(row["transcript"]))
    held_seconds = 0.0
    for row, text, speaker in rows:
        if speaker in (DEV_SPEAKER, UNUSED_SPEAKER) or text in dev_sentences or held_seconds >= SPLIT_SECONDS:
            continue
        clips.append(Clip("cv_fa/" + row["path"], "held-out", CV / row["path"], row["transcript"],
                          float(row["duration_s"]), speaker))
        held_seconds += float(row["duration_s"])
    return clips


# ---------------------------------------------------------------- recognition (cached)


def transcribe(clips: list[Clip], cache: Path, radio: bool = False) -> None:
    """Each clip through the radio channel and the product's engine (embedded Whisper base,
    TranscribeOptions defaults); text, words and N-best to `cache`, one JSON object a clip.
    Clips already in the cache are skipped, so an interrupted run resumes."""
    import numpy as np
    from make_samples import WORK_RATE, Utterance, near_silence, radio_transmission
    from make_session import clip_speech

    from intercept.audio import decode
    from intercept.engines import TranscribeOptions, load_engine
    from intercept.models import embedded_model_dir
    from intercept.types import Transmission

    done = {row["source"] for row in read_cache(cache)}
    # One thread: several processes (shards) share the machine's cores.
    engine = load_engine("faster-whisper", model_path(), "base", TranscribeOptions(cpu_threads=1))
    cache.parent.mkdir(parents=True, exist_ok=True)
    with cache.open("a", encoding="utf-8") as out:
        for clip in clips:
            if clip.source in done:
                continue
            if radio:
                rng = np.random.default_rng(int(_order(clip.source)[:8], 16) ^ SEED)
                speech = clip_speech(clip.path)
                audio, _offset, _length = radio_transmission(speech, Utterance(clip.reference, "",
                                                             snr_db=float(rng.uniform(10, 18))), rng)
                signal = np.concatenate([near_silence(rng, 1.0), audio, near_silence(rng, 1.0)]).astype(np.float32)
                keyed = Transmission(0, 1.0, 1.0 + audio.size / WORK_RATE)
            else:
                signal = decode(str(clip.path)).samples
                keyed = Transmission(0, 0.0, signal.size / WORK_RATE)
            source, rows = "engine", [_line_json(line) for line in engine.transcribe(signal, [keyed], WORK_RATE)]
            out.write(json.dumps({"source": clip.source, "split": clip.split, "speaker": clip.speaker,
                                  "reference": clip.reference, "duration_s": clip.duration_s,
                                  "evidence_from": source, "radio": radio, "lines": rows}, ensure_ascii=False) + "\n")
            out.flush()
            print(clip.split, clip.source, source, " / ".join(row["text"] for row in rows), file=sys.stderr)


def _line_json(line) -> dict:
    words = getattr(line, "words", None)
    alternatives = getattr(line, "alternatives", None)
    return {"start": line.start, "end": line.end, "text": line.text, "avg_logprob": line.avg_logprob,
            "confidence": getattr(line, "confidence", None),
            "words": None if words is None else [[w.text, w.start, w.end, w.probability] for w in words],
            "alternatives": None if alternatives is None else [[h.text, h.avg_logprob, h.tokens]
                                                               for h in alternatives]}


def cache_file(folder: Path, split: str, shard: str = "0of1") -> Path:
    return folder / f"recognised_{split}.{shard}.jsonl"


def read_caches(folder: Path, split: str) -> list[dict]:
    return [row for path in sorted(folder.glob(f"recognised_{split}.*.jsonl")) for row in read_cache(path)]


def read_cache(cache: Path) -> list[dict]:
    if not cache.exists():
        return []
    with cache.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def cached_lines(row: dict, normalizer):
    from intercept import types

    lines = []
    for n, item in enumerate(row["lines"]):
        line = types.Line(start=item["start"], end=item["end"], text=item["text"], transmission_idx=0,
                          avg_logprob=item["avg_logprob"])
        line.text_fa = normalizer.normalize(item["text"])
        if hasattr(line, "words"):
            line.confidence = item.get("confidence")
            line.words = None if item["words"] is None else [types.Word(*w) for w in item["words"]]
            line.alternatives = (None if item["alternatives"] is None
                                 else [types.Hypothesis(*h) for h in item["alternatives"]])
        lines.append(line)
    return lines


# ---------------------------------------------------------------- the evaluation lexicon


def stand_in_words(references: list[str], normalizer, known_forms: set[str]) -> list[str]:
    """STAND_INS content words of these references: most frequent (in clips) first, ties in a
    fixed hash order of the word (no hand choice)."""
    from hazm import stopwords_list

    from intercept.text import PersianTokenizer

    stop = {normalizer.normalize(w).replace("\u200c", "") for w in stopwords_list()}
    tokenizer = PersianTokenizer()
    clips_with = Counter()
    for reference in references:
        words = {w.replace("\u200c", "") for w in tokenizer.tokenize(normalizer.normalize(reference))}
        clips_with.update(w for w in words if len(w) >= 3 and w not in stop and w not in known_forms
                          and not any(ch.isdigit() for ch in w))
    ranked = sorted((w for w, n in clips_with.items() if n >= MIN_CLIPS_PER_STAND_IN),
                    key=lambda w: (-clips_with[w], _order(w)))
    return ranked[:STAND_INS]


def build_lexicon(words: list[str], folder: Path, normalizer, name: str):
    """The shipped lexicon plus one concept per stand-in word (a code word, medium severity)."""
    import yaml

    from intercept.lexicon import Lexicon, default_lexicon_path

    path = folder / f"standin_{name}.yaml"
    path.write_text(yaml.safe_dump({"name": f"standin_{name}", "concepts": [
        {"id": f"standin_{name}_{n:02d}", "category": "standin", "severity": "medium", "fa": [w]}
        for n, w in enumerate(words)]}, allow_unicode=True), encoding="utf-8")
    return Lexicon.load(default_lexicon_path(), path, normalizer=normalizer)


# ---------------------------------------------------------------- scoring


@dataclass
class Pair:
    """One (clip, concept) the recogniser's output was flagged for."""

    clip: str
    concept: str
    score: float
    right: bool
    alternative_only: bool


def score_context(value: str) -> Optional[float]:
    """--score-context: seconds, 'none' (Whisper's 30 s) or 'default' (the product's)."""
    if value == "default":
        from intercept.engines import TranscribeOptions

        return TranscribeOptions().score_context_s
    return None if value in ("", "none") else float(value)


class CachedMargins:
    """intercept.acoustic's margins through the product's engine (faster-whisper, embedded
    Whisper base) on each clip's audio as recorded: EngineMargins over an engine whose
    score_texts answers are cached in the git-ignored out/eval_flags/text_scores.jsonl by (clip,
    span, text), so a report re-run, or a change of the margin's formula, costs no decoding.
    With the check's encoder context cut (TranscribeOptions.score_context_s, the product's
    default 10 s), in text_scores.ctxN.jsonl: each context's margins are its own."""

    def __init__(self, cache: Path, context_s: Optional[float] = None):
        self.path = cache / ("text_scores.jsonl" if context_s is None else f"text_scores.ctx{context_s:g}.jsonl")
        self.context_s = context_s
        self.known: dict[tuple, Optional[list]] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                item = json.loads(line)
                self.known[tuple(item["key"])] = item["score"]
        self.engine = None
        self.row: dict = {}
        self.samples = None
        self.margins_of = None

    def for_clip(self, row: dict):
        import numpy as np

        from intercept.acoustic import EngineMargins

        self.row, self.samples = row, None
        # The length of the clip is all EngineMargins reads of the samples; score_texts below
        # decodes the clip itself, and only when a text is not cached.
        return EngineMargins(self, np.zeros(int(round(row["duration_s"] * 16000)), np.float32), 16000)

    def score_texts(self, _samples, start: float, end: float, texts, sample_rate: int = 16000):
        from intercept.types import Hypothesis

        keys = [(self.row["source"], round(start, 3), round(end, 3), text) for text in texts]
        missing = [(key, text) for key, text in zip(keys, texts) if key not in self.known]
        if missing:
            found = self._engine().score_texts(self._samples(), start, end, [t for _, t in missing], sample_rate)
            with self.path.open("a", encoding="utf-8") as out:
                for (key, _), hyp in zip(missing, found):
                    self.known[key] = None if hyp is None else [hyp.avg_logprob, hyp.tokens]
                    out.write(json.dumps({"key": list(key), "score": self.known[key]}, ensure_ascii=False) + "\n")
        return [None if self.known[key] is None else Hypothesis(text, *self.known[key])
                for key, text in zip(keys, texts)]

    def _engine(self):
        if self.engine is None:
            from intercept.engines import TranscribeOptions, load_engine
            self.engine = load_engine("faster-whisper", model_path(), "base",
                                      TranscribeOptions(score_context_s=self.context_s))
        return self.engine

    def _samples(self):
        if self.samples is None:
            if self.row.get("radio"):
                raise SystemExit("text scores of radio-keyed clips are not cached: run without --radio")
            from intercept.audio import decode

            corpus, _, rest = self.row["source"].partition("/")
            self.samples = decode(str((CV if corpus == "cv_fa" else VIRGOOL) / rest)).samples
        return self.samples


def clip_candidates(clips_rows: list[dict], lexicon, normalizer, margins: Optional[CachedMargins] = None) -> dict:
    """Per clip: (truth concepts, candidate flags with evidence, ids of the candidates that only
    the acoustic check's looser matching found)."""
    from intercept.acoustic import AcousticCheck, AcousticOptions
    from intercept.lexicon import MatchOptions
    from intercept.scoring import flag_evidence

    exact = lexicon.with_options(MatchOptions(fuzzy=False, english=False))
    # Loose matching on, so that the report can show the product's default (off) and the
    # looser option from the same candidates.
    check = AcousticCheck(lexicon, AcousticOptions(loose_threshold=LOOSE_THRESHOLD))
    out = {}
    for row in clips_rows:
        truth = {f.concept for f in exact.match(normalizer.normalize(row["reference"]))}
        lines = cached_lines(row, normalizer)
        per_line = lexicon.flag_lines(lines)
        found = {(n, f.concept, f.span_start, f.span_end) for n, flags in enumerate(per_line) for f in flags}
        if margins is not None:
            per_line = check.check(lines, per_line, margins.for_clip(row))
        loose = {(n, f.concept, f.span_start, f.span_end) for n, flags in enumerate(per_line) for f in flags} - found
        candidates, loose_ids = [], set()
        for n, line in enumerate(flag_evidence(lines, per_line, lexicon, normalizer)):
            for c in line:
                if (n, c.flag.concept, c.flag.span_start, c.flag.span_end) in loose and c.flag.kind == "fuzzy":
                    loose_ids.add(id(c))
                candidates.append(c)
        out[row["source"]] = (truth, candidates, loose_ids)
    return out


def _used(c, loose_ids, alternatives: bool, loose: bool) -> bool:
    from intercept.scoring import ALTERNATIVE

    return (alternatives or c.flag.kind != ALTERNATIVE) and (loose or id(c) not in loose_ids)


def _ablated(ablate, acoustic: bool) -> tuple:
    return tuple(ablate) + (() if acoustic else ("acoustic_margin",))


def pairs_of(data: dict, scorer, ablate=(), alternatives=True, acoustic=True, loose=False) -> list[Pair]:
    from intercept.scoring import ALTERNATIVE

    ablate = _ablated(ablate, acoustic)
    pairs = []
    for source, (truth, candidates, loose_ids) in data.items():
        best: dict[str, tuple[float, bool]] = {}
        for c in candidates:
            if not _used(c, loose_ids, alternatives, loose and acoustic):
                continue
            score = scorer.score(c.evidence.without(*ablate) if ablate else c.evidence)
            old = best.get(c.flag.concept)
            alt_only = c.flag.kind == ALTERNATIVE and (old is None or old[1])
            if old is None or score > old[0]:
                best[c.flag.concept] = (score, alt_only)
            elif not alt_only:
                best[c.flag.concept] = (old[0], False)
        pairs += [Pair(source, concept, s, concept in truth, a) for concept, (s, a) in best.items()]
    return pairs


def metrics(pairs: list[Pair], data: dict, minutes: float, threshold: float) -> dict:
    wanted = sum(len(truth) for truth, *_ in data.values())
    shown = [p for p in pairs if p.score >= threshold]
    right = sum(p.right for p in shown)
    ranked = sorted(pairs, key=lambda p: -p.score)
    top = ranked[: (len(ranked) + 1) // 2]
    return {"flags": len(shown), "right": right, "wanted": wanted,
            "precision": right / len(shown) if shown else float("nan"),
            "recall": right / wanted if wanted else float("nan"),
            "false_per_10min": 10.0 * (len(shown) - right) / minutes,
            "top_half_precision": sum(p.right for p in top) / len(top) if top else float("nan"),
            "alternative_right": sum(p.right for p in shown if p.alternative_only),
            "alternative_shown": sum(p.alternative_only for p in shown)}


def fit_on(data: dict, ablate=(), alternatives=True, command="", acoustic=True, loose=False):
    from intercept.scoring import fit

    ablate = _ablated(ablate, acoustic)
    rows, agreed = [], []
    for truth, candidates, loose_ids in data.values():
        for c in candidates:
            if not _used(c, loose_ids, alternatives, loose and acoustic):
                continue
            rows.append(c.evidence.without(*ablate) if ablate else c.evidence)
            agreed.append(c.flag.concept in truth)
    return fit(rows, agreed, version="", fitted_on="", command=command)


def _how_heard(rows: list[dict]) -> str:
    radio = {bool(r.get("radio")) for r in rows}
    return {frozenset({True}): "through the radio channel", frozenset({False}): "as recorded"}.get(
        frozenset(radio), "some through the radio channel")


class _EveryCandidate:
    """Every stored candidate shown: the most recall any score over these flags could give."""

    def score(self, evidence) -> float:
        return 1.0


class _MatchScoreOnly:
    """The score before this work: the text-match score alone."""

    def score(self, evidence) -> float:
        return evidence.match_score


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("transcribe", "margins", "report", "list", "check-engine"))
    parser.add_argument("--clips", type=int, default=20, help="check-engine: how many dev clips")
    # argparse passes a string default through `type` too, so the default is resolved there.
    parser.add_argument("--score-context", type=score_context, default="default",
                        help="margins/report: the acoustic check's encoder context in seconds ('none': 30 s), "
                             "each with its own cache  [default: TranscribeOptions.score_context_s]")
    parser.add_argument("--cache", type=Path, default=CACHE, help="folder of the recogniser-output caches")
    parser.add_argument("--split", choices=("dev", "held-out", "both"), default="both",
                        help="transcribe: which part (dev first gives a fit sooner)")
    parser.add_argument("--shard", default="0/1", help="transcribe: this process's share, I/N (clip n when n %% N == I)")
    parser.add_argument("--radio", action="store_true",
                        help="transcribe: key each clip through the simulated radio channel first")
    parser.add_argument("--write-scorer", action="store_true",
                        help="report: write the dev fit to intercept/data/flag_scorer.json")
    parser.add_argument("--version", default=None, help="the written scorer's version")
    parser.add_argument("--model", default=None,
                        help="a CTranslate2 model folder (e.g. from `intercept adapt`) instead of the embedded base; "
                             "its caches go to out/eval_flags/MODEL_NAME unless --cache is given")
    args = parser.parse_args(argv)
    global MODEL
    if args.model:
        MODEL = str(Path(args.model).resolve())
        if args.cache == CACHE:
            args.cache = CACHE / Path(args.model).name

    from intercept.text import PersianNormalizer

    normalizer = PersianNormalizer()
    if args.action in ("transcribe", "list"):
        clips = [c for c in select_clips(normalizer) if args.split in ("both", c.split)]
        if args.action == "list":
            for split in ("dev", "held-out"):
                part = [c for c in clips if c.split == split]
                print(f"{split}: {len(part)} clips, {sum(c.duration_s for c in part) / 60:.1f} min, "
                      f"{len({c.speaker for c in part})} speakers")
            return 0
        # One process per part and shard (--split dev --shard 0/2 ...) can run side by side.
        shard, shards = (int(x) for x in args.shard.split("/"))
        for split in ("dev", "held-out"):
            part = [c for n, c in enumerate(c for c in clips if c.split == split) if n % shards == shard]
            if part:
                transcribe(part, cache_file(args.cache, split, f"{shard}of{shards}"), args.radio)
        return 0
    if args.action == "check-engine":
        return check_engine(args, normalizer)
    if args.action == "margins":  # fill the margin cache of one part (one process per part)
        report_data(args, normalizer, [args.split] if args.split != "both" else ["dev", "held-out"])
        return 0
    return report(args, normalizer)


def _dev_lexicon(rows: list[dict], normalizer):
    from intercept.lexicon import Lexicon, default_lexicon_path

    shipped_forms = {t.form.replace("\u200c", "") for t in Lexicon.load(default_lexicon_path(),
                                                                         normalizer=normalizer).terms}
    words = stand_in_words([r["reference"] for r in rows], normalizer, shipped_forms)
    return build_lexicon(words, Path(tempfile.mkdtemp(prefix="eval_flags_")), normalizer, "dev"), words


def check_engine(args, normalizer) -> int:
    """How far the cached recogniser outputs are from what the product's engine gives now:
    the first --clips dev clips through engine.transcribe (TranscribeOptions defaults, the
    evidence it keeps), compared on text and on the concepts flagged and queued."""
    from intercept.audio import decode
    from intercept.engines import TranscribeOptions, load_engine
    from intercept.models import embedded_model_dir
    from intercept.scoring import DEFAULT_THRESHOLD, default_scorer, flag_evidence
    from intercept.types import Transmission

    rows = read_caches(args.cache, "dev")
    lexicon, _ = _dev_lexicon(rows, normalizer)
    scorer = default_scorer()
    engine = load_engine("faster-whisper", str(embedded_model_dir()), "base", TranscribeOptions())
    same_text = same_flagged = same_queued = 0
    checked = rows[: args.clips]
    for row in checked:
        corpus, _, rest = row["source"].partition("/")
        audio = decode(str((CV if corpus == "cv_fa" else VIRGOOL) / rest))
        product = dict(row, lines=[_line_json(line) for line in engine.transcribe(
            audio.samples, [Transmission(0, 0.0, audio.duration)], audio.sample_rate)])
        found = []
        for version in (row, product):
            lines = cached_lines(version, normalizer)
            candidates = [c for line in flag_evidence(lines, lexicon.flag_lines(lines), lexicon, normalizer)
                          for c in line]
            found.append(({c.flag.concept for c in candidates},
                          {c.flag.concept for c in candidates if scorer.score(c.evidence) >= DEFAULT_THRESHOLD},
                          normalizer.normalize(" ".join(line["text"] for line in version["lines"]))))
        same_flagged += found[0][0] == found[1][0]
        same_queued += found[0][1] == found[1][1]
        same_text += found[0][2] == found[1][2]
    print(f"{len(checked)} dev clips, cached ({rows[0]['evidence_from'] if rows else '-'}) against the engine now: "
          f"same text {same_text}, same flagged concepts {same_flagged}, same queued concepts {same_queued}")
    return 0


def report_data(args, normalizer, splits=("dev", "held-out")):
    """(rows, data, minutes, words) of the parts: candidates with their evidence and margins."""
    from intercept.lexicon import Lexicon, default_lexicon_path

    rows = read_caches(args.cache, "dev") + read_caches(args.cache, "held-out")
    shipped_forms = {t.form.replace("\u200c", "") for t in Lexicon.load(default_lexicon_path(),
                                                                         normalizer=normalizer).terms}
    folder = Path(tempfile.mkdtemp(prefix="eval_flags_"))
    margins = CachedMargins(args.cache, args.score_context)
    data, minutes, words = {}, {}, {}
    for split in splits:
        part = [r for r in rows if r["split"] == split]
        if not part:
            continue
        words[split] = stand_in_words([r["reference"] for r in part], normalizer, shipped_forms)
        lexicon = build_lexicon(words[split], folder, normalizer, split.replace("-", ""))
        data[split] = clip_candidates(part, lexicon, normalizer, margins)
        minutes[split] = sum(r["duration_s"] for r in part) / 60.0
    return rows, data, minutes, words


def report(args, normalizer) -> int:
    from intercept.acoustic import AcousticOptions
    from intercept.scoring import DEFAULT_SCORER_PATH, DEFAULT_THRESHOLD, FlagScorer, default_scorer

    rows, data, minutes, words = report_data(args, normalizer)
    command = "python scripts/eval_flags_real.py report" + (" --write-scorer" if args.write_scorer else "")
    dev_fit = fit_on(data["dev"], command=command)
    if args.write_scorer:
        dev_clips = len(data["dev"])
        scorer = FlagScorer(version=args.version or "dev-" + hashlib.sha1(json.dumps(
            dev_fit.to_dict(), sort_keys=True).encode()).hexdigest()[:8], bias=dev_fit.bias, weights=dev_fit.weights,
            fitted_on=(f"scripts/eval_flags_real.py dev part: {dev_clips} real clips ({minutes['dev']:.1f} min; "
                       f"cv_fa speaker {DEV_SPEAKER} + fa_virgool) {_how_heard(rows)}, embedded Whisper base; "
                       f"lexicon = shipped + {len(words['dev'])} stand-in words from the dev references"),
            command=command)
        DEFAULT_SCORER_PATH.parent.mkdir(parents=True, exist_ok=True)
        DEFAULT_SCORER_PATH.write_text(json.dumps(scorer.to_dict(), ensure_ascii=False, indent=1) + "\n",
                                       encoding="utf-8")
        print(f"wrote {DEFAULT_SCORER_PATH} ({scorer.version})", file=sys.stderr)
    shipped = default_scorer() if not args.write_scorer else FlagScorer.load(DEFAULT_SCORER_PATH)

    variants = [(f"shipped scorer ({shipped.version}), all evidence", shipped, (), True, True)]
    if shipped.to_dict()["weights"] != dev_fit.to_dict()["weights"]:
        variants.append(("refit on dev, all evidence", dev_fit, (), True, True))
    for piece in EVIDENCE:
        variants.append((f"refit without {piece}", fit_on(data["dev"], ablate=(piece,)), (piece,), True, True))
    variants.append(("refit without alternative flags", fit_on(data["dev"], alternatives=False), (), False, True))
    variants.append(("refit without the acoustic check", fit_on(data["dev"], acoustic=False), (), True, False))
    variants.append(("refit, no recogniser evidence (nor acoustic check)",
                     fit_on(data["dev"], ablate=EVIDENCE, acoustic=False), EVIDENCE, True, False))
    variants.append((f"refit with loose matching ({LOOSE_THRESHOLD}, margin >= {AcousticOptions().keep_margin})",
                     fit_on(data["dev"], loose=True), (), True, True, True))

    print(f"Threshold {DEFAULT_THRESHOLD}; scorer {shipped.version}; `{command}`\n")
    for split in data:
        truth_pairs = sum(len(t) for t, *_ in data[split].values())
        print(f"### {split}: {len(data[split])} clips, {minutes[split]:.1f} min, {truth_pairs} (clip, concept) "
              f"pairs in the references; stand-ins: {' '.join(words[split][:12])} ...\n")
        kinds = Counter((c.flag.kind + (" (acoustic, loose)" if id(c) in loose else ""), c.flag.concept in truth)
                        for truth, cands, loose in data[split].values() for c in cands)
        print("Flags found (right/all) by kind: " + ", ".join(
            f"{k} {kinds[(k, True)]}/{kinds[(k, True)] + kinds[(k, False)]}" for k in sorted({k for k, _ in kinds})) + "\n")
        print("| variant | flags shown | right | precision | recall | false / 10 min | top-half precision | "
              "alternative-only shown (right) |")
        print("|---|---|---|---|---|---|---|---|")
        # Text match alone, no scorer: every flag the lexicon finds, ranked by its text-match
        # score (the product before this work).
        base = pairs_of(data[split], _MatchScoreOnly(), alternatives=False, acoustic=False)
        rows_out = [("before: every Farsi flag, text-match score", metrics(base, data[split], minutes[split], 0.0))]
        for name, scorer, ablate, alternatives, acoustic, *loose in variants:
            pairs = pairs_of(data[split], scorer, ablate, alternatives, acoustic, bool(loose and loose[0]))
            rows_out.append((name, metrics(pairs, data[split], minutes[split], DEFAULT_THRESHOLD)))
        rows_out.append(("every candidate shown, loose ones too (recall bound of any score)",
                         metrics(pairs_of(data[split], _EveryCandidate(), loose=True), data[split], minutes[split], 0.5)))
        for name, m in rows_out:
            print(f"| {name} | {m['flags']} | {m['right']} | {m['precision']:.2f} | {m['recall']:.2f} | "
                  f"{m['false_per_10min']:.1f} | {m['top_half_precision']:.2f} | "
                  f"{m['alternative_shown']} ({m['alternative_right']}) |")
        print()
    print("Fitted weights (dev, all evidence): " + ", ".join(
        f"{k} {v:+.2f}" for k, v in dev_fit.to_dict()["weights"].items()) + f", bias {dev_fit.bias:+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
