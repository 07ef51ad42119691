"""Translation of recognised lines into English.

Translators fill ``Line.text_en`` in place and say what they are (``name``) and which model
and version made the English (``model``), for the store.

* ``whisper``: re-decodes each line's own stretch of audio with Whisper's translate task, so
  every English line belongs to exactly one Farsi line; it needs the engine and the samples.
* ``transformers``: a text-to-text MT model (M2M100, NLLB, mBART-50, Marian) on the
  normalised Farsi, through PyTorch or through CTranslate2 (the same model converted once
  into the cache). Loads a local directory, or a hub id when online.
* ``none``: leaves lines untranslated.

Lines already in a store are translated again by intercept.retranslate (`intercept translate`),
which builds on this module, never the other way round.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Protocol, Sequence

import numpy as np

from .models import error_line
from .packing import join_recordings
from .types import Line, Transmission

TRANSLATORS = ("whisper", "transformers", "none")
FALLBACKS = ("whisper", "none", "error")
MT_BACKENDS = ("ctranslate2", "torch")

log = logging.getLogger(__name__)


class Translator(Protocol):
    name: str
    model: Optional[str]

    def translate(self, lines: Sequence[Line], samples: Optional[np.ndarray], sample_rate: int = 16000) -> None: ...


class MTModelError(RuntimeError):
    """An MT model cannot be found or loaded; the message is one line saying why."""


class NoTranslator:
    name = "none"
    model = None
    needs_audio = False

    def translate(self, lines, samples=None, sample_rate=16000) -> None:
        return None


class WhisperTranslator:
    """Whisper's own translate task on the same model that transcribed the line."""

    name = "whisper"
    needs_audio = True

    def __init__(self, engine):
        self.engine = engine
        self.model = engine.model_name

    def translate(self, lines: Sequence[Line], samples: np.ndarray, sample_rate: int = 16000) -> None:
        self.translate_many([(lines, samples)], sample_rate)

    def translate_many(self, parts: Sequence[tuple[Sequence[Line], np.ndarray]], sample_rate: int = 16000) -> None:
        """The lines of several recordings, (lines, samples) each, translated in one engine
        call, so that short recordings share translate windows as they share recognition
        windows (the pipeline's pool; TranscribeOptions.pack_translate)."""
        spans = [[Transmission(i, *stretch(line, samples.size / sample_rate)) for i, line in enumerate(lines)]
                 for lines, samples in parts]
        translate_spans = getattr(self.engine, "translate_spans", None)
        if translate_spans is None:  # an engine with only the one-stretch call
            for (lines, samples), own in zip(parts, spans):
                for line, tx in zip(lines, own):
                    line.text_en = self.engine.translate_audio(samples, tx.start, tx.end, sample_rate)
        elif len(parts) == 1:
            lines, samples = parts[0]
            for line, text in zip(lines, translate_spans(samples, spans[0], sample_rate)):
                line.text_en = text
        else:
            joined = join_recordings([(samples, own) for (_, samples), own in zip(parts, spans)], sample_rate)
            for origin, text in zip(joined.origins, translate_spans(joined.samples, joined.transmissions, sample_rate)):
                parts[origin.part][0][origin.transmission.idx].text_en = text


def stretch(line: Line, duration_s: float) -> tuple[float, float]:
    """The audio the whisper translator hears for a line: the line's own times, widened to
    1 s of surrounding audio when shorter (Whisper returns nothing or noise words for
    slivers shorter than that), kept inside the recording."""
    start, end = line.start, line.end
    if end - start < 1.0:
        pad = (1.0 - (end - start)) / 2
        start, end = start - pad, end + pad
    return max(0.0, start), max(0.0, min(end, duration_s))


# -- transformers MT -------------------------------------------------------------------------


