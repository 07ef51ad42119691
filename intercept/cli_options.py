"""Options of the `intercept` command, each declared once and shared as decorators (as
sqlite-utils shares its options): the settings of a run are declared here with the RunOptions
field each one sets, so that `run`, `translate` and `flag` read them the same way and a
config file's value stays unless the option is given. Also the store argument, named the same
way in every command, and the exit-status policy."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import click

from .config import RunOptions

AUDIO_CHOICES_DEVICE = ["cpu", "cuda", "auto"]

class BadInput(click.ClickException):
    """Bad input or options: one line on stderr, exit 2, nothing changed (the exit-status
    policy stated in `intercept --help`)."""

    exit_code = 2


def fail(message: str) -> None:
    raise BadInput(message)


# -- the store -------------------------------------------------------------------------------



def store_argument(*, exists: bool = True, required: bool = True, db_alias: bool = False):
    """STORE, the command's first argument, passed as `db_path`. With `db_alias`, the older
    spelling `--db STORE` (hidden) is taken too, so earlier invocations still work."""
    path_type = click.Path(exists=exists, dir_okay=False, path_type=Path)

    def decorator(command: Callable) -> Callable:
        if not db_alias:
            return click.argument("db_path", metavar="STORE", required=required, type=path_type)(command)

        @functools.wraps(command)
        def merged(*args, db_path=None, db_option=None, **kwargs):
            if db_path is not None and db_option is not None:
                raise click.UsageError("give the store once: STORE or --db STORE")
            db_path = db_path if db_path is not None else db_option
            if db_path is None and required:
                raise click.UsageError("Missing argument 'STORE'.")
            return command(*args, db_path=db_path, **kwargs)

        merged = click.option("--db", "db_option", type=path_type, hidden=True,
                              help="The older spelling of STORE.")(merged)
        return click.argument("db_path", metavar="STORE", required=False, type=path_type)(merged)

    return decorator


# -- settings of a run -----------------------------------------------------------------------


def _set_path(options: RunOptions, path: str, value: Any) -> None:
    target = options
    *groups, name = path.split(".")
    for group in groups:
        target = getattr(target, group)
    setattr(target, name, value)


def _get_path(options: RunOptions, path: str) -> Any:
    target = options
    for part in path.split("."):
        target = getattr(target, part)
    return target


def _language(value: str) -> Optional[str]:
    return None if value == "auto" else value


def _recorded_at(value: str) -> str:
    from .recorded_at import RecordedAtError, parse_iso

    try:
        return parse_iso(value)
    except RecordedAtError as exc:
        raise click.BadParameter(str(exc), param_hint="--recorded-at")


@dataclass
class Setting:
    """One command-line option that sets one RunOptions field (`path`, dotted for the option
    groups: transcribe.beam_size)."""

    decls: tuple[str, ...]
    path: str
    help: str
    kwargs: dict = field(default_factory=dict)
    convert: Callable[[Any], Any] = lambda value: value
    # "[default: ...]" in --help: None shows the field's value in the command's own defaults;
    # "" shows nothing (the help says it).
    default_help: Optional[str] = None

    @property
    def dest(self) -> str:
        return self.path.replace(".", "__")

    def option(self, defaults: RunOptions) -> Callable:
        shown = self.default_help
        if shown is None:
            value = _get_path(defaults, self.path)
            shown = str(value).lower() if isinstance(value, bool) else str(value)
        text = self.help + (f"  [default: {shown}]" if shown else "")
        kwargs = {"default": None, **self.kwargs}
        return click.option(*self.decls, self.dest, help=text, **kwargs)

    def apply(self, options: RunOptions, value: Any) -> None:
        if value is None or value == () or value is False and self.kwargs.get("is_flag"):
            return  # not given: the config file's value, or the default, stays
        _set_path(options, self.path, self.convert(value))


_ENGINES = ["faster-whisper", "openai-whisper", "transformers"]

SETTINGS: dict[str, Setting] = {s.decls[0]: s for s in [
    Setting(("--model",), "model",
            "'base' (embedded Whisper base, the default), a local CTranslate2 Whisper directory, "
            "or a model name such as large-v3 (downloaded only when online). With --engine "
            "openai-whisper also a .pt checkpoint; with --engine transformers also a transformers "
            "directory or hub id (docs/models.md).", {"metavar": "NAME|PATH"}, default_help=""),
    Setting(("--engine",), "engine",
            "Recognition engine: faster-whisper (CTranslate2, fastest on CPU), openai-whisper "
            "(PyTorch), or transformers (Whisper checkpoints such as Persian fine-tunes, "
            "wav2vec2 CTC models). All three run the embedded base.", {"type": click.Choice(_ENGINES)}),
    Setting(("--language",), "transcribe.language",
            "Spoken language; 'auto' detects it per transmission.", {"metavar": "CODE|auto"}, _language),
    Setting(("--translator",), "translator",
            "English translation: Whisper's own translate task (over each line's audio), a "
            "transformers MT model (--mt-model, over the Farsi text), or none.",
            {"type": click.Choice(["whisper", "transformers", "none"])}),
    Setting(("--mt-model",), "mt_model",
            "MT model for --translator transformers: a local directory (transformers or "
            "CTranslate2) or, when online, a hub id such as facebook/m2m100_418M.",
            {"metavar": "PATH|ID"}, default_help=""),
    Setting(("--mt-fallback",), "mt_fallback",
            "What translates when the MT model cannot be loaded (one line says why); "
            "error stops with exit 2.", {"type": click.Choice(["whisper", "none", "error"])}),
    Setting(("--mt-backend",), "mt.backend",
            "CTranslate2 (converted once into the cache; faster) or PyTorch.",
            {"type": click.Choice(["ctranslate2", "torch"])}),
    Setting(("--mt-device",), "mt.device",
            "Where the MT model runs (cpu, cuda, auto), checked at start like --device.",
            {"type": click.Choice(AUDIO_CHOICES_DEVICE)}),
    Setting(("--mt-batch-size",), "mt.batch_size", "Lines per MT batch.", {"type": click.IntRange(1)}),
    Setting(("--mt-threads",), "mt.threads", "CPU threads for MT (0: all cores).", {"type": click.IntRange(0)}),
    Setting(("--lexicon",), "lexicons", "Lexicon file or folder (repeatable).",
            {"multiple": True, "type": click.Path(exists=True, path_type=Path)},
            lambda paths: [str(p) for p in paths], default_help="the shipped lexicons/"),
    Setting(("--segment",), "segment_method",
            "How recordings are split into transmissions: Silero VAD, or pydub's "
            "silence split as a fallback.", {"type": click.Choice(["silero", "energy"])}),
    Setting(("--clean/--no-clean",), "clean_radio",
            "Give the recogniser radio-cleaned audio (200 Hz high-pass, peak normalised) instead of "
            "the decoded audio. Off by default: it raised the word error rate on real speech. "
            "Segmentation always runs on a cleaned copy.", default_help="no-clean"),
    Setting(("--beam-size",), "transcribe.beam_size",
            "Beam width of the transcription; 1 is greedy (Whisper's translate task keeps beam 5: "
            "[transcribe] translate_beam_size). The shipped flag calibration and scorer were fitted "
            "on greedy output; a wider beam writes a little better text on some speech and costs "
            "about 2.5x the decoding time (docs/benchmarks.md).", {"type": click.IntRange(1, 20)}),
    Setting(("--compute-type",), "transcribe.compute_type",
            "CTranslate2 compute type: float32, int8, int8_float32, float16 (GPU), or auto (the "
            "fastest on this machine by a short probe, cached). The openai-whisper and transformers "
            "engines run float32, or half precision with float16 on --device cuda."),
    Setting(("--device",), "transcribe.device",
            "Where recognition runs: cpu, cuda (an NVIDIA GPU; stops at start with the reason when "
            "the engine cannot use one), or auto (cuda when the engine sees a GPU).",
            {"type": click.Choice(AUDIO_CHOICES_DEVICE)}),
    Setting(("--threads",), "transcribe.cpu_threads", "CPU threads (0: all cores).",
            {"type": click.IntRange(0)}, default_help=""),
    Setting(("--recorded-at",), "recorded_at",
            "When the recording was made (ISO 8601, e.g. 2019-11-12T21:30:45+03:30), for every PATH. "
            "Without it each file's sidecar NAME.json, container tags or file-name stamp says.",
            {"metavar": "ISO"}, _recorded_at, default_help=""),
    Setting(("--force",), "force",
            "Process recordings again even if their content is already stored; the result is stored "
            "as a new version, and old rows and verdicts stay.", {"is_flag": True}, default_help=""),
    Setting(("--acoustic-check/--no-acoustic-check",), "acoustic_check",
            "Check each fuzzy match against the audio with the recogniser: its margin is part of the "
            "flag score (docs/review.md, 'What the score means').", default_help="on"),
    Setting(("--acoustic-loose",), "acoustic_loose",
            "Also check fuzzy matches down to this spelling similarity (e.g. 0.5) and keep those the audio "
            "supports: more recall, more false flags (lexicons/README.md).",
            {"type": click.FloatRange(0.3, 1.0), "metavar": "SIMILARITY"}, default_help="off"),
    Setting(("--voices",), "voices",
            "Embed each transmission's voice and group the store's transmissions into voices "
            "(needs the extra 'voices'; docs/voices.md).", {"is_flag": True}, default_help=""),
    Setting(("--voice-threshold",), "voice_threshold",
            "Cosine similarity a transmission needs to join a voice.",
            {"type": click.FloatRange(0, 1), "metavar": "COSINE"},
            default_help="DEFAULT_THRESHOLD in intercept/voices.py, chosen on real speech: docs/voices.md"),
]}


def settings_options(*names: str, defaults: Optional[RunOptions] = None, help: Optional[dict[str, str]] = None,
                     default_help: Optional[dict[str, str]] = None):
    """Decorator adding the options `names` (from SETTINGS) to a command, their defaults shown
    as in `defaults` (the command's own RunOptions; the run's when None). `help` and
    `default_help` replace a setting's text for this command."""
    defaults = defaults or RunOptions()

    def decorator(command: Callable) -> Callable:
        for name in reversed(names):
            setting = SETTINGS[name]
            if help and name in help:
                setting = Setting(setting.decls, setting.path, help[name], setting.kwargs, setting.convert,
                                  setting.default_help)
            if default_help and name in default_help:
                setting = Setting(setting.decls, setting.path, setting.help, setting.kwargs, setting.convert,
                                  default_help[name])
            command = setting.option(defaults)(command)
        return command

    return decorator


def apply_settings(options: RunOptions, values: dict[str, Any]) -> RunOptions:
    """Set on `options` every setting given on the command line (`values`: the command's
    keyword arguments; those of SETTINGS are taken out)."""
    for setting in SETTINGS.values():
        if setting.dest in values:
            setting.apply(options, values.pop(setting.dest))
    return options


lexicon_option = settings_options("--lexicon")
# The run's TOML file of options: `run` reads all of it; commands that recognise speech for
# another purpose (`lexicon calibrate`) read its [transcribe] settings, so they decode as the run does.
config_option = click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                             help="TOML file of options; command-line options override it.")
