"""Compiled lexicons kept on disk, so that a lexicon of thousands of terms is compiled once.

Compiling a lexicon generates every inflected, colloquial and conjugated form of every term
(about 70 keys per Farsi form): seconds for ten thousand terms. The compiled tables depend only
on the lexicon files' bytes and on the code that compiles them, so they are pickled into the
user cache (intercept.models.cache_dir()/lexicons) under a key of both, and read back on the
next load. Anything that goes wrong with the cache (unreadable, unwritable, stale, or a lexicon
that cannot be pickled) only costs a compile: the cache is never the reason a load fails.

Each file starts with a head naming its FORMAT (also part of the key): a file of another
format, a torn one, or one that does not hold a Lexicon is compiled again and written over.
The key tables inside are packed (intercept.keytable), so reading them back builds no dict.

The pickle is read only from the user's own cache directory, written by this code (the same
trust as the installed package). INTERCEPT_LEXICON_CACHE=0 turns the cache off.
"""
from __future__ import annotations

import gc
import hashlib
import os
import pickle
import sys
from pathlib import Path
from typing import Optional, Sequence

_KEEP = 4  # compiled lexicons kept; older ones are removed
# The file's format, in its key and at its head: 2 keeps the key tables packed
# (intercept.keytable), 3 packs them in the table's order with a permutation sorting their CRCs.
# A file whose head is not this one is compiled again, never read.
FORMAT = 3
_HEAD = b"intercept-lexicon-cache %d\n" % FORMAT


def _code_version() -> str:
    """The compiling code's own bytes, and the library versions its output depends on."""
    from importlib.metadata import version

    import rapidfuzz

    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    sources = sorted(package.rglob("*.py")) + [package.parent / name for name in ("keytable.py", "text.py", "types.py")]
    for path in sources:
        try:
            digest.update(path.relative_to(package.parent).as_posix().encode() + b"\0" + path.read_bytes())
        except OSError:
            digest.update(path.name.encode())
    digest.update(f"{sys.version_info[:2]} hazm {version('hazm')} "
                  f"rapidfuzz {rapidfuzz.__version__}".encode())
    return digest.hexdigest()


def cache_key(files: Sequence[Path]) -> Optional[str]:
    digest = hashlib.sha256(f"{FORMAT}|{_code_version()}".encode())
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
        from intercept.models import cache_dir

        return cache_dir() / "lexicons"
    except Exception:  # no platformdirs, no home: no cache
        return None


def _plain(normalizer) -> bool:
    """Only lexicons compiled with intercept's own normaliser are cached: another one (a
    subclass, a test's stand-in) may normalise forms differently, which the key cannot see."""
    from intercept.text import PersianNormalizer

    return type(normalizer) is PersianNormalizer


class _Pickler(pickle.Pickler):
    """Pickles a lexicon without what comes from the normaliser (hazm's, rebuilt per process and
    not picklable, and the word tables made from it): KnownWords keeps only the excluded words,
    and read() attaches the caller's normaliser."""

    def reducer_override(self, obj):
        from .words import KnownWords

        if type(obj) is KnownWords:
            return KnownWords, (None, obj.excluded)
        return NotImplemented


def read(files: Sequence[Path], normalizer, kind: type):
    """The compiled lexicon of these files (an instance of `kind`, the caller's Lexicon class:
    passed in, as compiled.py imports this module), or None when it is not cached."""
    folder = _folder() if _plain(normalizer) else None
    key = cache_key(files) if folder is not None else None
    if key is None:
        return None
    path = folder / f"{key}.pickle"
    collecting = gc.isenabled()
    gc.disable()  # the cyclic collector would walk the growing lexicon again and again while it loads
    try:
        with open(path, "rb") as handle:
            if handle.read(len(_HEAD)) != _HEAD:
                return None  # another format: compiled again, and written over
            lexicon = pickle.load(handle)
        if type(lexicon) is not kind:
            return None
        os.utime(path)  # recently used: kept by the clean-up below
    except Exception:  # missing, torn or from another version: compile instead
        return None
    finally:
        if collecting:
            gc.enable()
    lexicon.files = list(files)
    lexicon._words.attach(normalizer)  # its word tables are built on first use, as after a compile
    return lexicon


def write(files: Sequence[Path], lexicon) -> None:
    folder = _folder() if _plain(lexicon._words.normalizer) else None
    key = cache_key(files) if folder is not None else None
    if key is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f"{key}.{os.getpid()}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(_HEAD)
            _Pickler(handle, protocol=pickle.HIGHEST_PROTOCOL).dump(lexicon)
        os.replace(temporary, folder / f"{key}.pickle")  # atomic: readers never see half a file
        kept = sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[_KEEP:]:
            old.unlink(missing_ok=True)
    except Exception:  # read-only cache, full disk, something unpicklable: compile next time too
        try:
            temporary.unlink(missing_ok=True)
        except Exception:
            pass
