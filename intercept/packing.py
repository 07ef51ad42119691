"""Packing short transmissions into shared 30 s Whisper windows.

Whisper's encoder always runs on a 30 s window, so a 4 s radio call decoded on its own pays
for 26 s of padding. Here several transmissions are laid one after another in one window,
each followed by a short stretch of silence, so one encoder pass serves all of them; the
recogniser's segments (in window time) are then mapped back to the transmission they came
from and to times in the original recording.

A recognised segment may never straddle two transmissions (a line belongs to one
transmission in the store). `assign_spans` therefore gives each segment the one
transmission it covers, or None when it covers two or more; the engine decodes those
transmissions again on their own.

Pure Python and numpy: no model here, so the planner and mapper are tested without one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .types import Transmission


@dataclass(frozen=True)
class PackOptions:
    """How transmissions are laid out in a window."""

    # What goes into one window. Slightly under Whisper's 30 s: Whisper's last timestamps
    # before the window's end are the least reliable, and a window that runs over would make
    # faster-whisper seek into a second, nearly empty window.
    window_s: float = 29.0
    # Silence after each transmission. Whisper starts a new segment at a pause this long,
    # and it is wider than the drift of Whisper base's timestamps, so segment ends stay on
    # the right side of the gap.
    gap_s: float = 1.5
    # A segment covers a transmission when it overlaps it by at least this much (or by half
    # of the transmission when that is shorter): Whisper's segment edges often reach a few
    # hundred ms into the neighbouring silence.
    min_cover_s: float = 0.4
    # A segment across a gap is cut at the gap by its words' times (split_by_words) instead of
    # decoding its transmissions again alone, when every word lies in one transmission or
    # within word_slack_s of one. A model that writes one segment per window (an adapted model
    # trained on one segment per clip) redid a third of the packed transmissions alone: 1.6x
    # the wall time of the base on short real clips. The slack is a third of the default gap,
    # so no word is near two transmissions; a word further out leaves the segment to be redone.
    split_by_words: bool = True
    word_slack_s: float = 0.5

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValueError(f"PackOptions.window_s must be positive, got {self.window_s}")
        if self.gap_s < 0:
            raise ValueError(f"PackOptions.gap_s must not be negative, got {self.gap_s}")
        if self.min_cover_s < 0:
            raise ValueError(f"PackOptions.min_cover_s must not be negative, got {self.min_cover_s}")
        if self.word_slack_s < 0:
            raise ValueError(f"PackOptions.word_slack_s must not be negative, got {self.word_slack_s}")


@dataclass(frozen=True)
class Placement:
    """One transmission inside a packed window."""

    transmission: Transmission
    offset_s: float  # where the transmission starts in the window

    @property
    def end_s(self) -> float:
        return self.offset_s + self.transmission.duration

    def to_recording_time(self, window_time: float) -> float:
        """A time in the window as seconds in the original recording, kept inside the transmission."""
        tx = self.transmission
        return min(max(tx.start + (window_time - self.offset_s), tx.start), tx.end)


@dataclass(frozen=True)
class Pack:
    """Transmissions sharing one window, in recording order."""

    placements: tuple[Placement, ...]
    gap_s: float

    @property
    def duration_s(self) -> float:
        """Length of the packed audio (the last transmission is not followed by a gap)."""
        return self.placements[-1].end_s if self.placements else 0.0

    @property
    def speech_s(self) -> float:
        return sum(p.transmission.duration for p in self.placements)


def plan_packs(transmissions: Sequence[Transmission], options: PackOptions = PackOptions()) -> list[Pack]:
    """Greedy packing in recording order: a transmission joins the current window when it
    still fits (with the gap before it), else it opens a new one. Recording order keeps
    neighbouring transmissions (often a call and its answer) together; a better bin-packing
    would save few windows, because the gaps already decide most of it.

    A transmission longer than the window gets a window of its own (segment.py already
    splits transmissions at 28 s)."""
    packs: list[Pack] = []
    current: list[Placement] = []
    cursor = 0.0
    for tx in transmissions:
        if tx.duration <= 0:
            continue
        start = cursor + options.gap_s if current else 0.0
        if current and start + tx.duration > options.window_s:
            packs.append(Pack(tuple(current), options.gap_s))
            current, start = [], 0.0
        current.append(Placement(tx, start))
        cursor = start + tx.duration
    if current:
        packs.append(Pack(tuple(current), options.gap_s))
    return packs


def pack_samples(samples: np.ndarray, pack: Pack, sample_rate: int = 16000) -> np.ndarray:
    """The window's audio: each transmission's samples at its offset, digital silence between.

    Offsets are rounded to whole samples the same way as the slices, so window time and
    recording time differ by exactly the placement's offset."""
    total = int(round(pack.duration_s * sample_rate))
    window = np.zeros(total, dtype=np.float32)
    for placement in pack.placements:
        tx = placement.transmission
        chunk = samples[int(round(tx.start * sample_rate)) : int(round(tx.end * sample_rate))]
        at = int(round(placement.offset_s * sample_rate))
        chunk = chunk[: max(0, total - at)]
        window[at : at + chunk.size] = chunk
    return window