@dataclass
class MTOptions:
    """Settings of the transformers translator."""

    # ctranslate2: the same model converted once into the cache (measured faster on CPU, see
    # docs/translation.md); torch: the transformers model as loaded.
    backend: str = "ctranslate2"
    source_lang: Optional[str] = None  # None: the model family's code for Farsi (fa, pes_Arab, fa_IR)
    target_lang: Optional[str] = None  # None: the family's code for English (en, eng_Latn, en_XX)
    batch_size: int = 16
    beam_size: int = 4
    # Length limits: radio lines are short, so a longer input is a recognition loop; it is cut
    # rather than allowed to make the decoder run for minutes.
    max_input_tokens: int = 200
    max_new_tokens: int = 256
    # Loop guard like the Whisper engine's: English gets at most this many tokens per input
    # token (plus 10) before decoding stops.
    new_tokens_per_input_token: float = 2.0
    no_repeat_ngram_size: int = 3
    threads: int = 0  # 0: the library's default (all cores)
    compute_type: str = "default"  # CTranslate2 only: default, int8, float32 ...
    # cpu, cuda or auto, checked at load like the recogniser's --device. None: the
    # recogniser's device in a run (`run --device`), cpu in `intercept translate`.
    device: Optional[str] = None
    cache_lines: int = 10000  # identical lines translated once; 0 turns the cache off
    cache_dir: Optional[str] = None  # where converted CTranslate2 copies live; None: intercept's cache


# Farsi and English codes per tokenizer family. Marian models are one language pair each.
_FAMILY_LANGS = {
    "m2m100": ("fa", "en"),
    "nllb": ("pes_Arab", "eng_Latn"),
    "mbart50": ("fa_IR", "en_XX"),
    "marian": (None, None),
}

# Files that make a model's identity apart from its weights, which are only sized, not hashed:
# hashing gigabytes on every start would cost seconds for nothing a config hash misses.
_ID_SUFFIXES = (".json", ".model", ".spm", ".txt")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


def _family(tokenizer) -> str:
    cls = type(tokenizer).__name__.lower()
    for key, family in (("nllb", "nllb"), ("m2m100", "m2m100"), ("mbart50", "mbart50"), ("marian", "marian")):
        if key in cls:
            return family
    return "other"


def model_fingerprint(directory: Path) -> str:
    """A short hash of a model directory: its config and tokenizer files' content plus the
    names and sizes of its weight files."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        if path.suffix in _ID_SUFFIXES:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        elif path.suffix in _WEIGHT_SUFFIXES:
            digest.update(f"{path.name}\0{path.stat().st_size}".encode())
    return digest.hexdigest()[:12]


def _looks_like_path(spec: str) -> bool:
    # A hub id is "org/name", so only these shapes are sure to mean a local path.
    return spec.startswith(("/", "./", "../", "~", "."))


def resolve_mt_model(spec: str) -> tuple[Path, str]:
    """A local model directory for ``spec`` (a directory, or a hub id fetched when online) and
    its version: the hub commit for an id, else the directory's fingerprint."""
    path = Path(spec).expanduser()
    if path.exists() or _looks_like_path(spec):
        if not path.is_dir():
            raise MTModelError(f"MT model '{spec}': no such directory")
        if not (path / "config.json").is_file():
            raise MTModelError(f"MT model '{spec}': no config.json in the directory (not a transformers or CTranslate2 model)")
        return path, model_fingerprint(path)
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - transformers always brings it
        raise MTModelError(f"MT model '{spec}': not a directory, and huggingface_hub is not installed") from None
    patterns = dict(ignore_patterns=["*.h5", "*.msgpack", "*.ot", "onnx/*", "*.onnx", "*.md"])
    try:
        # The cache first, so a model fetched once loads with no network at all.
        local = snapshot_download(spec, local_files_only=True, **patterns)
    except Exception:
        try:
            local = snapshot_download(spec, **patterns)
        except Exception as exc:
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise MTModelError(
                f"MT model '{spec}': not a local directory and cannot be fetched from the hub ({type(exc).__name__}: {reason})"
            ) from None
    local = Path(local)
    revision = local.name if local.parent.name == "snapshots" else model_fingerprint(local)
    return local, revision[:12]


class _LRU:
    """Identical lines translated once: push-to-talk traffic repeats short lines ("received",
    call signs) all day. Bounded so a months-long batch cannot grow it without end."""

    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict[str, str] = OrderedDict()

    def get(self, key: str) -> Optional[str]:
        if key in self.data:
            self.data.move_to_end(key)
            return self.data[key]
        return None

    def put(self, key: str, value: str) -> None:
        if self.size <= 0:
            return
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)


