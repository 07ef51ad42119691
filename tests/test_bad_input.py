"""Bad recordings in one batch: each gets its own status and a one-line reason naming it,
in the store and in the summary; the batch goes on; the exit status says some failed; and
no original is written. The inputs are built here, with ffmpeg, in tmp_path.

The mostly-silent long recording is 10 minutes here (the same code path as 3 hours, at a
size the shared test machine can afford); INTERCEPT_LONG_MINUTES=180 runs the 3-hour case.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import sqlite_utils

import intercept.audio

ROOT = Path(__file__).resolve().parent.parent
SHORT_CALL = ROOT / "audio_samples" / "short_call.wav"  # one transmission
SHORT_CALL_S = json.loads((ROOT / "audio_samples" / "manifest.json").read_text())["recordings"]["short_call.wav"][
    "duration"]
LONG_MINUTES = float(os.environ.get("INTERCEPT_LONG_MINUTES", "10"))
SPEECH_AT_S = 300.0  # where the one transmission of the long file starts
NON_UTF8_NAME = b"radio-\xff\xfe.wav"

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is needed to build the inputs")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def faint_noise(path: Path | bytes, seconds: float, rate: int, channels: int = 1, codec: str = "pcm_s16le") -> None:
    """Near-silent noise: real samples, nothing a voice detector takes for speech."""
    layout = "mono" if channels == 1 else "stereo"
    ffmpeg("-f", "lavfi", "-i", f"anoisesrc=r={rate}:a=0.0005:d={seconds}", "-af", f"aformat=channel_layouts={layout}",
           "-ar", str(rate), "-c:a", codec, os.fsdecode(path))


def unknown_codec_wav(path: Path) -> None:
    """A well-formed RIFF/WAVE file whose format tag (0x9999) no decoder knows."""
    data = b"\x00\x01" * 8000
    fmt = struct.pack("<HHIIHH", 0x9999, 1, 16000, 32000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def snapshot(folder: Path) -> dict:
    """Content, size and modification time of every regular file, and every name."""
    found = {}
    for root, _, files in os.walk(os.fsencode(folder)):
        for name in files:
            path = os.path.join(root, name)
            if os.path.isfile(path) and os.access(path, os.R_OK) and not name.startswith(b"fifo"):
                info = os.stat(path)
                found[path] = (hashlib.sha256(open(path, "rb").read()).hexdigest(), info.st_size, info.st_mtime_ns)
            else:
                found[path] = None
    return found


@pytest.fixture(scope="module")
def bad_batch(tmp_path_factory, embedded_model_dir):
    """One `intercept run` over a folder of bad and awkward recordings.
    Returns (summary dict, exit code, {name: stored recordings row}, inputs, db, before, after)."""
    from click.testing import CliRunner

    from intercept.cli import cli

    work = tmp_path_factory.mktemp("bad")
    inputs = work / "inputs"
    inputs.mkdir()
    (inputs / "empty.wav").write_bytes(b"")
    (inputs / "notes.wav").write_text("minutes of the meeting, not audio\n")
    faint_noise(inputs / "full.mp3", 6, 16000, codec="libmp3lame")
    full = (inputs / "full.mp3").read_bytes()
    (inputs / "full.mp3").unlink()
    (inputs / "truncated.mp3").write_bytes(full[: len(full) // 2])  # cut mid-stream: what is there is kept
    (inputs / "truncated-header.mp3").write_bytes(full[:300])  # nothing decodable left
    unknown_codec_wav(inputs / "unknown-codec.wav")
    (inputs / "random.mka").write_bytes(bytes(range(256)) * 20)  # no container at all
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "4", "-c:a", "pcm_s16le", str(inputs / "silence.wav"))
    shutil.copy(inputs / "silence.wav", inputs / "zz-silence-copy.wav")  # same content, another name
    faint_noise(inputs / "mulaw-8k.wav", 3, 8000, codec="pcm_mulaw")
    faint_noise(inputs / "stereo-48k.wav", 2.5, 48000, channels=2)
    faint_noise(os.path.join(os.fsencode(inputs), NON_UTF8_NAME), 2.2, 16000)
    faint_noise(inputs / "unreadable.wav", 1.7, 16000)
    os.chmod(inputs / "unreadable.wav", 0)
    os.symlink("loop-b.wav", inputs / "loop-a.wav")
    os.symlink("loop-a.wav", inputs / "loop-b.wav")
    os.mkfifo(inputs / "fifo.wav")  # opening it would block a batch forever
    tail_s = LONG_MINUTES * 60 - SPEECH_AT_S - SHORT_CALL_S
    ffmpeg("-f", "lavfi", "-i", f"anullsrc=r=16000:cl=mono:d={SPEECH_AT_S}", "-i", str(SHORT_CALL),
           "-f", "lavfi", "-i", f"anullsrc=r=16000:cl=mono:d={tail_s}",
           "-filter_complex", "[1:a]aformat=sample_rates=16000:channel_layouts=mono[s];[0:a][s][2:a]concat=n=3:v=0:a=1",
           "-c:a", "flac", str(inputs / "long-mostly-silent.flac"))

    before = snapshot(inputs)
    db = work / "store.db"
    with pytest.MonkeyPatch.context() as patch:
        if os.geteuid() == 0:
            # root reads a mode-000 file anyway; make reading it fail as it does for anyone else
            real_open = open

            def refusing_open(file, *args, **kwargs):
                if os.fsdecode(file).endswith("unreadable.wav"):
                    raise PermissionError(13, "Permission denied", os.fsdecode(file))
                return real_open(file, *args, **kwargs)

            patch.setattr(intercept.audio, "open", refusing_open, raising=False)
        result = CliRunner().invoke(cli, ["run", str(inputs), "--db", str(db), "--json", "--no-progress"],
                                    catch_exceptions=False)
    after = snapshot(inputs)
    summary = json.loads(result.output)
    rows = {}
    for row in sqlite_utils.Database(db).query("SELECT * FROM recordings"):
        rows[row["path"].rsplit("/", 1)[-1]] = row
    return summary, result.exit_code, rows, inputs, db, before, after


FAILED = {
    "empty.wav": "empty file",
    "notes.wav": "not an audio file",
    "truncated-header.mp3": "truncated or not an audio file",
    "unknown-codec.wav": "Decoder (codec none) not found",
    "random.mka": "not an audio file",
    "unreadable.wav": "ermission denied",
    "loop-a.wav": "Too many levels of symbolic links",
    "loop-b.wav": "Too many levels of symbolic links",
    "fifo.wav": "named pipe",
}
DONE = {  # name: duration in seconds
    "truncated.mp3": None,
    "silence.wav": 4.0,
    "mulaw-8k.wav": 3.0,
    "stereo-48k.wav": 2.5,
    "radio-\\xff\\xfe.wav": 2.2,
    "long-mostly-silent.flac": LONG_MINUTES * 60,
}


def test_exit_status_says_some_failed_and_the_batch_went_on(bad_batch):
    summary, exit_code, rows, *_ = bad_batch
    assert exit_code == 1
    assert summary["files"] == len(FAILED) + len(DONE) + 1
    assert (summary["failed"], summary["done"], summary["skipped"]) == (len(FAILED), len(DONE), 1)


@pytest.mark.parametrize("name", sorted(FAILED))
def test_each_bad_file_fails_with_its_reason_in_store_and_summary(bad_batch, name):
    summary, _, rows, *_ = bad_batch
    row = rows[name]
    assert row["status"] == "failed"
    assert FAILED[name] in row["error"] and name in row["error"] and "\n" not in row["error"]
    assert [row["error"]] == [reason for path, reason in summary["failures"] if path.endswith("/" + name)]


@pytest.mark.parametrize("name", sorted(DONE))
def test_awkward_but_readable_files_are_done(bad_batch, name):
    _, _, rows, *_ = bad_batch
    row = rows[name]
    assert row["status"] == "done" and row["error"] is None and len(row["sha256"]) == 64
    if DONE[name] is not None:
        assert row["duration_s"] == pytest.approx(DONE[name], abs=0.05)


def test_truncated_mp3_keeps_what_is_there(bad_batch):
    _, _, rows, *_ = bad_batch
    assert 2.0 < rows["truncated.mp3"]["duration_s"] < 4.5  # half of 6 s


def test_silence_and_noise_give_no_transmissions(bad_batch):
    _, _, rows, _, db, *_ = bad_batch
    store = sqlite_utils.Database(db)
    for name in ("silence.wav", "mulaw-8k.wav", "stereo-48k.wav"):
        assert rows[name]["transmission_count"] == 0
        assert store["transmissions"].count_where("recording_id = ?", [rows[name]["id"]]) == 0


def test_long_mostly_silent_file_finds_its_one_transmission(bad_batch):
    _, _, rows, _, db, *_ = bad_batch
    row = rows["long-mostly-silent.flac"]
    spans = list(sqlite_utils.Database(db).query(
        "SELECT start_s, end_s FROM transmissions WHERE recording_id = ?", [row["id"]]))
    assert 1 <= len(spans) <= 2
    for span in spans:
        assert SPEECH_AT_S - 1 <= span["start_s"] < span["end_s"] <= SPEECH_AT_S + 7.5


def test_non_utf8_name_is_stored_readably_and_exactly(bad_batch):
    _, _, rows, inputs, db, *_ = bad_batch
    row = rows["radio-\\xff\\xfe.wav"]
    raw = next(sqlite_utils.Database(db).query(
        "SELECT path_raw FROM recording_paths WHERE recording_id = ?", [row["id"]]))["path_raw"]
    assert raw == os.path.join(os.fsencode(inputs.absolute()), NON_UTF8_NAME)


def test_same_content_under_another_name_is_recorded_not_redone(bad_batch):
    summary, _, rows, inputs, db, *_ = bad_batch
    assert "zz-silence-copy.wav" not in rows  # no second recordings row
    paths = [p["path"] for p in sqlite_utils.Database(db).query(
        "SELECT path FROM recording_paths WHERE recording_id = ? ORDER BY id", [rows["silence.wav"]["id"]])]
    assert paths == [str(inputs / "silence.wav"), str(inputs / "zz-silence-copy.wav")]
    [(path, note)] = summary["notes"]
    assert path.endswith("zz-silence-copy.wav") and "same content as" in note and "silence.wav" in note


def test_originals_are_never_written(bad_batch):
    *_, before, after = bad_batch
    assert after == before
    assert len([v for v in before.values() if v]) >= len(DONE) + 5


def test_store_is_whole_after_the_bad_batch(bad_batch):
    from intercept.store import CREATE, Store

    *_, db, _, _ = bad_batch
    with Store(db, CREATE) as store:
        assert store.check_integrity() == []
