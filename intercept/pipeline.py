"""One recording end to end, and the batch over many. The only module that knows the order
of the stages: audio -> segment -> engine -> text -> translate -> guards -> lexicon -> store.
"""
from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from . import __version__
from .audio import AudioError, CleanupOptions, clean_radio, decode, sha256_file
from .config import RunOptions
from .engines import load_engine
from .guards import Guards
from .lexicon import Lexicon, default_lexicon_path
from .models import resolve_model
from .segment import SegmentOptions, find_transmissions
from .store import RecordingFacts, Store
from .text import PersianNormalizer
from .translate import make_translator

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
    wall_s: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

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
    for dist in ("faster-whisper", "ctranslate2", "onnxruntime", "hazm", "sqlite-utils", "pydub"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, AudioError) else f"{type(exc).__name__}: {text}"


class Pipeline:
    """Loads the model, lexicon and normaliser once; then processes recordings one by one."""

    def __init__(self, options: RunOptions, store: Store):
        self.options = options
        self.store = store
        source = resolve_model(options.model)
        self.model_name = options.model if source.origin != "embedded" else "whisper-base (embedded)"
        self.engine = load_engine(options.engine, str(source.path), self.model_name, options.transcribe)
        self.translator = make_translator(options.translator, self.engine)
        self.normalizer = PersianNormalizer()
        self.lexicon = Lexicon.load(*(options.lexicons or [default_lexicon_path()]), normalizer=self.normalizer)
        self.guards = Guards(options.guards)
        self.segment_options = SegmentOptions(method=options.segment_method)
        self.cleanup_options = CleanupOptions()
        self.run_id: Optional[int] = None

    def start_run(self) -> int:
        self.store.save_lexicon_terms(self.lexicon.version, self.lexicon.terms)
        self.run_id = self.store.start_run(
            self.options.engine, self.model_name, self.options.to_dict(), versions()
        )
        return self.run_id

    def process(
        self, path: str | Path, on_transmission: Optional[Callable[[int, int], None]] = None
    ) -> RecordingResult:
        """Process one recording and store it; never raises for a bad recording."""
        path = Path(path)
        facts = RecordingFacts(path=str(path.absolute()))
        try:
            facts.size_bytes = path.stat().st_size
            facts.sha256 = sha256_file(path)
        except OSError as exc:
            return self._fail(facts, f"cannot read recording '{path}': {exc.strerror or exc}")
        except AudioError as exc:
            return self._fail(facts, one_line(exc))
        if not self.options.force and self.store.done_recording(facts.sha256):
            return RecordingResult(str(path), "skipped")
        try:
            return self._process(path, facts, on_transmission)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one bad file must not stop the batch
            return self._fail(facts, one_line(exc))

    def _process(self, path: Path, facts: RecordingFacts, on_transmission) -> RecordingResult:
        audio = decode(path)
        facts.duration_s = round(audio.duration, 3)
        facts.format = audio.format
        samples = audio.samples
        if self.options.clean_radio:
            samples = clean_radio(samples, audio.sample_rate, self.cleanup_options)
        transmissions = find_transmissions(samples, audio.sample_rate, self.segment_options)
        lines = []
        for n, tx in enumerate(transmissions, 1):
            lines.extend(self.engine.transcribe(samples, [tx], audio.sample_rate))
            if on_transmission:
                on_transmission(n, len(transmissions))
        for line in lines:
            line.text_fa = self.normalizer.normalize(line.text)
        self.translator.translate(lines, samples, audio.sample_rate)
        self.guards.mark(lines)
        flags = self.lexicon.flag_lines(lines)
        recording_id = self.store.save_recording(
            facts,
            transmissions,
            lines,
            flags,
            run_id=self.run_id,
            engine=self.engine.name,
            model=self.model_name,
            translator=self.translator.name,
            translator_model=self.translator.model,
            lexicon_version=self.lexicon.version,
        )
        return RecordingResult(
            str(path),
            "done",
            duration_s=audio.duration,
            transmissions=len(transmissions),
            lines=len(lines),
            flagged_lines=sum(1 for f in flags if f),
            suspect_lines=sum(1 for line in lines if line.suspect),
            recording_id=recording_id,
        )

    def _fail(self, facts: RecordingFacts, reason: str) -> RecordingResult:
        self.store.save_failure(facts, reason, self.run_id)
        return RecordingResult(facts.path, "failed", error=reason)


def run_batch(
    paths: Iterable[str | Path],
    db_path: str | Path,
    options: Optional[RunOptions] = None,
    progress: bool = True,
) -> Summary:
    """Process every recording under ``paths`` into the store at ``db_path``."""
    from tqdm import tqdm

    options = options or RunOptions()
    with Store(db_path) as store:
        pipeline = Pipeline(options, store)
        run_id = pipeline.start_run()
        files = list(iter_recordings(paths))
        summary = Summary()
        started = time.perf_counter()
        with tqdm(files, desc="recordings", unit="file", disable=not progress) as bar, tqdm(
            desc="transmissions", unit="tx", disable=not progress, leave=False
        ) as tx_bar:

            def on_transmission(done: int, total: int) -> None:
                if tx_bar.total != total:
                    tx_bar.reset(total=total)
                tx_bar.update(done - tx_bar.n)

            for path in bar:
                bar.set_postfix_str(path.name[-40:])
                summary.add(pipeline.process(path, on_transmission))
        summary.wall_s = round(time.perf_counter() - started, 2)
        store.finish_run(run_id, summary.to_dict())
    return summary
