"""Folders of many short recordings: transmissions of several recordings share recognition
windows (pipeline.analyze_many, packing.join_recordings), yet each recording gets exactly the
lines it gets alone, fails alone, and is stored once in its own transaction, even when the
batch is killed mid-pool (locally and on Ray workers).

Recordings here are tone bursts separated by digital silence (the energy split finds each
burst), and a scripted engine answers for each transmission with the tone it hears and a
hash of the very samples it was given, so that a line proves which audio it came from.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from intercept.packing import PackOptions, PoolOptions, RecordingPool, join_recordings, split_lines
from intercept.types import Line, Transmission, Word

RATE = 16000
ROOT = Path(__file__).resolve().parent.parent
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="recordings are decoded with ffmpeg")


# ------------------------------------------------------------------ recordings and engine


def write_tones(path: Path, bursts: list[tuple[float, float, int]], seconds: float) -> Path:
    """A 16 kHz WAV of silence with a sine burst of tone_id x 100 Hz at each (start, end, tone_id).
    Each burst's level moves at a syllable rate (about 8 dB): a steady tone is no transmission
    (intercept.segment's steadiness check), speech never is."""
    samples = np.zeros(int(seconds * RATE), dtype=np.float32)
    for start, end, tone in bursts:
        t = np.arange(int(start * RATE), int(end * RATE))
        envelope = 0.7 + 0.3 * np.sin(2 * np.pi * 4 * t / RATE)
        samples[t] = 0.5 * envelope * np.sin(2 * np.pi * tone * 100 * t / RATE)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


def short_folder(folder: Path, count: int, first_tone: int = 3) -> list[Path]:
    """`count` recordings of 5-7 s with two bursts each (one transmission per burst)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        tone = first_tone + 2 * n
        paths.append(write_tones(folder / f"call-{n:02d}.wav",
                                 [(0.5, 1.7 + 0.05 * n, tone), (3.2, 4.6, tone + 1)], 5.5 + 0.2 * n))
    return paths


class ScriptedEngine:
    """Lines that name what the engine was given: per transmission, the tone heard and a hash
    of the exact samples, at times that are fractions of the transmission (so that a wrong
    shift or rounding shows). Records each call's transmission count."""

    name = "scripted"
    model_name = "scripted"

    def __init__(self, fail_on_tone=None, pause_s: float = 0.0, marker_dir=None):
        self.calls: list[int] = []
        self.fail_on_tone, self.pause_s, self.marker_dir = fail_on_tone, pause_s, marker_dir

    def transcribe(self, samples, transmissions, sample_rate=16000):
        self.calls.append(len(transmissions))
        if self.marker_dir:  # for the kill test: which call the batch is in
            Path(self.marker_dir, f"call-{len(self.calls)}-{len(transmissions)}").touch()
        lines = []
        for tx in transmissions:
            chunk = samples[int(round(tx.start * sample_rate)) : int(round(tx.end * sample_rate))]
            spectrum = np.abs(np.fft.rfft(chunk))
            tone = int(round(np.argmax(spectrum) * sample_rate / max(1, chunk.size) / 100))
            if tone == self.fail_on_tone:
                raise RuntimeError(f"engine fault on tone {tone}")
            digest = hashlib.sha1(chunk.tobytes()).hexdigest()[:10]
            for a, b in ((0.0123457, 0.4987654), (0.5111111, 1.0333333)):  # the 2nd runs past the end
                start = min(max(tx.start + a * tx.duration, tx.start), tx.end)
                end = min(max(tx.start + b * tx.duration, start), tx.end)
                lines.append(Line(round(start, 3), round(end, 3), f"tone {tone} n{chunk.size} {digest}",
                                  transmission_idx=tx.idx, avg_logprob=-0.25))
        time.sleep(self.pause_s)
        lines.sort(key=lambda line: (line.start, line.transmission_idx))
        return lines

    def translate_audio(self, samples, start, end, sample_rate=16000):
        return ""


def scripted_options(**pool):
    from intercept.config import RunOptions

    options = RunOptions(translator="none", segment_method="energy")
    for key, value in pool.items():
        setattr(options.pool, key, value)
    return options


def use_engine(monkeypatch, engine) -> None:
    """Pipelines built from here on get `engine` instead of loading a model."""
    import intercept.components as components

    monkeypatch.setattr(components, "load_engine", lambda options: (engine, "scripted", "scripted"))


def essence(analysis) -> tuple:
    return (analysis.status, analysis.error, [(t.idx, t.start, t.end) for t in analysis.transmissions],
            [(line.start, line.end, line.text, line.transmission_idx, line.avg_logprob) for line in analysis.lines])


# ------------------------------------------------------------------ joined arrays (no model)


def test_joined_transmissions_are_the_same_samples_and_times_come_back_exactly():
    rng = np.random.default_rng(7)
    parts = []
    for n in range(5):
        samples = rng.standard_normal(int((3 + n) * RATE)).astype(np.float32)
        starts = sorted(rng.uniform(0, 2 + n, 2))
        parts.append((samples, [Transmission(i, s, min(s + rng.uniform(0.3, 1.0), samples.size / RATE))
                                for i, s in enumerate(starts)]))
    joined = join_recordings(parts, RATE)
    assert len(joined.transmissions) == 10 and [t.idx for t in joined.transmissions] == list(range(10))
    lines = []
    for vtx, origin in zip(joined.transmissions, joined.origins):
        samples, _ = parts[origin.part]
        tx = origin.transmission
        alone = samples[int(round(tx.start * RATE)) : int(round(tx.end * RATE))]
        there = joined.samples[int(round(vtx.start * RATE)) : int(round(vtx.end * RATE))]
        np.testing.assert_array_equal(there, alone)
        assert origin.shift_s * 1000 == pytest.approx(round(origin.shift_s * 1000), abs=1e-9)  # whole ms
        lines.append(Line(round(vtx.start + 0.2345678, 3), round(vtx.end - 0.0004444, 3), "x", vtx.idx,
                          words=[Word("x", round(vtx.start + 0.25, 3), round(vtx.start + 0.3, 3), 0.5)]))
    back = split_lines(joined, lines, len(parts))
    for part, (samples, txs) in enumerate(parts):
        expected = [(round(tx.start + 0.2345678, 3), round(tx.end - 0.0004444, 3), tx.idx) for tx in txs]
        assert [(line.start, line.end, line.transmission_idx) for line in back[part]] == sorted(expected)
        # The recogniser's word times move with their line, into the recording's own time.
        by_idx = {tx.idx: tx for tx in txs}
        for line in back[part]:
            tx = by_idx[line.transmission_idx]
            assert [(w.start, w.end, w.probability) for w in line.words] == [
                (round(tx.start + 0.25, 3), round(tx.start + 0.3, 3), 0.5)]


def test_the_pool_sends_whole_recordings_that_fill_a_window():
    pool = RecordingPool(PoolOptions(short_s=25, windows=1, max_recordings=10), PackOptions(window_s=29, gap_s=1.5))
    five = [Transmission(0, 0.0, 5.0)]  # 5 s + 1.5 s gap each: four fit in 29 s, the fifth spills
    assert pool.takes(5.5, five) and not pool.takes(30.0, five) and not pool.takes(3.0, [])
    ready = [pool.add(name, five) for name in "abcd"]
    assert ready == [[], [], [], []]
    assert pool.add("e", five) == [["a", "b", "c", "d"]]  # e waits: it would open a second window
    assert pool.drain() == [["e"]] and pool.drain() == []
    capped = RecordingPool(PoolOptions(max_recordings=2))
    assert capped.add("a", [Transmission(0, 0, 1)]) == [] and capped.add("b", [Transmission(0, 0, 1)]) == [["a", "b"]]
    # A recording whose own transmissions fill more than the windows goes out by itself.
    many = [Transmission(i, 2.0 * i, 2.0 * i + 1.9) for i in range(12)]  # 12 x (1.9 + 1.5) > 29
    assert RecordingPool(PoolOptions()).add("big", many) == [["big"]]
    with pytest.raises(ValueError):
        PoolOptions(windows=0)


# ------------------------------------------------------------------ pipeline with a scripted engine


@needs_ffmpeg
def test_each_recording_gets_exactly_the_lines_it_gets_alone(tmp_path, monkeypatch):
    from intercept.pipeline import Pipeline

    paths = short_folder(tmp_path / "in", 9)
    long_one = write_tones(tmp_path / "in" / "long.wav", [(1, 3, 30), (10, 12, 31), (20, 23, 32)], 28.0)
    paths.insert(4, long_one)  # a recording too long for the pool, in the middle of the folder
    engine = ScriptedEngine()
    use_engine(monkeypatch, engine)
    pipeline = Pipeline(scripted_options())

    alone = {p: essence(pipeline.analyze(p)) for p in paths}
    assert sorted(engine.calls) == sorted([2] * 9 + [3])  # alone: one call per recording
    engine.calls.clear()
    pooled = {Path(a.facts.path): essence(a) for a in pipeline.analyze_many((p, None) for p in paths)}

    assert set(pooled) == {p.absolute() for p in paths}
    for path in paths:
        assert pooled[path.absolute()] == alone[path], path.name
        assert alone[path][0] == "done" and len(alone[path][3]) == 2 * len(alone[path][2]) > 0
    # Several recordings per engine call: 9 short ones in fewer calls than recordings.
    assert sum(engine.calls) == 9 * 2 + 3 and len(engine.calls) < 1 + 9 and max(engine.calls) >= 6


@needs_ffmpeg
def test_a_corrupt_file_and_an_engine_fault_inside_a_pool_fail_alone(tmp_path, monkeypatch):
    from intercept.pipeline import run_batch
    from intercept.store import CREATE, Store

    folder = tmp_path / "in"
    paths = short_folder(folder, 6)
    (folder / "call-02b.wav").write_bytes(b"RIFF\x00\x00 not really a wave file")  # sorts among the pool
    bad_tone = 3 + 2 * 4  # call-04's first transmission makes the engine fail
    engine = ScriptedEngine(fail_on_tone=bad_tone)
    use_engine(monkeypatch, engine)
    summary = run_batch([folder], tmp_path / "s.db", scripted_options(), progress=False)

    assert (summary.files, summary.done, summary.failed) == (7, 5, 2)
    assert [Path(p).name for p, _ in summary.failures] == ["call-02b.wav", "call-04.wav"]  # input order
    reasons = dict((Path(p).name, r) for p, r in summary.failures)
    assert "call-02b.wav" in reasons["call-02b.wav"] and f"engine fault on tone {bad_tone}" in reasons["call-04.wav"]
    assert max(engine.calls) > 2  # the fault hit a pool, whose other recordings went again alone
    with Store(tmp_path / "s.db", CREATE) as store:
        assert store.check_integrity() == []
        rows = {Path(r["path"]).name: r for r in store.rows("SELECT id, path, status FROM recordings")}
        assert {name for name, r in rows.items() if r["status"] == "done"} == {
            p.name for p in paths if p.name != "call-04.wav"}
        for path in paths:
            if path.name != "call-04.wav":
                texts = [r["text_fa_raw"] for r in store.rows(
                    "SELECT text_fa_raw FROM lines WHERE recording_id = ?", [rows[path.name]["id"]])]
                tone = 3 + 2 * int(path.stem.split("-")[1])
                assert len(texts) == 4 and {t.split()[1] for t in texts} == {str(tone), str(tone + 1)}


@needs_ffmpeg
def test_duplicate_content_inside_a_pool_is_stored_once(tmp_path, monkeypatch):
    from intercept.pipeline import run_batch

    folder = tmp_path / "in"
    paths = short_folder(folder, 3)
    shutil.copy(paths[0], folder / "call-00-copy.wav")
    use_engine(monkeypatch, ScriptedEngine())
    summary = run_batch([folder], tmp_path / "s.db", scripted_options(), progress=False)
    assert (summary.done, summary.skipped, summary.failed) == (3, 1, 0)
    [(skipped, note)] = summary.notes  # the later of the two (call-00-copy.wav sorts first)
    assert skipped.endswith("call-00.wav") and note.startswith("same content as") and "call-00-copy.wav" in note


def _batch_main(inputs: str, db: str, marker_dir: str) -> None:
    """The killed batch of the test below, as its own process (python tests/test_folders.py)."""
    import intercept.components as components
    import intercept.pipeline as pipeline_module

    engine = ScriptedEngine(pause_s=1.0, marker_dir=marker_dir)
    components.load_engine = lambda options: (engine, "scripted", "scripted")
    summary = pipeline_module.run_batch([inputs], db, scripted_options(), progress=False)
    print(json.dumps(summary.to_dict()))


@needs_ffmpeg
def test_a_kill_mid_pool_then_a_rerun_stores_every_recording_once(tmp_path, monkeypatch):
    from intercept.pipeline import run_batch
    from intercept.store import CREATE, Store

    folder, markers, db = tmp_path / "in", tmp_path / "markers", tmp_path / "s.db"
    markers.mkdir()
    paths = short_folder(folder, 12)  # about four recordings per window: three pools
    # PYTHONPATH: this checkout's intercept, whichever one the virtualenv has installed.
    batch = subprocess.Popen([sys.executable, __file__, str(folder), str(db), str(markers)], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and batch.poll() is None:
            # Kill once the first pool is stored and the engine is inside the second one.
            if any(m.name.startswith("call-2-") for m in markers.iterdir()):
                break
            time.sleep(0.05)
        assert batch.poll() is None, batch.stderr.read().decode()[-2000:]
        os.kill(batch.pid, signal.SIGKILL)
        batch.wait()
    finally:
        if batch.poll() is None:
            os.kill(batch.pid, signal.SIGKILL)
            batch.wait()
    [first_call] = [int(m.name.split("-")[2]) for m in markers.iterdir() if m.name.startswith("call-1-")]
    assert first_call > 2, "the first call was not a pool of several recordings"
    with Store(db, CREATE) as store:
        assert store.check_integrity() == []
        done_before = {r["path"]: r["id"] for r in store.rows("SELECT id, path FROM recordings WHERE status='done'")}
        assert 2 <= len(done_before) < len(paths), "the kill must land after one pool, before the last"

    use_engine(monkeypatch, ScriptedEngine())
    summary = run_batch([folder], db, scripted_options(), progress=False)
    assert (summary.skipped, summary.done, summary.failed) == (len(done_before), len(paths) - len(done_before), 0)
    with Store(db, CREATE) as store:
        assert store.check_integrity() == []
        rows = store.rows("SELECT id, path, status FROM recordings ORDER BY id")
        assert sorted(r["path"] for r in rows) == sorted(str(p.absolute()) for p in paths)  # each once
        assert all(r["status"] == "done" for r in rows)
        for path, recording_id in done_before.items():
            assert [r["id"] for r in rows if r["path"] == path] == [recording_id]
        assert all(store.count("lines", "recording_id = ?", [r["id"]]) == 4 for r in rows)


class WatchedDecoding:
    """Counts, around a pipeline, the recordings decoded (its _decode, wherever it runs) and
    the analyses handed out, and lets an engine wait for the next decode."""

    def __init__(self, pipeline):
        import threading

        self.decoded, self.finished, self.long_decoded = 0, 0, 0
        self.changed = threading.Condition()
        decode = pipeline._decode

        def counting(path, facts):
            result = decode(path, facts)
            with self.changed:
                self.decoded += 1
                self.long_decoded += (result.facts.duration_s or 0) >= pipeline.options.pool.short_s
                self.changed.notify_all()
            return result

        pipeline._decode = counting

    def held(self) -> int:
        """Recordings decoded and not yet finished: what is in memory besides the model."""
        return self.decoded - self.finished

    def next_decode(self, within_s: float) -> bool:
        """Whether another recording is decoded (by another thread) within `within_s`."""
        with self.changed:
            before = self.decoded
            return self.changed.wait_for(lambda: self.decoded > before, timeout=within_s)


class WatchingEngine(ScriptedEngine):
    """A ScriptedEngine that notes, on each call, how many recordings are held and whether
    the next one is decoded while it works."""

    def __init__(self, total: int, wait_s: float):
        super().__init__()
        self.watch, self.total, self.wait_s = None, total, wait_s
        self.held, self.overlapped, self.long_held = [], [], []

    def transcribe(self, samples, transmissions, sample_rate=16000):
        self.held.append(self.watch.held())
        self.long_held.append(self.watch.long_decoded - self.watch.finished)
        if self.watch.decoded < self.total:
            self.overlapped.append(self.watch.next_decode(self.wait_s))
        return super().transcribe(samples, transmissions, sample_rate)


def stream(tmp_path, monkeypatch, paths, wait_s, **pool):
    from intercept.pipeline import Pipeline

    engine = WatchingEngine(len(paths), wait_s)
    use_engine(monkeypatch, engine)
    pipeline = Pipeline(scripted_options(**pool))
    engine.watch = watch = WatchedDecoding(pipeline)
    analyses = []
    for analysis in pipeline.analyze_many((p, None) for p in paths):
        watch.finished += 1
        analyses.append(analysis)
    return engine, {Path(a.facts.path).name: essence(a) for a in analyses}


@needs_ffmpeg
def test_a_folder_of_tiny_files_streams_through_shared_windows_with_bounded_memory(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    paths = [write_tones(folder / f"key-{n:03d}.wav", [(0.3, 1.5, 3 + n)], 2.0) for n in range(40)]
    engine, streamed = stream(tmp_path, monkeypatch, paths, wait_s=60.0)

    assert len(streamed) == 40 and all(e[0] == "done" and len(e[3]) == 2 for e in streamed.values())
    for n in range(40):  # each recording got the lines of its own audio
        assert {line[2].split()[1] for line in streamed[f"key-{n:03d}.wav"][3]} == {str(3 + n)}
    # Windows are shared across files: 40 one-transmission files in a few engine calls.
    assert sum(engine.calls) == 40 and len(engine.calls) <= 6 and min(engine.calls[:-1]) >= 8
    # Decoding overlaps recognition: while the engine works, the next files are decoded.
    assert engine.overlapped and all(engine.overlapped)
    # Memory is bounded by one window's recordings (plus the one that spills) and the read-ahead,
    # never by the folder: a pool is finished before the files of later windows are decoded.
    read_ahead = 8
    assert max(engine.held) <= max(engine.calls) + 1 + read_ahead < 40

    _, alone = stream(tmp_path, monkeypatch, paths, wait_s=0.0, read_ahead=0)
    assert alone == streamed  # the same lines without the thread


@needs_ffmpeg
def test_reading_ahead_never_holds_two_long_recordings(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    paths = [write_tones(folder / f"long-{n}.wav", [(0.5, 2.0, 5 + n), (3.0, 4.5, 15 + n)], 6.0) for n in range(4)]
    # short_s=3: these 6 s recordings are "long" (recognised alone, never pooled)
    engine, streamed = stream(tmp_path, monkeypatch, paths, wait_s=1.0, short_s=3.0)

    assert len(streamed) == 4 and all(e[0] == "done" for e in streamed.values())
    assert engine.calls == [2, 2, 2, 2]
    assert engine.long_held == [1, 1, 1, 1]  # the one being recognised, and no other
    assert not any(engine.overlapped)  # the next long one was not decoded meanwhile


def test_read_ahead_hands_out_results_in_order_and_fails_in_the_callers_thread():
    from intercept.pipeline import ReadAhead

    items = [(n, None) for n in range(20)]
    assert list(ReadAhead(items, lambda path, facts: path * 2, 3, lambda r: r % 10 == 0)) == [2 * n for n in range(20)]
    assert list(ReadAhead(items, lambda path, facts: path, 0, lambda r: False)) == list(range(20))
    drawn = []

    def items_drawn():
        for item in items:
            drawn.append(item[0])
            yield item

    ahead = ReadAhead(items_drawn(), lambda path, facts: path, 3, lambda r: False)
    for n, result in enumerate(ahead):
        assert result == n and len(drawn) <= n + 1 + 3  # never more than 3 beyond the one taken
        if n == 5:
            break

    def fails(path, facts):
        if path == 4:
            raise KeyboardInterrupt
        return path

    got = []
    with pytest.raises(KeyboardInterrupt):
        for result in ReadAhead(items, fails, 3, lambda r: False):
            got.append(result)
    assert got == [0, 1, 2, 3]


def test_summary_says_how_long_loading_took(tmp_path, monkeypatch):
    from intercept.pipeline import run_batch

    use_engine(monkeypatch, ScriptedEngine())
    summary = run_batch([], tmp_path / "s.db", scripted_options(), progress=False)
    assert summary.load_s > 0 and "load_s" in summary.to_dict()


# ------------------------------------------------------------------ start-up


@pytest.mark.parametrize("argv", [["--help"], ["match", "امشب پرنده"], ["run", "--help"]])
def test_light_commands_do_not_import_the_recogniser_torch_ray_or_datasette(argv):
    heavy = ["faster_whisper", "ctranslate2", "torch", "ray", "datasette", "transformers", "whisper",
             "onnxruntime"]
    code = ("import runpy, sys\n"
            f"sys.argv = ['intercept'] + {argv!r}\n"
            "try:\n    runpy.run_module('intercept.cli', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            f"print('LOADED', [m for m in {heavy!r} if m in sys.modules])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "LOADED []"


if __name__ == "__main__":
    _batch_main(*sys.argv[1:4])
