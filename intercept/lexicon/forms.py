"""Forms: every way a lexicon form is written in recognised Persian.

    forms = FormGenerator(KnownWords(normalizer))
    forms.noun_forms("پرنده")   -> ["پرنده", "پرنده‌ها", "پرندگان", "پرنده‌ای", ..., "پرندس", ...]
    forms.verb_forms("کشت#کش") -> every conjugation hazm knows (intercept.text.verb_forms)

Generated forms are what the `morph` kind matches: plural, indefinite, ezafe, possessive and
colloquial forms of the last word, and each written with ZWNJ, with a space, or joined (the
lookup key drops ZWNJ). Written by hand: hazm has a stemmer/lemmatizer (suffix removal) but no
generator, and generating lets matching be one dictionary lookup a word.
"""
from __future__ import annotations

from intercept.text import ZWNJ
from intercept.text import verb_forms as _hazm_verb_forms

# Persian suffixes, by how the word they attach to ends. Written without ZWNJ; glue() adds it.
_ENCLITICS_AFTER_SILENT_HE = ("ای", "ی", "ام", "ات", "اش", "مان", "تان", "شان", "مون", "تون", "شون")
_ENCLITICS_AFTER_VOWEL = ("یی", "ی", "یم", "یت", "یش", "یمان", "یتان", "یشان", "مان", "تان", "شان", "مون", "تون",
                          "شون")
# colloquial ه (definite: روباهه "the fox") and و (object marker: روباهو "the fox", as object)
_ENCLITICS_AFTER_CONSONANT = ("ی", "م", "ت", "ش", "مان", "تان", "شان", "مون", "تون", "شون", "ه", "و")
# A suffix written after a space is still a suffix (پرنده ها); single letters other than ی are
# not accepted that way because "گرگ و" is "wolf and".
_SPACED_SUFFIX_MIN_LENGTH = 2

def lookup_key(surface: str) -> str:
    """Lookup key of a word or words: ZWNJ dropped (joined, ZWNJ and ZWNJ-less spellings agree),
    words joined by one space."""
    return " ".join(surface.replace(ZWNJ, "").split())


def lookup_keys(surfaces: list[str]) -> list[str]:
    """lookup_key of each (a compiled 10,000-term lexicon makes 1.8 million: no call per key)."""
    return [" ".join(surface.replace(ZWNJ, "").split()) for surface in surfaces]


def ends_with_silent_he(word: str) -> bool:
    # پرنده ends in a silent ه (plural پرندگان, indefinite پرنده‌ای); روباه, کوه, شاه end in a real h.
    return word.endswith("ه") and not word.endswith(("اه", "وه"))


def _enclitics(word: str) -> tuple[str, ...]:
    if ends_with_silent_he(word):
        return _ENCLITICS_AFTER_SILENT_HE
    if word.endswith(("ا", "و")):
        return _ENCLITICS_AFTER_VOWEL
    return _ENCLITICS_AFTER_CONSONANT


def inflections(form: str) -> list[tuple[str, str]]:
    """(stem, suffix) pairs of plural, indefinite, ezafe, possessive and colloquial forms of a
    form (the last word takes them)."""
    plurals: list[tuple[str, str]] = [(form, ""), (form, "ها")]
    if ends_with_silent_he(form):
        plurals.append((form[:-1], "گان"))
    elif form.endswith(("ا", "و")):
        plurals += [(form, "یان"), (form, "ان")]
    else:
        plurals.append((form, "ان"))
    pairs: list[tuple[str, str]] = []
    for stem, plural in plurals:
        if plural:
            pairs.append((stem, plural))
        for enclitic in _enclitics(plural or stem):
            pairs.append((stem, plural + enclitic))
    return pairs


def colloquial_forms(form: str) -> list[tuple[str, str]]:
    """(stem, suffix) pairs of spoken forms monitors hear and recognisers write: plural ا (گرگا,
    آهوا, with enclitics: گرگامون), copula س/ست (پرندس, پرنده‌ست, آهوست), ۀ as ezafe (پرندۀ) and
    the object marker رو attached (روباهرو, گرگارو, پرنده‌هارو)."""
    pairs: list[tuple[str, str]] = [(form, "رو"), (form, "هارو")]
    if ends_with_silent_he(form):
        return pairs + [(form, "ست"), (form[:-1], "س"), (form[:-1], "ۀ")]
    if form.endswith(("ا", "و")):
        pairs.append((form, "ست"))
    if not form.endswith("ا"):
        pairs += [(form, "ا"), (form, "ارو")] + [(form, "ا" + enclitic) for enclitic in _ENCLITICS_AFTER_VOWEL]
    return pairs


def glue(stem: str, suffix: str) -> str:
    """What joins stem and suffix as written: ZWNJ after a silent ه and before ها, else nothing."""
    if suffix.startswith("ها") or ends_with_silent_he(stem) and not suffix.startswith("گان"):
        return ZWNJ
    return ""


def spellings(surface: str) -> list[str]:
    """A written form, and the same with its ZWNJ typed as a space (عقب نشینی)."""
    return [surface, surface.replace(ZWNJ, " ")] if ZWNJ in surface else [surface]


