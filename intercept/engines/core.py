"""The decoding core shared by the Whisper engines.

Every engine runs the same policy around its model: new tokens capped by the audio's length,
the deterministic loop retry (kept when it repeats less), packing of short transmissions
into one window (intercept/packing.py) with the re-decode of a segment that straddles two
transmissions, line times kept inside their transmission, and the recogniser's evidence
(word probabilities, the beam's N-best) mapped onto each line. An engine only adapts its
model's own calls: `WindowModel.decode` turns the audio of one window into `Decoded`
(segments in window seconds, and the N-best of each decode call its library made).

faster-whisper keeps one decode loop in the same way (transcribe -> generate_with_fallback);
this is that loop one level up, written once for all three engines.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, replace
from typing import Optional, Protocol, Sequence

import numpy as np

from ..packing import Pack, PackOptions, Placement, assign_spans, pack_samples, plan_packs, split_by_words
from ..types import Hypothesis, Line, Transmission, Word
from .base import TranscribeOptions, pack_options_for

SAMPLE_RATE = 16000
# Whisper's decoder holds 448 tokens; the prompt takes a few, and the libraries count new
# tokens on top of them.
MAX_NEW_TOKENS = 440
WINDOW_SECONDS = 30


def compression_ratio(text: str) -> float:
    """Whisper's measure of repetition (whisper.utils.compression_ratio): text bytes over
    zlib-compressed bytes; above about 2.4 the text loops."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


@dataclass
class Segment:
    """One segment of a decoded window, as an engine reports it (times in window seconds)."""

    start: float
    end: float
    text: str
    avg_logprob: Optional[float] = None
    no_speech_prob: Optional[float] = None
    compression_ratio: Optional[float] = None
    words: Optional[list[Word]] = None  # window seconds; None: the engine gave none
    decode: Optional[int] = None  # which entry of Decoded.nbest this segment came from


@dataclass(frozen=True)
class Candidate:
    """One hypothesis of one decode call: its pieces between timestamp tokens
    ((start, end, text) in window seconds) and its score (see types.Hypothesis)."""

    pieces: tuple[tuple[float, float, str], ...]
    avg_logprob: float
    tokens: int


@dataclass
class Decoded:
    segments: list[Segment]
    # Per decode call the library made for this window (a window longer than the decoder
    # reaches, or a temperature fallback, makes several), its N-best, best first. Empty:
    # the engine gave no N-best.
    nbest: list[list[Candidate]] = field(default_factory=list)
    # False: the model stopped at the first segment over WindowModel.decode's stop_above,
    # so the segments are the start of the window's decode, not all of it.
    complete: bool = True
    # Where the first-pass n-gram ban (TranscribeOptions.no_repeat_ngram) was in force: per
    # repeated (n-1)-gram of any hypothesis the model returned, the window seconds of the
    # segment of its earlier occurrence and of its later one (at the later one the ban
    # forbade the token that would have repeated an n-gram). None: decoded without the ban.
    ban_spans: Optional[list[tuple[tuple[float, float], tuple[float, float]]]] = None


class WindowModel(Protocol):
    """What an engine adapts: one window of audio (at most 30 s) to segments."""

    token_room: int  # new tokens that fit beside the prompt
    # Whether TranscribeOptions.pack applies: packing was measured (accuracy and speed) on
    # faster-whisper only, so the PyTorch engines keep one transmission per window.
    packs: bool
    # Optional (absent: False): whether decode() takes stop_above, a compression ratio at
    # whose first segment above it the model stops decoding the window (Decoded.complete
    # False). Only a model whose library decodes lazily, window by window, can.
    stops_early: bool

    def decode(self, audio: np.ndarray, task: str, max_new_tokens: int, loop_retry: bool = False) -> Decoded:
        """Decode with the options' temperatures; with loop_retry, once at temperature 0 with
        repeated n-grams forbidden (options.loop_retry_ngram) and repeated tokens penalised
        (options.loop_retry_penalty)."""
        ...

    # Optional (absent: one window at a time): window_batch(task), how many windows of a task
    # the model decodes together, and decode_batch(windows, stop_above, loop_retry) -> [Decoded], the
    # same as decode(audio, task, max_new_tokens, loop_retry, stop_above) of each (audio, task,
    # max_new_tokens) but with their encoder and decoder passes made together. The loop
    # retries of a batch are decoded together too; the whole decode after an early stop goes
    # through decode(), alone.

    # Optional (absent: 0): first_pass_ngram, the size of the repeated n-grams that every
    # decode() of the transcribe task forbids (TranscribeOptions.no_repeat_ngram, where the
    # model applies it); a loop retry that forbids nothing more is then not made. Such a
    # model reports where the ban was in force (Decoded.ban_spans).

    def score_window(self, audio: np.ndarray, texts: Sequence[str]) -> list[Optional[tuple[float, int]]]:
        """For each text, (the log-probability the model gives its tokens as the transcript of
        this window, their number); the end-of-text token is left out (CTranslate2's align()
        gives it none); teacher-forced after the transcribe prompt without timestamps. None
        where the model cannot score a text (an empty one)."""
        ...


