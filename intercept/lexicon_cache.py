"""Compiled lexicons kept on disk, so that a lexicon of thousands of terms is compiled once.

Compiling a lexicon generates every inflected, colloquial and conjugated form of every term
(about 70 keys per Farsi form): seconds for ten thousand terms. The compiled tables depend only
on the lexicon files' bytes and on the code that compiles them, so they are pickled into the
user cache (intercept.models.cache_dir()/lexicons) under a key of both, and read back on the
next load. Anything that goes wrong with the cache (unreadable, unwritable, stale, or a lexicon
that cannot be pickled) only costs a compile: the cache is never the reason a load fails.

The pickle is read only from the user's own cache directory, written by this code (the same
trust as the installed package). INTERCEPT_LEXICON_CACHE=0 turns the cache off.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
from pathlib import Path
from typing import Optional, Sequence

# What a cached lexicon must not carry: the normaliser (hazm's, rebuilt per process and not
# picklable) and the tables that come from it, set again from the caller's normaliser.
_FROM_NORMALIZER = ("_normalizer", "_frequencies", "_known_words", "_common_words", "_known_verbs")
_KEEP = 4  # compiled lexicons kept; older ones are removed


def _code_version() -> str:
    """The compiling code's own bytes, and the library versions its output depends on."""
    import hazm
    import rapidfuzz

    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("lexicon.py", "lexicon_index.py", "lexicon_cache.py", "text.py", "types.py"):
        try:
            digest.update((here / name).read_bytes())
        except OSError:
            digest.update(name.encode())
    digest.update(f"{sys.version_info[:2]} hazm {getattr(hazm, '__version__', '?')} "
                  f"rapidfuzz {rapidfuzz.__version__}".encode())
    return digest.hexdigest()


def cache_key(files: Sequence[Path]) -> Optional[str]:
    digest = hashlib.sha256(_code_version().encode())
    for path in files:
        try:
            data = Path(path).read_bytes()
        except OSError:
            return None
        digest.update(str(Path(path).resolve()).encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:32]


def _folder() -> Optional[Path]:
    if os.environ.get("INTERCEPT_LEXICON_CACHE", "1") == "0":
        return None
    try:
        from .models import cache_dir

        return cache_dir() / "lexicons"
    except Exception:  # no platformdirs, no home: no cache
        return None


def _plain(normalizer) -> bool:
    """Only lexicons compiled with intercept's own normaliser are cached: another one (a
    subclass, a test's stand-in) may normalise forms differently, which the key cannot see."""
    from .text import PersianNormalizer

    return type(normalizer) is PersianNormalizer


def read(files: Sequence[Path], normalizer):
    """The compiled lexicon of these files, or None when it is not cached."""
    folder = _folder() if _plain(normalizer) else None
    key = cache_key(files) if folder is not None else None
    if key is None:
        return None
    path = folder / f"{key}.pickle"
    try:
        with open(path, "rb") as handle:
            lexicon = pickle.load(handle)
        os.utime(path)  # recently used: kept by the clean-up below
    except Exception:  # missing, torn or from another version: compile instead
        return None
    lexicon.files = list(files)
    lexicon._normalizer = normalizer
    lexicon._frequencies = normalizer.word_frequencies()
    lexicon._known_words = None  # built on first use, as after a compile
    lexicon._common_words = frozenset()
    lexicon._known_verbs = frozenset()
    return lexicon


def write(files: Sequence[Path], lexicon) -> None:
    folder = _folder() if _plain(getattr(lexicon, "_normalizer", None)) else None
    key = cache_key(files) if folder is not None else None
    if key is None:
        return
    state = {name: value for name, value in lexicon.__dict__.items() if name not in _FROM_NORMALIZER}
    clone = object.__new__(type(lexicon))
    clone.__dict__.update(state)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f"{key}.{os.getpid()}.tmp"
        with open(temporary, "wb") as handle:
            pickle.dump(clone, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, folder / f"{key}.pickle")  # atomic: readers never see half a file
        kept = sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[_KEEP:]:
            old.unlink(missing_ok=True)
    except Exception:  # read-only cache, full disk, something unpicklable: compile next time too
        try:
            temporary.unlink(missing_ok=True)
        except Exception:
            pass
