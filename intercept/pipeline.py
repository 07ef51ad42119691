"""One recording end to end, and the batch over many. The only module that knows the order
of the stages: audio -> segment -> engine -> post-recognition -> store, where the
post-recognition step (intercept.derive: text -> translate -> guards -> lexicon -> score) is
the one `intercept translate` and `intercept flag` run again over stored lines.
"""
from __future__ import annotations

import os
import platform
import stat
import time
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from . import __version__
from .audio import AudioError, CleanupOptions, clean_radio, decode, sha256_file
from .config import RunOptions
from .engines import load_engine
from .lexicon import Lexicon, default_lexicon_path
from .models import model_card_sha256, resolve_model
from .acoustic import AcousticCheck, AcousticOptions
from .derive import PostRecognition
from .packing import PackOptions, RecordingPool, join_recordings, split_lines
from .recorded_at import recorded_at_for
from .scoring import default_scorer
from .segment import SegmentOptions, find_transmissions, load_detector
from .store import CREATE, READ, RecordingFacts, Store, StoreError
from .text import PersianNormalizer
from .translate import make_translator
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


def _engine_model(engine: str, model: str) -> tuple[str, str]:
    """(name to record, what the engine loads). faster-whisper and the embedded base need a
    CTranslate2 directory; the other engines also take their own formats (an openai-whisper
    .pt file, a transformers directory or hub id), which only they can check."""
    path = Path(model).expanduser()
    if engine == "faster-whisper" or model == "base" or (path / "model.bin").is_file():
        source = resolve_model(model)
        return (model if source.origin != "embedded" else "whisper-base (embedded)"), str(source.path)
    return model, model


TRANSMISSIONS_PER_CALL = 16


