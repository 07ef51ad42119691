"""A romanised Farsi "translation" is never labelled reliable English (issue 27)."""
from __future__ import annotations

import pytest

from intercept.reliability import english_reliability, is_transliteration, romanised_share


@pytest.mark.parametrize("text", [
    "Begoo Shambhya Begoo",
    "Khoda hafez, salam agha jan",
    "chetori? kojai? man inja hastam",
    "Baradar, bia inja zood",
])
def test_transliterations_are_recognised(text):
    assert is_transliteration(text)


@pytest.mark.parametrize("text", [
    "I will not let you down, I will not let you down",
    "tonight let's go see whether it is a bird or a fox",
    "The fox came to Tehran",  # a name among English words
    "hello",  # one word: too little to tell
    "",
])
def test_english_is_not_a_transliteration(text):
    assert not is_transliteration(text)


def test_transliteration_is_unreliable_whatever_the_confidence():
    line = {"text_en": "Begoo Shambhya Begoo", "confidence": 0.97, "suspect": None}
    reliability = english_reliability(line)
    assert reliability.label == "unreliable" and "transliteration" in reliability.reason
    english = english_reliability({**line, "text_en": "Tell me, tell me"})
    assert english.label == "reliable"
    assert romanised_share("Begoo the fox") == pytest.approx(1 / 3)