def _overlap(start: float, end: float, placement: Placement) -> float:
    return max(0.0, min(end, placement.end_s) - max(start, placement.offset_s))


def assign_spans(pack: Pack, spans: Sequence[tuple[float, float]],
                 options: PackOptions = PackOptions()) -> list[Optional[int]]:
    """For each (start, end) span in window time, the index of the placement it belongs to,
    or None when it covers two or more transmissions (it must be decoded again per transmission).

    A span that covers none (it lies in a gap, or is too short to cover anything) belongs to
    the placement it overlaps most, else to the nearest one: Whisper's timestamps drift, and
    its text still came from the audio around it."""
    result: list[Optional[int]] = []
    for start, end in spans:
        if end < start:
            start, end = end, start
        overlaps = [_overlap(start, end, p) for p in pack.placements]
        covered = [
            i for i, (p, amount) in enumerate(zip(pack.placements, overlaps))
            if amount > 0 and amount >= min(options.min_cover_s, 0.5 * p.transmission.duration)
        ]
        if len(covered) >= 2:
            result.append(None)
        elif covered:
            result.append(covered[0])
        elif any(overlaps):
            result.append(int(np.argmax(overlaps)))
        else:
            middle = (start + end) / 2
            distances = [
                0.0 if p.offset_s <= middle <= p.end_s else min(abs(middle - p.offset_s), abs(middle - p.end_s))
                for p in pack.placements
            ]
            result.append(int(np.argmin(distances)))
    return result


def split_by_words(pack: Pack, words: Sequence[tuple[float, float]],
                   options: PackOptions = PackOptions()) -> Optional[list[tuple[int, list[int]]]]:
    """Cut one segment that covers several transmissions at the gaps, by its words' (start, end)
    times in window time: [(placement index, indices of its words)] in order, or None when a
    word lies in a gap further than word_slack_s from every transmission, or the words do not
    go through the transmissions in order (the times cannot be trusted to cut the text)."""
    if not words:
        return None
    runs: list[tuple[int, list[int]]] = []
    for n, (start, end) in enumerate(words):
        middle = (start + end) / 2
        inside = [i for i, p in enumerate(pack.placements) if p.offset_s <= middle <= p.end_s]
        if inside:
            owner = inside[0]
        else:
            distance, owner = min((min(abs(middle - p.offset_s), abs(middle - p.end_s)), i)
                                  for i, p in enumerate(pack.placements))
            if distance > options.word_slack_s:
                return None
        if runs and owner < runs[-1][0]:
            return None
        if runs and runs[-1][0] == owner:
            runs[-1][1].append(n)
        else:
            runs.append((owner, [n]))
    return runs


# -- several recordings at once ----------------------------------------------------------------
#
# Recorders that write one file per transmission (trunk-recorder, SDRTrunk, rdio-scanner) give
# folders of 2-15 s files. Each would pay a whole 30 s window alone, so the transmissions of
# several recordings are laid into one "joined" sample array and handed to the engine as if
# they were one recording's; the engine packs them as usual, and every line is then moved back
# to its own recording and time.


@dataclass(frozen=True)
class Origin:
    """Where a transmission of the joined array comes from."""

    part: int  # which of the joined recordings
    transmission: Transmission  # as found in that recording
    shift_s: float  # joined time minus recording time, a whole number of milliseconds


@dataclass(frozen=True)
class Joined:
    """Transmissions of several recordings in one sample array (see join_recordings)."""

    samples: np.ndarray
    transmissions: tuple[Transmission, ...]  # in joined time; idx is the position here
    origins: tuple[Origin, ...]  # per joined transmission


