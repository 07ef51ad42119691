"""Property test: hostile text goes through every export format and comes back exactly, or
changed exactly as docs/review.md ("What an export does to the text") says.

Random Farsi/English text with ZWNJ, bidi marks, CR/LF and other line breaks, quotes,
formula leads, "-->", NUL and other control characters is stored through the store's API
(one new recording per example, in one store) and exported as csv, jsonl, srt and vtt; each
file is read back with the csv module, json, and the small SRT/WebVTT readers below.
"""
from __future__ import annotations

import csv
import html
import io
import itertools
import json
import re
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intercept.export import ExportOptions, export
from intercept.reliability import UNRELIABLE_MARKER
from intercept.store import CREATE, RecordingFacts, Store
from intercept.types import Line, Transmission

# The documented CSV rule: a text cell starting with one of these gets a leading "'".
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "\x00", "'")
TEXT_COLUMNS = ("text_fa", "text_fa_raw", "text_en", "suspect", "recording_path")

FARSI = "ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهیءآأؤئيكة۰۱۲۳۴۵۶۷۸۹،؛؟"
BIDI = "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
BREAKS = "\r\n\t\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029\u00a0\u3000 "
CONTROLS = "\x00\x01\x07\x08\x1b\x7f\x80\x9f"
PUNCTUATION = "\"',;=+-@<>&#!?.:"
hostile_char = st.sampled_from(FARSI + BIDI + BREAKS + CONTROLS + PUNCTUATION + "abcXYZ019")
hostile_piece = st.one_of(
    st.text(hostile_char, max_size=12),
    st.sampled_from(["-->", "--->", "- ->", "-\x00->", "=HYPERLINK(\"http://x\",\"y\")", "@SUM(A1)", "+1", "-2",
                     "\r\n\r\n", "\n\n1\n00:00:01,000 --> 00:00:02,000\n", "WEBVTT", "NOTE", "&amp;", "&lrm;",
                     "<b>", "پرنده\u200cها", "\u202eروباه\u202c", "thank you"]),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=6),  # anything else Unicode holds
)
hostile_text = st.lists(hostile_piece, max_size=5).map("".join)
leading = st.sampled_from(["", "", "=", "+", "-", "@", "\t", "\r", "\x00", "'", "\n", " ", "-->"])
field = st.tuples(leading, hostile_text).map("".join)

_counter = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with Store(tmp_path_factory.mktemp("roundtrip") / "s.db", CREATE) as opened:
        yield opened


def _save(store, path: str, texts: list[tuple[str, str, str, str]]) -> int:
    lines = []
    for number, (raw, farsi, english, suspect) in enumerate(texts):
        lines.append(Line(start=number * 2.0, end=number * 2.0 + 1.5, text=raw, text_fa=farsi, text_en=english,
                          suspect=suspect or None, avg_logprob=-0.4, no_speech_prob=0.1, compression_ratio=1.2))
    sha = f"{next(_counter):064x}"
    return store.save_recording(
        RecordingFacts(path=path, sha256=sha, duration_s=60.0, format="wav", size_bytes=1),
        [Transmission(0, 0.0, 60.0)], lines, [[] for _ in lines],
        run_id=None, engine="faster-whisper", model="base", translator="whisper", lexicon_version="v1",
    )


def _exported(store, tmp_path, recording_id, fmt, bom=False) -> str:
    target = tmp_path / f"out.{fmt}"
    export(store, target, ExportOptions(format=fmt, recording_id=recording_id, bom=bom))
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == bom
    return raw.decode("utf-8-sig" if bom else "utf-8")


def neutralised(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_LEADS) else value


def cue_text(value: str) -> str:
    """The documented subtitle rule, written independently of the exporter: control characters
    that are not whitespace removed, every whitespace run one space, trimmed."""
    kept = "".join(c for c in value if not (unicodedata.category(c) == "Cc" and not c.isspace()))
    return " ".join(kept.split())


