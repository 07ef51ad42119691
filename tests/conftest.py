"""Fixtures shared across test files: the embedded model, and one real batch over the
shipped samples (run once per session: it is the slow part of the suite)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "audio_samples"


@pytest.fixture(scope="session")
def manifest() -> dict:
    return json.loads((SAMPLES / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def embedded_model_dir():
    from intercept.models import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def sample_batch(tmp_path_factory, embedded_model_dir):
    """The README's main job, through the real CLI and the real embedded model, over a copy
    of audio_samples/ plus two broken files. Returns (db path, CLI result, input folder)."""
    from click.testing import CliRunner

    from intercept.cli import cli

    work = tmp_path_factory.mktemp("batch")
    inputs = work / "inputs"
    shutil.copytree(SAMPLES, inputs)
    (inputs / "empty.wav").write_bytes(b"")
    (inputs / "notes-renamed.mp3").write_text("this is a text file, not audio\n")
    db = work / "intercept.db"
    result = CliRunner().invoke(
        cli, ["run", str(inputs), "--db", str(db), "--json", "--no-progress"], catch_exceptions=False
    )
    return db, result, inputs


def pytest_sessionfinish(session, exitstatus):
    """On CI every test must run: a skip there (a missing browser, engine or tool) is a
    missing install step, so it fails the run instead of passing quietly."""
    import os

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") and skipped:
        for report in skipped:
            reporter.write_line(f"CI: skipped {report.nodeid}: {report.longrepr}", red=True)
        session.exitstatus = 1
