"""KeyTable: a compiled lexicon's key -> value table that is read back from the cache without
being rebuilt, so that a command matching a few lines (`intercept match`) does not pay for
building a dictionary of a million keys.

At 10,000 terms the exact and morph keys are 1.3 million strings; building a dict of them from
the cache took most of a cached load (0.9 of 1.2 CPU s). The table is pickled packed: the keys
in one string ordered by their CRC-32, that order's CRC-32s, where each key starts, and which
value it has. A look-up in the packed form is a binary search over the CRC-32s (C code, bisect
on an array) and a comparison of the key itself (so a CRC collision never answers wrongly):
a few µs, against a dict's tens of ns. Many look-ups (`intercept flag`, a run) build the dict
after BUILD_AFTER of them (a few thousand lines), once; from then on it is a plain dict.
"""
from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import Any, Iterator, Optional
from zlib import crc32

_SEPARATOR = "\0"  # never in a key: keys are words of normalised text
_NO_VALUE = object()


def _crc(key: str) -> int:
    return crc32(key.encode("utf-8"))


class KeyTable:
    """str -> value, read-only once compiled; values=False makes it a set (get gives True).

    Answers get / in / [] / len / iteration as a dict does. `lookup()` gives the fastest object
    that answers get, in and [] now: the dict once there is one, else the table itself."""

    # Packed look-ups cost ~1.5 µs more than a dict's; building the dict of 1.3 million keys
    # about 0.5 CPU s. A command matching a few lines never builds it; one matching thousands
    # builds it early (20,000 packed look-ups: 0.03 s), and a small table sooner.
    BUILD_AFTER = 20_000

    def __init__(self, mapping: Optional[dict] = None, values: bool = True) -> None:
        self._dict: Optional[dict] = mapping if mapping is not None else {}  # the compiler's own, not copied
        self._values = values
        self._packed = None
        self._lookups = 0

    @classmethod
    def of_set(cls, keys) -> "KeyTable":
        return cls(dict.fromkeys(keys, True), values=False)

    # -- pickling (intercept.lexicon.cache)

    def __getstate__(self) -> dict:
        # numpy for the per-key arithmetic: writing a 10,000-term lexicon's cache is part of its
        # first (compiled) load, and 1.3 million keys one by one in Python took seconds of it.
        import numpy as np

        keys, which, values = self._pack_parts()
        crcs = np.fromiter((crc32(key.encode("utf-8")) for key in keys), dtype=np.uint32, count=len(keys))
        order = np.argsort(crcs, kind="stable")  # stable: equal CRCs keep the table's order
        keys = [keys[n] for n in order.tolist()]
        offsets = np.zeros(len(keys) + 1, dtype=np.uint32)
        np.cumsum(np.fromiter(map(len, keys), dtype=np.uint32, count=len(keys)) + 1, out=offsets[1:])
        packed = {"keys": _SEPARATOR.join(keys), "hashes": crcs[order].tobytes(), "offsets": offsets.tobytes(),
                  "values": values,
                  "which": np.asarray(which, dtype=np.uint32)[order].tobytes() if values else b""}
        return {"packed": packed, "values": self._values}

    def __setstate__(self, state: dict) -> None:
        self._values = state["values"]
        self._dict = None
        self._lookups = 0
        packed = state["packed"]
        hashes, offsets, which = array("I"), array("I"), array("I")
        hashes.frombytes(packed["hashes"])
        offsets.frombytes(packed["offsets"])
        which.frombytes(packed["which"])
        if len(offsets) != len(hashes) + 1 or (self._values and len(which) != len(hashes)):
            raise ValueError("inconsistent packed key table")  # the cache reader then compiles again
        self._packed = (packed["keys"], hashes, offsets, packed["values"], which)
        self._build_after = min(self.BUILD_AFTER, len(hashes) // 4)

    def _pack_parts(self):
        """(keys, value index per key, distinct values) of the table: values shared by many keys
        (a form's ~100 generated keys share one Surface) are pickled once."""
        table = self._ensure_dict()
        keys = list(table)
        if not self._values:
            return keys, [], []
        index: dict[int, int] = {}
        values: list = []
        which = []
        for value in table.values():
            n = index.get(id(value))
            if n is None:
                n = index[id(value)] = len(values)
                values.append(value)
            which.append(n)
        return keys, which, values

    # -- the two forms

    def _ensure_dict(self) -> dict:
        if self._dict is None:
            keys, _, _, values, which = self._packed
            split = keys.split(_SEPARATOR) if keys else []
            if self._values:
                self._dict = dict(zip(split, map(values.__getitem__, which)))
            else:
                self._dict = dict.fromkeys(split, True)
            self._packed = None
        return self._dict

    def _find(self, key: str) -> Any:
        self._lookups += 1
        if self._lookups > self._build_after:
            return self._ensure_dict().get(key, _NO_VALUE)
        keys, hashes, offsets, values, which = self._packed
        h = _crc(key)
        i = bisect_left(hashes, h)
        while i < len(hashes) and hashes[i] == h:
            if keys[offsets[i]:offsets[i + 1] - 1] == key:
                return values[which[i]] if self._values else True
            i += 1
        return _NO_VALUE

    def lookup(self):
        """The dict when built, else this table: both answer get, in and []."""
        return self._dict if self._dict is not None else self

    # -- the mapping

    def get(self, key: str, default=None):
        if self._dict is not None:
            return self._dict.get(key, default)
        found = self._find(key)
        return default if found is _NO_VALUE else found

    def __contains__(self, key) -> bool:
        if self._dict is not None:
            return key in self._dict
        return isinstance(key, str) and self._find(key) is not _NO_VALUE

    def __getitem__(self, key: str):
        found = self.get(key, _NO_VALUE)
        if found is _NO_VALUE:
            raise KeyError(key)
        return found

    def isdisjoint(self, words) -> bool:
        if self._dict is not None:
            return self._dict.keys().isdisjoint(words)
        return not any(word in self for word in words)

    def __len__(self) -> int:
        return len(self._dict) if self._dict is not None else len(self._packed[1])

    def __iter__(self) -> Iterator[str]:
        if self._dict is not None:
            return iter(self._dict)
        keys = self._packed[0]
        return iter(keys.split(_SEPARATOR) if keys else [])

    def items(self):
        return self._ensure_dict().items()

    def to_dict(self) -> dict:
        """The table as a dict (built now if it was not: look-ups then use it)."""
        return dict(self._ensure_dict())
