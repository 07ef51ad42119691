"""Voices: one embedding per transmission, grouped across recordings (intercept.voices).

Real audio of two clearly different voices is made at test time with espeak-ng (a low male
variant and a high female variant of its Farsi voice), so the grouping is checked on speech,
not on made-up vectors."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from intercept.cli import cli
from intercept.store import CREATE, RecordingFacts, Store
from intercept.types import Transmission

RATE = 16000
VOICE_A = ["-v", "fa+m3", "-p", "25", "-s", "140"]  # low male
VOICE_B = ["-v", "fa+f4", "-p", "85", "-s", "170"]  # high female
SENTENCES = [
    "امروز صبح همه چیز آرام بود و هیچ خبری نرسید",
    "لطفا موقعیت خود را دوباره گزارش بدهید",
    "ما تا یک ساعت دیگر به نقطه دوم می رسیم",
    "جاده شمالی بسته است از مسیر دیگر بروید",
    "دستور رسید آماده باشید و منتظر بمانید",
    "صدای شما ضعیف است دوباره تکرار کنید",
]

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def speak(voice: list[str], text: str, workdir: Path) -> np.ndarray:
    out = workdir / "tts.wav"
    subprocess.run(["espeak-ng", *voice, "-w", str(out), text], check=True)
    with wave.open(str(out), "rb") as reader:
        rate = reader.getframerate()
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").astype(np.float32) / 32768
    from scipy.signal import resample_poly

    return resample_poly(pcm, RATE, rate).astype(np.float32)


def write_recording(path: Path, pieces: list[np.ndarray], gap_s: float = 1.5) -> list[tuple[float, float]]:
    """Speech pieces with near-silence between; returns each piece's (start, end) in seconds."""
    rng = np.random.default_rng(len(pieces))
    signal, spans, position = [], [], 0
    for piece in pieces:
        gap = rng.standard_normal(int(gap_s * RATE)).astype(np.float32) * 3e-4
        signal += [gap, piece]
        spans.append(((position + gap.size) / RATE, (position + gap.size + piece.size) / RATE))
        position += gap.size + piece.size
    signal.append(np.zeros(int(gap_s * RATE), dtype=np.float32))
    pcm = (np.clip(np.concatenate(signal), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(RATE)
        writer.writeframes(pcm.tobytes())
    return spans


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Six sentences in each of two voices, and a sub-second utterance of voice A."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    work = tmp_path_factory.mktemp("tts")
    return {
        "A": [speak(VOICE_A, s, work) for s in SENTENCES],
        "B": [speak(VOICE_B, s, work) for s in SENTENCES],
        "short": speak(VOICE_A, "بله", work)[: int(0.7 * RATE)],
    }


def store_recording(store: Store, path: Path, spans) -> int:
    """Save a recording with the given transmissions (no lines), as a run would."""
    facts = RecordingFacts(path=str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                           duration_s=1.0, format="wav", size_bytes=path.stat().st_size)
    transmissions = [Transmission(idx=i, start=s, end=e) for i, (s, e) in enumerate(spans)]
    return store.save_recording(facts, transmissions, [], [], run_id=None, engine="test", model="test",
                                translator="none", lexicon_version="test")


def voice_ids(store: Store, recording_id: int) -> list:
    return [t["voice_id"] for t in store.transmissions_of(recording_id)]


@pytest.fixture()
def two_recordings(tmp_path, speech):
    """Recording 1: A B A B; recording 2: B A and a 0.7 s transmission of A."""
    one = tmp_path / "one.wav"
    two = tmp_path / "two.wav"
    spans_one = write_recording(one, [speech["A"][0], speech["B"][0], speech["A"][1], speech["B"][1]])
    spans_two = write_recording(two, [speech["B"][2], speech["A"][2], speech["short"]])
    store = Store(tmp_path / "voices.db", CREATE)
    yield store, store_recording(store, one, spans_one), store_recording(store, two, spans_two), tmp_path
    store.close()


def test_two_voices_are_grouped_across_recordings(two_recordings):
    from intercept.voices import voices_for_store

    store, one, two, _ = two_recordings
    summary = voices_for_store(store)
    a1, b1, a2, b2 = voice_ids(store, one)
    b3, a3, short = voice_ids(store, two)
    assert a1 == a2 == a3 is not None
    assert b1 == b2 == b3 is not None
    assert a1 != b1
    assert short is None  # under 1 s: no voice, not a guess
    assert (summary.embedded, summary.skipped_short, summary.new_voices, summary.voices) == (6, 1, 2, 2)
    rows = store.rows("SELECT status, embedding, model, model_version FROM voice_embeddings ORDER BY transmission_id")
    assert [r["status"] for r in rows] == ["ok"] * 6 + ["short"]
    assert all(len(r["embedding"]) == 512 for r in rows[:6]) and rows[6]["embedding"] is None  # float16 x 256
    assert rows[0]["model"] == "resemblyzer-voice-encoder" and "weights sha256" in rows[0]["model_version"]
    voice = store.voice(a1)
    assert voice["n"] == 3 and len(voice["centroid"]) == 512


def test_noise_gets_no_voice():
    from intercept.voices import NO_SPEECH, VoiceEmbedder

    hiss = np.random.default_rng(1).standard_normal(3 * RATE).astype(np.float32) * 0.01
    found = VoiceEmbedder().embed(hiss)
    assert found.status == NO_SPEECH and found.vector is None and found.speech_s < 0.5


def test_voices_stay_apart_under_keyed_hiss(speech):
    """The front end (hiss gate) runs on what the encoder hears; the embeddings are tagged with it."""
    from intercept.voices import FRONT_END, VoiceEmbedder

    rng = np.random.default_rng(3)

    def keyed(piece):  # steady hiss 15 dB under the speech, keyed over the whole transmission
        padded = np.concatenate([np.zeros(RATE // 3, np.float32), piece, np.zeros(RATE // 3, np.float32)])
        hiss = rng.standard_normal(padded.size).astype(np.float32)
        return padded + hiss * np.sqrt(np.mean(piece ** 2)) * 10 ** (-15 / 20)

    embedder = VoiceEmbedder()
    a0, a1, b0 = (embedder.embed(keyed(p)) for p in (speech["A"][0], speech["A"][1], speech["B"][0]))
    assert {a0.status, a1.status, b0.status} == {"ok"}
    assert float(a0.vector @ a1.vector) > float(a0.vector @ b0.vector) + 0.05
    assert embedder.version.endswith(f"front end {FRONT_END}") and "hiss gate" in FRONT_END


def test_rerun_extends_without_renumbering_named_voices(two_recordings, speech):
    from intercept.voices import voices_for_store

    store, one, two, tmp = two_recordings
    voices_for_store(store)
    a, b = voice_ids(store, one)[:2]
    store.name_voice(a, "operator A", "rev1")
    before = {r: voice_ids(store, r) for r in (one, two)}
    three = tmp / "three.wav"
    rec3 = store_recording(store, three, write_recording(three, [speech["A"][3], speech["B"][3], speech["A"][4]]))
    summary = voices_for_store(store)
    assert summary.embedded == 3 and summary.joined == 3 and summary.new_voices == 0
    assert voice_ids(store, rec3) == [a, b, a]
    assert {r: voice_ids(store, r) for r in (one, two)} == before
    assert store.voice(a)["name"] == "operator A" and store.voice(a)["n"] == 5


def test_merge_and_split_survive_a_rerun(two_recordings, speech):
    from intercept.voices import merge_voices, split_voice, voices_for_store

    store, one, two, tmp = two_recordings
    voices_for_store(store)
    tx = store.transmissions_of(one)
    a, b = tx[0]["voice_id"], tx[1]["voice_id"]
    # A reviewer hears that recording 1's first transmission is someone else, and that the
    # two voices of recording 2 are one person (a wrong call, but theirs to make).
    split_off = split_voice(store, a, [tx[0]["id"]], "rev1", name="visitor")
    merge_voices(store, b, a, "rev2")
    decided = {t["id"]: t["voice_id"] for r in (one, two) for t in store.transmissions_of(r)}
    three = tmp / "three.wav"
    rec3 = store_recording(store, three, write_recording(three, [speech["B"][4], speech["A"][5]]))
    voices_for_store(store)
    assert {t["id"]: t["voice_id"] for r in (one, two) for t in store.transmissions_of(r)} == decided
    assert decided[tx[0]["id"]] == split_off and store.voice(split_off)["name"] == "visitor"
    assert store.voice(b)["merged_into"] == a and store.voice(b)["n"] == 0
    assert b not in voice_ids(store, rec3)  # nothing joins a merged voice
    assert [d["action"] for d in store.voice_decisions()] == ["split", "merge"]
    with pytest.raises(ValueError, match="merged into voice"):
        store.name_voice(b, "x", "rev1")


def test_voices_command_names_a_missing_original_and_goes_on(two_recordings):
    store, one, two, tmp = two_recordings
    db = store.path
    store.close()
    (tmp / "one.wav").unlink()
    result = CliRunner().invoke(cli, ["voices", str(db)])
    assert result.exit_code == 1, result.output
    failures = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(failures) == 1 and str(tmp / "one.wav") in failures[0] and "not found" in failures[0]
    assert "2 transmissions embedded" in result.stdout
    with Store(db, CREATE) as reopened:
        assert voice_ids(reopened, two)[:2] != [None, None]
        assert voice_ids(reopened, one) == [None] * 4


def test_run_with_voices(tmp_path, speech, embedded_model_dir):
    recording = tmp_path / "call.wav"
    write_recording(recording, [speech["A"][0], speech["B"][1], speech["A"][2], speech["B"][3]], gap_s=2.0)
    db = tmp_path / "run.db"
    result = CliRunner().invoke(
        cli, ["run", str(recording), "--db", str(db), "--voices", "--translator", "none", "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    voices = json.loads(result.stdout)["voices"]
    assert voices["embedded"] >= 4 and voices["voices"] == 2
    with Store(db, CREATE) as store:
        ids = [t["voice_id"] for t in store.transmissions_of(1) if t["voice_id"] is not None]
        assert len(ids) >= 4 and ids[0] == ids[2] != ids[1] == ids[3]


@pytest.mark.parametrize("command", [["run", "{wav}", "--db", "{db}", "--voices"], ["voices", "{db}"]])
def test_without_the_extra_voices_says_what_to_install(tmp_path, monkeypatch, command):
    monkeypatch.setitem(sys.modules, "resemblyzer", None)  # as if not installed
    wav = tmp_path / "x.wav"
    write_recording(wav, [np.zeros(RATE, dtype=np.float32)])
    db = tmp_path / "x.db"
    Store(db, CREATE).close()
    args = [a.format(wav=wav, db=db) for a in command]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "voices" in lines[0] and "resemblyzer" in lines[0]
    with Store(db, CREATE) as store:
        assert store.count("recordings") == 0  # nothing was started


def test_place_joins_the_nearest_voice_within_threshold():
    from intercept.voices import place

    e = np.eye(4, dtype=np.float32)
    placement = place([(1, e[0]), (2, e[1] + 0.05 * e[0]), (3, e[2]), (4, e[2] + 0.1 * e[3])],
                      [(10, e[0]), (11, e[1])], threshold=0.9)
    assert placement.joined == {1: 10, 2: 11}
    assert placement.new_groups == [[3, 4]]


def _voices_by_transmission(db: Path) -> dict:
    """(recording file name, transmission idx) -> (embedding status, vector or None, voice id)."""
    from intercept.voices import from_bytes

    with Store(db, CREATE) as store:
        rows = store.rows(
            "SELECT r.path, t.idx, t.voice_id, e.status, e.embedding FROM transmissions t "
            "JOIN recordings r ON r.id = t.recording_id "
            "LEFT JOIN voice_embeddings e ON e.transmission_id = t.id")
    return {(Path(r["path"]).name, r["idx"]): (r["status"], from_bytes(r["embedding"]) if r["embedding"] else None,
                                               r["voice_id"]) for r in rows}


def test_run_with_voices_on_ray_stores_the_voices_of_a_local_run(tmp_path, speech, embedded_model_dir):
    pytest.importorskip("ray")
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_recording(inputs / "one.wav", [speech["A"][0], speech["B"][1], speech["A"][2]], gap_s=2.0)
    write_recording(inputs / "two.wav", [speech["B"][3], speech["A"][4], speech["B"][5]], gap_s=2.0)
    stores = {}
    for where, extra in (("local", []), ("ray", ["--ray", "local", "--workers", "2"])):
        stores[where] = tmp_path / f"{where}.db"
        result = CliRunner().invoke(cli, ["run", str(inputs), "--db", str(stores[where]), "--voices", "--translator",
                                          "none", "--json", "--no-progress", *extra])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["voices"]["voices"] == 2, where
    local, distributed = (_voices_by_transmission(stores[w]) for w in ("local", "ray"))
    assert sorted(local) == sorted(distributed) and len(local) >= 6
    renamed = {}  # voice ids may differ (rows are written in the order workers finish): same grouping
    for key, (status, vector, voice) in local.items():
        ray_status, ray_vector, ray_voice = distributed[key]
        assert status == ray_status, key
        if vector is not None:
            assert np.allclose(vector, ray_vector, atol=2e-3), key
        assert renamed.setdefault(voice, ray_voice) == ray_voice, key
    assert len({v for v in renamed if v is not None}) == 2


def test_voices_command_never_migrates_an_older_store(tmp_path):
    """`intercept voices` writes as flag and translate do (WRITE): an older store is refused
    with the way out, untouched (it used to open the store CREATE and migrate it silently)."""
    import sqlite3

    from intercept.store import SCHEMA_VERSION

    db = tmp_path / "old.db"
    Store(db, CREATE).close()
    conn = sqlite3.connect(db)
    last = conn.execute("SELECT name FROM _sqlite_migrations ORDER BY rowid DESC LIMIT 1").fetchone()[0]
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = ?", [last])
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    conn.commit()
    conn.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    result = CliRunner().invoke(cli, ["voices", str(db)])
    assert result.exit_code == 2, result.output
    assert "intercept migrate" in result.stderr and str(db) in result.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("old.db.bak")) == []
