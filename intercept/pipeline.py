"""One recording end to end, and the batch over many. The only module that knows the order
of the stages: audio -> segment -> engine -> post-recognition -> store, where the
post-recognition step (intercept.derive: text -> translate -> guards -> lexicon -> score) is
the one `intercept translate` and `intercept flag` run again over stored lines.
"""
from __future__ import annotations

import os
import platform
import stat
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from . import __version__
from .audio import AudioError, CleanupOptions, clean_radio, decode, sha256_file
from .config import RunOptions
from .components import Components
from .engines.base import pack_options_for
from .packing import RecordingPool, join_recordings, split_lines
from .recorded_at import recorded_at_for
from .segment import SegmentOptions, find_transmissions
from .store import CREATE, READ, RecordingFacts, Store, StoreError
from .types import Flag, Line, Transmission

# Folders are walked for these extensions only, so notes, manifests and images beside the
# recordings are not reported as failed recordings. A file named on the command line is
# always tried, whatever its extension.
AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .mp3 .ogg .oga .opus .flac .m4a .aac .wma .amr .3gp .3ga .mp4 .m4v .mkv .mka .webm "
    ".aif .aiff .aifc .au .snd .caf .spx .gsm .ac3 .mp2 .mpga .ts .mov .avi .vox .w64 .rf64".split()
)


@dataclass
class RecordingResult:
    path: str
    status: str  # done | failed | skipped
    error: Optional[str] = None
    duration_s: float = 0.0
    transmissions: int = 0
    lines: int = 0
    flagged_lines: int = 0
    suspect_lines: int = 0
    recording_id: Optional[int] = None
    note: Optional[str] = None  # why a recording was skipped, e.g. "same content as '...'"


@dataclass
class Analysis:
    """Everything found in one recording, before it is stored: the pure part of processing,
    computed without a store (a worker process can make it; only the driver saves it).
    status is "done" or "failed"; a failed analysis carries the one-line reason in error."""

    facts: RecordingFacts
    status: str
    error: Optional[str] = None
    transmissions: list[Transmission] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    flags: list[list[Flag]] = field(default_factory=list)
    engine: str = ""
    model: str = ""
    translator: str = ""
    translator_model: Optional[str] = None
    lexicon_version: str = ""
    # With options.voices: one intercept.voices.VoicePrint per transmission, and its model.
    voice_prints: Optional[list] = None
    voice_model: tuple[str, str] = ("", "")


@dataclass
class Decoded:
    """A recording decoded and cut into transmissions, waiting for recognition."""

    path: Path
    facts: RecordingFacts
    samples: np.ndarray
    sample_rate: int
    transmissions: list[Transmission]


class RecordingError(Exception):
    """A recording cannot be read; the message is one line naming the file and the reason."""

    def __init__(self, facts: RecordingFacts, reason: str):
        self.facts = facts
        super().__init__(reason)


@dataclass
class Summary:
    files: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    transmissions: int = 0
    lines: int = 0
    flagged_lines: int = 0
    suspect_lines: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0  # processing, after the models were loaded
    load_s: float = 0.0  # loading the recogniser, translator, VAD, lexicon and normaliser, once
    failures: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # skipped files and why
    voices: Optional[dict] = None  # with --voices: intercept.voices.GroupingSummary.to_dict()

    @property
    def audio_hours(self) -> float:
        return self.audio_s / 3600

    @property
    def real_time_factor(self) -> Optional[float]:
        """Wall time over audio time: below 1 is faster than real time."""
        return self.wall_s / self.audio_s if self.audio_s else None

    def add(self, result: RecordingResult) -> None:
        self.files += 1
        setattr(self, result.status, getattr(self, result.status) + 1)
        if result.status == "failed":
            self.failures.append((result.path, result.error or "unknown error"))
        if result.status == "skipped" and result.note:
            self.notes.append((result.path, result.note))
        if result.status == "done":
            self.audio_s += result.duration_s
            self.transmissions += result.transmissions
            self.lines += result.lines
            self.flagged_lines += result.flagged_lines
            self.suspect_lines += result.suspect_lines

    def to_dict(self) -> dict:
        data = asdict(self)
        data["audio_hours"] = round(self.audio_hours, 4)
        data["real_time_factor"] = None if self.real_time_factor is None else round(self.real_time_factor, 3)
        return data


