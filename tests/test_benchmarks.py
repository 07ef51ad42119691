"""The benchmark scripts' own helpers: the corpora they generate and how they score.

A benchmark that builds its audio wrongly, or credits a system's words to the wrong
transmission, would print wrong figures into docs/benchmarks.md without failing, so the
parts that decide those figures are tested here on small inputs."""
from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import bench_asr  # noqa: E402


def _write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


@pytest.fixture
def tiny_corpus(tmp_path):
    """Two 'clips' (voiced-like tone bursts with silence around them) in eval_wer's format."""
    folder = tmp_path / "corpus"
    (folder / "clips").mkdir(parents=True)
    rows = ["path\tduration_s\ttranscript"]
    for i, (text, seconds) in enumerate([("یک دو سه", 1.2), ("صدای مرا دارید", 0.8)]):
        t = np.arange(int(seconds * 16000)) / 16000
        burst = 0.5 * np.sin(2 * np.pi * (180 + 40 * i) * t) * np.sin(2 * np.pi * 3 * t) ** 2
        clip = np.concatenate([np.zeros(4000), burst, np.zeros(4000)])
        _write_wav(folder / "clips" / f"{i}.wav", clip)
        rows.append(f"clips/{i}.wav\t{clip.size / 16000:.2f}\t{text}")
    (folder / "metadata.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def test_make_session_with_real_speech_uses_the_corpus_clips_and_their_transcripts(tiny_corpus, tmp_path):
    out = tmp_path / "session.wav"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_session.py"), str(out), "--minutes", "0.5",
                    "--speech-fraction", "0.1", "--seed", "3", "--speech-corpus", str(tiny_corpus)],
                   check=True, capture_output=True)
    info = next(iter(json.loads(Path(str(out) + ".json").read_text(encoding="utf-8"))["recordings"].values()))
    transmissions = info["transmissions"]
    assert len(transmissions) >= 2
    # Every clip once before any clip again, and the transcript travels with its clip.
    assert {t["text_fa"] for t in transmissions[:2]} == {"یک دو سه", "صدای مرا دارید"}
    lengths = {t["text_fa"]: round(t["end"] - t["start"], 1) for t in transmissions}
    assert lengths == {"یک دو سه": 1.2, "صدای مرا دارید": 0.8}  # trimmed to the burst itself
    with wave.open(str(out), "rb") as reader:
        rate = reader.getframerate()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), "<i2").astype(np.float32) / 32768
    assert abs(samples.size / rate - 30.0) < 0.05
    for t in transmissions:  # speech where the manifest says, near-silence well before it
        speech = samples[int(t["start"] * rate): int(t["end"] * rate)]
        before = samples[max(0, int((t["start"] - 1.5) * rate)): int((t["start"] - 1.0) * rate)]
        assert np.sqrt(np.mean(speech ** 2)) > 10 * (np.sqrt(np.mean(before ** 2)) + 1e-6)


def test_segments_are_credited_to_the_transmission_they_overlap_or_to_silence():
    files = [{"transmissions": [(10.0, 14.0, "یک دو"), (30.0, 33.0, "سه چهار"), (50.0, 52.0, "پنج")]}]
    segments = [[
        (9.6, 12.0, "یک"),        # starts a little early: still the first transmission
        (12.0, 14.3, "دو"),
        (20.0, 24.0, "شش هفت"),   # nowhere near any transmission: written in silence
        (29.5, 33.2, "سه چهار"),
    ]]
    aligned = bench_asr.by_transmission(files, segments)
    assert aligned["pairs"] == [("یک دو", "یک دو"), ("سه چهار", "سه چهار"), ("پنج", "")]
    assert aligned["missed"] == 1
    assert aligned["silent_words"] == 2


def test_paired_bootstrap_interval_brackets_the_difference():
    reference = [("یک دو سه", "یک دو سه")] * 5 + [("چهار پنج", "شش هفت")] * 5
    worse = [("یک دو سه", "یک دو")] * 5 + [("چهار پنج", "شش هفت")] * 5
    low, high = bench_asr.paired_bootstrap(reference, worse)
    assert 0 < low <= 5 / 25 <= high
    same_low, same_high = bench_asr.paired_bootstrap(reference, reference)
    assert same_low == same_high == 0.0