def split_at_timestamps(tokens: Sequence[int], timestamp_begin: int, time_offset: float = 0.0,
                        duration: Optional[float] = None, time_precision: float = 0.02) -> list[tuple[float, float, list[int]]]:
    """A decoded window's tokens cut into (start, end, tokens) pieces at its pairs of
    timestamp tokens, as openai-whisper's and faster-whisper's decode loops cut segments
    (a last piece without its closing timestamp is left out: those loops decode it again in
    the next window). Used to cut every hypothesis of the N-best the same way as the best."""
    tokens = list(tokens)
    is_time = [t >= timestamp_begin for t in tokens]
    single_ending = len(tokens) >= 2 and not is_time[-2] and is_time[-1]
    cuts = [i for i in range(1, len(tokens)) if is_time[i] and is_time[i - 1]]
    if not cuts:
        times = [t for t in tokens if t >= timestamp_begin]
        end = duration if duration is not None else 0.0
        if times and times[-1] != timestamp_begin:
            end = (times[-1] - timestamp_begin) * time_precision
        return [(time_offset, time_offset + end, tokens)]
    if single_ending:
        cuts.append(len(tokens))
    pieces, last = [], 0
    for cut in cuts:
        piece = tokens[last:cut]
        pieces.append((time_offset + (piece[0] - timestamp_begin) * time_precision,
                       time_offset + (piece[-1] - timestamp_begin) * time_precision, piece))
        last = cut
    return pieces


