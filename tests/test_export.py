"""intercept.export: SRT, WebVTT, CSV and JSON Lines out of a real Store, parsed back."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest

from intercept.export import ExportError, ExportOptions, export, export_text
from intercept.store import CREATE, RecordingFacts, Store
from intercept.types import Flag, Line, Transmission

FARSI = "امشب برویم ببینیم پرنده است یا روباه"
ENGLISH = "tonight let's go see whether it is a bird or a fox"


def _line(text_fa, start, end, en="", tx=0):
    return Line(start=start, end=end, text=text_fa, transmission_idx=tx, text_fa=text_fa, text_en=en,
                avg_logprob=-0.4, no_speech_prob=0.1, compression_ratio=1.3)


def _save(store, path, sha, lines, flags):
    return store.save_recording(
        RecordingFacts(path=path, sha256=sha, duration_s=4000.0, format="wav", size_bytes=1),
        [Transmission(0, 0.0, 4000.0)], lines, flags,
        run_id=None, engine="faster-whisper", model="base", translator="whisper", lexicon_version="v1",
    )


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s.db", CREATE) as opened:
        first = _save(
            opened, "/radio/night.wav", "a" * 64,
            [
                _line(FARSI, 1.25, 3.5, ENGLISH),
                _line("سلام", 61.0, 62.004, "hello"),
                # Past an hour, and a translation that breaks over two lines and holds markup.
                _line("روباه <آمد>", 3725.5, 3727.0, "the fox\n\ncame & <went> --> away"),
            ],
            [
                [Flag("fox", "animal_code", "exact", 1.0, 31, 36, "روباه", "high", "روباه"),
                 Flag("bird", "animal_code", "morph", 0.9, 19, 24, "پرنده", "high", "پرنده")],
                [],
                [Flag("fox", "animal_code", "fuzzy", 0.8, 0, 5, "روباه", "high", "روباه")],
            ],
        )
        second = _save(opened, "/radio/day.wav", "b" * 64, [_line("پرنده", 0.5, 2.0, "bird")],
                       [[Flag("bird", "animal_code", "exact", 0.7, 0, 5, "پرنده", "high", "پرنده")]])
        opened.ids = (first, second)
        yield opened


# The cue grammars, strictly: a number, a timing line, one or more non-empty text lines, a blank line.
SRT_TIME = r"(\d\d):(\d\d):(\d\d),(\d\d\d)"
VTT_TIME = r"(\d\d):(\d\d):(\d\d)\.(\d\d\d)"


def _seconds(h, m, s, ms):
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_cues(text: str, time: str, header: str = "") -> list[tuple[int, float, float, list[str]]]:
    assert text.startswith(header)
    body = text[len(header):]
    cue = re.compile(rf"(\d+)\n{time} --> {time}\n((?:[^\n]+\n)+)\n")
    cues, position = [], 0
    for match in cue.finditer(body):
        assert match.start() == position, f"text between cues: {body[position:match.start()]!r}"
        groups = match.groups()
        cues.append((int(groups[0]), _seconds(*groups[1:5]), _seconds(*groups[5:9]), groups[9].splitlines()))
        position = match.end()
    assert position == len(body), f"trailing text: {body[position:]!r}"
    return cues


def test_srt_cues_parse_back_with_times_and_text(store):
    first, _ = store.ids
    text = export_text(store, ExportOptions(format="srt", recording_id=first))
    cues = parse_cues(text, SRT_TIME)
    assert [number for number, *_ in cues] == [1, 2, 3]
    assert [(start, end) for _, start, end, _ in cues] == [(1.25, 3.5), (61.0, 62.004), (3725.5, 3727.0)]
    assert cues[0][3] == [FARSI, ENGLISH, "[bird, fox 1.00]"], "concepts in the order they are said"
    assert cues[1][3] == ["سلام", "hello"], "no concepts on an unflagged line"
    assert cues[2][3] == ["روباه <آمد>", "the fox came & <went> → away", "[fox 0.80]"], "SRT has no escape for -->"


def test_vtt_cues_parse_back_escaped(store):
    first, _ = store.ids
    text = export_text(store, ExportOptions(format="vtt", recording_id=first, flagged_only=True))
    cues = parse_cues(text, VTT_TIME, header="WEBVTT\n\n")
    assert [(start, end) for _, start, end, _ in cues] == [(1.25, 3.5), (3725.5, 3727.0)]
    assert cues[0][3][0] == FARSI
    assert cues[1][3][:2] == ["روباه &lt;آمد&gt;", "the fox came &amp; &lt;went&gt; --&gt; away"]
    assert "-->" not in "".join(cues[1][3])


def test_subtitles_refuse_several_recordings_and_write_nothing(store, tmp_path):
    target = tmp_path / "all.srt"
    with pytest.raises(ExportError, match=r"2 recordings: \d+ \(night.wav\), \d+ \(day.wav\).*--recording"):
        export(store, target, ExportOptions(format="srt"))
    assert not target.exists() and not list(tmp_path.glob("*.partial"))


def test_subtitles_need_no_recording_when_only_one_is_left(tmp_path):
    with Store(tmp_path / "one.db", CREATE) as one:
        _save(one, "/radio/a.wav", "c" * 64, [_line("پرنده", 0.0, 0.0, "bird")],
              [[Flag("bird", "animal_code", "exact", 1.0, 0, 5, "پرنده")]])
        cues = parse_cues(export_text(one, ExportOptions(format="vtt")), VTT_TIME, header="WEBVTT\n\n")
    assert len(cues) == 1 and cues[0][2] > cues[0][1], "a zero-length line still ends after it starts"


def test_csv_one_row_per_line_with_flags(store, tmp_path):
    target = tmp_path / "report.csv"
    assert export(store, target, ExportOptions(format="csv")) == 4
    raw = target.read_bytes()
    assert FARSI.encode("utf-8") in raw
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
    assert [row["text_en"] for row in rows][:2] == [ENGLISH, "hello"]
    first = rows[0]
    assert first["recording_path"] == "/radio/night.wav" and first["start_s"] == "1.25"
    assert first["concepts"] == "bird;fox" and first["kinds"] == "morph;exact" and first["score"] == "1.0"
    flags = json.loads(first["flags"])
    assert [(f["concept"], f["matched"], f["span_start"]) for f in flags] == [("bird", "پرنده", 19), ("fox", "روباه", 31)]
    assert rows[1]["concepts"] == "" and json.loads(rows[1]["flags"]) == []
    assert rows[2]["text_en"] == "the fox\n\ncame & <went> --> away", "CSV keeps the text as stored"


def test_jsonl_flagged_only_and_recording_filter(store):
    first, second = store.ids
    rows = [json.loads(line) for line in export_text(store, ExportOptions(format="jsonl", flagged_only=True)).splitlines()]
    assert [(row["recording_id"], row["start_s"]) for row in rows] == [(first, 1.25), (first, 3725.5), (second, 0.5)]
    assert rows[0]["text_fa"] == FARSI and rows[0]["concepts"] == ["bird", "fox"]
    assert rows[0]["flags"][0]["lexicon_version"] == "v1"
    only_second = export_text(store, ExportOptions(format="jsonl", recording_id=second)).splitlines()
    assert [json.loads(line)["text_en"] for line in only_second] == ["bird"]


def test_bad_requests_are_refused_clearly(store):
    with pytest.raises(ExportError, match="format must be one of srt, vtt, csv, jsonl, not 'xml'"):
        export_text(store, ExportOptions(format="xml"))
    with pytest.raises(ExportError, match=r"s.db: no recording 99 in the store"):
        export_text(store, ExportOptions(format="csv", recording_id=99))


def test_unreliable_english_is_marked_in_every_format(tmp_path):
    """One rule (intercept.reliability): a guard's mark or weak recognition makes the English
    unreliable; CSV/JSONL say so in a column, subtitles put a marker before it."""
    from intercept.reliability import UNRELIABLE_MARKER, WEAK_LOGPROB

    with Store(tmp_path / "r.db", CREATE) as opened:
        sure = _line("سلام", 0.0, 1.0, "hello")
        weak = _line("امشن برایم", 2.0, 3.0, "I will not let you down")
        weak.avg_logprob = WEAK_LOGPROB - 0.5
        marked = _line("روباه", 4.0, 5.0, "fox fox fox")
        marked.suspect = "repetition"
        silent = _line("...", 6.0, 7.0, "")
        _save(opened, "/radio/r.wav", "c" * 64, [sure, weak, marked, silent], [[], [], [], []])
        rows = list(csv.DictReader(io.StringIO(export_text(opened, ExportOptions(format="csv")))))
        assert [row["en_reliability"] for row in rows] == ["reliable", "unreliable", "unreliable", ""]
        assert "weak recognition" in rows[1]["en_reliability_reason"]
        assert "repetition" in rows[2]["en_reliability_reason"]
        jsonl = [json.loads(line) for line in export_text(opened, ExportOptions(format="jsonl")).splitlines()]
        assert [row["en_reliability"] for row in jsonl] == ["reliable", "unreliable", "unreliable", None]
        for fmt in ("srt", "vtt"):
            text = export_text(opened, ExportOptions(format=fmt))
            assert UNRELIABLE_MARKER + "I will not let you down" in text
            assert UNRELIABLE_MARKER + "fox fox fox" in text
            assert UNRELIABLE_MARKER + "hello" not in text and "\nhello\n" in text
