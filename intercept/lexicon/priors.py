"""Priors: how likely a matched form means its concept at all, before any recogniser evidence.

    estimator = PriorEstimator(normalizer.word_frequencies())
    estimator.form_prior(concept, "کفتار")    -> (0.25, "sound_alike: گفتار")
    estimator.verb_priors(concept, "کشت#کش") -> {"کش": (0.25, "shared_stem: کشید#کش"), ...}
    table = estimator.table(concepts)          -> PriorTable, looked up by (concept id, form)

Hand-set levels, not fitted: evidence for the flag's trust score to weigh, never a filter; an
analyst sees the reason on every flag (`intercept match`) and overrides it per concept
(`prior:`, lexicons/README.md). Priors calibrated on a recogniser's confusions are another step
(intercept.lexicon.calibration) that the flag scorer prefers when there is one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

from intercept.text import shared_verb_forms, verb_forms

from .forms import lookup_key
from .words import KNOWN_WORD_MIN_FREQUENCY

PRIOR_PLAIN = 1.0
PRIOR_AMBIGUOUS = 0.25  # a likely mis-hearing of a commoner word, or a form another common verb shares
# A form is a likely mis-hearing when changing one letter for a sound-alike one makes a word this
# many times commoner in hazm's word list (کفتار "hyena" 28 thousand, گفتار "speech" 1.2 million).
SOUND_ALIKE_MIN_RATIO = 10
_SOUND_ALIKE_GROUPS = ("زذظضژ", "سصث", "تط", "هح", "قغ", "کگ", "پب", "چج", "اعآ")
_ALIKE_LETTERS = {letter: group.replace(letter, "") for group in _SOUND_ALIKE_GROUPS for letter in group}

Prior = tuple[float, Optional[str]]  # (prior, reason); reason None when the prior is plain


def override(concept) -> Optional[tuple[float, str]]:
    """The analyst's prior for a concept, with its reason, when the lexicon sets one."""
    return None if concept.prior is None else (concept.prior, f"lexicon prior {concept.prior:g}")


def plain_prior(concept) -> Prior:
    """The prior of a form nothing makes doubtful: the analyst's, else PRIOR_PLAIN."""
    return override(concept) or (PRIOR_PLAIN, None)


def commoner_sound_alike(word: str, frequencies: dict[str, int]) -> Optional[str]:
    """The commonest word one sound-alike letter away from word (کفتار -> گفتار), when it is at
    least SOUND_ALIKE_MIN_RATIO times as common in hazm's word list (a word the list lacks or
    counts rarely counts as KNOWN_WORD_MIN_FREQUENCY)."""
    own = max(frequencies.get(word, 0), KNOWN_WORD_MIN_FREQUENCY)
    best, best_count = None, SOUND_ALIKE_MIN_RATIO * own
    for n, letter in enumerate(word):
        for other in _ALIKE_LETTERS.get(letter, ""):
            neighbour = word[:n] + other + word[n + 1:]
            count = frequencies.get(neighbour, 0)
            if count >= best_count:
                best, best_count = neighbour, count
    return best


@dataclass
class PriorTable:
    """Each Farsi form's prior, and each verb's forms that another verb shares, by concept id."""

    forms: dict[tuple[str, str], Prior] = field(default_factory=dict)
    verbs: dict[tuple[str, str], dict[str, Prior]] = field(default_factory=dict)

    def form(self, concept_id: str, form: str) -> Prior:
        return self.forms[(concept_id, form)]

    def verb(self, concept_id: str, lemma: str) -> dict[str, Prior]:
        """The conjugated forms of this verb whose prior is not the concept's plain one."""
        return self.verbs[(concept_id, lemma)]


class PriorEstimator:
    """Hand-set priors from hazm's word frequencies (`normalizer.word_frequencies()`)."""

    def __init__(self, frequencies: dict[str, int]) -> None:
        self.frequencies = frequencies

    def form_prior(self, concept, form: str) -> Prior:
        """The analyst's prior, else PRIOR_AMBIGUOUS for a one-word form with a much commoner
        sound-alike (unless the concept says `sound_alike: ignore`), else PRIOR_PLAIN."""
        chosen = override(concept)
        if chosen is not None:
            return chosen
        neighbour = None
        if concept.sound_alike and " " not in form:
            neighbour = commoner_sound_alike(lookup_key(form), self.frequencies)
        return (PRIOR_AMBIGUOUS, f"sound_alike: {neighbour}") if neighbour else (PRIOR_PLAIN, None)

    def verb_priors(self, concept, lemma: str) -> dict[str, Prior]:
        """The analyst's prior for every form, else PRIOR_AMBIGUOUS for the forms another verb
        shares (unless `shared_stem: ignore`); forms left out take the concept's plain prior."""
        chosen = override(concept)
        if chosen is not None:
            return {form: chosen for form in verb_forms(lemma)}
        if concept.shared_stem:
            return {form: (PRIOR_AMBIGUOUS, "shared_stem: " + ", ".join(others))
                    for form, others in shared_verb_forms(lemma).items()}
        return {}

    def table(self, concepts: Sequence) -> PriorTable:
        table = PriorTable()
        for concept in concepts:
            for form in concept.fa:
                table.forms[(concept.id, form)] = self.form_prior(concept, form)
            for lemma in concept.verbs:
                table.verbs[(concept.id, lemma)] = self.verb_priors(concept, lemma)
        return table
