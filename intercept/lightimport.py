"""hazm's normaliser without the rest of hazm and NLTK: a short command's start-up.

`import hazm` runs hazm/__init__.py, which imports every hazm module and with them scikit-learn,
SciPy and all of NLTK (nltk/__init__ imports scipy.stats and sklearn when they are installed),
for taggers, parsers, classifiers and statistics intercept never uses: 1.1 CPU s, most of
`intercept match`. hazm's stemmer and tokenizer need NLTK only for two abstract base classes
(nltk.stem.api.StemmerI, nltk.tokenize.api.TokenizerI), whose modules import little.

So hazm and the NLTK packages on that path are registered without running their __init__ files
(`package_on_demand`), and only the hazm modules intercept uses are imported. Whatever later
asks for more, in any way a plain import would serve, gets the whole package, with __init__
files run in the order a plain import runs them and the classes already imported unchanged:
- a name the package does not hold yet (`hazm.POSTagger`, `from nltk import *`, `__version__`);
- the import of a submodule the light import did not take (`import nltk.corpus`).
This is the lazy-module pattern of PEP 562 (as scientific-python's lazy_loader), written here
because it wraps packages that were not written for it. tests/test_cli.py checks that the
packages seen afterwards hold every name a plain import gives.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
from importlib.machinery import PathFinder
from types import ModuleType
from typing import Iterable, Sequence

# hazm's own modules that intercept uses (normaliser, lemmatiser, conjugation, word lists), in
# the order they import one another, with the names each takes from the package.
HAZM_PARTS = (("utils", ("default_verbs", "default_words", "stopwords_list", "words_list", "maketrans",
                         "regex_replace", "NUMBERS", "informal_verbs", "informal_words", "abbreviations")),
              ("stemmer", ("Stemmer",)), ("word_tokenizer", ("WordTokenizer",)),
              ("lemmatizer", ("Conjugation", "Lemmatizer")), ("normalizer", ("Normalizer",)))
# NLTK's packages that hazm's stemmer and tokenizer import from.
NLTK_PACKAGES = ("nltk", "nltk.stem", "nltk.tokenize")
# What NLTK's __init__ imports only for classifiers and statistics: held back while the light
# import runs (NLTK treats them as not installed), importable again afterwards.
HELD_BACK = ("sklearn", "scipy")


def package_on_demand(name: str, completed_before: Sequence[ModuleType] = ()) -> ModuleType:
    """The package `name` registered in sys.modules without running its __init__. Its
    `__complete__()` runs the __init__ once, in the same module object, after those of
    `completed_before` (packages registered the same way whose __init__ a plain import runs
    first: the parent package's, NLTK's for hazm). The first name asked of the package that it
    does not hold completes it; a submodule's name imports only that submodule (`from nltk import
    redos`, in NLTK's own modules, asks the package first)."""
    spec = importlib.util.find_spec(name)
    module = importlib.util.module_from_spec(spec)
    done = []

    def complete() -> None:
        for before in completed_before:
            before.__complete__()  # may complete this package too (NLTK's __init__ imports nltk.stem)
        if not done:
            done.append(True)  # before running it: the __init__ asks its own package for names
            spec.loader.exec_module(module)

    def rest_of_package(attribute: str):
        # Other dunders are probes of tools, not the package's names: no import for them.
        if done or (attribute.startswith("__") and attribute not in ("__all__", "__version__")):
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        if not attribute.startswith("__") and PathFinder.find_spec(f"{name}.{attribute}", module.__path__):
            return importlib.import_module(f"{name}.{attribute}")
        complete()
        if attribute in module.__dict__:
            return module.__dict__[attribute]
        raise AttributeError(f"module {name!r} has no attribute {attribute!r}")

    module.__getattr__ = rest_of_package
    module.__complete__ = complete
    module.__completed__ = done
    sys.modules[name] = module
    return module


class _Imported(importlib.abc.Loader):
    """Loader of a module that its package's __init__ has just imported: the module as it is
    (the import system would otherwise run it a second time)."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.spec = module.__spec__

    def create_module(self, spec):
        return self.module

    def exec_module(self, module) -> None:
        module.__spec__ = self.spec  # the import system set ours while taking the module


class CompleteBeforeSubmodules(importlib.abc.MetaPathFinder):
    """Installed after the light import: importing a submodule of a package registered on demand
    runs the package's __init__ first, as a plain import does (`import nltk.corpus` needs NLTK's
    __init__ to have run). Leaves sys.meta_path once every such package is complete."""

    def __init__(self, packages: Iterable[ModuleType]) -> None:
        self.packages = {module.__name__: module for module in packages}

    def find_spec(self, fullname, path=None, target=None):
        package = self.packages.get(fullname.partition(".")[0])
        if package is None or "." not in fullname or package.__completed__:
            return None
        package.__complete__()
        if all(module.__completed__ for module in self.packages.values()) and self in sys.meta_path:
            sys.meta_path.remove(self)
        found = sys.modules.get(fullname)
        return importlib.util.spec_from_loader(fullname, _Imported(found)) if found is not None else None


def import_hazm() -> ModuleType:
    """hazm with the modules of HAZM_PARTS imported, the rest on demand. Anything unexpected
    (another hazm or NLTK than the ones this was written for) falls back to the plain import;
    INTERCEPT_HAZM_LIGHT=0 turns it off."""
    if "hazm" in sys.modules or os.environ.get("INTERCEPT_HAZM_LIGHT", "1") == "0":
        import hazm

        return hazm
    before = set(sys.modules)
    held = [name for name in HELD_BACK if name not in sys.modules]
    try:
        nltk: tuple[ModuleType, ...] = ()
        if not any(name in sys.modules for name in NLTK_PACKAGES):  # else NLTK is used as it is
            nltk = (package_on_demand("nltk"),)
            for name in NLTK_PACKAGES[1:]:
                package_on_demand(name, nltk)
        module = package_on_demand("hazm", nltk)
        for name in held:
            sys.modules[name] = None  # "not installed" for the imports below
        try:
            for part, names in HAZM_PARTS:
                imported = importlib.import_module(f"hazm.{part}")
                for name in names:
                    setattr(module, name, getattr(imported, name))
        finally:
            for name in held:
                if sys.modules.get(name, 0) is None:
                    del sys.modules[name]
    except Exception:  # the plain import, from a clean slate
        for name in set(sys.modules) - before:
            del sys.modules[name]
        import hazm

        return hazm
    top_level = [module, *nltk[:1]]
    sys.meta_path.insert(0, CompleteBeforeSubmodules(top_level))
    return module