def iter_recordings(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files named directly, then audio files found under folders, each folder sorted.
    Symbolic links to folders are not followed, so a link loop cannot trap the walk."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                        yield Path(root) / name
        else:
            yield path


def versions() -> dict[str, str]:
    found = {"intercept": __version__, "python": platform.python_version()}
    for dist in ("faster-whisper", "ctranslate2", "onnxruntime", "hazm", "sqlite-utils", "pydub",
                 "openai-whisper", "transformers", "torch", "sentencepiece"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found


def safe_text(text: str) -> str:
    """Text that can be stored and printed: file names that are not UTF-8 reach Python as
    lone surrogates (PEP 383), which SQLite and terminals refuse; show those bytes as \\xNN."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return safe_text(text if isinstance(exc, AudioError) else f"{type(exc).__name__}: {text}")


def _not_regular(mode: int) -> Optional[str]:
    if stat.S_ISDIR(mode):
        return "is a directory, not a recording"
    if stat.S_ISFIFO(mode):
        # Opening a named pipe would block the batch until something writes to it.
        return "is a named pipe (FIFO), not a recording file"
    if stat.S_ISREG(mode):
        return None
    return "is a device or socket, not a recording file"


def examine(path: str | Path) -> RecordingFacts:
    """Path, size and SHA-256 of a recording, reading it once and never writing it.
    Raises RecordingError (one line naming the file and the reason) when it cannot be read."""
    path = Path(path)
    absolute = path.absolute()
    facts = RecordingFacts(path=safe_text(str(absolute)), path_raw=os.fsencode(absolute))

    def fail(reason: str) -> RecordingError:
        return RecordingError(facts, f"cannot read recording '{facts.path}': {reason}")

    try:
        info = path.stat()  # follows links: a link loop or a dangling link fails here
    except OSError as exc:
        raise fail(exc.strerror or str(exc)) from None
    reason = _not_regular(info.st_mode)
    if reason:
        raise fail(reason)
    facts.size_bytes = info.st_size
    try:
        facts.sha256 = sha256_file(str(path))
    except AudioError as exc:
        raise RecordingError(facts, one_line(exc)) from None
    except OSError as exc:
        raise fail(exc.strerror or str(exc)) from None
    return facts


# Transmissions per engine call: enough to fill a decode batch of packed windows (16 made about
# three windows, so batches of three; 64 on a 58-transmission session: 0.89x the CPU seconds,
# scripts/bench_session_decode.py, docs/benchmarks.md), few enough that the progress bar moves.
TRANSMISSIONS_PER_CALL = 64


class Pipeline:
    """The analysis of recordings (decode .. flag), with its components loaded once
    (intercept.components). It never opens a store: a local run and each Ray worker use it,
    and a `Recorder` stores what it finds."""

    def __init__(self, options: RunOptions, components: Optional[Components] = None):
        self.options = options
        parts = components or Components.build(options)
        self.components = parts
        self.engine, self.translator, self.normalizer = parts.engine, parts.translator, parts.normalizer
        self.lexicon, self.scorer, self.post = parts.lexicon, parts.scorer, parts.post
        self.model_name, self.model_card_sha256 = parts.model_name, parts.model_card_sha256
        self.voice_embedder, self.load_s = parts.voice_embedder, parts.load_s
        self.segment_options = SegmentOptions(method=options.segment_method)
        self.cleanup_options = CleanupOptions()

    def analyze(
        self,
        path: str | Path,
        facts: Optional[RecordingFacts] = None,
        on_transmission: Optional[Callable[[int, int], None]] = None,
    ) -> Analysis:
        """Decode, segment, transcribe, normalise, translate, mark and flag one recording,
        without touching any store. Never raises for a bad recording: returns status failed."""
        return next(self.analyze_many([(path, facts)], on_transmission))

    def analyze_many(
        self,
        items: Iterable[tuple[str | Path, Optional[RecordingFacts]]],
        on_transmission: Optional[Callable[[int, int], None]] = None,
    ) -> Iterator[Analysis]:
        """`analyze` for many recordings, one Analysis each, in the order they are finished.

        Each recording is decoded and segmented first (a bad file fails there, alone). Short
        ones (RunOptions.pool) then wait in a pool until their transmissions fill a window,
        and the pool is recognised in one engine call, so that several recordings share
        Whisper's 30 s windows; longer ones are recognised alone at once. Every line comes back
        to its own recording, with the times and transmission index it would have alone."""
        pool = RecordingPool(self.options.pool, pack_options_for(self.options.transcribe))
        decoding = ReadAhead(items, self._decode, self.options.pool.read_ahead,
                             lambda d: isinstance(d, Decoded) and not pool.takes(d.facts.duration_s or 0.0,
                                                                                 d.transmissions))
        for decoded in decoding:
            if isinstance(decoded, Analysis):
                yield decoded
            elif pool.takes(decoded.facts.duration_s or 0.0, decoded.transmissions):
                for group in pool.add(decoded, decoded.transmissions):
                    yield from self._recognise(group, on_transmission)
            else:
                yield from self._recognise([decoded], on_transmission)
        for group in pool.drain():
            yield from self._recognise(group, on_transmission)

    def _decode(self, path: str | Path, facts: Optional[RecordingFacts]) -> Decoded | Analysis:
        """A recording decoded and cut into transmissions, or its failed Analysis."""
        try:
            facts = facts or examine(path)
        except RecordingError as exc:
            return Analysis(exc.facts, "failed", error=str(exc))
        try:
            audio = decode(str(path))
            # The tags come from decode's own ffprobe call: one ffprobe per file, not two.
            facts.recorded_at = recorded_at_for(Path(path), self.options.recorded_at,
                                                read_tags=lambda _: audio.tags)
            facts.duration_s = round(audio.duration, 3)
            facts.format = audio.format
            samples = audio.samples
            if self.options.clean_radio:
                # In place: a second full-length copy would cost 460 MB on a 2-hour recording.
                samples = clean_radio(samples, audio.sample_rate, self.cleanup_options, out=samples)
            transmissions = find_transmissions(samples, audio.sample_rate, self.segment_options)
            return Decoded(Path(path), facts, samples, audio.sample_rate, list(transmissions))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one bad file must not stop the batch
            return Analysis(facts, "failed", error=one_line(exc))

    def _recognise(self, group: list[Decoded], on_transmission) -> list[Analysis]:
        """Transcribe a group of decoded recordings in one engine call, then finish each."""
        try:
            if len(group) == 1:
                found = [self._transcribe_alone(group[0], on_transmission)]
            else:
                rates = {decoded.sample_rate for decoded in group}
                if len(rates) != 1:
                    raise ValueError(f"recordings decoded at different sample rates {sorted(rates)}")
                joined = join_recordings([(d.samples, d.transmissions) for d in group], rates.pop())
                lines = self.engine.transcribe(joined.samples, joined.transmissions, group[0].sample_rate)
                found = split_lines(joined, lines, len(group))
                if on_transmission:
                    on_transmission(len(joined.transmissions), len(joined.transmissions))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            if len(group) > 1:  # whichever recording caused it, it must fail alone
                return [analysis for decoded in group for analysis in self._recognise([decoded], on_transmission)]
            return [Analysis(group[0].facts, "failed", error=one_line(exc))]
        translated = len(group) > 1 and self._translate_together(group, found)
        return [self._finish(decoded, lines, translated) for decoded, lines in zip(group, found)]

    def _translate_together(self, group: list[Decoded], found: list[list[Line]]) -> bool:
        """A pool's lines translated in one call (with TranscribeOptions.pack_translate the
        whisper translator packs them into shared windows as the recogniser did; without, it
        decodes each line alone). False when the translator cannot, or failed:
        each recording is then translated alone in _finish, where a failure fails it alone."""
        translate_many = getattr(self.translator, "translate_many", None)
        if translate_many is None:
            return False
        try:
            translate_many([(lines, decoded.samples) for decoded, lines in zip(group, found)], group[0].sample_rate)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception:
            return False
        return True

    def _transcribe_alone(self, decoded: Decoded, on_transmission) -> list[Line]:
        transmissions = decoded.transmissions
        lines = []
        # Transmissions go to the engine in groups, so that it can pack several into one
        # 30 s window, and the progress bar still moves during a long recording.
        for first in range(0, len(transmissions), TRANSMISSIONS_PER_CALL):
            group = transmissions[first : first + TRANSMISSIONS_PER_CALL]
            lines.extend(self.engine.transcribe(decoded.samples, group, decoded.sample_rate))
            if on_transmission:
                on_transmission(first + len(group), len(transmissions))
        return lines

    def _finish(self, decoded: Decoded, lines: list[Line], translated: bool = False) -> Analysis:
        """The post-recognition step (normalise, translate unless `translated`, mark, flag,
        score) for one recording's lines."""
        try:
            flags = self.post.derive(lines, decoded.samples, decoded.sample_rate, translate=not translated)
            voice_prints, voice_model = None, ("", "")
            if self.voice_embedder is not None:
                voice_prints = self.voice_embedder.embed_transmissions(decoded.samples, decoded.sample_rate,
                                                                       decoded.transmissions)
                voice_model = (self.voice_embedder.model, self.voice_embedder.version)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            return Analysis(decoded.facts, "failed", error=one_line(exc))
        return Analysis(
            decoded.facts,
            "done",
            transmissions=list(decoded.transmissions),
            lines=lines,
            flags=flags,
            engine=self.engine.name,
            model=self.model_name,
            translator=self.translator.name,
            translator_model=self.translator.model,
            lexicon_version=self.lexicon.version,
            voice_prints=voice_prints,
            voice_model=voice_model,
        )


class ReadAhead:
    """`decode(path, facts)` of each item, in order, computed up to `depth` items ahead in one
    thread while the caller works on earlier results: a folder's next files are read
    (ffmpeg) and segmented (VAD) while the recogniser decodes the current windows (CTranslate2
    and ffmpeg leave the GIL). Memory stays bounded: at most `depth` results wait, and after a
    result for which `holds(result)` is true (a long recording, recognised alone) the thread
    waits until the caller has finished with it and asks for the next, so two long recordings
    are never held at once. The items are drawn from their iterator in the caller's thread
    (run_batch admits each file there, on the store's connection). depth 0: no thread, each
    item decoded when asked for."""

    def __init__(self, items: Iterable, decode: Callable, depth: int, holds: Callable[[Any], bool]):
        self._items, self._decode, self._depth, self._holds = iter(items), decode, depth, holds
        self._lock = threading.Condition()
        self._inputs: deque = deque()  # drawn, not yet decoded
        self._outputs: deque = deque()  # decoded, not yet taken
        self._working = False  # the thread is decoding one
        self._produced = 0  # results decoded so far
        self._asked = 0  # results the caller has asked for so far
        self._resume_at = 0  # the thread waits until the caller has asked for this many
        self._closed = False
        self._failure: Optional[BaseException] = None
        self._exhausted = False
        self._thread: Optional[threading.Thread] = None
        self.most_waiting = 0  # the most results ever decoded and not yet taken (tests)

    def __iter__(self) -> Iterator:
        if self._depth < 1:
            for path, facts in self._items:
                yield self._decode(path, facts)
            return
        self._thread = threading.Thread(target=self._work, name="intercept-read-ahead", daemon=True)
        self._thread.start()
        try:
            while True:
                self._draw()
                with self._lock:
                    self._asked += 1  # so the caller is done with every result it took before
                    self._lock.notify_all()
                    while not self._outputs and self._failure is None and (self._inputs or self._working):
                        self._lock.wait()
                    if self._outputs:
                        result = self._outputs.popleft()
                    elif self._failure is not None:
                        raise self._failure
                    else:
                        return  # every item drawn and decoded
                yield result
        finally:
            with self._lock:
                self._closed = True
                self._lock.notify_all()
            # A stopped caller does not wait for a long decode in progress: the thread is a
            # daemon and drops its result. A finished one has no decode left to wait for.
            if self._exhausted and not self._inputs:
                self._thread.join()

    def _draw(self) -> None:
        """Draw items, in the caller's thread, until `depth` are in hand (drawn, being decoded,
        or decoded and waiting)."""
        while not self._exhausted:
            with self._lock:
                if len(self._inputs) + len(self._outputs) + self._working >= self._depth:
                    return
            try:
                item = next(self._items)
            except StopIteration:
                self._exhausted = True
                return
            with self._lock:
                self._inputs.append(item)
                self._lock.notify_all()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._closed and (not self._inputs or len(self._outputs) >= self._depth
                                            or self._asked < self._resume_at):
                    self._lock.wait()
                if self._closed:
                    return
                path, facts = self._inputs.popleft()
                self._working = True
            try:
                result = self._decode(path, facts)
            except BaseException as exc:  # handed to the caller's thread, which raises it
                with self._lock:
                    self._failure, self._working = exc, False
                    self._lock.notify_all()
                return
            with self._lock:
                self._outputs.append(result)
                self._working = False
                self._produced += 1
                self.most_waiting = max(self.most_waiting, len(self._outputs))
                if self._holds(result):  # go on once the caller asks for the result after this one
                    self._resume_at = self._produced + 1
                self._lock.notify_all()


class Recorder:
    """The store side of a batch, the same for a local run and a Ray run: start the run, admit
    each recording (stored as failed when it cannot be read, skipped when its content is
    stored, held back while the same content is being analysed), record each analysis in one
    transaction as soon as it is done, and finish the run (voices grouped, summary stored).

    Whoever analyses (this process's Pipeline, or Ray workers) hands every analysis to
    `record`; the recordings that waited for its content come back from it, to be admitted
    again: now skipped as "same content", or analysed if the first copy failed."""

    def __init__(self, store: Store, options: RunOptions, summary: Optional[Summary] = None,
                 on_result: Optional[Callable[[Any, RecordingResult], None]] = None):
        self.store = store
        self.options = options
        self.summary = summary if summary is not None else Summary()
        self.on_result = on_result  # (token, result) for every recording settled
        self.run_id: Optional[int] = None
        self.voice_summary = None  # with options.voices: what was embedded (voices.GroupingSummary)
        self._shown: dict[str, str] = {}  # facts.path -> the path as given
        # Content being analysed -> the tokens of same-content recordings waiting for it.
        self._busy: dict[str, list] = {}
        self._started = 0.0

    def start(self, model_name: str, lexicon_version: str, lexicon_terms: Iterable[Any],
              model_card_sha256: Optional[str] = None) -> int:
        """Store the terms of the lexicon the analysis uses and open the run (`runs`, with the
        options as its settings, which `intercept flag` and `translate` reuse)."""
        self.store.save_lexicon_terms(lexicon_version, lexicon_terms)
        found = versions()
        if model_card_sha256:
            found["model_card_sha256"] = model_card_sha256
        self.run_id = self.store.start_run(self.options.engine, model_name, self.options.to_dict(), found)
        self._started = time.perf_counter()
        return self.run_id

    def admit(self, path: str | Path, token: Any = None) -> RecordingFacts | RecordingResult | None:
        """The facts of a recording to analyse; or its result when there is nothing to analyse
        (it cannot be read: stored as failed; its content is stored as done and
        options.force is off: skipped, and under another name recorded as another path of the
        stored recording); or None while a recording of the same content is being analysed
        (`record` of that one gives `token`, default the path, back)."""
        token = path if token is None else token
        shown = safe_text(str(path))
        try:
            facts = examine(path)
        except RecordingError as exc:
            return self._settle(token, self._save(Analysis(exc.facts, "failed", error=str(exc))))
        if not self.options.force:
            stored = self.store.done_recording(facts.sha256)
            if stored is not None:
                new_path = self.store.add_path(stored["id"], facts, self.run_id)
                if stored["path"] == facts.path:
                    note = "already stored"
                else:
                    note = (f"{'same content as' if new_path else 'already stored as another path of'} "
                            f"'{stored['path']}' (recording {stored['id']})")
                return self._settle(token, RecordingResult(shown, "skipped", recording_id=stored["id"], note=note))
            if facts.sha256 in self._busy:
                self._busy[facts.sha256].append(token)
                return None
            self._busy[facts.sha256] = []
        self._shown[facts.path] = shown
        return facts

    def record(self, analysis: Analysis, token: Any = None) -> tuple[RecordingResult, list]:
        """Store one analysis in one transaction; (what was stored, the tokens of the
        recordings that waited for its content, to admit again)."""
        result = self._settle(token, self._save(analysis, self._shown.pop(analysis.facts.path, None)))
        return result, self._busy.pop(analysis.facts.sha256, []) if not self.options.force else []

    def process(self, pipeline: "Pipeline", path: str | Path) -> Optional[RecordingResult]:
        """Admit, analyse and record one recording (None: it waits for the same content)."""
        admitted = self.admit(path)
        if not isinstance(admitted, RecordingFacts):
            return admitted
        return self.record(pipeline.analyze(path, admitted))[0]

    def waiting(self) -> int:
        """Recordings held back for content still being analysed."""
        return sum(len(tokens) for tokens in self._busy.values())

    def finish(self, files: Sequence[Path]) -> Summary:
        """Failures in input order, voices grouped (with options.voices), the run closed."""
        order = {safe_text(str(path.absolute())): index for index, path in enumerate(files)}
        self.summary.failures.sort(key=lambda failure: order.get(failure[0], len(order)))
        if self.options.voices:
            from .voices import DEFAULT_THRESHOLD, MODEL_NAME, GroupingSummary, group_voices, model_version

            threshold = self.options.voice_threshold
            self.summary.voices = group_voices(
                self.store, MODEL_NAME, model_version(), DEFAULT_THRESHOLD if threshold is None else threshold,
                self.voice_summary or GroupingSummary(),
            ).to_dict()
        self.summary.wall_s = round(time.perf_counter() - self._started, 2)
        self.store.finish_run(self.run_id, self.summary.to_dict())
        return self.summary

    def _settle(self, token: Any, result: RecordingResult) -> RecordingResult:
        self.summary.add(result)
        if self.on_result is not None:
            self.on_result(token, result)
        return result

    def _save(self, analysis: Analysis, shown_path: Optional[str] = None) -> RecordingResult:
        store = self.store
        facts = analysis.facts
        if analysis.status != "done":
            reason = safe_text(analysis.error or "unknown error")
            store.save_failure(facts, reason, self.run_id)
            return RecordingResult(facts.path, "failed", error=reason)
        recording_id = store.save_recording(
            facts,
            analysis.transmissions,
            analysis.lines,
            analysis.flags,
            run_id=self.run_id,
            engine=analysis.engine,
            model=analysis.model,
            translator=analysis.translator,
            translator_model=analysis.translator_model,
            lexicon_version=analysis.lexicon_version,
        )
        if analysis.voice_prints is not None:
            # A transaction of its own: embeddings can be made again (`intercept voices`).
            from .voices import GroupingSummary, count_prints, save_prints

            self.voice_summary = self.voice_summary or GroupingSummary()
            count_prints(analysis.voice_prints, self.voice_summary)
            save_prints(store, recording_id, {t.idx: p for t, p in zip(analysis.transmissions, analysis.voice_prints)},
                        *analysis.voice_model)
        return RecordingResult(
            shown_path or facts.path,
            "done",
            duration_s=facts.duration_s or 0.0,
            transmissions=len(analysis.transmissions),
            lines=len(analysis.lines),
            flagged_lines=sum(1 for f in analysis.flags if f),
            suspect_lines=sum(1 for line in analysis.lines if line.suspect),
            recording_id=recording_id,
        )


def run_batch(
    paths: Iterable[str | Path],
    db_path: str | Path,
    options: Optional[RunOptions] = None,
    progress: bool = True,
    warn: Optional[Callable[[str], None]] = None,
) -> Summary:
    """Process every recording under ``paths`` into the store at ``db_path``. An older
    store is migrated first (the store as it was is copied aside; `warn` hears of it).

    Short recordings are recognised in pools (Pipeline.analyze_many); each recording is still
    stored in its own transaction as soon as its lines are complete, so a stopped batch
    leaves whole recordings only, and a re-run analyses what was not stored."""
    from tqdm import tqdm

    options = options or RunOptions()
    with Store(db_path, CREATE, warn=warn) as store:
        pipeline = Pipeline(options)
        recorder = Recorder(store, options, Summary(load_s=pipeline.load_s))
        recorder.start(pipeline.model_name, pipeline.lexicon.version, pipeline.lexicon.terms, pipeline.model_card_sha256)
        files = list(iter_recordings(paths))
        with tqdm(files, desc="recordings", unit="file", disable=not progress) as bar, tqdm(
            desc="transmissions", unit="tx", disable=not progress, leave=False
        ) as tx_bar:

            def on_transmission(done: int, total: int) -> None:
                if tx_bar.total != total:
                    tx_bar.reset(total=total)
                tx_bar.update(done - tx_bar.n)

            def to_analyse() -> Iterator[tuple[Path, RecordingFacts]]:
                for path in bar:
                    bar.set_postfix_str(safe_text(path.name)[-40:])
                    admitted = recorder.admit(path)
                    if isinstance(admitted, RecordingFacts):
                        yield path, admitted

            for analysis in pipeline.analyze_many(to_analyse(), on_transmission):
                _, waiting = recorder.record(analysis)
                for path in waiting:  # same content, waiting for this one: skipped now, or analysed
                    recorder.process(pipeline, path)
        return recorder.finish(files)


@dataclass
class OriginalCheck:
    """One original recording re-hashed against the SHA-256 stored for it."""

    path: str
    status: str  # ok | missing | changed | unreadable
    recording_id: int
    expected_sha256: str
    actual_sha256: Optional[str] = None
    reason: Optional[str] = None


@dataclass
class VerifyReport:
    originals: list[OriginalCheck] = field(default_factory=list)
    store_problems: list[str] = field(default_factory=list)  # Store.check_integrity()
    seal_problems: list[str] = field(default_factory=list)  # Store.check_seals(): rows edited from outside
    chain_head: Optional[dict] = None  # the store's last seal

    @property
    def ok(self) -> bool:
        return not self.store_problems and not self.seal_problems and all(c.status == "ok" for c in self.originals)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {"ok": 0, "missing": 0, "changed": 0, "unreadable": 0}
        for check in self.originals:
            found[check.status] += 1
        return found

    def to_dict(self) -> dict:
        return {"ok": self.ok, "counts": self.counts(), "store_problems": self.store_problems,
                "seal_problems": self.seal_problems, "chain_head": self.chain_head,
                "originals": [asdict(c) for c in self.originals]}


def verify_originals(db_path: str | Path) -> VerifyReport:
    """Re-hash every original recording the store at db_path holds lines for, at every path
    its content was seen under, and check the store's own integrity. Reads originals only.
    A path whose file was changed and processed again is checked against its newest version."""
    db_path = Path(db_path)
    if not db_path.is_file():
        raise StoreError(f"{db_path}: no such store")
    report = VerifyReport()
    with Store(db_path, READ) as store:
        report.store_problems = store.check_integrity()
        report.seal_problems = store.check_seals()
        report.chain_head = store.chain_head()
        originals = store.originals()
    for row in originals:
        path = os.fsdecode(row["path_raw"]) if row["path_raw"] is not None else row["path"]
        check = OriginalCheck(row["path"], "ok", row["recording_id"], row["sha256"])
        try:
            check.actual_sha256 = examine(path).sha256
        except RecordingError as exc:
            missing = not os.path.lexists(path)
            check.status, check.reason = ("missing", "file not found") if missing else ("unreadable", str(exc))
        else:
            if check.actual_sha256 != check.expected_sha256:
                check.status = "changed"
                check.reason = f"SHA-256 is now {check.actual_sha256}, stored {check.expected_sha256}"
        report.originals.append(check)
    return report
