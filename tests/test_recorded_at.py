"""intercept.recorded_at: when a recording was made, from --recorded-at, a sidecar, container
tags or a stamp in the file name."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from intercept.cli import cli
from intercept.recorded_at import (RecordedAtError, absolute_time, from_name, from_sidecar, from_tags,
                                   parse_iso, recorded_at_for)


@pytest.mark.parametrize("name, expected", [
    ("20191112_213045_channel3.wav", "2019-11-12T21:30:45+00:00"),           # SDRTrunk / scanner style
    ("20191112_213045SystemName_Site_TG1234.mp3", "2019-11-12T21:30:45+00:00"),
    ("rec-20191112-213045.flac", "2019-11-12T21:30:45+00:00"),
    ("2019-11-12T21-30-45.ogg", "2019-11-12T21:30:45+00:00"),
    ("night 2019-11-12_21.30.45.wav", "2019-11-12T21:30:45+00:00"),
    ("9131-1737430014_851350000.0-call_1571.wav", "2025-01-21T03:26:54+00:00"),  # trunk-recorder
    ("TG_1234_20191112_213045_SYS_851012500_77.mp3", "2019-11-12T21:30:45+00:00"),  # rdio-scanner dirwatch mask
    ("radio.wav", None),
    ("rec-000123_851012500.mp3", None),            # ids and frequencies are not times
    ("20191399_213045.wav", None),                 # no 99th day
    ("18000101_000000.wav", None),                 # not a plausible recording year
])
def test_file_name_stamps(name, expected):
    assert from_name(f"/data/{name}") == expected


def test_iso_times_are_stored_in_utc():
    assert parse_iso("2019-11-12T21:30:45+03:30") == "2019-11-12T18:00:45+00:00"
    assert parse_iso("2019-11-12T21:30:45Z") == "2019-11-12T21:30:45+00:00"
    assert parse_iso("2019-11-12 21:30:45") == "2019-11-12T21:30:45+00:00"
    with pytest.raises(RecordedAtError, match="not an ISO 8601"):
        parse_iso("yesterday")


def test_tags():
    assert from_tags({"creation_time": "2019-11-12T21:30:45.000000Z"}) == "2019-11-12T21:30:45+00:00"
    assert from_tags({"DATE": "2019-11-12 21:30:45"}) == "2019-11-12T21:30:45+00:00"
    assert from_tags({"date": "2019"}) is None  # a year alone is no time of day
    assert from_tags({"title": "night"}) is None


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is not installed")
def test_container_creation_time_read_with_ffprobe(tmp_path):
    path = tmp_path / "radio.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=0.5", "-metadata",
                    "creation_time=2019-11-12T21:30:45Z", str(path)], check=True)
    assert recorded_at_for(path) == "2019-11-12T21:30:45+00:00"


def test_decoding_reads_the_tags_with_its_own_ffprobe_call(tmp_path, monkeypatch):
    """A run reads the recording time from decode's tags: one ffprobe call per file, not two."""
    import pydub.utils

    from intercept.audio import decode

    path = tmp_path / "radio.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=0.5", "-metadata",
                    "creation_time=2019-11-12T21:30:45Z", str(path)], check=True)
    calls = []
    probe = pydub.utils.mediainfo_json
    monkeypatch.setattr(pydub.utils, "mediainfo_json", lambda *a, **k: calls.append(a) or probe(*a, **k))
    audio = decode(str(path))
    assert recorded_at_for(path, read_tags=lambda _: audio.tags) == "2019-11-12T21:30:45+00:00"
    assert len(calls) == 1 and audio.format.startswith("mov,mp4")


def test_sidecar_and_given_time_come_first(tmp_path):
    recording = tmp_path / "20200101_000000.wav"
    recording.write_bytes(b"not read")
    no_tags = lambda path: {}  # noqa: E731
    assert recorded_at_for(recording, read_tags=no_tags) == "2020-01-01T00:00:00+00:00"
    (tmp_path / "20200101_000000.json").write_text(json.dumps({"start_time": 1573594245, "talkgroup": 9001}))
    assert recorded_at_for(recording, read_tags=no_tags) == "2019-11-12T21:30:45+00:00"
    (tmp_path / "20200101_000000.json").write_text(json.dumps({"recorded_at": "2019-11-12T22:00:00+01:00"}))
    assert from_sidecar(recording) == "2019-11-12T21:00:00+00:00"
    assert recorded_at_for(recording, "2021-05-05T05:05:05Z", read_tags=no_tags) == "2021-05-05T05:05:05+00:00"
    (tmp_path / "20200101_000000.json").write_text("{broken")
    with pytest.raises(RecordedAtError, match="20200101_000000.json"):
        recorded_at_for(recording, read_tags=no_tags)


def test_absolute_time():
    assert absolute_time("2019-11-12T21:30:45+00:00", 75.4) == "2019-11-12T21:32:00+00:00"
    assert absolute_time(None, 3.0) is None and absolute_time("2019-11-12T21:30:45+00:00", None) is None


def test_run_refuses_a_bad_recorded_at(tmp_path):
    result = CliRunner().invoke(cli, ["run", str(tmp_path), "--db", str(tmp_path / "s.db"), "--recorded-at", "soon"])
    assert result.exit_code == 2 and "--recorded-at" in result.output and "not an ISO 8601" in result.output


def test_run_stores_the_sidecar_time_and_lexicon_notes(tmp_path, embedded_model_dir):
    """Through the real CLI and model: the sidecar's time lands in recordings.recorded_at, and
    the lexicon's concept notes in lexicon_terms (shown to reviewers)."""
    import sqlite_utils

    from conftest import SAMPLES

    recording = tmp_path / "call.wav"
    shutil.copyfile(SAMPLES / "short_call.wav", recording)
    (tmp_path / "call.json").write_text(json.dumps({"recorded_at": "2019-11-12T21:30:45+03:30"}))
    db = tmp_path / "s.db"
    result = CliRunner().invoke(cli, ["run", str(recording), "--db", str(db), "--translator", "none", "--no-progress"])
    assert result.exit_code == 0, result.output
    store = sqlite_utils.Database(db)
    assert [r["recorded_at"] for r in store.query("select recorded_at from recordings")] == ["2019-11-12T18:00:45+00:00"]
    notes = {r["concept"]: r["notes"] for r in store.query("select concept, notes from lexicon_terms")}
    assert "paired with fox" in notes["bird"]
