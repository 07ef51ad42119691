"""Re-flag stored lines after a lexicon edit, without re-transcribing.

Reads lines back through Store.iter_lines(), rebuilds the Line objects of each recording (so that
co-occurrence patterns see a line's neighbouring transmissions, as in the first run), matches
them with the given lexicon and swaps each recording's flags in one transaction with
Store.replace_flags(). Flags are scored again (intercept.scoring) from the recogniser evidence
stored with each line (words, N-best, confidence), never by re-recognising; a line stored without
that evidence is scored with it unknown and counted, so the caller can say that only a new
recognition run brings it. Reviewer verdicts are keyed by line and never touched; the lexicon's terms
are saved under its version so every new flag's version is explained.
"""
from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from .lexicon import Lexicon
from .scoring import FlagScorer, default_scorer, score_flags
from .store import Store, line_evidence
from .text import PersianNormalizer
from .types import Line

# A line stored without a transmission gets a transmission index of its own, this far from any
# other, so that no co-occurrence window (at most 100 either side) joins it with a neighbour it
# was never known to have.
_LONE_TRANSMISSION_GAP = 1_000


@dataclass
class ReflagResult:
    """What a re-flag changed."""

    lexicon_version: str
    recordings: int = 0
    lines: int = 0
    flagged_lines: int = 0  # lines holding at least one flag afterwards
    flags_before: int = 0
    flags_after: int = 0
    by_kind: Counter = field(default_factory=Counter)  # kind -> flags afterwards
    # Lines whose stored text_fa is not what the given normaliser makes of it today; they are
    # matched on the stored text all the same (flag spans index it), so this only warns that
    # the store's normalised text is older than the normaliser.
    stale_text_lines: int = 0
    scorer_version: str = ""
    # Lines stored without recogniser evidence (no words, no N-best: recognised before the
    # evidence was kept, or by an engine that cannot give it): their flags are scored with that
    # evidence unknown; only re-recognising them (intercept run --force) brings it.
    lines_without_evidence: int = 0


def reflag(store: Store, lexicon: Lexicon, normalizer: Optional[PersianNormalizer] = None,
           recording_id: Optional[int] = None, scorer: Optional[FlagScorer] = None) -> ReflagResult:
    """Replace the flags of every stored line (or of one recording's lines) with what `lexicon`
    finds now, scored from the stored evidence, one transaction per recording. Verdicts stay as
    they are."""
    scorer = scorer or default_scorer()
    result = ReflagResult(lexicon_version=lexicon.version, scorer_version=scorer.version)
    scoring_normalizer = normalizer or PersianNormalizer()  # the N-best is raw text
    store.save_lexicon_terms(lexicon.version, lexicon.terms)
    rows = store.iter_lines(recording_id=recording_id)
    for _, recording_rows in itertools.groupby(rows, key=lambda row: row["recording_id"]):
        recording_rows = list(recording_rows)
        lines = [_line(row, n) for n, row in enumerate(recording_rows)]
        if normalizer is not None:
            result.stale_text_lines += sum(normalizer.normalize(line.text_fa) != line.text_fa for line in lines)
        per_line = score_flags(lines, lexicon.flag_lines(lines), lexicon, scoring_normalizer, scorer)
        result.lines_without_evidence += sum(line.words is None and line.alternatives is None for line in lines)
        store.replace_flags(((row["id"], flags) for row, flags in zip(recording_rows, per_line)), lexicon.version)
        result.recordings += 1
        result.lines += len(lines)
        result.flags_before += sum(len(row["flags"]) for row in recording_rows)
        result.flags_after += sum(len(flags) for flags in per_line)
        result.flagged_lines += sum(bool(flags) for flags in per_line)
        result.by_kind.update(flag.kind for flags in per_line for flag in flags)
    return result


def _line(row: dict, n: int) -> Line:
    transmission_idx = row.get("transmission_idx")
    if transmission_idx is None:
        transmission_idx = -_LONE_TRANSMISSION_GAP * (n + 1)
    return Line(start=row["start_s"], end=row["end_s"], text=row.get("text_fa_raw") or "",
                transmission_idx=transmission_idx, avg_logprob=row.get("avg_logprob"),
                no_speech_prob=row.get("no_speech_prob"), compression_ratio=row.get("compression_ratio"),
                text_fa=row.get("text_fa") or "", text_en=row.get("text_en") or "", suspect=row.get("suspect"),
                **line_evidence(row))
