"""audio_samples/ and scripts/make_samples.py: the manifest describes every shipped file, the
real-speech recordings say where their speech comes from, and re-making the samples without
the real-speech corpus keeps those recordings and gives the synthetic ones byte for byte."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "audio_samples"
sys.path.insert(0, str(ROOT / "scripts"))

import make_samples  # noqa: E402


def _synthetic(folder: Path) -> set:
    """The recordings of folder's manifest that make_samples.py synthesises (not real speech)."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return {name for name, rec in manifest["recordings"].items() if rec["speech"] != "fa_virgool"}


def _decoded(path: Path) -> np.ndarray:
    from intercept.audio import decode

    return decode(path).samples.astype(np.float64)


def test_manifest_describes_every_file_and_the_real_speech_is_sourced(manifest):
    audio = {p.name for p in SAMPLES.iterdir() if p.suffix in (".wav", ".mp3", ".ogg")}
    assert audio == set(manifest["recordings"])
    speech = {name: rec["speech"] for name, rec in manifest["recordings"].items()}
    assert sorted(speech.values()).count("fa_virgool") == 2 and "espeak-ng" in speech.values()
    for name, rec in manifest["recordings"].items():
        assert (SAMPLES / name).stat().st_size < 1_000_000, name
        for tx in rec["transmissions"]:
            assert 0 <= tx["start"] < tx["end"] <= rec["duration"] and tx["text_fa"].strip() and tx["text_en"]
        if rec["speech"] == "fa_virgool":
            assert "CC-0" in rec["source"] and (SAMPLES / name).stat().st_size < 300_000
            assert all(tx["clip"].startswith("fa_virgool/clips/") and not tx["coded"] for tx in rec["transmissions"])


def test_remaking_without_the_corpus_keeps_the_real_speech_and_remakes_the_rest_identically(tmp_path, capsys):
    out = tmp_path / "samples"
    shutil.copytree(SAMPLES, out)
    assert make_samples.main(["--out", str(out), "--clips", str(tmp_path / "no-corpus")]) == 0
    assert "kept as it is" in capsys.readouterr().err
    for path in SAMPLES.iterdir():
        if path.suffix in (".wav", ".mp3", ".json"):
            assert (out / path.name).read_bytes() == path.read_bytes(), path.name
        elif path.suffix == ".ogg" and path.name in _synthetic(out):
            # libopus chooses its SIMD code by CPU, so an Opus file is the same audio, not the
            # same bytes, on another machine: compare the decoded samples.
            shipped, remade = _decoded(path), _decoded(out / path.name)
            assert len(remade) == len(shipped), path.name
            noise = float(((shipped - remade) ** 2).sum())
            assert noise == 0.0 or 10 * np.log10(float((shipped ** 2).sum()) / noise) > 30.0, path.name
        elif path.suffix == ".ogg":  # real speech, kept as it is
            assert (out / path.name).read_bytes() == path.read_bytes(), path.name
    made = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [r["speech"] for r in made["recordings"].values()].count("fa_virgool") == 2
