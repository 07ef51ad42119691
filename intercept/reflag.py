"""Re-flag stored lines after a lexicon edit, without re-transcribing.

The post-recognition step (intercept.derive) runs again over each recording's stored lines,
without translating: the Farsi is normalised again from the raw text, the guards mark the
lines again and the lexicon flags them; each recording's lines and flags are written in one
transaction. Reviewer verdicts are keyed by line and never touched; the lexicon's terms are
saved under its version so every new flag's version is explained.
"""
from __future__ import annotations

from typing import Optional

from .derive import PostRecognition, RederiveResult, rederive
from .lexicon import Lexicon
from .store import Store
from .text import PersianNormalizer

ReflagResult = RederiveResult


def reflag(store: Store, lexicon: Lexicon, normalizer: Optional[PersianNormalizer] = None,
           recording_id: Optional[int] = None) -> ReflagResult:
    """Replace the flags of every stored line (or of one recording's lines) with what `lexicon`
    finds now, one transaction per recording. Verdicts stay as they are."""
    return rederive(store, PostRecognition(normalizer or PersianNormalizer(), lexicon), recording_id)
