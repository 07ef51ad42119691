"""What setup.cfg cannot declare: the default lexicon ships inside the package.

lexicons/ stays at the top of the checkout, where analysts edit it; built packages carry it as
intercept/lexicon/default/ (a data-only package mapped onto that folder; its files are listed
under [options.package_data] in setup.cfg), and intercept.lexicon.default_lexicon_path()
finds it there. setup.cfg's `packages = find:` cannot add a package mapped from elsewhere, so
the package list is made here.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["intercept", "intercept.*"]) + ["intercept.lexicon.default"],
    package_dir={"intercept.lexicon.default": "lexicons"},
)
