"""Corrected lines as a training corpus: `intercept export STORE --format corpus -o DIR`.

DIR gets one WAV clip per corrected line, cut from the original recording the way evidence
bundles cut them (intercept.audio.extract_clip, named as intercept.bundle names them), and
`metadata.tsv` in the format of the evaluation sets in ../shared/eval/ (`path`,
`duration_s`, `transcript`), with columns that say who spoke and where the clip came from, so
that `intercept adapt` can hold out whole speakers or recordings:

    path  duration_s  transcript  speaker  voice_id  recording  recording_path  line_id
    start_s  end_s  reviewer  revised_at

Only lines with a reviewer's revision are written, with the latest revision as transcript:
the recogniser's own text is not a label. A line whose original cannot be read is left out
with a warning naming the file; the others are written.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

from .audio import SAMPLE_RATE, AudioError, extract_clip, wav_samples
from .bundle import clip_name
from .export import ExportError
from .store import Store
from .store.corpus import corrected_lines

METADATA = "metadata.tsv"
COLUMNS = ("path", "duration_s", "transcript", "speaker", "voice_id", "recording", "recording_path", "line_id",
           "start_s", "end_s", "reviewer", "revised_at")


@dataclass
class CorpusOptions:
    # A little audio either side of a line: Whisper's segment edges often cut a word's start
    # or end; much more would take in a neighbouring line's speech that the label lacks.
    lead_in_s: float = 0.2
    sample_rate: int = SAMPLE_RATE  # what Whisper hears; training needs no more


def _cell(value) -> str:
    # metadata.tsv is read without CSV quoting (transcripts hold quotes): no tab or newline in a cell.
    return "" if value is None else " ".join(str(value).split())


def write_corpus(store: Store, out: Union[str, os.PathLike], options: Optional[CorpusOptions] = None,
                 warn: Optional[Callable[[str], None]] = None) -> dict:
    """Write the store's corrected lines as a corpus in folder `out`; returns
    {"lines": n, "seconds": audio written, "skipped": [reasons]}."""
    options = options or CorpusOptions()
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder}: --format corpus writes a folder, and this is a file")
    lines = list(corrected_lines(store.db))
    if not lines:
        raise ExportError(f"{store.path}: no corrected line to export (a corpus holds only lines a reviewer "
                          f"corrected: intercept correct, or the review desk)")
    rows, skipped, seconds = [], [], 0.0
    for line in lines:
        try:
            data = extract_clip(line["recording_path"], float(line["start_s"]), float(line["end_s"]),
                                options.lead_in_s, sample_rate=options.sample_rate)
        except AudioError as error:
            skipped.append(f"line {line['line_id']}: {error}")
            if warn:
                warn(skipped[-1])
            continue
        name = clip_name(line["line_id"])
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        samples, rate = wav_samples(data)
        duration = len(samples) / rate
        seconds += duration
        start = max(0.0, float(line["start_s"]) - options.lead_in_s)
        speaker = line["voice_name"] or (f"voice-{line['voice_id']}" if line["voice_id"] is not None else "")
        rows.append([name, f"{duration:.2f}", line["transcript"], speaker, line["voice_id"],
                     f"recording-{line['recording_id']}", line["recording_path"], line["line_id"],
                     f"{start:.3f}", f"{start + duration:.3f}", line["reviewer"], line["revised_at"]])
    if not rows:
        raise ExportError(f"{folder}: no line to export ({'; '.join(skipped)})")
    partial = folder / (METADATA + ".partial")
    with open(partial, "w", encoding="utf-8", newline="") as handle:
        handle.write("\t".join(COLUMNS) + "\n")
        for row in rows:
            handle.write("\t".join(_cell(v) for v in row) + "\n")
    os.replace(partial, folder / METADATA)  # a reader never sees half a metadata.tsv
    return {"lines": len(rows), "seconds": round(seconds, 2), "skipped": skipped}
