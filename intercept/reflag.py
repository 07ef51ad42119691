"""Re-flag stored lines after a lexicon edit, without re-transcribing.

The post-recognition step (intercept.derive) runs again over each recording's stored lines,
without translating: the Farsi is normalised again from the raw text, the guards mark the
lines again, the lexicon flags them and the flags are scored again (intercept.scoring)
from the recogniser evidence stored with each line (words, N-best, confidence), never by
re-recognising; lines stored without that evidence are counted, since only a new recognition
run brings it; each recording's lines and flags are written in one
transaction. Reviewer verdicts are keyed by line and never touched; the lexicon's terms are
saved under its version so every new flag's version is explained.

Each recording is re-derived as the run that stored it was set (`runs.settings`): its
`[guards]` settings, its acoustic check and its `--acoustic-loose` threshold
(intercept.components.PostPerRun).
"""
from __future__ import annotations

from typing import Optional

from .components import PostPerRun
from .derive import RederiveResult, rederive
from .lexicon import Lexicon
from .scoring import FlagScorer
from .store import Store
from .text import PersianNormalizer

ReflagResult = RederiveResult


def reflag(store: Store, lexicon: Lexicon, normalizer: Optional[PersianNormalizer] = None,
           recording_id: Optional[int] = None, scorer: Optional[FlagScorer] = None,
           acoustic_loose: Optional[float] = None) -> ReflagResult:
    """Replace the flags of every stored line (or of one recording's lines) with what `lexicon`
    finds now, scored from the stored evidence, one transaction per recording. Verdicts stay as
    they are. Loose fuzzy matches (`acoustic_loose`, else the run's `run --acoustic-loose`) are
    found again where the store holds their acoustic check."""

    def override(options) -> None:
        if acoustic_loose is not None:
            options.acoustic_loose = acoustic_loose

    # No recogniser here: the acoustic check reuses the margins stored with the flags.
    per_run = PostPerRun(store, normalizer or PersianNormalizer(), lexicon, override=override, scorer=scorer)
    return rederive(store, per_run.default, recording_id, post_for=per_run)