class FormGenerator:
    """The generated (morph) forms of lexicon forms. `words` (KnownWords) keeps out colloquial
    forms that spell a real word."""

    def __init__(self, words) -> None:
        self.words = words
        # The inflected parts' tails by the form's ending (_ending), built once each: see noun_keys.
        self._tails: dict[tuple[bool, bool], list[tuple[int, list[str], list[str], list[str]]]] = {}

    def noun_forms(self, form: str, inflect: bool = True) -> list[str]:
        """form, then (with `inflect`) its inflected, space-suffixed and colloquial forms, each
        followed by its ZWNJ-as-space spelling; in this order (the first owner of a key keeps it)."""
        parts = [(form, "", "")] + (self._inflected_parts(form) + self._colloquial_parts(form) if inflect else [])
        return [spelling for stem, between, suffix in parts for spelling in spellings(stem + between + suffix)]

    def noun_keys(self, form: str, inflect: bool = True) -> list[str]:
        """The lookup keys of noun_forms(form, inflect), the same set, made without writing each
        form out: building 1.5 million written forms and then their keys cost a 10,000-term
        lexicon's first load 2 s. A key is its stem's key (the form, or the form less its silent
        ه) and a tail: what joins them (ZWNJ is dropped, a space stays) and the suffix. Which
        inflected suffixes a form takes, and how they join, depend only on how it ends, so their
        tails are made once per ending."""
        if not inflect:
            return lookup_keys(spellings(form))
        if len(form) < 2 or any(c.isspace() or c == ZWNJ for c in form[-2:]):
            return lookup_keys(self.noun_forms(form))  # a stem ending oddly would join differently
        keys = lookup_keys(spellings(form))
        for cut, tails, spaced_tails, glued_tails in self._inflected_tails(form):
            stem = form[:len(form) - cut]
            plain = lookup_key(stem)
            keys += [plain + tail for tail in tails]
            # The ZWNJ-as-space spellings (`spellings`): a ZWNJ in the stem, or the one joining it.
            if ZWNJ in stem:
                spaced = lookup_key(stem.replace(ZWNJ, " "))
                keys += [spaced + tail for tail in spaced_tails]
            else:
                keys += [plain + tail for tail in glued_tails]
        for stem, between, suffix in self._colloquial_parts(form):
            keys.append(lookup_key(stem) + suffix)
            if between == ZWNJ or ZWNJ in stem:
                keys.append(lookup_key(stem.replace(ZWNJ, " ")) + (" " if between else "") + suffix)
        return keys

    @staticmethod
    def _ending(form: str) -> tuple[bool, bool]:
        """What inflections() and glue() ask of a form's ending."""
        return ends_with_silent_he(form), form.endswith(("ا", "و"))

    def _inflected_tails(self, form: str) -> list[tuple[int, list[str], list[str], list[str]]]:
        """Per stem (how many letters cut off the form): the tails of its inflected parts' keys,
        of the ZWNJ-as-space spellings' keys when the stem holds a ZWNJ, and of those when only
        the joining ZWNJ becomes a space."""
        ending = self._ending(form)
        if ending not in self._tails:
            by_cut: dict[int, list[tuple[str, str]]] = {}
            for stem, between, suffix in self._inflected_parts(form):
                by_cut.setdefault(len(form) - len(stem), []).append((between, suffix))
            self._tails[ending] = [(cut, [(" " if b == " " else "") + x for b, x in parts],
                                    [(" " if b else "") + x for b, x in parts],
                                    [" " + x for b, x in parts if b == ZWNJ])
                                   for cut, parts in by_cut.items()]
        return self._tails[ending]

    @staticmethod
    def _inflected_parts(form: str) -> list[tuple[str, str, str]]:
        """(stem, what joins it: "", ZWNJ or a space, suffix) of the inflected and space-suffixed forms."""
        pairs = inflections(form)
        return ([(s, glue(s, x), x) for s, x in pairs]
                + [(s, " ", x) for s, x in pairs if len(x) >= _SPACED_SUFFIX_MIN_LENGTH or x == "ی"])

    def _colloquial_parts(self, form: str) -> list[tuple[str, str, str]]:
        """(stem, what joins it, suffix) of the colloquial forms that spell no real word."""
        # Colloquial forms (گرگا, پرندس, روباهرو) can spell another word (مین + ا is مینا,
        # a name, and مینای "enamel of"): one that is a real word, or built on a plural ـا
        # that is one, is left out.
        is_word = self.words.is_word
        pairs = colloquial_forms(form)
        plural_a_is_word = {s: is_word(lookup_key(s + "ا")) for s in {s for s, _ in pairs}}  # asked once per stem
        return [(s, glue(s, x), x) for s, x in pairs if not (
            is_word(lookup_key(s + x)) or x.startswith("ا") and plural_a_is_word[s])]

    @staticmethod
    def infinitive(lemma: str) -> str:
        """The infinitive of a verb given as 'past#present' (کشت#کش -> کشتن): its exact form."""
        return lemma.split("#")[0] + "ن"

    @staticmethod
    def verb_forms(lemma: str) -> list[str]:
        """Every conjugation hazm knows of 'past#present' (each may need `spellings`)."""
        return _hazm_verb_forms(lemma)
