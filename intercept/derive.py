"""The post-recognition step: normalise -> translate -> guards -> lexicon flags -> acoustic
check -> score.

Everything that a line's text decides is derived here, in this one order, for a new batch
(`run`, through pipeline.py) and for lines already stored (`intercept translate`,
`intercept flag`, through `rederive`). So when a text changes (a new translation, a new
normaliser, a lexicon edit) its English flags, its suspect marks ("translation loop" among
them) and its flags' evidence are derived again from the new text, never left over from the
old one.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Sequence

from .acoustic import FIXED_MARGIN_KINDS, AcousticCheck, EngineMargins, MarginSource, StoredMargins
from .guards import GuardOptions, Guards
from .lexicon import Lexicon
from .scoring import FlagScorer, default_scorer, score_flags
from .store import Store, line_evidence
from .store.revisions import REVIEWER, UNCORRECTED_FA
from .text import PersianNormalizer
from .types import Flag, Hypothesis, Line, Word

# A line stored without a transmission gets a transmission index of its own, this far from any
# other, so that no co-occurrence window (at most 100 either side) joins it with a neighbour it
# was never known to have.
_LONE_TRANSMISSION_GAP = 1_000


class PostRecognition:
    """What follows recognition, for a list of lines of one recording (in time order, so
    that co-occurrence patterns see each line's neighbouring transmissions)."""

    def __init__(self, normalizer: PersianNormalizer, lexicon: Lexicon, translator=None,
                 guard_options: Optional[GuardOptions] = None, scorer: Optional[FlagScorer] = None,
                 engine=None, acoustic: Optional[AcousticCheck] = None):
        self.normalizer = normalizer
        self.lexicon = lexicon
        self.translator = translator
        # The acoustic check needs an engine that scores texts on audio; without one (intercept
        # flag) it reuses the margins stored with the lines' flags.
        self.engine = engine
        self.acoustic = acoustic
        self.scorer = scorer or default_scorer()
        # The guards' phrase list is normalised like the lines it is compared with.
        self.guards = Guards(guard_options, normalize=normalizer.normalize)

    def derive(self, lines: Sequence[Line], samples=None, sample_rate: int = 16000,
               translate: bool = True, stored: Optional[MarginSource] = None,
               reviewer_english: Optional[Sequence[bool]] = None) -> list[list[Flag]]:
        """Fill text_fa, text_en (when `translate` and there is a translator) and suspect on
        `lines` in place; return each line's flags. The acoustic check runs on `samples` with
        the engine when both are there, else on the `stored` margins. Lines marked in
        `reviewer_english` keep their English (a reviewer typed it): it is never translated over."""
        self.normalise(lines)
        if translate and self.translator is not None:
            keep = list(reviewer_english or [False] * len(lines))
            todo = [line for line, kept in zip(lines, keep) if not kept]
            for line in todo:
                line.text_en = ""  # English from an earlier translator must not outlive it
            if todo:
                self.translator.translate(todo, samples, sample_rate)
        self.guards.mark(lines)
        flags = self.lexicon.flag_lines(list(lines))
        if self.acoustic is not None:
            source = EngineMargins(self.engine, samples, sample_rate) if self.engine is not None and \
                samples is not None else stored
            flags = self.acoustic.check(lines, flags, source)
        return self.score(lines, flags)

    def derive_line(self, lines: Sequence[Line], target: int, translate: bool = True) -> list[Flag]:
        """The step for one line among its stored neighbours (a reviewer's correction): only
        `lines[target]` is normalised, translated (a text translator, when `translate`), marked
        and flagged again; its neighbours (their stored text) count only for co-occurrence
        patterns, and keep their own flags. No acoustic check: a reviewer's text is not the
        recogniser's guess. Returns the target's flags."""
        line = lines[target]
        self.normalise([line])
        if translate and self.translator is not None and not getattr(self.translator, "needs_audio", False):
            line.text_en = ""
            self.translator.translate([line], None)
        self.guards.mark([line])
        per_line = self.lexicon.flag_lines(list(lines))
        # As the acoustic check sets them (intercept.acoustic): a form as written has margin 0 by
        # definition; a fuzzy match's margin stays unknown (None), as when re-flagging.
        flags = [replace(flag, acoustic_margin=0.0) if flag.kind in FIXED_MARGIN_KINDS else flag
                 for flag in per_line[target]]
        return self.score([line], [flags])[0]

    def normalise(self, lines: Sequence[Line]) -> None:
        for line in lines:
            # A line stored without its raw text (older stores) keeps the normalised text it has.
            if line.text or not line.text_fa:
                line.text_fa = self.normalizer.normalize(line.text)

    def score(self, lines: Sequence[Line], flags: list[list[Flag]]) -> list[list[Flag]]:
        """Flag evidence and trust: the one place where each flag's score is set from its line
        (words, N-best, confidence) after the lexicon, and where `alternative` flags are found
        in the N-best (intercept.scoring). Every flag the lexicon found is kept."""
        return score_flags(lines, flags, self.lexicon, self.normalizer, self.scorer)


@dataclass
class RederiveResult:
    """What re-deriving stored lines changed."""

    lexicon_version: str
    recordings: int = 0
    lines: int = 0
    flagged_lines: int = 0  # lines holding at least one flag afterwards
    flags_before: int = 0
    flags_after: int = 0
    by_kind: Counter = field(default_factory=Counter)  # kind -> flags afterwards
    # Lines whose stored normalised text was not what today's normaliser makes of the raw
    # text: it is replaced, and their flags and suspect marks follow the new text.
    renormalised_lines: int = 0
    suspect_changed: int = 0  # lines whose suspect marks changed
    translated_lines: int = 0
    scorer_version: str = ""
    # Lines stored without recogniser evidence (no words, no N-best: recognised before the
    # evidence was kept, or by an engine that cannot give it): their flags score their form's
    # calibrated prior (intercept.scoring); only re-recognising them (intercept run --force) brings it.
    lines_without_evidence: int = 0
    # Fuzzy flags whose acoustic check is unknown after this run: checked on another text, or
    # never (re-flagging has no recogniser: intercept run --force checks them).
    fuzzy_unchecked: int = 0


def reviewer_line(text_fa: str, text_en: str, start: float, end: float, transmission_idx: int) -> Line:
    """A line whose text a reviewer wrote. Its flags carry no recogniser doubt: every word is
    certain (probability 1), the text is the only hypothesis (N-best share 1), confidence 1,
    and there are no recogniser scores for the guards (compression ratio, no-speech)."""
    tokens = text_fa.split()
    return Line(start=start, end=end, text=text_fa, transmission_idx=transmission_idx, text_fa=text_fa,
                text_en=text_en, words=[Word(token, start, end, 1.0) for token in tokens],
                alternatives=[Hypothesis(text_fa, 0.0, max(1, len(tokens)))], confidence=1.0)


def line_from_row(row: dict, n: int) -> Line:
    """A stored line (`Store.iter_lines` row) as the Line the pipeline made; a corrected line
    (revision_id set) as its reviewer's text (`reviewer_line`), with no English to flag when
    its English was made from the uncorrected text."""
    transmission_idx = row.get("transmission_idx")
    if transmission_idx is None:
        transmission_idx = -_LONE_TRANSMISSION_GAP * (n + 1)
    if row.get("revision_id") is not None:
        english = "" if row.get("text_en_from") == UNCORRECTED_FA else row.get("text_en") or ""
        return reviewer_line(row.get("text_fa") or "", english, row["start_s"], row["end_s"], transmission_idx)
    return Line(start=row["start_s"], end=row["end_s"], text=row.get("text_fa_raw") or "",
                transmission_idx=transmission_idx, avg_logprob=row.get("avg_logprob"),
                no_speech_prob=row.get("no_speech_prob"), compression_ratio=row.get("compression_ratio"),
                text_fa=row.get("text_fa") or "", text_en=row.get("text_en") or "", suspect=row.get("suspect"),
                **line_evidence(row))


def _audio(path: str, clean_radio: bool):
    from .audio import CleanupOptions, clean_radio as clean, decode

    audio = decode(path)
    samples = audio.samples
    if clean_radio:
        samples = clean(samples, audio.sample_rate, CleanupOptions())
    return samples, audio.sample_rate


def rederive(store: Store, post: PostRecognition, recording_id: Optional[int] = None, translate: bool = False,
             clean_radio: bool = False, post_for: Optional[Callable[[int], PostRecognition]] = None,
             clean_radio_for: Optional[Callable[[int], bool]] = None) -> RederiveResult:
    """Run the post-recognition step again over stored lines (all, or one recording's) and
    write the result one recording per transaction: normalised Farsi, suspect marks and
    flags, and with `translate` the English and the translator that made it. Recognition is
    not redone; verdicts are keyed by line and never touched.

    A translator that needs audio (Whisper's translate task) gets each recording decoded
    again from its stored path (radio-cleaned only with `clean_radio`, as `run --clean`).

    `post_for` and `clean_radio_for` give them per recording (intercept.components.PostPerRun:
    as the run that stored it was set); `post` then names the lexicon and scorer, which are
    the same for every recording."""
    result = RederiveResult(lexicon_version=post.lexicon.version, scorer_version=post.scorer.version)
    store.save_lexicon_terms(post.lexicon.version, post.lexicon.terms)
    translator = post.translator if translate else None
    needs_audio = translator is not None and getattr(translator, "needs_audio", False)
    # One recording's lines in memory at a time, each read whole before its write: a read left
    # open across a write pins an old snapshot, and in WAL mode BEGIN IMMEDIATE then fails at
    # once ("database is locked") when a batch has committed since.
    for each_id in store.recording_ids_with_lines(recording_id):
        step = post_for(each_id) if post_for is not None else post
        clean = clean_radio_for(each_id) if clean_radio_for is not None else clean_radio
        recording_rows = list(store.iter_lines(recording_id=each_id))
        lines = [line_from_row(row, n) for n, row in enumerate(recording_rows)]
        stored_fa = [line.text_fa for line in lines]
        samples, rate = _audio(recording_rows[0]["recording_path"], clean) if needs_audio else (None, 16000)
        stored = StoredMargins([row["flags"] for row in recording_rows], stored_fa)
        per_line = step.derive(lines, samples if needs_audio else None, rate, translate=translator is not None,
                               stored=stored,
                               reviewer_english=[row.get("text_en_from") == REVIEWER or
                                                 (needs_audio and row.get("revision_id") is not None)
                                                 for row in recording_rows])
        store.save_derived(
            ((row["id"], line, flags) for row, line, flags in zip(recording_rows, lines, per_line)),
            post.lexicon.version,
            translator=(translator.name, translator.model) if translator is not None else None,
            english_from_text=not needs_audio,
        )
        result.recordings += 1
        result.lines += len(lines)
        result.renormalised_lines += sum(line.text_fa != old for line, old in zip(lines, stored_fa))
        result.suspect_changed += sum(line.suspect != row.get("suspect") for line, row in zip(lines, recording_rows))
        result.translated_lines += len(lines) if translator is not None else 0
        result.lines_without_evidence += sum(line.words is None and line.alternatives is None for line in lines)
        result.flags_before += sum(len(row["flags"]) for row in recording_rows)
        result.flags_after += sum(len(flags) for flags in per_line)
        result.flagged_lines += sum(bool(flags) for flags in per_line)
        result.by_kind.update(flag.kind for flags in per_line for flag in flags)
        result.fuzzy_unchecked += sum(flag.kind == "fuzzy" and flag.acoustic_margin is None
                                      for flags in per_line for flag in flags)
    return result
