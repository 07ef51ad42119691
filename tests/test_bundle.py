"""Evidence bundles: intercept export --format bundle, then intercept verify --bundle; a changed
clip, a changed manifest, or a clip that is not its stated slice is reported by name."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from test_review import build_store, write_wav

from intercept.audio import sha256_file, wav_samples
from intercept.bundle import MANIFEST, MANIFEST_HASH, BundleOptions, verify_bundle, write_bundle
from intercept.cli import cli
from intercept.store import CREATE, Store

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is not installed")


@pytest.fixture()
def store(tmp_path):
    """test_review's store; recording 1 a 10 s WAV, recording 2 audio_samples' bird_or_fox.ogg."""
    originals = tmp_path / "originals"
    originals.mkdir()
    wav = originals / "radio.wav"
    write_wav(wav, 10.0)
    ogg = originals / "bird_or_fox.ogg"
    shutil.copyfile(ROOT / "audio_samples" / "bird_or_fox.ogg", ogg)
    path = tmp_path / "store.db"
    build_store(path, wav)
    Store(path, CREATE).close()
    db = sqlite_utils.Database(path)
    db["recordings"].update(1, {"sha256": sha256_file(str(wav))})
    db["recordings"].update(2, {"path": str(ogg), "sha256": sha256_file(str(ogg))})
    db.conn.close()
    with Store(path, CREATE) as opened:
        opened.add_verdict(1, "confirmed", "maryam", note="fox is the courier")
        opened.add_verdict(4, "confirmed", "ali")
        opened.add_verdict(4, "false_positive", "maryam")  # the latest verdict counts
    return path


def rewrite(bundle: Path, name: str, change) -> None:
    """Replace one member of the ZIP with change(its bytes)."""
    with zipfile.ZipFile(bundle) as source:
        members = {item: source.read(item) for item in source.namelist()}
    members[name] = change(members[name])
    with zipfile.ZipFile(bundle, "w") as target:
        for item, data in members.items():
            target.writestr(item, data)


def test_bundle_round_trip_through_the_cli(store, tmp_path):
    bundle = tmp_path / "evidence.zip"
    runner = CliRunner()
    made = runner.invoke(cli, ["export", str(store), "--format", "bundle", "--flagged-only", "-o", str(bundle)])
    assert made.exit_code == 0, made.output
    assert "3 lines written" in made.output and "SHA-256" in made.output  # lines 1, 3 and 4 are flagged
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read(MANIFEST))
        clip = archive.read("clips/line-000001.wav")
    entry = next(e for e in manifest["lines"] if e["line_id"] == 1)
    assert entry["recording"]["path"].endswith("radio.wav") and len(entry["recording"]["sha256"]) == 64
    assert (entry["clip"]["start_s"], entry["clip"]["end_s"]) == (0.0, 5.5)  # 1.0-3.5 s with 2 s lead-in, clamped
    assert entry["text_fa"] and entry["text_en"] and entry["en_reliability"] == "reliable"
    assert [f["concept"] for f in entry["flags"]] == ["fox", "bird"]
    assert entry["verdicts"][0]["reviewer"] == "maryam" and entry["verdicts"][0]["verdict"] == "confirmed"
    assert entry["engine"] == "faster-whisper" and entry["model"] == "base" and entry["lexicon_versions"] == ["test-1"]
    samples, rate = wav_samples(clip)
    assert rate == 16000 and len(samples) == 5.5 * 16000
    ogg_entry = next(e for e in manifest["lines"] if e["line_id"] == 4)
    assert ogg_entry["clip"]["sample_rate"] == 48000, "the original's own sample rate, not resampled"
    line3 = next(e for e in manifest["lines"] if e["line_id"] == 3)
    assert line3["en_reliability"] == "unreliable"

    checked = runner.invoke(cli, ["verify", "--bundle", str(bundle), "--originals", str(tmp_path / "originals")])
    assert checked.exit_code == 0, checked.output
    assert "3 clip hashes checked, 3 clips compared with their originals; bundle intact" in checked.output
    assert runner.invoke(cli, ["verify", "--bundle", str(bundle)]).exit_code == 0


def test_confirmed_only_leaves_out_a_disputed_line(store, tmp_path):
    # Line 4: ali confirmed, maryam false positive: disputed, so not confirmed (no lead decided).
    # (It was "the latest verdict counts" before verdicts were kept per reviewer.)
    with Store(store, CREATE) as opened:
        result = write_bundle(opened, tmp_path / "c.zip", BundleOptions(confirmed_only=True))
    assert result["lines"] == 1
    with zipfile.ZipFile(tmp_path / "c.zip") as archive:
        assert [e["line_id"] for e in json.loads(archive.read(MANIFEST))["lines"]] == [1]


def test_tampered_clip_is_named(store, tmp_path):
    bundle = tmp_path / "e.zip"
    with Store(store, CREATE) as opened:
        write_bundle(opened, bundle, BundleOptions(flagged_only=True))
    rewrite(bundle, "clips/line-000003.wav", lambda data: data[:-200] + bytes(200))
    report = verify_bundle(bundle)
    assert not report.ok
    assert len(report.problems) == 1 and report.problems[0].startswith("clips/line-000003.wav: changed")
    result = CliRunner().invoke(cli, ["verify", "--bundle", str(bundle)])
    assert result.exit_code == 1 and "BAD clips/line-000003.wav: changed" in result.output


def test_tampered_manifest_is_named(store, tmp_path):
    bundle = tmp_path / "e.zip"
    with Store(store, CREATE) as opened:
        write_bundle(opened, bundle, BundleOptions(flagged_only=True))
    rewrite(bundle, MANIFEST, lambda data: data.replace("tonight".encode(), b"tomorrow"))
    report = verify_bundle(bundle)
    assert report.problems == [f"{MANIFEST}: changed (its SHA-256 does not match {MANIFEST_HASH})"]


def test_forged_times_are_caught_against_the_originals(store, tmp_path):
    """A manifest rewritten with its hash file (no signature can stop that) still cannot move a
    clip: cut again from the original, the stated slice is not the clip."""
    import hashlib

    bundle = tmp_path / "e.zip"
    with Store(store, CREATE) as opened:
        write_bundle(opened, bundle, BundleOptions(flagged_only=True))
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read(MANIFEST))
    for entry in manifest["lines"]:
        if entry["line_id"] == 4:
            entry["clip"]["start_s"] += 0.25
            entry["clip"]["end_s"] += 0.25
    forged = json.dumps(manifest).encode()
    rewrite(bundle, MANIFEST, lambda data: forged)
    rewrite(bundle, MANIFEST_HASH, lambda data: f"{hashlib.sha256(forged).hexdigest()}  {MANIFEST}\n".encode())
    assert verify_bundle(bundle).ok, "without the originals only the hashes can be checked"
    report = verify_bundle(bundle, originals=tmp_path / "originals")
    assert len(report.problems) == 1 and report.problems[0].startswith(
        "clips/line-000004.wav: not the stated slice"), report.problems
    # A changed original is named too.
    (tmp_path / "originals" / "radio.wav").write_bytes((tmp_path / "originals" / "radio.wav").read_bytes()[:-10])
    report = verify_bundle(bundle, originals=tmp_path / "originals")
    assert any("radio.wav: the original's SHA-256" in problem for problem in report.problems)


def test_not_a_bundle(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_text("no zip")
    result = CliRunner().invoke(cli, ["verify", "--bundle", str(junk)])
    assert result.exit_code == 2 and "junk.zip: not an evidence bundle" in result.output
