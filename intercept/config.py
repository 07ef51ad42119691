"""Options for a run, as dataclasses. Defaults < config file (TOML) < command line."""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .engines import TranscribeOptions
from .guards import GuardOptions
from .packing import PoolOptions
from .translate import MTOptions


@dataclass
class RunOptions:
    engine: str = "faster-whisper"
    model: str = "base"
    translator: str = "whisper"  # whisper | transformers | none
    mt_model: Optional[str] = None  # for translator "transformers": a local directory or a hub id
    mt_fallback: str = "whisper"  # when the MT model cannot be loaded: whisper | none | error
    lexicons: list[str] = field(default_factory=list)  # empty: the shipped lexicons/ folder
    segment_method: str = "silero"
    # Off: the recogniser hears the decoded samples. The radio clean-up (200 Hz high-pass,
    # peak normalisation) raised Whisper base's WER on real Persian speech from 0.717 to 0.802
    # (it takes away voices' fundamentals); segmentation cleans its own copy regardless
    # (SegmentOptions.vad_on_cleaned). scripts/bench_asr.py, docs/benchmarks.md.
    clean_radio: bool = False
    force: bool = False
    # When the recording(s) were made (ISO 8601); else each file's sidecar, tags or name says.
    recorded_at: Optional[str] = None
    # Voice grouping (intercept.voices, the optional extra `voices`): embed every transmission
    # and group the store's transmissions into voices at the end of the batch.
    voices: bool = False
    # The acoustic check of fuzzy matches (intercept.acoustic): each is scored against the audio
    # by the recogniser, and looser matches the audio supports become flags. Off: fuzzy flags
    # as the lexicon alone finds them, their acoustic evidence unknown.
    acoustic_check: bool = True
    # With the check on: also check fuzzy matches down to this similarity (0..1) and keep those
    # the audio supports (intercept.acoustic.AcousticOptions.loose_threshold); None: off.
    acoustic_loose: Optional[float] = None
    voice_threshold: Optional[float] = None  # None: intercept.voices.DEFAULT_THRESHOLD
    transcribe: TranscribeOptions = field(default_factory=TranscribeOptions)
    guards: GuardOptions = field(default_factory=GuardOptions)
    mt: MTOptions = field(default_factory=MTOptions)
    # Short recordings (one file per transmission, as scanner recorders write them) share
    # recognition windows with each other (intercept/packing.py, pipeline.analyze_many).
    pool: PoolOptions = field(default_factory=PoolOptions)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ConfigError(ValueError):
    pass


def load_config(path: str | Path, base: Optional[RunOptions] = None) -> RunOptions:
    """Read a TOML config file over the defaults. Top-level keys are RunOptions fields;
    the tables [transcribe], [guards], [mt] and [pool] set those option groups. Unknown keys are errors,
    so a typo never silently does nothing."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        return options_from_dict(data, base, strict=True)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def options_from_dict(data: dict[str, Any], base: Optional[RunOptions] = None, strict: bool = False) -> RunOptions:
    """`data` (a config file's tables, or RunOptions.to_dict() as `runs.settings` keeps it) over
    `base` or the defaults. With `strict` an unknown key is a ConfigError; without, it is
    skipped (a run stored by another intercept version may name options this one lacks)."""
    options = base or RunOptions()
    groups = {"transcribe": options.transcribe, "guards": options.guards, "mt": options.mt, "pool": options.pool}
    run_fields = {f.name: f for f in dataclasses.fields(RunOptions)}
    simple = set(run_fields) - set(groups)
    for key, value in data.items():
        if key in groups and isinstance(value, dict):
            target = groups[key]
            names = {f.name: f for f in dataclasses.fields(target)}
            for sub, subvalue in value.items():
                if sub in names:
                    setattr(target, sub, _none_if_empty(names[sub], subvalue))
                elif strict:
                    raise ConfigError(f"unknown option '{key}.{sub}'")
        elif key in simple:
            setattr(options, key, _none_if_empty(run_fields[key], value))
        elif strict:
            raise ConfigError(f"unknown option '{key}'")
    return options


def _none_if_empty(field: dataclasses.Field, value: Any) -> Any:
    """TOML has no null: an empty string turns an Optional option off (None), as the docs'
    "empty" means (`translate_beam_size = ""`: the recogniser's beam)."""
    if value == "" and "Optional" in str(field.type):
        return None
    return value