def join_recordings(parts: Sequence[tuple[np.ndarray, Sequence[Transmission]]],
                    sample_rate: int = 16000) -> Joined:
    """One sample array holding every transmission of every (samples, transmissions) part,
    one after another, in order.

    Each transmission is moved by a whole number of milliseconds that is also a whole number
    of samples, so that the engine slices exactly the samples it would slice from the
    recording itself, and a time moved there and back rounds to the same millisecond."""
    step = sample_rate // 1000 if sample_rate % 1000 == 0 else sample_rate  # samples per ms
    placed: list[tuple[int, int, int]] = []  # (first sample in the part, last, shift in samples)
    transmissions: list[Transmission] = []
    origins: list[Origin] = []
    cursor = 0
    for part, (samples, txs) in enumerate(parts):
        for tx in txs:
            first = int(round(tx.start * sample_rate))
            end = max(first, int(round(tx.end * sample_rate)))
            last = min(end, samples.size)
            shift = -(-(cursor - first) // step) * step  # ceil to a whole millisecond
            shift_s = shift / sample_rate
            placed.append((first, max(first, last), shift))
            transmissions.append(Transmission(len(transmissions), tx.start + shift_s, tx.end + shift_s))
            origins.append(Origin(part, tx, shift_s))
            cursor = end + shift  # the engine slices up to `end`: nothing of the next one lies there
    joined = np.zeros(cursor, dtype=np.float32)
    for (first, last, shift), origin in zip(placed, origins):
        joined[first + shift : last + shift] = parts[origin.part][0][first:last]
    return Joined(joined, tuple(transmissions), tuple(origins))


def split_lines(joined: Joined, lines: Sequence, parts: int) -> list[list]:
    """The engine's lines over a joined array, given back to their recordings: per part, in
    recording time and with the recording's own transmission index, in recording order.
    Word times, where a line carries them (``Line.words``), move too."""
    from dataclasses import replace

    found: list[list] = [[] for _ in range(parts)]
    for line in lines:
        origin = joined.origins[line.transmission_idx]
        shift = origin.shift_s
        moved = replace(line, start=round(line.start - shift, 3), end=round(line.end - shift, 3),
                        transmission_idx=origin.transmission.idx)
        if line.words:
            moved.words = [replace(w, start=round(w.start - shift, 3), end=round(w.end - shift, 3))
                           for w in line.words]
        found[origin.part].append(moved)
    for part_lines in found:
        part_lines.sort(key=lambda line: (line.start, line.transmission_idx))
    return found


@dataclass
class PoolOptions:
    """Which recordings wait to share windows with other recordings (RunOptions.pool)."""

    # A recording shorter than this joins the pool; a longer one has enough transmissions to
    # fill windows of its own and is recognised alone, as soon as it is decoded. 0: off.
    short_s: float = 25.0
    # The pool is recognised once its transmissions fill this many windows. One keeps the
    # work a kill can lose (the pool's recordings are stored only once all are recognised)
    # and the wait before a folder's first lines are stored to one window's worth.
    windows: int = 1
    # And at the latest when it holds this many recordings (samples are held until then).
    max_recordings: int = 32
    # Recordings decoded and segmented ahead, in a thread, while the recogniser works on
    # earlier ones (pipeline.ReadAhead); never past a recording the pool does not take, so a
    # long one is not held twice. 0: decode each recording only when it is needed.
    read_ahead: int = 8

    def __post_init__(self) -> None:
        if self.short_s < 0:
            raise ValueError(f"PoolOptions.short_s must not be negative, got {self.short_s}")
        if self.windows < 1 or self.max_recordings < 1:
            raise ValueError("PoolOptions.windows and max_recordings must be at least 1")
        if self.read_ahead < 0:
            raise ValueError(f"PoolOptions.read_ahead must not be negative, got {self.read_ahead}")


class RecordingPool:
    """Short recordings waiting to be recognised together.

    `add` returns the groups that are ready: whole recordings, in the order they came, whose
    transmissions fill `windows` windows as `plan_packs` lays them out (the recording that
    would spill into the next window waits for the next group, so windows go out full)."""

    def __init__(self, options: PoolOptions = PoolOptions(), pack: PackOptions = PackOptions()):
        self.options, self.pack = options, pack
        self.waiting: list[tuple[object, Sequence[Transmission]]] = []

    def takes(self, duration_s: float, transmissions: Sequence[Transmission]) -> bool:
        return bool(transmissions) and duration_s < self.options.short_s

    def add(self, item: object, transmissions: Sequence[Transmission]) -> list[list]:
        self.waiting.append((item, list(transmissions)))
        ready = []
        while self.waiting:
            if len(self.waiting) >= self.options.max_recordings:
                ready.append(self._take(len(self.waiting)))
                continue
            packs = plan_packs([tx for _, txs in self.waiting for tx in txs], self.pack)
            if len(packs) <= self.options.windows:
                break
            room = sum(len(pack.placements) for pack in packs[: self.options.windows])
            count, used = 0, 0
            for _, txs in self.waiting:
                placed = sum(1 for tx in txs if tx.duration > 0)  # as plan_packs counts them
                if used + placed > room:
                    break
                count, used = count + 1, used + placed
            ready.append(self._take(max(count, 1)))
        return ready

    def drain(self) -> list[list]:
        return [self._take(len(self.waiting))] if self.waiting else []

    def _take(self, count: int) -> list:
        taken, self.waiting = self.waiting[:count], self.waiting[count:]
        return [item for item, _ in taken]