def ban_spans(tokens: Sequence[int], ngram: int, timestamp_begin: int, time_precision: float = 0.02,
              duration: float = math.inf) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Where a decode that forbade repeated `ngram`-grams had the ban in force: for each
    (ngram-1)-gram of `tokens` (timestamp tokens included, as CTranslate2 counts them) that
    occurs again, the window seconds around its earlier and its later occurrence (from the
    timestamp before to the timestamp after; 0 and `duration` where there is none). Tokens
    without a repeated (ngram-1)-gram never had a token forbidden on their own path: under
    greedy search that is the decode without the ban, token for token."""
    size = ngram - 1
    tokens = list(tokens)
    if size < 1 or len(tokens) <= size:
        return []
    before, last = [], 0.0  # the time of the last timestamp at or before each position
    for token in tokens:
        if token >= timestamp_begin:
            last = (token - timestamp_begin) * time_precision
        before.append(last)
    after, following = [0.0] * len(tokens), duration  # ... and of the next at or after it
    for i in range(len(tokens) - 1, -1, -1):
        if tokens[i] >= timestamp_begin:
            following = (tokens[i] - timestamp_begin) * time_precision
        after[i] = following
    first: dict[tuple[int, ...], int] = {}
    spans = []
    for i in range(len(tokens) - size + 1):
        gram = tuple(tokens[i: i + size])
        if gram in first:
            j = first[gram]
            spans.append(((before[j], after[j + size - 1]), (before[i], after[i + size - 1])))
        else:
            first[gram] = i
    return spans


def worst_ratio(segments: Sequence[Segment]) -> float:
    return max((seg.compression_ratio or 0.0 for seg in segments if seg.text.strip()), default=0.0)


def confidence(words: Optional[list[Word]], avg_logprob: Optional[float]) -> Optional[float]:
    """Mean word probability when there are words, else exp(avg_logprob), else unknown."""
    if words:
        return round(sum(w.probability for w in words) / len(words), 4)
    if avg_logprob is not None:
        return round(min(1.0, math.exp(avg_logprob)), 4)
    return None


def wants_alternatives(options: TranscribeOptions) -> int:
    """How many hypotheses to keep per line (0: off); a beam holds at most beam_size."""
    n = options.beam_size if options.alternatives is None else options.alternatives
    return max(0, min(n, max(1, options.beam_size)))


class Decoder:
    """The shared policy over one engine's WindowModel."""

    def __init__(self, model: WindowModel, options: TranscribeOptions, pack_options: Optional[PackOptions] = None):
        self.model = model
        self.options = options
        self.pack_options = pack_options or pack_options_for(options)

    def max_new_tokens(self, speech_s: float, pieces: int, task: str) -> int:
        """The loop guard: Whisper decodes a repetition loop up to its token limit, so a window
        gets at most tokens_per_second per second of speech plus 20 per transmission in it."""
        opts = self.options
        rate = opts.tokens_per_second if task == "transcribe" else opts.translate_tokens_per_second
        return min(self.model.token_room, int(rate * speech_s) + 20 * pieces)

    def _retries(self, task: str = "transcribe") -> bool:
        opts = self.options
        if opts.compression_ratio_threshold is None or not (opts.loop_retry_ngram > 0 or opts.loop_retry_penalty != 1.0):
            return False
        # A model whose every transcribe decode already forbids repeated n-grams of this size
        # or shorter (WindowModel.first_pass_ngram) would decode the same text again.
        first = int(getattr(self.model, "first_pass_ngram", 0) or 0) if task == "transcribe" else 0
        return not (first > 0 and opts.loop_retry_penalty == 1.0 and first <= opts.loop_retry_ngram)

    def _stop_above(self, task: str = "transcribe") -> Optional[float]:
        # A window that loops is decoded again below, so decoding on past its looping segment
        # is wasted: the library then seeks to the loop's last timestamp and decodes the rest
        # of the window afresh, up to the token cap, often looping again (two of the three
        # loops of the 10-minute real-speech session: 3.5 of its 21 s).
        if self._retries(task) and getattr(self.model, "stops_early", False):
            return self.options.compression_ratio_threshold
        return None

    def decode(self, audio: np.ndarray, task: str, max_new_tokens: Optional[int] = None) -> Decoded:
        return self.decode_many([(audio, task, max_new_tokens)])[0]

    def decode_many(self, windows: Sequence[tuple[np.ndarray, str, Optional[int]]]) -> list[Decoded]:
        """Each (audio, task, max_new_tokens) window decoded with the loop guard, in order.
        A model with decode_batch (WindowModel.window_batch > 1) makes the first decode of up to
        window_batch windows together, then the loop retries of those windows together."""
        windows = [(audio, task, self.max_new_tokens(len(audio) / SAMPLE_RATE, 1, task) if cap is None else cap)
                   for audio, task, cap in windows]
        size = self._batch_size(windows[0][1] if windows else "transcribe")
        batch = getattr(self.model, "decode_batch", None) if size > 1 else None
        out: list[Decoded] = []
        for first in range(0, len(windows), size if batch is not None else 1):
            chunk = windows[first: first + (size if batch is not None else 1)]
            tasks = {task for _audio, task, _cap in chunk}
            # (the early stop only saves work: a chunk of mixed tasks is decoded whole)
            stop_above = self._stop_above(tasks.pop()) if len(tasks) == 1 else None
            if batch is not None and len(chunk) > 1:
                decoded = batch(chunk, stop_above=stop_above)
            elif stop_above is not None:
                decoded = [self.model.decode(audio, task, cap, stop_above=stop_above) for audio, task, cap in chunk]
            else:
                decoded = [self.model.decode(audio, task, cap) for audio, task, cap in chunk]
            # Still a loop after the configured temperatures: once more, deterministically,
            # with repeats forbidden/penalised. The retries of one chunk are decoded together
            # as its first decodes were (each alone when the model does not batch).
            looping = [k for k, ((_audio, task, _cap), d) in enumerate(zip(chunk, decoded)) if self._loops(task, d)]
            retried = [chunk[k] for k in looping]
            if batch is not None and len(retried) > 1:
                agains = batch(retried, loop_retry=True)
            else:
                agains = [self.model.decode(audio, task, cap, loop_retry=True) for audio, task, cap in retried]
            again_of = dict(zip(looping, agains))
            out.extend(self._guard(audio, task, cap, d, again_of[k]) if k in again_of else d
                       for k, ((audio, task, cap), d) in enumerate(zip(chunk, decoded)))
        return out

    def _loops(self, task: str, decoded: Decoded) -> bool:
        """Whether the loop guard retries this first decode."""
        return self._retries(task) and worst_ratio(decoded.segments) > self.options.compression_ratio_threshold

    def _guard(self, audio: np.ndarray, task: str, max_new_tokens: int, decoded: Decoded, again: Decoded) -> Decoded:
        """The loop guard over a window's first decode that loops, given its retry: the retry is
        kept only when it repeats less."""
        if worst_ratio(again.segments) < worst_ratio(decoded.segments):
            # A stopped decode is the start of the whole one, whose worst ratio is no lower:
            # the retry repeats less than the whole decode too.
            return again
        if not decoded.complete:
            # Weighed against the whole decode, as without the early stop.
            decoded = self.model.decode(audio, task, max_new_tokens)
            if worst_ratio(again.segments) < worst_ratio(decoded.segments):
                return again
        return decoded

    def transcribe(self, samples: np.ndarray, transmissions: Sequence[Transmission],
                   sample_rate: int = SAMPLE_RATE) -> list[Line]:
        """Lines of all `transmissions` (pass them all at once: packing and batching only help
        across transmissions), in recording order."""
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"Whisper engines expect {SAMPLE_RATE} Hz samples")
        transmissions = [tx for tx in transmissions if tx.end > tx.start]
        lines: list[Line] = []
        packs = self.options.pack and getattr(self.model, "packs", False)
        if packs and self.options.language is not None and len(transmissions) > 1:
            units = plan_packs(transmissions, self.pack_options)
        else:
            units = [self._alone(tx) for tx in transmissions]
        for chunk in self._chunks(units, "transcribe"):
            lines.extend(self._transcribe_packs(samples, chunk))
        lines.sort(key=lambda line: (line.start, line.transmission_idx))
        return lines

    def _alone(self, tx: Transmission) -> Pack:
        return Pack((Placement(tx, 0.0),), self.pack_options.gap_s)

    def _batch_size(self, task: str) -> int:
        """How many windows of a task are decoded together (1 when the model does not batch)."""
        if not hasattr(self.model, "decode_batch") or not hasattr(self.model, "window_batch"):
            return 1
        return max(1, int(self.model.window_batch(task) or 1))

    def _chunks(self, units: Sequence[Pack], task: str) -> list[Sequence[Pack]]:
        """Windows in groups of the model's batch (one at a time without decode_batch): a
        group's windows and then their redos are decoded before the next group's audio is cut,
        so memory holds one batch of windows, however long the recording."""
        size = self._batch_size(task)
        return [units[i: i + size] for i in range(0, len(units), size)]

    def _window(self, samples: np.ndarray, pack: Pack, task: str) -> tuple[np.ndarray, str, Optional[int]]:
        """The audio of a pack's window and its token cap (None: the audio's own)."""
        if len(pack.placements) == 1:
            tx = pack.placements[0].transmission
            return samples[int(round(tx.start * SAMPLE_RATE)): int(round(tx.end * SAMPLE_RATE))], task, None
        return (pack_samples(samples, pack, SAMPLE_RATE), task,
                self.max_new_tokens(pack.speech_s, len(pack.placements), task))

    def _decode_windows(self, windows: Sequence[tuple[np.ndarray, str, Optional[int]]]) -> list[Optional[Decoded]]:
        """decode_many, with None for a window without audio."""
        real = [i for i, (audio, _task, _cap) in enumerate(windows) if len(audio)]
        decoded = self.decode_many([windows[i] for i in real])
        out: list[Optional[Decoded]] = [None] * len(windows)
        for i, d in zip(real, decoded):
            out[i] = d
        return out

    def _transcribe_packs(self, samples: np.ndarray, packs: Sequence[Pack]) -> list[Line]:
        lines: list[Line] = []
        redo: list[Transmission] = []
        decoded_all = self._decode_windows([self._window(samples, pack, "transcribe") for pack in packs])
        for pack, decoded in zip(packs, decoded_all):
            if decoded is None:
                continue
            if len(pack.placements) == 1:
                lines.extend(self.lines_in(decoded, pack.placements[0].transmission))
                continue
            owners, again = self._split_pack(pack, decoded)
            owners = [None if owner in again else owner for owner in owners]
            lines.extend(line for line in self._lines(decoded, pack, owners, packed=True) if line)
            redo.extend(pack.placements[i].transmission for i in sorted(again))
        alone = [self._alone(tx) for tx in redo]
        for pack, decoded in zip(alone, self._decode_windows([self._window(samples, p, "transcribe") for p in alone])):
            if decoded is not None:
                lines.extend(self.lines_in(decoded, pack.placements[0].transmission))
        return lines

    def translate(self, samples: np.ndarray, start: float, end: float, sample_rate: int = SAMPLE_RATE) -> str:
        # Rounded as transcribe_one and pack_samples slice: stretches of several recordings
        # joined end to end (packing.join_recordings) then never take a neighbour's sample.
        chunk = samples[int(round(start * sample_rate)): int(round(end * sample_rate))]
        if len(chunk) == 0:
            return ""
        return _english(self.decode(chunk, "translate"))

    def translate_spans(self, samples: np.ndarray, spans: Sequence[Transmission],
                        sample_rate: int = SAMPLE_RATE) -> list[str]:
        """English of each span, in the order given. With options.pack_translate, spans share
        30 s windows as transcription's transmissions do: one translate decode per window,
        its segments given back to the span they cover (assign_spans). A span touched by a
        segment across two spans, or left without English in its window, is decoded again
        alone, so every span gets its own English or what it gets alone. Windows are decoded
        in batches as transcription's are (decode_many)."""
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"Whisper engines expect {SAMPLE_RATE} Hz samples")
        english = [""] * len(spans)
        position = {id(tx): i for i, tx in enumerate(spans)}
        packs = (self.options.pack and self.options.pack_translate and getattr(self.model, "packs", False)
                 and self.options.language is not None and len(spans) > 1)
        units = plan_packs(spans, self.pack_options) if packs else [self._alone(tx) for tx in spans]
        for chunk in self._chunks(units, "translate"):
            for pack, texts in zip(chunk, self._translate_packs(samples, chunk)):
                for placement, text in zip(pack.placements, texts):
                    english[position[id(placement.transmission)]] = text
        return english

    def _translate_packs(self, samples: np.ndarray, packs: Sequence[Pack]) -> list[list[str]]:
        """The English of each placement of each pack."""
        out: list[list[str]] = []
        redo: list[tuple[int, int]] = []
        for n, (pack, decoded) in enumerate(zip(packs, self._decode_windows(
                [self._window(samples, pack, "translate") for pack in packs]))):
            if decoded is None:
                out.append([""])
                continue
            if len(pack.placements) == 1:
                out.append([_english(decoded)])
                continue
            owners, again = self._split_pack(pack, decoded)
            texts: list[list[str]] = [[] for _ in pack.placements]
            for seg, owner in zip(decoded.segments, owners):
                if owner is not None and seg.text.strip():
                    texts[owner].append(seg.text.strip())
            english = [" ".join(parts) for parts in texts]
            out.append(english)
            redo.extend((n, i) for i in range(len(pack.placements)) if i in again or not english[i])
        alone = [self._alone(packs[n].placements[i].transmission) for n, i in redo]
        for (n, i), decoded in zip(redo, self._decode_windows([self._window(samples, p, "translate") for p in alone])):
            out[n][i] = "" if decoded is None else _english(decoded)
        return out

    def score_texts(self, samples: np.ndarray, start: float, end: float, texts: Sequence[str],
                    sample_rate: int = SAMPLE_RATE) -> list[Optional[Hypothesis]]:
        """How well each text fits the audio between start and end (seconds): a Hypothesis with
        the model's mean log-probability per token of that text as the audio's transcript, and
        its token count (WindowModel.score_window). Texts are compared with one another on the
        same audio (intercept.acoustic); the audio is cut to one 30 s window."""
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"Whisper engines expect {SAMPLE_RATE} Hz samples")
        chunk = samples[int(round(start * SAMPLE_RATE)): int(round(end * SAMPLE_RATE))][: WINDOW_SECONDS * SAMPLE_RATE]
        texts = list(texts)
        if len(chunk) == 0 or not texts:
            return [None] * len(texts)
        scores = self.model.score_window(chunk.astype(np.float32, copy=False), texts)
        return [None if score is None else Hypothesis(text, score[0] / score[1], score[1])
                for text, score in zip(texts, scores)]

    def transcribe_one(self, samples: np.ndarray, tx: Transmission) -> list[Line]:
        return self._transcribe_packs(samples, [self._alone(tx)])

    def lines_in(self, decoded: Decoded, tx: Transmission, offset_s: float = 0.0) -> list[Line]:
        """Lines of a window that held only `tx`, starting at offset_s in the window."""
        pack = Pack((Placement(tx, offset_s),), self.pack_options.gap_s)
        return [line for line in self._lines(decoded, pack, [0] * len(decoded.segments), packed=False) if line]

    def _split_pack(self, pack: Pack, decoded: Decoded) -> tuple[list[Optional[int]], set[int]]:
        """A packed window's segments' placements (assign_spans), and the placements to decode
        again alone. A segment across a gap holds text of two transmissions that cannot be
        split by time: every transmission it touches is decoded again on its own.

        So is a transmission where the first-pass n-gram ban acted because of another
        transmission's words: the ban covers the whole window, and radio traffic repeats
        itself (the same call sign, the same phrase), so it could forbid one transmission what
        another already said. Alone, that transmission is banned only from repeating itself,
        as is every transmission the ban acted on within itself; so each transmission's text
        is what a ban per transmission gives."""
        if self.pack_options.split_by_words:
            decoded.segments = self._cut_at_gaps(pack, decoded.segments)
        owners = assign_spans(pack, [(seg.start, seg.end) for seg in decoded.segments], self.pack_options)
        redo: set[int] = set()
        for seg, owner in zip(decoded.segments, owners):
            if owner is None:
                redo.update(_touched(pack, seg.start, seg.end))
        for earlier, later in decoded.ban_spans or ():
            one, other = _touched(pack, *earlier), _touched(pack, *later)
            if len(one | other) > 1:
                redo.update(other)
        return owners, redo

    def _cut_at_gaps(self, pack: Pack, segments: list[Segment]) -> list[Segment]:
        """Each segment that covers two or more transmissions, cut at the gaps by its words'
        times where they allow (packing.split_by_words); the others as they are. A cut piece
        keeps the segment's scores; its N-best cannot be cut the same way, so its line gets
        none (_attach_alternatives finds the hypotheses' pieces across the gap unmappable)."""
        out: list[Segment] = []
        for seg in segments:
            words = [w for w in (seg.words or []) if w.text.strip()]
            if seg.words is None or not words or assign_spans(pack, [(seg.start, seg.end)], self.pack_options)[0] is not None:
                out.append(seg)
                continue
            runs = split_by_words(pack, [(w.start, w.end) for w in words], self.pack_options)
            if runs is None:
                out.append(seg)
                continue
            for _owner, indices in runs:
                piece = [words[i] for i in indices]
                out.append(replace(seg, start=piece[0].start, end=max(piece[-1].end, piece[0].start),
                                   text="".join(w.text for w in piece).strip(), words=piece,
                                   compression_ratio=compression_ratio("".join(w.text for w in piece).strip())))
        return out

    def _lines(self, decoded: Decoded, pack: Pack, owners: list[Optional[int]], packed: bool) -> list[Optional[Line]]:
        """One Line (or None: no text, or not this window's to give) per segment, with its
        evidence, at recording times inside its transmission."""
        lines: list[Optional[Line]] = []
        for seg, owner in zip(decoded.segments, owners):
            text = seg.text.strip()
            if owner is None or not text:
                lines.append(None)
                continue
            placement = pack.placements[owner]
            # Whisper's timestamps can run past the audio it was given; keep every line
            # inside its transmission so playback and ordering stay right.
            start = placement.to_recording_time(seg.start)
            end = max(placement.to_recording_time(seg.end), start)
            start, end = round(start, 3), round(end, 3)
            words = None
            if seg.words is not None:
                # The alignment's word edges may reach past the segment's timestamps: kept
                # inside the line, as the line is kept inside its transmission.
                words = [_word(w, placement, start, end) for w in seg.words if w.text.strip()]
            line = Line(start=start, end=end, text=text,
                        transmission_idx=placement.transmission.idx, avg_logprob=seg.avg_logprob,
                        no_speech_prob=seg.no_speech_prob, compression_ratio=seg.compression_ratio,
                        words=words)
            if packed:
                # Whisper scores a window, and this window holds several transmissions: one
                # looping transmission would mark all of them, so each line gets the ratio of
                # its own text. The no-speech probability cannot be had per line, and the
                # window's is no measure of any one transmission (0.78 on a pack whose
                # transmissions scored 0.18-0.39 alone, so all were marked "no speech"): unknown.
                line.compression_ratio = compression_ratio(text)
                line.no_speech_prob = None
            line.confidence = confidence(words, seg.avg_logprob)
            lines.append(line)
        _attach_alternatives(decoded, pack, owners, lines, self.pack_options)
        return lines