SRT_TIMING = re.compile(r"^\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d$")
VTT_TIMING = re.compile(r"^\d\d:\d\d:\d\d\.\d\d\d --> \d\d:\d\d:\d\d\.\d\d\d$")


def read_cues(text: str, timing: re.Pattern, header: str = "") -> list[list[str]]:
    """Each cue's text lines, read as a player does: cues are blocks between blank lines, a
    block is a number, a timing line, then the text; a timing line anywhere else is an error."""
    assert text.startswith(header) and text.endswith("\n\n")
    cues = []
    for block in text[len(header):].split("\n\n")[:-1]:
        number, timing_line, *lines = block.split("\n")
        assert number == str(len(cues) + 1), f"cue {len(cues) + 1} broken: {block!r}"
        assert timing.match(timing_line), f"not a timing line: {timing_line!r}"
        assert lines and all(lines), f"a cue without text, or with a blank line: {block!r}"
        assert not any("-->" in line for line in lines), f"--> inside cue text: {block!r}"
        cues.append(lines)
    return cues


def expected_cue(raw_fa: str, english: str, suspect: str) -> list[str]:
    from intercept.reliability import is_transliteration

    farsi = cue_text(raw_fa) or "…"
    # A guard's mark makes the English unreliable, and so does Latin text that is not English
    # words (romanised Farsi: intercept.reliability); random text often is.
    unreliable = bool(suspect.strip()) or is_transliteration(english)
    english = cue_text(english)
    if english and unreliable:
        english = UNRELIABLE_MARKER + english
    return [farsi] + ([english] if english else [])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(texts=st.lists(st.tuples(field, field, field, field), min_size=1, max_size=3), path=field,
       bom=st.booleans())
def test_every_format_reads_back_as_documented(store, tmp_path, texts, path, bom):
    recording_path = "/radio/" + path if not path.startswith(FORMULA_LEADS) else path
    recording_id = _save(store, recording_path, texts)
    # The store keeps no English as NULL.
    stored = [dict(text_fa_raw=raw, text_fa=farsi, text_en=english or None, suspect=suspect or None,
                   recording_path=recording_path) for raw, farsi, english, suspect in texts]

    # JSON Lines: exact, and one record a line however the file is split into lines.
    jsonl = _exported(store, tmp_path, recording_id, "jsonl")
    records = [json.loads(line) for line in jsonl.split("\n")[:-1]]
    assert len(jsonl.splitlines()) == len(records) == len(texts)
    for record, line in zip(records, stored):
        assert {column: record[column] for column in TEXT_COLUMNS} == line

    # CSV: one record per line, every text cell the stored text or "'" + it, as documented.
    text = _exported(store, tmp_path, recording_id, "csv", bom=bom)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(texts) and all(None not in row for row in rows), "a record split or grew"
    for row, line in zip(rows, stored):
        for column in TEXT_COLUMNS:
            value = line[column] or ""
            assert row[column] == neutralised(value), column
            assert (row[column][1:] if row[column].startswith("'") else row[column]) == value, "reversible"
        assert not row["text_en"].startswith(FORMULA_LEADS[:-1])

    # SRT and WebVTT: one cue per line, the text folded and escaped as documented.
    srt = read_cues(_exported(store, tmp_path, recording_id, "srt", bom=bom), SRT_TIMING)
    vtt = read_cues(_exported(store, tmp_path, recording_id, "vtt", bom=bom), VTT_TIMING, header="WEBVTT\n\n")
    assert len(srt) == len(vtt) == len(texts)
    for srt_cue, vtt_cue, (raw, farsi, english, suspect) in zip(srt, vtt, texts):
        expected = expected_cue(farsi, english, suspect)
        assert srt_cue == [line.replace("-->", "\u2192") for line in expected]
        assert [html.unescape(line) for line in vtt_cue] == expected
        assert not any(c in line for line in vtt_cue for c in "<>"), "WebVTT text is escaped"
