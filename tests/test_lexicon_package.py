"""The default lexicon ships inside the package: a built wheel carries lexicons/ as
intercept/lexicon/default/, and an installed copy finds its lexicon, calibration and the
guards' phrase list there, not in a checkout.

SLOW-ISH: builds a wheel with pip (setuptools, no build isolation, no network): about 15 s.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What a build needs; the copy keeps build/ and *.egg-info out of the checkout.
_BUILD_INPUTS = ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "intercept", "lexicons")
_SHIPPED = (".yaml", ".yml", ".txt", ".md", ".json")
# Run by the installed copy: where it finds its lexicon, phrase list and calibration.
_PROBE = """
import json
from pathlib import Path

import intercept
from intercept.guards import DEFAULT_PHRASES
from intercept.lexicon import LexiconReader, default_lexicon_path
from intercept.lexicon.calibration import embedded_calibration

path = default_lexicon_path()
files = LexiconReader.files(path)
calibration = embedded_calibration(files)
print(json.dumps({"package": str(Path(intercept.__file__).parent), "lexicon": str(path),
                  "files": [f.name for f in files], "phrases": str(DEFAULT_PHRASES),
                  "phrases_exist": DEFAULT_PHRASES.is_file(),
                  "calibration": calibration.path if calibration else None}))
"""


def _default_lexicon_files() -> set[str]:
    lexicons = ROOT / "lexicons"
    return {p.relative_to(lexicons).as_posix() for p in lexicons.rglob("*")
            if p.is_file() and p.suffix in _SHIPPED and (p.parent == lexicons or p.parent.name == "calibration")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in _BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "-w", str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    [built] = out.glob("intercept-*.whl")
    return built


def test_the_wheel_carries_the_default_lexicon(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _default_lexicon_files()
    assert {"default.yaml", "hallucinations.txt", "README.md", "calibration/whisper-base.json"} <= expected
    for name in expected:
        assert f"intercept/lexicon/default/{name}" in names, name
    assert "intercept/lexicon/matching/fuzzy.py" in names
    assert not any(n.startswith("lexicons/") for n in names)  # nothing loose at the top of site-packages


def test_an_installed_copy_finds_its_own_default_lexicon(wheel, tmp_path):
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    env = {**os.environ, "PYTHONPATH": str(installed)}
    # cwd outside the checkout, so only the installed copy is importable as intercept
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    package = installed / "intercept"
    assert Path(found["package"]) == package
    assert Path(found["lexicon"]) == package / "lexicon" / "default"
    assert Path(found["phrases"]) == package / "lexicon" / "default" / "hallucinations.txt" and found["phrases_exist"]
    assert found["files"] == ["default.yaml"]
    assert Path(found["calibration"]) == package / "lexicon" / "default" / "calibration" / "whisper-base.json"