def _convert_to_ctranslate2(model_dir: Path, output_dir: Path, copy_files: list[str]) -> None:
    """Convert a transformers model directory with CTranslate2's own converter."""
    from ctranslate2.converters import TransformersConverter

    class Converter(TransformersConverter):
        # transformers 5 no longer lists M2M100's language tokens among the tokenizer's
        # special tokens, and CTranslate2 4.x builds the M2M100 vocabulary from that list;
        # without them the converted vocabulary is 100 tokens short and conversion fails.
        def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):
            tokenizer = super().load_tokenizer(tokenizer_class, model_name_or_path, **kwargs)
            if hasattr(tokenizer, "lang_token_to_id"):
                return _WithLangTokens(tokenizer)
            return tokenizer

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = output_dir.with_name(output_dir.name + f".partial-{os.getpid()}")
    Converter(str(model_dir), copy_files=copy_files).convert(str(partial), force=True)
    # Renamed into place only when complete, so a stopped conversion is never loaded; a
    # process that converted the same model meanwhile wins, and this copy is dropped.
    try:
        partial.rename(output_dir)
    except OSError:
        if not _is_ct2_dir(output_dir):
            raise
        shutil.rmtree(partial, ignore_errors=True)


class _WithLangTokens:
    def __init__(self, tokenizer):
        self._tokenizer = tokenizer

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    @property
    def special_tokens_map(self):
        mapping = dict(self._tokenizer.special_tokens_map)
        extra = list(mapping.get("additional_special_tokens", []))
        mapping["additional_special_tokens"] = extra + [t for t in self._tokenizer.lang_token_to_id if t not in extra]
        return mapping


def _is_ct2_dir(path: Path) -> bool:
    return (path / "model.bin").is_file()


