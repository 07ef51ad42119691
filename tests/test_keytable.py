"""intercept.keytable: a table read back packed answers as the dict it was made from."""
from __future__ import annotations

import marshal
import pickle
import random

import pytest

from intercept.keytable import KeyTable

# Two keys with the same CRC-32: the packed look-up must compare the key itself.
COLLIDING = ("plumless", "buckeroo")


def _table() -> dict:
    rng = random.Random(7)
    letters = "ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهی"
    mapping = {"".join(rng.choice(letters) for _ in range(rng.randint(1, 9))): n % 13 for n in range(3000)}
    mapping.update({COLLIDING[0]: "first", COLLIDING[1]: "second", "پرنده ها": "two words", "\ud800x": "surrogate"})
    return mapping


def _round_trips(table: KeyTable):
    yield "pickle", pickle.loads(pickle.dumps(table, protocol=pickle.HIGHEST_PROTOCOL))
    yield "marshal", KeyTable.unpacked(marshal.loads(marshal.dumps(table.packed())))


@pytest.mark.parametrize("values", [True, False])
def test_a_packed_table_answers_as_its_dict_before_and_after_it_builds_one(values):
    mapping = _table()
    expected = mapping if values else dict.fromkeys(mapping, True)
    absent = ["", "x", "پرنده", "پرنده  ها", "plumles", COLLIDING[0].upper(), "\udc00"]
    for how, table in _round_trips(KeyTable(dict(mapping)) if values else KeyTable.of_set(mapping)):
        assert len(table) == len(expected) and table.lookup() is table, how  # still packed
        assert sorted(table) == sorted(expected), how
        for key in list(expected)[:200] + list(COLLIDING):
            assert table.get(key) == expected[key] and key in table and table[key] == expected[key], (how, key)
        for key in absent:
            assert key not in table and table.get(key, "none") == "none", (how, key)
        with pytest.raises(KeyError):
            table["x"]
        # Past BUILD_AFTER look-ups (a quarter of the table here) it answers from a dict built once.
        for key in expected:
            assert table.get(key) == expected[key]
        assert isinstance(table.lookup(), dict) and table.to_dict() == expected, how
        assert all(key not in table for key in absent), how


def test_an_empty_table_and_parts_that_do_not_fit():
    for how, table in _round_trips(KeyTable({})):
        assert len(table) == 0 and list(table) == [] and "a" not in table, how
    packed = KeyTable({"a": 1, "b": 2}).packed()
    packed["packed"]["offsets"] = packed["packed"]["offsets"][:-4]
    with pytest.raises(ValueError, match="inconsistent"):
        KeyTable.unpacked(packed)


def test_a_look_up_that_another_thread_overtakes_with_the_dict_build_still_answers():
    """hazm's word tables serve every normalize call, from any thread. A look-up that has passed
    get()'s "no dict yet" check when another thread builds the dict (and drops the packed form)
    must answer from the dict, not fail on the packed form that is gone: the interleaving,
    played in one thread."""
    mapping = _table()
    table = pickle.loads(pickle.dumps(KeyTable(dict(mapping))))
    key = next(iter(mapping))
    assert table.lookup() is table
    table._ensure_dict()  # the other thread's build, between get()'s check and its _find
    assert table._find(key) == mapping[key] and table.get("x", "none") == "none"
    assert len(table) == len(mapping) and sorted(table) == sorted(mapping)
