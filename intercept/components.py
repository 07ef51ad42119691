"""The parts a run is made of, each built in one place from one options object (RunOptions):
normaliser, lexicon, recogniser engine, translator, scorer and the post-recognition step
(guards, lexicon flags, acoustic check, score).

`intercept run` builds them all once (`Components.build`); `intercept flag`, `intercept
translate`, `intercept correct` and the review desk's corrections build the parts they need with
the same functions, from the settings of the run that stored each recording (`runs.settings`,
read back by `run_options_of`; `PostPerRun`), so that re-flagging, re-translating and correcting
give what that run would have given: its `[guards]` settings, its acoustic check and
`--acoustic-loose` threshold stay.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from .acoustic import AcousticCheck, AcousticOptions
from .config import RunOptions
from .lexicon import Lexicon, MatchOptions, default_lexicon_path
from .scoring import FlagScorer, default_scorer
from .text import PersianNormalizer

if TYPE_CHECKING:  # imported where built: it brings the store (sqlite-utils), which `match` never opens
    from .derive import PostRecognition

EMBEDDED_MODEL_NAME = "whisper-base (embedded)"


def load_lexicon(paths: Sequence[str | Path] = (), normalizer: Optional[PersianNormalizer] = None, *,
                 options: Optional[MatchOptions] = None, calibrated: bool = True) -> Lexicon:
    """The lexicon files or folders `paths`, or the shipped lexicons when there are none: the
    one place a lexicon is loaded, so every command reads `--lexicon` the same way."""
    return Lexicon.load(*(paths or [default_lexicon_path()]), normalizer=normalizer, options=options,
                        calibrated=calibrated)


def engine_model(engine: str, model: str) -> tuple[str, str]:
    """(name to record, what the engine loads). faster-whisper and the embedded base need a
    CTranslate2 directory; the other engines also take their own formats (an openai-whisper
    .pt file, a transformers directory or hub id), which only they can check."""
    from .models import resolve_model

    path = Path(model).expanduser()
    if engine == "faster-whisper" or model == "base" or (path / "model.bin").is_file():
        source = resolve_model(model)
        return (model if source.origin != "embedded" else EMBEDDED_MODEL_NAME), str(source.path)
    return model, model


def load_engine(options: RunOptions):
    """(engine, name to record, what it loaded) for options.engine / options.model."""
    from .engines import load_engine as load

    name, path = engine_model(options.engine, options.model)
    return load(options.engine, path, name, options.transcribe), name, path


def build_translator(options: RunOptions, engine=None, warn: Optional[Callable[[str], None]] = None):
    """options.translator with its MT settings. The MT model follows the recogniser onto its
    device (options.transcribe.device) unless options.mt.device is set."""
    from .translate import make_translator

    mt = options.mt if options.mt.device else replace(options.mt, device=options.transcribe.device)
    return make_translator(options.translator, engine, mt_model=options.mt_model, fallback=options.mt_fallback,
                           options=mt, warn=warn)


def lexicon_for_model(lexicon: Lexicon, model_name: str, model_path: str) -> Lexicon:
    """The lexicon with the priors calibrated for the recogniser that writes its lines: as loaded
    for the embedded model, else the calibration for that model's weights (or its base's), or
    none (hand-set priors)."""
    if model_name == EMBEDDED_MODEL_NAME:
        return lexicon
    from .calibration import calibration_for_model

    return lexicon.with_calibration(calibration_for_model(lexicon.files, model_name, model_path))


def stored_model_lexicon(lexicon: Lexicon, model: str) -> Lexicon:
    """lexicon_for_model for a run's stored `--model`, found on this machine without
    downloading; a model that is not here gets hand-set priors, as `run` gives a model it has no
    calibration for (never the embedded model's, which describe another recogniser)."""
    from .models import ModelError, resolve_model

    try:
        source = resolve_model(model, allow_download=False)
    except ModelError:
        return lexicon.with_calibration(None)
    return lexicon_for_model(lexicon, EMBEDDED_MODEL_NAME if source.origin == "embedded" else model, str(source.path))


def post_recognition(options: RunOptions, normalizer: PersianNormalizer, lexicon: Lexicon, *, translator=None,
                     engine=None, scorer: Optional[FlagScorer] = None, acoustic: bool = True) -> PostRecognition:
    """The post-recognition step as `options` set it: its guards, and (with `acoustic` and
    options.acoustic_check) the acoustic check down to options.acoustic_loose. Without an
    engine the check reuses the margins stored with the flags (intercept flag, translate)."""
    from .derive import PostRecognition

    check = None
    if acoustic and options.acoustic_check:
        check = AcousticCheck(lexicon, AcousticOptions(loose_threshold=options.acoustic_loose))
    return PostRecognition(normalizer, lexicon, translator, options.guards, scorer=scorer, engine=engine,
                           acoustic=check)


@dataclass
class Components:
    """Everything a run loads once before its first recording."""

    options: RunOptions
    normalizer: PersianNormalizer
    lexicon: Lexicon
    engine: Any
    model_name: str
    model_path: str
    model_card_sha256: Optional[str]
    translator: Any
    scorer: FlagScorer
    post: PostRecognition
    voice_embedder: Any = None
    load_s: float = 0.0

    @classmethod
    def build(cls, options: RunOptions) -> "Components":
        """Load what `options` names. Raises ModelError, LexiconError, MTModelError or
        ValueError (bad options) before any recording is touched."""
        from .models import model_card_sha256
        from .segment import SegmentOptions, load_detector

        started = time.perf_counter()
        engine, model_name, model_path = load_engine(options)
        translator = build_translator(options, engine)
        normalizer = PersianNormalizer()
        lexicon = lexicon_for_model(load_lexicon(options.lexicons, normalizer), model_name, model_path)
        scorer = default_scorer()  # read now: a bad scorer file stops the run before any work
        post = post_recognition(options, normalizer, lexicon, translator=translator, engine=engine, scorer=scorer)
        load_detector(SegmentOptions(method=options.segment_method))  # its load counted here, not in the first file
        voice_embedder = None
        if options.voices:
            from .voices import VoiceEmbedder

            voice_embedder = VoiceEmbedder()
        return cls(options, normalizer, lexicon, engine, model_name, model_path, model_card_sha256(model_path),
                   translator, scorer, post, voice_embedder, round(time.perf_counter() - started, 2))


# -- the settings of stored runs ------------------------------------------------------------


def run_options_of(settings: Optional[dict]) -> RunOptions:
    """RunOptions as a run stored them (`runs.settings`); defaults for a run stored without
    settings, and for options it did not know."""
    from .config import options_from_dict

    return options_from_dict(settings or {})


class PostPerRun:
    """The post-recognition step for each stored recording (or line) as the run that stored it
    was set (`runs.settings`: guards, acoustic check, --acoustic-loose), with what the command
    sets itself (`override`) on top; one step per distinct setting, shared by its recordings.
    `intercept flag` and `translate` call it with a recording id (`store` given); a reviewer's
    correction (intercept.corrections, from the CLI and the review desk alike) with the
    settings it read for the line (`for_settings`), `acoustic` off."""

    def __init__(self, store, normalizer: PersianNormalizer, lexicon: Lexicon, *,
                 override: Callable[[RunOptions], None] = lambda options: None, translator=None,
                 scorer: Optional[FlagScorer] = None, acoustic: bool = True):
        self.store, self.normalizer, self.lexicon = store, normalizer, lexicon
        self.override, self.translator, self.acoustic = override, translator, acoustic
        self.scorer = scorer or default_scorer()
        self._built: dict[str, PostRecognition] = {}
        self._lexicons: dict[str, Lexicon] = {}  # per stored --model: its calibrated priors
        # The one used for results that name a single lexicon and scorer (RederiveResult).
        self.default = self.for_settings(None)

    def options_of(self, settings: Optional[dict]) -> RunOptions:
        """RunOptions from a run's stored settings, with the command's override."""
        options = run_options_of(settings)
        self.override(options)
        return options

    def options_for(self, recording_id: int) -> RunOptions:
        return self.options_of(self.store.run_settings(recording_id))

    def for_settings(self, settings: Optional[dict]) -> PostRecognition:
        """The step as a run stored with `settings` (None: defaults) was set."""
        return self._post(self.options_of(settings))

    def __call__(self, recording_id: int) -> PostRecognition:
        return self._post(self.options_for(recording_id))

    def _post(self, options: RunOptions) -> PostRecognition:
        key = repr((options.model, options.guards, options.acoustic_check, options.acoustic_loose))
        if key not in self._built:
            # The priors of the recogniser that wrote the lines, as `run` used them.
            if options.model not in self._lexicons:
                self._lexicons[options.model] = stored_model_lexicon(self.lexicon, options.model)
            self._built[key] = post_recognition(options, self.normalizer, self._lexicons[options.model],
                                                translator=self.translator, scorer=self.scorer, acoustic=self.acoustic)
        return self._built[key]
