"""Re-translate stored lines without re-transcribing them (`intercept translate`).

The post-recognition step (intercept.derive) runs again over each recording's stored lines with
the new translator, so what depends on the English is derived again with it: suspect marks and
flags, English ones included. Each recording is derived as the run that stored it was set
(`runs.settings`: its guards, acoustic check and `--acoustic-loose`; intercept.components
.PostPerRun), as `intercept flag` does (intercept.reflag).

Here, not in intercept.translate: the translators are a part a run is built from
(intercept.components builds them), and this is a command over a store built from those parts.
"""
from __future__ import annotations

from typing import Optional

from .components import PostPerRun, load_lexicon
from .derive import rederive
from .store import Store
from .text import PersianNormalizer
from .translate import Translator


def retranslate(store: Store, translator: Translator, recording_id: Optional[int] = None,
                clean_radio: Optional[bool] = None, lexicon=None, normalizer=None) -> int:
    """Re-translate stored lines (one recording, or all) without re-transcribing them, and
    derive again what depends on the English (intercept.derive): suspect marks and flags, by
    `lexicon` (default: the shipped lexicons), each recording as the run that stored it was set
    (its guards and acoustic check, `--acoustic-loose` included: intercept.components). Each
    line records the translator and model that made its English. Returns the number of lines.

    Text translators work on the stored Farsi. The whisper translator needs each line's audio:
    the recording is decoded again from its stored path (radio-cleaned with ``clean_radio``,
    else as its run was, `intercept run --clean`). Lines are written one recording at a time,
    each recording atomically."""
    normalizer = normalizer or PersianNormalizer()
    lexicon = lexicon or load_lexicon((), normalizer)

    def override(options) -> None:
        if clean_radio is not None:
            options.clean_radio = clean_radio

    per_run = PostPerRun(store, normalizer, lexicon, override=override, translator=translator)
    return rederive(store, per_run.default, recording_id, translate=True, post_for=per_run,
                    clean_radio_for=lambda each_id: per_run.options_for(each_id).clean_radio).translated_lines