# -- scripts/check_cuda.py -----------------------------------------------------------------

import check_cuda  # noqa: E402


def test_the_session_targets_are_judged_from_the_runs_side_by_side(capsys):
    session = "(b) radio session 10 min, real speech: 1 files, 600 s audio"
    slow = [{"system": "intercept", "wall_s": 19.0, "cpu_s": 36.8, "peak_rss_mb": 1308,
             "transmissions": {"missed": 0, "silent_words": 0}},
            {"system": "fw-batched", "wall_s": 7.5, "cpu_s": 14.6},
            {"system": "intercept-translate", "wall_s": 23.4, "cpu_s": 45.5}]
    bench_asr.targets(session, slow)
    out = capsys.readouterr().out
    assert "2.53x its wall time" in out and "BatchedInferencePipeline`: 2.53x" in out
    assert "**not met**" in out.split("translation")[0] and "+23 % wall: **met**" in out
    fast = [dict(slow[0], wall_s=7.0), slow[1]]
    bench_asr.targets(session, fast)
    out = capsys.readouterr().out
    assert "0.93x its wall time" in out and out.rstrip().endswith("**met**") and "not met" not in out
    # A folder of tiny files is judged against openai-whisper and on memory, not the session's targets.
    bench_asr.targets("(tiny) 300 files of 1 s, real speech via radio: 300 files, 300 s audio",
                      [dict(slow[0], wall_s=139.6, peak_rss_mb=1600), dict(slow[1], system="openai-whisper", wall_s=3985)])
    out = capsys.readouterr().out
    assert "28.5x: **met**" in out and "1600 MB: **not met**" in out and "BatchedInferencePipeline" not in out


def test_check_cuda_samples_survive_the_npz_round_trip(tmp_path, manifest):
    """The GPU machine reads audio decoded elsewhere: same transmissions, same samples
    within 16-bit rounding, as decoding on the spot."""
    npz = tmp_path / "samples.npz"
    check_cuda.save_samples(npz)
    stored, decoded = check_cuda.load_recordings(npz), check_cuda.load_recordings(None)
    synthetic = {name: r for name, r in manifest["recordings"].items() if r["speech"] == "espeak-ng"}
    assert [name for name, _, _ in stored] == sorted(synthetic)
    assert sum(len(t) for _, _, t in stored) == sum(len(r["transmissions"]) for r in synthetic.values()) == 15
    for (_, a, ta), (_, b, tb) in zip(stored, decoded):
        assert [(t.start, t.end) for t in ta] == [(t.start, t.end) for t in tb]
        assert len(a) == len(b) and np.max(np.abs(a - b)) < 1e-4


def test_check_cuda_compares_letters_only():
    assert check_cuda.character_error_rate(["پرنده، است!"], ["پرنده است"]) == 0.0
    assert check_cuda.character_error_rate(["ابجد", "هوز"], ["ابجد", "هوس"]) == pytest.approx(1 / 7)


def test_check_cuda_reports_each_engine_and_fails_without_agreement(tmp_path, manifest):
    """On this machine: faster-whisper's CPU run is the reference, and the CUDA run either
    agrees (a usable GPU) or prints intercept's one-line reason; no GPU -> exit status 1."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_cuda.py"), "--engines", "faster-whisper",
         "--compute-types", "float32", "--recordings", "1", "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=600,
    )
    rows = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [(r["device"], r["compute_type"]) for r in rows][:1] == [("cpu", "float32")]
    # One recording keeps the CPU reference run short; the first in name order, as check_cuda takes them.
    first = sorted((name, r) for name, r in manifest["recordings"].items() if r["speech"] == "espeak-ng")[0][1]
    assert len(rows[0]["texts"]) == len(first["transmissions"]) and any(rows[0]["texts"])
    cuda = rows[1]
    if "error" in cuda:
        assert cuda["error"].startswith("--device cuda: ") and out.returncode == 1
        assert "| faster-whisper | cuda | float32 |" in out.stdout and "cannot run: --device cuda" in out.stdout
    else:
        assert out.returncode == (0 if cuda["cer_to_cpu"] <= 0.1 else 1)
