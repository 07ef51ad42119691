"""Calibrating a lexicon against a recogniser: recognise a corpus with it, count its confusions.

    intercept lexicon calibrate CORPUS... --model MODEL
        corpus clips ──recognise_corpus──▶ lines per clip ──count_confusions──▶ Calibration

What a calibration is, how its priors are computed, and where its file sits beside the lexicon
is intercept.lexicon.calibration; this module is the part that needs a recogniser and audio:
the model's identity (which calibration file belongs to it) and the recognition of the corpus.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

from .lexicon.calibration import Calibration, CalibrationError, count_confusions, find_calibration


def model_identity(model: str = "base") -> dict:
    """{"name", "sha256"} of a CTranslate2 model: 'base' (the embedded one, whose hash is known)
    or a model folder (its model.bin hashed)."""
    from .models import EMBEDDED_NAME, EMBEDDED_SHA256, sha256_of

    if model in (EMBEDDED_NAME, "whisper-base (embedded)"):
        return {"name": "whisper-base", "sha256": EMBEDDED_SHA256}
    folder = Path(model).expanduser()
    weights = folder / "model.bin"
    if not weights.is_file():
        raise CalibrationError(f"{folder}: not a CTranslate2 model folder (no model.bin)")
    return {"name": folder.name, "sha256": sha256_of(weights)}


# ---------------------------------------------------------------- recognising a corpus


def recognise_corpus(items: Sequence, engine, on_clip=None) -> list[Optional[list]]:
    """Each corpus clip's recognised lines (raw text), clip by clip in `items` order: pooled and
    joined into shared windows the way the pipeline recognises a folder of short recordings
    (intercept.packing). Each clip is one transmission from start to end. A clip that cannot
    be decoded is None, and `on_clip(n, error)` hears why; the others go on."""
    from .audio import AudioError
    from .audio import decode
    from .engines.base import TranscribeOptions, pack_options_for
    from .packing import PoolOptions, RecordingPool, join_recordings, split_lines
    from .types import Transmission

    results: list[Optional[list]] = [None] * len(items)
    pool = RecordingPool(PoolOptions(), pack_options_for(getattr(engine, "options", None) or TranscribeOptions()))

    def recognise(group):
        joined = join_recordings([(samples, [tx]) for _, samples, tx in group], 16000)
        found = split_lines(joined, engine.transcribe(joined.samples, joined.transmissions, 16000), len(group))
        for (n, _, _), lines in zip(group, found):
            results[n] = lines
            if on_clip is not None:
                on_clip(n, None)

    for n, item in enumerate(items):
        try:
            samples = decode(str(item.path)).samples
        except AudioError as exc:
            if on_clip is not None:
                on_clip(n, f"{item.path}: {exc}")
            continue
        tx = Transmission(0, 0.0, round(samples.size / 16000, 3))
        for group in pool.add((n, samples, tx), [tx]):
            recognise(group)
    for group in pool.drain():
        recognise(group)
    return results


def calibrate(corpora: Sequence[str | Path], lexicon, engine, model: dict, normalizer, command: str = "",
              on_clip=None) -> Calibration:
    """The calibration of `lexicon` for the recogniser `engine` (whose identity is `model`) on
    the clips of `corpora` (folders in the eval-set format: metadata.tsv with path, duration_s,
    transcript). A clip that cannot be decoded stops nothing: `on_clip(n, error)` hears why
    and it is left out."""
    from .evaluate import read_corpus

    items = [item for folder in corpora for item in read_corpus(folder)]
    lines_per_clip = recognise_corpus(items, engine, on_clip)
    clips = []
    for item, lines in zip(items, lines_per_clip):
        if lines is None:
            continue  # not decodable: reported through on_clip
        for line in lines:
            line.text_fa = normalizer.normalize(line.text)
        clips.append((item.transcript, lines, item.duration_s or 0.0))
    counts = count_confusions(clips, lexicon, normalizer)
    return Calibration.from_counts(counts, model, lexicon.version, [str(Path(c)) for c in corpora], command)


def calibration_for_model(lexicon_files: Sequence[Path], model_name: str, model_path: str) -> Optional[Calibration]:
    """The calibration beside the lexicon files for the model a run loads: the embedded one's by
    its known hash, a CTranslate2 folder's by hashing its model.bin; for a model `intercept
    adapt` wrote that has none of its own, its base's, named as borrowed; None for anything else
    (its flags keep the hand-set priors)."""
    from .models import EMBEDDED_SHA256, adapted_from_sha256, sha256_of

    if model_name in ("base", "whisper-base (embedded)"):
        return find_calibration(lexicon_files, EMBEDDED_SHA256)
    weights = Path(model_path) / "model.bin"
    own = find_calibration(lexicon_files, sha256_of(weights)) if weights.is_file() else None
    if own is not None:
        return own
    # An adapted model mostly writes what its base writes, only better. On held-out speech with
    # an adapted model (docs/benchmarks.md, "With an adapted model"), the base's calibration
    # kept the queue at 0.0 and 0.3 false flags per 10 min, clean and radio, where hand-set
    # priors let 3.7 and 2.7 through; coded mentions found 7 and 1 of 13 against 6 and 2.
    base_sha = adapted_from_sha256(model_path)
    borrowed = find_calibration(lexicon_files, base_sha) if base_sha else None
    if borrowed is None:
        return None
    name = borrowed.model.get("name", "model")
    return replace(borrowed, model={**borrowed.model, "name": f"{name}, this adapted model's base"})
