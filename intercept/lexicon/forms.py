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

# Persian suffixes, by how the word they attach to ends. Written without ZWNJ; join adds it.
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


def join(stem: str, suffix: str) -> str:
    """stem + suffix as written: with ZWNJ after a silent ه and before ها."""
    return stem + glue(stem, suffix) + suffix


def spellings(surface: str) -> list[str]:
    """A written form, and the same with its ZWNJ typed as a space (عقب نشینی)."""
    return [surface, surface.replace(ZWNJ, " ")] if ZWNJ in surface else [surface]


class FormGenerator:
    """The generated (morph) forms of lexicon forms. `words` (KnownWords) keeps out colloquial
    forms that spell a real word."""

    def __init__(self, words) -> None:
        self.words = words

    def noun_forms(self, form: str, inflect: bool = True) -> list[str]:
        """form, then (with `inflect`) its inflected, space-suffixed and colloquial forms, each
        followed by its ZWNJ-as-space spelling; in this order (the first owner of a key keeps it)."""
        return [spelling for stem, between, suffix in self._noun_parts(form, inflect)
                for spelling in spellings(stem + between + suffix)]

    def noun_keys(self, form: str, inflect: bool = True) -> list[str]:
        """The lookup keys of noun_forms(form, inflect), the same set: each made from its stem's
        key and its suffix, where building every written form first and then its key cost a
        10,000-term lexicon's first load 2 s (1.5 million forms)."""
        keys: list[str] = []
        stem_keys: dict[str, tuple[str, str]] = {}
        for stem, between, suffix in self._noun_parts(form, inflect):
            if not stem or stem[-1].isspace() or stem[-1] == ZWNJ:  # a key would join differently: spelled out
                keys += [lookup_key(spelling) for spelling in spellings(stem + between + suffix)]
                continue
            if stem not in stem_keys:  # the stem's key, and its key with ZWNJ typed as a space
                stem_keys[stem] = (lookup_key(stem), lookup_key(stem.replace(ZWNJ, " ")))
            plain, spaced = stem_keys[stem]
            keys.append(plain + (" " if between == " " else "") + suffix)
            if between == ZWNJ or ZWNJ in stem:  # the ZWNJ-as-space spelling (spellings)
                keys.append(spaced + (" " if between else "") + suffix)
        return keys

    def _noun_parts(self, form: str, inflect: bool) -> list[tuple[str, str, str]]:
        """(stem, what joins it: "", ZWNJ or a space, suffix) of noun_forms's forms, in its order."""
        parts = [(form, "", "")]
        if not inflect:
            return parts
        pairs = inflections(form)
        parts += [(s, glue(s, x), x) for s, x in pairs]
        parts += [(s, " ", x) for s, x in pairs if len(x) >= _SPACED_SUFFIX_MIN_LENGTH or x == "ی"]
        # Colloquial forms (گرگا, پرندس, روباهرو) can spell another word (مین + ا is مینا,
        # a name, and مینای "enamel of"): one that is a real word, or built on a plural ـا
        # that is one, is left out.
        is_word = self.words.is_word
        parts += [(s, glue(s, x), x) for s, x in colloquial_forms(form) if not (
            is_word(lookup_key(s + x)) or x.startswith("ا") and is_word(lookup_key(s + "ا")))]
        return parts

    @staticmethod
    def infinitive(lemma: str) -> str:
        """The infinitive of a verb given as 'past#present' (کشت#کش -> کشتن): its exact form."""
        return lemma.split("#")[0] + "ن"

    @staticmethod
    def verb_forms(lemma: str) -> list[str]:
        """Every conjugation hazm knows of 'past#present' (each may need `spellings`)."""
        return _hazm_verb_forms(lemma)