def _english(decoded: Decoded) -> str:
    return " ".join(seg.text.strip() for seg in decoded.segments).strip()


def _touched(pack: Pack, start: float, end: float) -> set[int]:
    return {i for i, p in enumerate(pack.placements) if p.offset_s < end and start < p.end_s}


def _word(word: Word, placement: Placement, line_start: float, line_end: float) -> Word:
    start = min(max(placement.to_recording_time(word.start), line_start), line_end)
    end = min(max(placement.to_recording_time(word.end), start), line_end)
    probability = min(1.0, max(0.0, float(word.probability)))
    return Word(word.text.strip(), round(start, 3), round(end, 3), round(probability, 4))


def _attach_alternatives(decoded: Decoded, pack: Pack, owners: list[Optional[int]],
                         lines: list[Optional[Line]], pack_options: PackOptions) -> None:
    """Split each hypothesis of a decode call into its pieces (already cut at timestamp
    tokens by the engine), give each piece the transmission it covers (assign_spans) and
    there the line it overlaps most, and so give every line its own N-best. A line whose
    hypotheses cannot be mapped (a piece across two transmissions, or a first hypothesis
    that is not the line's text) keeps alternatives None."""
    for call, candidates in enumerate(decoded.nbest):
        members = [i for i, seg in enumerate(decoded.segments) if seg.decode == call and lines[i] is not None]
        if not members or not candidates:
            continue
        texts: dict[int, list[list[str]]] = {i: [] for i in members}
        unmappable: set[int] = set()
        for candidate in candidates:
            pieces = [(s, e, t.strip()) for s, e, t in candidate.pieces if t.strip() and e > s]
            spans = assign_spans(pack, [(s, e) for s, e, _ in pieces], pack_options) if len(pack.placements) > 1 \
                else [0] * len(pieces)
            chosen: dict[int, list[str]] = {i: [] for i in members}
            for (start, end, text), owner in zip(pieces, spans):
                if owner is None:
                    touched = _touched(pack, start, end)
                    unmappable.update(i for i in members if owners[i] in touched)
                    continue
                mine = [i for i in members if owners[i] == owner]
                if not mine:
                    continue  # text where the best hypothesis put no line of this call
                segs = decoded.segments
                best = max(mine, key=lambda i: (_overlap(segs[i].start, segs[i].end, start, end),
                                                -abs((segs[i].start + segs[i].end) - (start + end))))
                chosen[best].append(text)
            for i in members:
                texts[i].append(chosen[i])
        for i in members:
            line = lines[i]
            alternatives = [Hypothesis(" ".join(parts), round(c.avg_logprob, 4), c.tokens)
                            for parts, c in zip(texts[i], candidates)]
            if i not in unmappable and alternatives and alternatives[0].text == line.text:
                line.alternatives = alternatives


def _overlap(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    return max(0.0, min(a_end, b_end) - max(a_start, b_start))


class DecoderMethods:
    """The Engine methods that are nothing but the Decoder's policy over the engine itself (a
    WindowModel with `options` and `pack_options`), written once for the engines."""

    def decoder(self) -> Decoder:
        return Decoder(self, self.options, self.pack_options)

    def translate_audio(self, samples: np.ndarray, start: float, end: float, sample_rate: int = SAMPLE_RATE) -> str:
        return self.decoder().translate(samples, start, end, sample_rate)

    def translate_spans(self, samples: np.ndarray, spans: Sequence[Transmission],
                        sample_rate: int = SAMPLE_RATE) -> list[str]:
        return self.decoder().translate_spans(samples, spans, sample_rate)

    def score_texts(self, samples: np.ndarray, start: float, end: float, texts: Sequence[str],
                    sample_rate: int = SAMPLE_RATE) -> list[Optional[Hypothesis]]:
        return self.decoder().score_texts(samples, start, end, texts, sample_rate)