class TransformersTranslator:
    """A transformers MT model on the normalised Farsi of each line.

    Lines are deduplicated (within a call and across calls, through a bounded cache), sorted
    by length so batches pad little, translated in batches and put back in order."""

    name = "transformers"
    needs_audio = False

    def __init__(self, model: str, options: Optional[MTOptions] = None):
        self.options = options = options or MTOptions()
        if options.backend not in MT_BACKENDS:
            raise MTModelError(f"unknown MT backend '{options.backend}' (choose from: {', '.join(MT_BACKENDS)})")
        self.spec = model
        self.source, self.version = resolve_mt_model(model)
        try:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(str(self.source))
        except Exception as exc:
            raise MTModelError(f"MT model '{model}': cannot load its tokenizer ({error_line(exc)})") from None
        family = _family(self.tokenizer)
        default_src, default_tgt = _FAMILY_LANGS.get(family, (None, None))
        self.source_lang = options.source_lang or default_src
        self.target_lang = options.target_lang or default_tgt
        if self.source_lang and hasattr(self.tokenizer, "src_lang"):
            self.tokenizer.src_lang = self.source_lang
        self.target_token = self._target_token()
        self.forced_bos_id = (
            self.tokenizer.convert_tokens_to_ids(self.target_token) if self.target_token else None
        )
        # Tokens never shown in the English: specials and every language code.
        self._drop_ids = set(self.tokenizer.all_special_ids)
        self._drop_ids.update(getattr(self.tokenizer, "lang_token_to_id", {}).values())
        if self.forced_bos_id is not None:
            self._drop_ids.add(self.forced_bos_id)
        self.backend = "ctranslate2" if _is_ct2_dir(self.source) else options.backend
        from .engines import resolve_device
        from .models import ModelError

        try:
            self.device = resolve_device(options.device or "cpu", "MT", "ctranslate2" if self.backend == "ctranslate2"
                                         else "torch", what="model", option="MT device")
        except ModelError as exc:
            raise MTModelError(f"{exc} (--mt-device cpu translates on the CPU)") from None
        try:
            if self.backend == "ctranslate2":
                self._load_ctranslate2()
            else:
                self._load_torch()
        except MTModelError:
            raise
        except Exception as exc:
            raise MTModelError(f"MT model '{model}': cannot load it with {self.backend} ({error_line(exc)})") from None
        self.model = f"{model}@{self.version} ({self.backend})"
        self._cache = _LRU(options.cache_lines)

    def _target_token(self) -> Optional[str]:
        if not self.target_lang:
            return None
        unk = self.tokenizer.unk_token_id
        for token in (f"__{self.target_lang}__", self.target_lang):
            token_id = self.tokenizer.convert_tokens_to_ids(token)
            if token_id is not None and token_id != unk:
                return token
        raise MTModelError(f"MT model '{self.source}': target language '{self.target_lang}' is not in its vocabulary")

    def _load_torch(self) -> None:
        import torch
        from transformers import AutoModelForSeq2SeqLM

        if self.options.threads > 0:
            # Process-wide in torch; there is no per-model setting.
            torch.set_num_threads(self.options.threads)
        self._torch = torch
        self.hf_model = AutoModelForSeq2SeqLM.from_pretrained(str(self.source)).eval().to(self.device)

    def _load_ctranslate2(self) -> None:
        import ctranslate2

        model_dir = self.source
        if not _is_ct2_dir(model_dir):
            model_dir = self._converted_dir()
            if not _is_ct2_dir(model_dir):
                copy = [p.name for p in self.source.iterdir() if p.is_file() and p.suffix in (".json", ".model", ".spm", ".txt")
                        and p.name not in ("config.json", "generation_config.json")]
                _convert_to_ctranslate2(self.source, model_dir, copy)
        self.ct2_dir = model_dir
        self.ct2 = ctranslate2.Translator(
            str(model_dir), device=self.device, compute_type=self.options.compute_type,
            intra_threads=self.options.threads, inter_threads=1,
        )
        if self.device == "cuda":
            # As for the faster-whisper engine: CTranslate2 opens cuBLAS at its first matrix
            # product, so one short translation now turns a missing library into one line at start.
            try:
                self.ct2.translate_batch([self.tokenizer.convert_ids_to_tokens(self._encode("سلام"))],
                                         max_decoding_length=2)
            except (RuntimeError, OSError) as exc:
                raise MTModelError(
                    f"MT device cuda: the MT model cannot run on this GPU ({error_line(exc)}); CTranslate2 "
                    f"wheels need CUDA 12 libraries (pip install nvidia-cublas-cu12, then put its lib folder "
                    f"on LD_LIBRARY_PATH), --mt-backend torch with a CUDA build of torch, or --mt-device cpu"
                ) from None

    def _converted_dir(self) -> Path:
        if self.options.cache_dir:
            root = Path(self.options.cache_dir).expanduser()
        else:
            from .models import cache_dir

            root = cache_dir()
        label = re.sub(r"[^A-Za-z0-9._-]+", "_", self.spec.strip("/~."))[-60:] or "model"
        return root / "mt-ct2" / f"{label}-{self.version}"

    # -- translation -----------------------------------------------------------------------
    def translate(self, lines: Sequence[Line], samples: Optional[np.ndarray] = None, sample_rate: int = 16000) -> None:
        texts = [(line.text_fa or line.text or "").strip() for line in lines]
        english = self.translate_texts(texts)
        for line, text_en in zip(lines, english):
            line.text_en = text_en

    def translate_texts(self, texts: Sequence[str]) -> list[str]:
        """English for each text, in order; empty texts stay empty."""
        done: dict[str, str] = {"": ""}
        todo: list[str] = []
        for text in texts:
            if text in done:
                continue
            cached = self._cache.get(text)
            if cached is not None:
                done[text] = cached
            else:
                done[text] = None  # type: ignore[assignment]  # placeholder: dedupes todo
                todo.append(text)
        if todo:
            encoded = {text: self._encode(text) for text in todo}
            todo.sort(key=lambda t: len(encoded[t]))
            size = max(1, self.options.batch_size)
            for first in range(0, len(todo), size):
                batch = todo[first : first + size]
                outputs = self._translate_batch([encoded[t] for t in batch])
                for text, output in zip(batch, outputs):
                    done[text] = output
                    self._cache.put(text, output)
        return [done[text] for text in texts]

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, truncation=True, max_length=self.options.max_input_tokens)["input_ids"]

    def _max_new(self, ids: list[int]) -> int:
        return min(self.options.max_new_tokens, int(self.options.new_tokens_per_input_token * len(ids)) + 10)

    def _decode(self, ids: Iterable[int]) -> str:
        kept = [i for i in ids if i not in self._drop_ids]
        return self.tokenizer.decode(kept, skip_special_tokens=True).strip()

    def _translate_batch(self, batch: list[list[int]]) -> list[str]:
        opts = self.options
        if self.backend == "ctranslate2":
            tokens = [self.tokenizer.convert_ids_to_tokens(ids) for ids in batch]
            prefix = [[self.target_token] for _ in batch] if self.target_token else None
            results = self.ct2.translate_batch(
                tokens,
                target_prefix=prefix,
                beam_size=opts.beam_size,
                max_batch_size=opts.batch_size,
                max_input_length=opts.max_input_tokens,
                max_decoding_length=max(map(self._max_new, batch)) + (1 if prefix else 0),
                no_repeat_ngram_size=opts.no_repeat_ngram_size,
            )
            # Each line is cut at its own limit, so a line's English never depends on which
            # longer lines happened to share its batch.
            return [
                self._decode(self.tokenizer.convert_tokens_to_ids(r.hypotheses[0])[: self._max_new(ids) + len(p or [])])
                for r, ids, p in zip(results, batch, prefix or [None] * len(batch))
            ]
        torch = self._torch
        pad = self.tokenizer.pad_token_id
        width = max(len(ids) for ids in batch)
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in batch], device=self.device)
        attention = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in batch], device=self.device)
        kwargs = {}
        if self.forced_bos_id is not None:
            kwargs["forced_bos_token_id"] = self.forced_bos_id
        with torch.inference_mode():
            out = self.hf_model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                num_beams=opts.beam_size,
                max_new_tokens=max(map(self._max_new, batch)) + (1 if self.forced_bos_id is not None else 0),
                no_repeat_ngram_size=opts.no_repeat_ngram_size,
                do_sample=False,
                **kwargs,
            )
        # generate() output starts with the decoder start token, then the forced language.
        head = 1 + (1 if self.forced_bos_id is not None else 0)
        return [self._decode(row.tolist()[: head + self._max_new(ids)]) for row, ids in zip(out, batch)]