class Pipeline:
    """Loads the model, lexicon and normaliser once; then processes recordings one by one.

    Processing is split in two so that the heavy part can run in worker processes:
    `analyze` (decode .. flag, needs no store, returns an Analysis) and `save` (the driver
    alone writes SQLite). `process` does both, skipping content already stored."""

    voice_summary = None  # with options.voices: what save() saw embedded (voices.GroupingSummary)

    def __init__(self, options: RunOptions, store: Optional[Store] = None):
        started = time.perf_counter()
        self.options = options
        self.store = store
        self.model_name, model_path = _engine_model(options.engine, options.model)
        self.engine = load_engine(options.engine, model_path, self.model_name, options.transcribe)
        self.model_card_sha256 = model_card_sha256(model_path)  # an adapted model's card (intercept adapt)
        self.translator = make_translator(
            options.translator, self.engine, mt_model=options.mt_model, fallback=options.mt_fallback,
            # MT follows the recogniser onto the GPU unless its own device is set.
            options=options.mt if options.mt.device else replace(options.mt, device=options.transcribe.device),
        )
        self.normalizer = PersianNormalizer()
        self.lexicon = Lexicon.load(*(options.lexicons or [default_lexicon_path()]), normalizer=self.normalizer)
        if self.model_name != "whisper-base (embedded)":  # priors calibrated for this model's weights, or none
            from .calibration import calibration_for_model

            self.lexicon = self.lexicon.with_calibration(
                calibration_for_model(self.lexicon.files, self.model_name, model_path))
        self.scorer = default_scorer()  # read now: a bad scorer file stops the run before any work
        self.post = PostRecognition(self.normalizer, self.lexicon, self.translator, options.guards,
                                    scorer=self.scorer, engine=self.engine,
                                    acoustic=AcousticCheck(self.lexicon, AcousticOptions(loose_threshold=options.acoustic_loose))
                                    if options.acoustic_check else None)
        self.segment_options = SegmentOptions(method=options.segment_method)
        self.cleanup_options = CleanupOptions()
        load_detector(self.segment_options)  # now, so that its load is counted here, not in the first file
        self.voice_embedder = None
        if options.voices:
            from .voices import VoiceEmbedder

            self.voice_embedder = VoiceEmbedder()
        self.run_id: Optional[int] = None
        self.load_s = round(time.perf_counter() - started, 2)

    def _store(self) -> Store:
        if self.store is None:
            raise StoreError("this Pipeline was made without a store: it can analyze, not save")
        return self.store

    def start_run(self) -> int:
        store = self._store()
        store.save_lexicon_terms(self.lexicon.version, self.lexicon.terms)
        found = versions()
        if self.model_card_sha256:
            found["model_card_sha256"] = self.model_card_sha256
        self.run_id = store.start_run(self.options.engine, self.model_name, self.options.to_dict(), found)
        return self.run_id

    def process(
        self, path: str | Path, on_transmission: Optional[Callable[[int, int], None]] = None
    ) -> RecordingResult:
        """Process one recording and store it; never raises for a bad recording."""
        admitted = self.admit(path)
        if isinstance(admitted, RecordingResult):
            return admitted
        return self.save(self.analyze(path, admitted, on_transmission), safe_text(str(path)))

    def admit(self, path: str | Path) -> RecordingFacts | RecordingResult:
        """The facts of a recording to analyse, or the result when there is nothing to analyse:
        it cannot be read (stored as failed), or its content (SHA-256) is already stored as
        done and options.force is off (under another name it is recorded as another path of
        the stored recording)."""
        shown = safe_text(str(path))
        try:
            facts = examine(path)
        except RecordingError as exc:
            return self.save(Analysis(exc.facts, "failed", error=str(exc)))
        if not self.options.force:
            stored = self._store().done_recording(facts.sha256)
            if stored is not None:
                new_path = self._store().add_path(stored["id"], facts, self.run_id)
                if stored["path"] == facts.path:
                    note = "already stored"
                else:
                    note = (f"{'same content as' if new_path else 'already stored as another path of'} "
                            f"'{stored['path']}' (recording {stored['id']})")
                return RecordingResult(shown, "skipped", recording_id=stored["id"], note=note)
        return facts

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
        pool = RecordingPool(self.options.pool, PackOptions(gap_s=self.options.transcribe.pack_gap_s))
        for path, facts in items:
            decoded = self._decode(path, facts)
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
            facts.recorded_at = recorded_at_for(Path(path), self.options.recorded_at)
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

    def save(self, analysis: Analysis, shown_path: Optional[str] = None) -> RecordingResult:
        """Store one analysis in one transaction and say what was stored."""
        store = self._store()
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
        pipeline = Pipeline(options, store)
        run_id = pipeline.start_run()
        files = list(iter_recordings(paths))
        summary = Summary(load_s=pipeline.load_s)
        started = time.perf_counter()
        shown: dict[str, str] = {}  # facts.path -> the path as given
        # Content already in the pool: a second copy waits until the first is stored, then is
        # skipped as "same content" like in a run without pools.
        same_content: dict[str, list[Path]] = {}
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
                    admitted = pipeline.admit(path)
                    if isinstance(admitted, RecordingResult):
                        summary.add(admitted)
                    elif not options.force and admitted.sha256 in same_content:
                        same_content[admitted.sha256].append(path)
                    else:
                        same_content.setdefault(admitted.sha256, [])
                        shown[admitted.path] = safe_text(str(path))
                        yield path, admitted

            for analysis in pipeline.analyze_many(to_analyse(), on_transmission):
                summary.add(pipeline.save(analysis, shown.get(analysis.facts.path)))
                for waiting in same_content.pop(analysis.facts.sha256, []):
                    summary.add(pipeline.process(waiting))
        order = {safe_text(str(path.absolute())): index for index, path in enumerate(files)}
        summary.failures.sort(key=lambda failure: order.get(failure[0], len(order)))
        group_voices_after_run(pipeline, summary)
        summary.wall_s = round(time.perf_counter() - started, 2)
        store.finish_run(run_id, summary.to_dict())
    return summary


def group_voices_after_run(pipeline: Pipeline, summary: Summary) -> None:
    """With --voices: group the store's embedded transmissions into voices (all recordings)."""
    if pipeline.options.voices:
        from .voices import DEFAULT_THRESHOLD, MODEL_NAME, GroupingSummary, group_voices, model_version

        threshold = pipeline.options.voice_threshold
        summary.voices = group_voices(
            pipeline._store(), MODEL_NAME, model_version(), DEFAULT_THRESHOLD if threshold is None else threshold,
            pipeline.voice_summary or GroupingSummary(),
        ).to_dict()


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
