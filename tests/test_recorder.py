"""The Recorder: the store side of every batch (local and Ray), without a model: admit, the
same-content wait, record, finish. The analyses here are made by hand."""
from __future__ import annotations

from dataclasses import replace

from intercept.config import RunOptions
from intercept.pipeline import Analysis, Recorder, RecordingResult, Summary
from intercept.store import CREATE, RecordingFacts, Store
from intercept.types import Line, Transmission


def _done(facts: RecordingFacts) -> Analysis:
    facts.duration_s, facts.format = 2.0, "wav"
    return Analysis(facts, "done", transmissions=[Transmission(0, 0.0, 2.0)],
                    lines=[Line(0.1, 1.9, "سلام", text_fa="سلام", text_en="hello")], flags=[[]],
                    engine="e", model="m", translator="none", lexicon_version="v0")


def test_a_second_copy_waits_for_the_first_then_is_skipped_and_a_failed_first_lets_it_go(tmp_path):
    a, b, c = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    for path in (a, b, c):
        path.write_bytes(b"same bytes")
    settled: list[tuple] = []
    with Store(tmp_path / "s.db", CREATE) as store:
        recorder = Recorder(store, RunOptions(), Summary(),
                            on_result=lambda token, result: settled.append((token, result.status)))
        run_id = recorder.start("m", "v0", [])
        first = recorder.admit(a)
        assert isinstance(first, RecordingFacts)
        assert recorder.admit(b, token="b") is None and recorder.admit(c, token="c") is None
        assert recorder.waiting() == 2
        # The first copy fails: the waiting ones come back; the next is analysed, the last waits for it.
        result, waiting = recorder.record(Analysis(first, "failed", error="bad"), token="a")
        assert result.status == "failed" and waiting == ["b", "c"] and recorder.waiting() == 0
        second = recorder.admit(b, token="b")
        assert isinstance(second, RecordingFacts)
        assert recorder.admit(c, token="c") is None
        result, waiting = recorder.record(_done(second), token="b")
        assert result.status == "done" and result.path == str(b) and waiting == ["c"]
        skipped = recorder.admit(c, token="c")
        assert isinstance(skipped, RecordingResult) and skipped.status == "skipped"
        assert "same content as" in skipped.note
        summary = recorder.finish([a, b, c])
        assert (summary.files, summary.done, summary.failed, summary.skipped) == (3, 1, 1, 1)
        assert settled == [("a", "failed"), ("b", "done"), ("c", "skipped")]
        run = store.rows("SELECT settings, summary, finished_at FROM runs WHERE id = ?", [run_id])[0]
        assert run["finished_at"] and '"done": 1' in run["summary"]


def test_with_force_nothing_waits_and_every_copy_is_stored(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    with Store(tmp_path / "s.db", CREATE) as store:
        recorder = Recorder(store, replace(RunOptions(), force=True))
        recorder.start("m", "v0", [])
        facts = [recorder.admit(path) for path in (a, b)]
        assert all(isinstance(f, RecordingFacts) for f in facts)
        assert [recorder.record(_done(f))[1] for f in facts] == [[], []]
        assert store.count("recordings") == 2


def test_an_unreadable_file_is_stored_as_failed_at_admission(tmp_path):
    with Store(tmp_path / "s.db", CREATE) as store:
        recorder = Recorder(store, RunOptions())
        recorder.start("m", "v0", [])
        result = recorder.admit(tmp_path)  # a folder named as a recording
        assert isinstance(result, RecordingResult) and result.status == "failed"
        assert "is a directory" in result.error
        assert store.rows("SELECT status FROM recordings") == [{"status": "failed"}]
