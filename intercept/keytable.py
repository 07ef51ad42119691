"""KeyTable: a str -> value table that is read back from a disk cache without being rebuilt
(a compiled lexicon's keys, intercept.lexicon.cache; hazm's word tables, intercept.text), so
that a short command (`intercept match`) does not pay for hashing a million strings into a dict.

At 10,000 terms the exact and morph keys are 1.3 million strings; building a dict of them from
the cache took most of a cached load (0.9 of 1.2 CPU s). The table is pickled packed: the keys
in one UTF-8 string in the table's order, where each key starts, which value it has, and the keys'
CRC-32s sorted with the permutation that sorts them. A look-up in the packed form is a binary
search over the CRC-32s (C code, bisect on an array) and a comparison of the key itself (so a
CRC collision never answers wrongly): a few µs, against a dict's tens of ns. Many look-ups
(`intercept flag`, a run) build the dict after BUILD_AFTER of them (a few thousand lines),
once; from then on it is a plain dict.
"""
from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import Any, Iterator, Optional
from zlib import crc32

_SEPARATOR = "\0"  # never in a key: keys are words of normalised text
_NO_VALUE = object()
# Any str encodes, one with a lone surrogate too (text from a broken file).
_UTF8 = ("utf-8", "surrogatepass")


class KeyTable:
    """str -> value, read-only once compiled; values=False makes it a set (get gives True).

    Answers get / in / [] / len / iteration as a dict does. `lookup()` gives the fastest object
    that answers get, in and [] now: the dict once there is one, else the table itself."""

    # The packed layout, for caches keyed by it (intercept.text's word tables): 2 keeps the keys
    # as UTF-8 in the table's order, with the permutation that sorts their CRC-32s.
    FORMAT = 2

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

    # -- pickled (intercept.lexicon.cache) or marshalled (intercept.text)

    def __getstate__(self) -> dict:
        return self.packed()

    def __setstate__(self, state: dict) -> None:
        self._unpack(state)

    @classmethod
    def unpacked(cls, state: dict) -> "KeyTable":
        """The table `packed()` gave (ValueError when its parts do not fit together)."""
        table = cls.__new__(cls)
        table._unpack(state)
        return table

    def packed(self) -> dict:
        """The table as plain values (str, bytes, a list of its distinct values) that pickle
        and marshal write, and `unpacked` reads back without building a dict."""
        # numpy and map() over C functions for the per-key work: writing a 10,000-term lexicon's
        # cache is part of its first (compiled) load, and 1.3 million keys one by one in Python
        # took seconds of it. The keys stay in the table's order (a permutation sorts their
        # CRC-32s): reordering 1.3 million strings cost more than all the rest.
        import numpy as np

        keys, which, values = self._pack_parts()
        # Kept as UTF-8: pickle and marshal copy bytes, where a str is encoded and decoded again.
        joined = _SEPARATOR.join(keys).encode(*_UTF8)
        encoded = joined.split(_SEPARATOR.encode()) if keys else []
        crcs = np.fromiter(map(crc32, encoded), dtype=np.uint32, count=len(keys))
        order = np.argsort(crcs, kind="stable")  # stable: equal CRCs keep the table's order
        offsets = np.zeros(len(keys) + 1, dtype=np.uint32)
        np.cumsum(np.fromiter(map(len, encoded), dtype=np.uint32, count=len(keys)) + 1, out=offsets[1:])
        packed = {"keys": joined, "hashes": crcs[order].tobytes(), "order": order.astype(np.uint32).tobytes(),
                  "offsets": offsets.tobytes(), "values": values,
                  "which": np.asarray(which, dtype=np.uint32).tobytes() if values else b""}
        return {"packed": packed, "values": self._values}

    def _unpack(self, state: dict) -> None:
        self._values = state["values"]
        self._dict = None
        self._lookups = 0
        packed = state["packed"]
        hashes, order, offsets, which = array("I"), array("I"), array("I"), array("I")
        hashes.frombytes(packed["hashes"])
        order.frombytes(packed["order"])
        offsets.frombytes(packed["offsets"])
        which.frombytes(packed["which"])
        if (not isinstance(packed["keys"], bytes) or len(order) != len(hashes) or len(offsets) != len(hashes) + 1
                or (self._values and len(which) != len(hashes))):
            raise ValueError("inconsistent packed key table")  # the cache reader then compiles again
        self._packed = (packed["keys"], hashes, order, offsets, packed["values"], which)
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

    # Threads may share a table (hazm's word tables serve every normalize call): the dict is set
    # before the packed form is dropped, so a reader that finds no packed form finds the dict.
    def _ensure_dict(self) -> dict:
        built = self._dict
        if built is None:
            packed = self._packed
            if packed is None:  # another thread has just built it
                return self._dict
            keys, _, _, _, values, which = packed
            split = keys.decode(*_UTF8).split(_SEPARATOR) if keys else []
            if self._values:
                built = dict(zip(split, map(values.__getitem__, which)))
            else:
                built = dict.fromkeys(split, True)
            self._dict = built
            self._packed = None
        return built

    def _find(self, key: str) -> Any:
        if not isinstance(key, str):  # a dict would answer "absent" too
            return _NO_VALUE
        self._lookups += 1
        packed = self._packed
        if packed is None or self._lookups > self._build_after:
            return self._ensure_dict().get(key, _NO_VALUE)
        keys, hashes, order, offsets, values, which = packed
        key = key.encode(*_UTF8)
        h = crc32(key)
        i = bisect_left(hashes, h)
        while i < len(hashes) and hashes[i] == h:
            n = order[i]
            if keys[offsets[n]:offsets[n + 1] - 1] == key:
                return values[which[n]] if self._values else True
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
        return self._find(key) is not _NO_VALUE

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
        packed = self._packed
        return len(packed[1]) if packed is not None else len(self._dict)

    def __iter__(self) -> Iterator[str]:
        packed = self._packed
        if packed is None:
            return iter(self._dict)
        keys = packed[0]
        return iter(keys.decode(*_UTF8).split(_SEPARATOR) if keys else [])

    def items(self):
        return self._ensure_dict().items()

    def to_dict(self) -> dict:
        """The table as a dict (built now if it was not: look-ups then use it)."""
        return dict(self._ensure_dict())