def make_translator(
    name: str,
    engine=None,
    mt_model: Optional[str] = None,
    fallback: str = "whisper",
    options: Optional[MTOptions] = None,
    warn: Optional[Callable[[str], None]] = None,
) -> Translator:
    """The named translator. For ``transformers``, when ``mt_model`` cannot be loaded, one line
    saying why goes to ``warn`` (default: the ``intercept.translate`` logger) and the
    ``fallback`` translator is returned (``whisper``, ``none``), or ``MTModelError`` is raised
    (``error``, or a whisper fallback with no Whisper engine). The returned fallback carries
    the reason in ``fallback_reason``."""
    if name == "none":
        return NoTranslator()
    if name == "whisper":
        if engine is None or not hasattr(engine, "translate_audio"):
            raise ValueError("the whisper translator needs a Whisper engine")
        return WhisperTranslator(engine)
    if name == "transformers":
        if fallback not in FALLBACKS:
            raise ValueError(f"unknown MT fallback '{fallback}' (choose from: {', '.join(FALLBACKS)})")
        try:
            if not mt_model:
                raise MTModelError("the transformers translator needs an MT model (--mt-model PATH_OR_ID)")
            return TransformersTranslator(mt_model, options)
        except MTModelError as exc:
            if fallback == "error":
                raise
            if fallback == "whisper" and (engine is None or not hasattr(engine, "translate_audio")):
                raise MTModelError(f"{exc}; the whisper fallback needs a Whisper engine") from None
            chosen = make_translator(fallback, engine)
            chosen.fallback_reason = str(exc)
            (warn or log.warning)(f"{exc}; translating with '{fallback}' instead")
            return chosen
    raise ValueError(f"unknown translator '{name}' (choose from: {', '.join(TRANSLATORS)})")
