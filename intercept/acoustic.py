"""The acoustic check: does the audio support the lexicon form a fuzzy match stands for?

A fuzzy match says the written words *look* like a lexicon form (کفتار, مرکم for محکم); only the
recogniser can say whether the audio *sounds* like it. For each fuzzy match on a line the engine
scores the line twice against the line's own audio (`engine.score_texts`, teacher-forced):
as written, and with the matched words replaced by the lexicon form. The difference is the
flag's `acoustic_margin` in nats: about 0 when the recogniser finds the form as likely as what
it wrote (it heard the form and spelt it oddly), -10 or less when the form does not fit the
audio (the letters merely happen to spell it). A substitution that changes the line's length
in tokens is compared at the line's own mean log-probability per token (a form that replaces
four garbled tokens with two would otherwise gain just by being shorter):

    margin = logP(line with form) - tokens(line with form) * logP(line) / tokens(line) On real Persian speech with Whisper base this
separates right from wrong fuzzy matches far better than the spelling similarity does
(docs/benchmarks.md, "Flags a reviewer can trust").

With `AcousticOptions.loose_threshold` set (off by default) the check also looks further than
the lexicon's own fuzzy threshold: matches down to that similarity become fuzzy flags when their
margin is at least `keep_margin` (Whisper base garbles most words of real speech, so many spoken
code words are written two or three letters off). Below that margin they are not flags at all:
the text matcher at the lexicon's settings never found them. It is off by default because on the
held-out part of the real-speech evaluation it added more false flags than right ones
(docs/benchmarks.md, "Flags a reviewer can trust").

Exact, morph and pattern flags hold the form as written: their margin is 0.0 by definition.
Alternative and English flags have none (None, "unknown"), as do all flags when the engine
cannot score a text (a CTC model) or no audio is at hand.

Re-flagging a store without its recogniser (`intercept flag`) reuses the margins stored with
each line's flags (`StoredMargins`); a match that was never checked stays unknown, and a loose
match is kept only when it was checked before.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Protocol, Sequence

from .lexicon import Lexicon
from .types import Flag, Line

# Audio either side of a line's times: Whisper's segment times are often a little inside the
# speech, and the first and last words must be heard whole.
LINE_PAD_S = 0.25
FIXED_MARGIN_KINDS = ("exact", "morph", "pattern")


@dataclass(frozen=True)
class AcousticOptions:
    """How far the check looks. Both were chosen on the development part of the real-speech
    evaluation only (scripts/eval_flags_real.py)."""

    # Lowest spelling similarity (0..1) of a match that is checked; None: only the lexicon's own
    # fuzzy matches are checked (0.5 raised recall on dev and added false flags on held-out).
    loose_threshold: Optional[float] = None
    keep_margin: float = -10.0  # a loose match becomes a flag at this margin (nats) or above


class MarginSource(Protocol):
    """Where margins come from: the engine on the audio, or what a store kept."""

    def margins(self, line_no: int, line: Line, text: str, flags: Sequence[Flag]) -> list[Optional[float]]:
        """For each flag (spans into `text`), its acoustic margin, or None when unknown."""
        ...


class EngineMargins:
    """Margins from the engine on one recording's audio."""

    def __init__(self, engine, samples, sample_rate: int = 16000):
        self.engine = engine
        self.samples = samples
        self.sample_rate = sample_rate

    def margins(self, line_no: int, line: Line, text: str, flags: Sequence[Flag]) -> list[Optional[float]]:
        if not flags:
            return []
        duration = len(self.samples) / self.sample_rate
        start, end = max(0.0, line.start - LINE_PAD_S), min(duration, line.end + LINE_PAD_S)
        texts = [text] + [substituted(text, flag) for flag in flags]
        scores = self.engine.score_texts(self.samples, start, end, texts, self.sample_rate)
        base = scores[0]
        return [None if base is None or score is None
                else round(score.tokens * (score.avg_logprob - base.avg_logprob), 3) for score in scores[1:]]


class StoredMargins:
    """Margins a store kept, per line (in the order the lines are given): a flag of the same
    concept, form and span on the same text gets its stored margin; anything else is unknown."""

    def __init__(self, stored: Sequence[Sequence[dict]], texts: Sequence[str]):
        self._known = [
            {(f["concept"], f.get("term") or "", f["span_start"], f["span_end"]): f.get("acoustic_margin")
             for f in flags if f.get("acoustic_margin") is not None} if text is not None else {}
            for flags, text in zip(stored, texts)]
        self._texts = list(texts)

    def margins(self, line_no: int, line: Line, text: str, flags: Sequence[Flag]) -> list[Optional[float]]:
        if line_no >= len(self._known) or self._texts[line_no] != text:
            return [None] * len(flags)  # the text changed: what was checked was another text
        known = self._known[line_no]
        return [known.get((f.concept, f.term, f.span_start, f.span_end)) for f in flags]


def substituted(text: str, flag: Flag) -> str:
    """The line with the flag's matched words replaced by the lexicon form it matched."""
    return text[: flag.span_start] + flag.term + text[flag.span_end:]


class AcousticCheck:
    """Fills `acoustic_margin` on each line's flags and adds the loose fuzzy matches the audio
    supports. Usable alone: `AcousticCheck(lexicon).check(lines, flags, EngineMargins(...))`."""

    def __init__(self, lexicon: Lexicon, options: Optional[AcousticOptions] = None):
        self.options = options or AcousticOptions()
        self.lexicon = lexicon
        self.loose = None
        if self.options.loose_threshold is not None:
            self.loose = lexicon.with_options(replace(lexicon.options, fuzzy_threshold=self.options.loose_threshold,
                                                      english=False))

    def check(self, lines: Sequence[Line], per_line: Sequence[Sequence[Flag]],
              source: Optional[MarginSource]) -> list[list[Flag]]:
        return [self.check_line(n, line, list(flags), source) for n, (line, flags) in enumerate(zip(lines, per_line))]

    def check_line(self, line_no: int, line: Line, flags: list[Flag], source: Optional[MarginSource]) -> list[Flag]:
        text = line.text_fa
        if not text or source is None:
            return flags
        fuzzy = [f for f in flags if f.kind == "fuzzy"]
        loose = self._loose_matches(text, flags)
        margins = source.margins(line_no, line, text, fuzzy + loose)
        checked = dict(zip(map(id, fuzzy), margins[: len(fuzzy)]))
        out = []
        for flag in flags:
            if flag.kind in FIXED_MARGIN_KINDS:
                flag = replace(flag, acoustic_margin=0.0)
            elif flag.kind == "fuzzy":
                flag = replace(flag, acoustic_margin=checked[id(flag)])
            out.append(flag)
        out += [replace(flag, acoustic_margin=margin) for flag, margin in zip(loose, margins[len(fuzzy):])
                if margin is not None and margin >= self.options.keep_margin]
        return out

    def _loose_matches(self, text: str, flags: Sequence[Flag]) -> list[Flag]:
        """Fuzzy matches of the loose matcher that no flag of the line already covers."""
        if self.loose is None:
            return []
        farsi = [f for f in flags if f.kind != "english"]
        concepts = {f.concept for f in farsi}
        return [f for f in self.loose.match(text)
                if f.kind == "fuzzy" and f.concept not in concepts
                and not any(f.span_start < g.span_end and g.span_start < f.span_end for g in farsi)]
