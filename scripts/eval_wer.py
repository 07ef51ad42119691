#!/usr/bin/env python3
"""Word and character error rates of an engine on a folder of clips with reference transcripts.

    .venv/bin/python scripts/eval_wer.py /work/shared/eval/fa_virgool
    .venv/bin/python scripts/eval_wer.py CORPUS --engine faster-whisper --model base \
        --compute-type float32 --beam-size 5 [--lexicon-hint hotwords|prompt] [--json]

CORPUS holds metadata.tsv (`path<TAB>duration_s<TAB>transcript`, paths relative to CORPUS).
Each clip is decoded whole, as one transmission, by the same engine code the pipeline uses;
both sides are normalised with hazm (intercept.text) before scoring (intercept.evaluate).
Prints one line per clip and the micro-averaged WER and CER.

--lexicon-hint gives the decoder the lexicon's Farsi forms, as hotwords or as an initial
prompt (lexicon_hint below): an experiment, not the pipeline's default (see the report of
the measurements in docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from intercept.audio import AudioError, decode  # noqa: E402
from intercept.engines import TranscribeOptions, load_engine  # noqa: E402
from intercept.evaluate import CorpusError, ErrorRateScorer, read_corpus  # noqa: E402
from intercept.types import Transmission  # noqa: E402


def lexicon_hint(categories: Optional[Sequence[str]] = None, lexicon_paths: Sequence[str] = ()) -> str:
    """The lexicon's Farsi surface forms (not verb stems), space-separated, in lexicon order,
    for Whisper's hotwords or initial prompt. Whisper keeps at most 223 prompt tokens, so a
    long lexicon is cut at its end."""
    from intercept.lexicon import Lexicon, default_lexicon_path

    lexicon = Lexicon.load(*(lexicon_paths or [default_lexicon_path()]))
    seen: dict[str, None] = {}
    for term in lexicon.terms:
        if term.lang == "fa" and "#" not in term.form and (not categories or term.category in categories):
            seen.setdefault(term.form, None)
    return " ".join(seen)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", help="folder with metadata.tsv and the clips it lists")
    parser.add_argument("--engine", default="faster-whisper")
    parser.add_argument("--model", default="base", help="base (embedded), a local model directory, or a name")
    parser.add_argument("--compute-type", default="float32")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--no-repeat-ngram", type=int, default=None,
                        help="TranscribeOptions.no_repeat_ngram (default: the option's default)")
    parser.add_argument("--lexicon-hint", choices=("none", "hotwords", "prompt"), default="none")
    parser.add_argument("--hint-categories", default="", help="comma-separated lexicon categories (default: all)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N clips")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)

    from intercept.models import ModelError, resolve_model

    try:
        items = read_corpus(args.corpus)
        source = resolve_model(args.model)
    except (CorpusError, ModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.limit:
        items = items[: args.limit]
    options = TranscribeOptions(compute_type=args.compute_type, beam_size=args.beam_size)
    if args.no_repeat_ngram is not None:
        options.no_repeat_ngram = args.no_repeat_ngram
    if args.lexicon_hint != "none":
        hint = lexicon_hint([c for c in args.hint_categories.split(",") if c])
        if args.lexicon_hint == "hotwords":
            options.hotwords = hint
        else:
            options.initial_prompt = hint
    engine = load_engine(args.engine, str(source.path), args.model, options)
    scorer = ErrorRateScorer()
    rows, total, audio_s = [], None, 0.0
    started = time.perf_counter()
    for item in items:
        try:
            audio = decode(str(item.path))
        except AudioError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        audio_s += audio.duration
        lines = engine.transcribe(audio.samples, [Transmission(0, 0.0, audio.duration)], audio.sample_rate)
        hypothesis = " ".join(line.text for line in lines)
        counts = scorer.score(item.transcript, hypothesis)
        total = counts if total is None else total + counts
        rows.append({"path": str(item.path), "wer": round(counts.wer, 4), "cer": round(counts.cer, 4),
                     "reference": item.transcript, "hypothesis": hypothesis})
        if not args.json:
            print(f"{counts.wer:6.3f} {counts.cer:6.3f}  {item.path.name}\n    ref: {item.transcript}\n    hyp: {hypothesis}")
    wall = time.perf_counter() - started
    result = {"corpus": str(Path(args.corpus).resolve()), "engine": args.engine, "model": args.model,
              "compute_type": engine.compute_type if hasattr(engine, "compute_type") else args.compute_type,
              "beam_size": args.beam_size, "lexicon_hint": args.lexicon_hint, "clips": len(items),
              "audio_s": round(audio_s, 2), "wall_s": round(wall, 2), **total.to_dict()}
    if args.json:
        result["clips_detail"] = rows
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        print(f"WER {total.wer:.3f}  CER {total.cer:.3f}  ({len(items)} clips, {audio_s:.1f} s audio, {wall:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
