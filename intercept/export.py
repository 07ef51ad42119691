"""Reports out of the store: subtitles (SRT, WebVTT) and tables (CSV, JSON Lines).

    with Store("traffic.db") as store:
        export(store, "queue.csv", ExportOptions(format="csv", flagged_only=True))  # the review queue
        export(store, "rec7.srt", ExportOptions(format="srt", recording_id=7))

Subtitle cues are timed in seconds from the start of one original recording, so an SRT or
VTT file covers exactly one recording: pass `recording_id`, or leave it out when the store
(after the flagged-only filter) holds lines of a single recording. Anything else is refused
with an error listing the recording ids, before a byte is written. CSV and JSON Lines cover
any number of recordings, one row per line, each row naming its recording.

`flagged_only` exports exactly the review queue: the lines holding a flag scored at or above
the threshold (intercept.scoring.DEFAULT_THRESHOLD), each with those flags; `all_flags` adds
the flags the threshold hides (and the lines holding only such flags). Without `flagged_only`
every line goes out with every flag.

What each format does to hostile text (docs/review.md, "What an export does to the text"):

* CSV (RFC 4180 through the csv module): every field holding a comma, a quote, CR or LF is
  quoted, records end in CRLF, and a text cell that a spreadsheet would run as a formula (one
  starting with = + - @ TAB CR or NUL, the OWASP/ASVS rule) gets a leading `'`; so does a cell
  that already starts with `'`, so that removing one leading `'` always gives the stored text
  back. `bom` writes a UTF-8 byte order mark first, for spreadsheets that otherwise guess the
  encoding wrong.
* SRT/VTT: one cue line per field; control characters are removed, any run of whitespace or line
  breaks becomes one space (a blank line would end the cue), and `-->` (which starts a timing
  line) becomes `→` in SRT; WebVTT escapes `& < >` as character references instead.
* JSON Lines: exact. U+2028, U+2029 and U+0085, which JSON allows raw but line-splitting readers
  (Python's str.splitlines, older JavaScript) take for line breaks, are written escaped.

The lines come from `Store.iter_lines`, so this module knows no SQL.

Evidence bundles (intercept.bundle) and training corpora (intercept.corpus) are written by their
own modules, on this one's rows and errors; `intercept export --format bundle|corpus` calls them.
This module imports neither (they import it).
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator, Optional, Union

from .reliability import UNRELIABLE_MARKER, english_reliability
from .scoring import DEFAULT_THRESHOLD, in_queue
from .store import Store

FORMATS = ("srt", "vtt", "csv", "jsonl")
SUBTITLE_FORMATS = ("srt", "vtt")
BOM = "\ufeff"  # written as UTF-8: EF BB BF
# The shortest cue we write: WebVTT requires a cue to end after it starts.
MIN_CUE_S = 0.001

# One row per line in CSV and JSON Lines, in this order; `flags` holds every flag as a list.
ROW_COLUMNS = (
    "line_id", "recording_id", "recording_path", "transmission_idx", "idx", "start_s", "end_s",
    "text_fa", "text_en", "en_reliability", "en_reliability_reason", "text_fa_raw", "concepts", "categories", "kinds", "score",
    "confidence", "avg_logprob", "no_speech_prob", "compression_ratio", "suspect",
    "engine", "model", "translator", "translator_model", "flags", "review",
    # Reviewers' corrections (intercept.corrections): text_fa/text_en above are the current text;
    # these are the machine's (the same as the current text on a line nobody corrected), which
    # revision the current text is (empty: the machine's) and where its English came from.
    "text_fa_machine", "text_en_machine", "revision_id", "text_en_from",
)
# score is the calibrated chance a listener agrees; match_score, prior, word_prob, nbest_share and
# acoustic_margin the evidence behind it (None: unknown); hypothesis the N-best text an `alternative` flag's
# span indexes.
FLAG_COLUMNS = ("id", "concept", "category", "severity", "kind", "score", "span_start", "span_end",
                "matched", "term", "lexicon_version")
# Flag evidence (the flag-trust migration); exported when the store has it.
FLAG_EVIDENCE_COLUMNS = ("match_score", "word_prob", "nbest_share", "acoustic_margin", "prior", "prior_reason",
                         "hypothesis", "scorer_version", "flagged_by", "flagged_at", "note")


class ExportError(ValueError):
    """The export cannot be written as asked; the message says why."""


@dataclass
class ExportOptions:
    """What to export and how."""

    format: str = "csv"  # srt | vtt | csv | jsonl
    flagged_only: bool = False  # the review queue: lines with a flag at or above `threshold`, with those flags
    recording_id: Optional[int] = None  # one recording; required for srt/vtt when the store holds several
    all_flags: bool = False  # with flagged_only: also the flags the threshold hides from the queue
    threshold: float = DEFAULT_THRESHOLD
    confirmed_only: bool = False  # only lines whose latest verdict is "confirmed"
    bom: bool = False  # csv/srt/vtt: start with a UTF-8 byte order mark (spreadsheets); not for jsonl


def _distinct(values: Iterable[str]) -> list[str]:
    # Concepts in the order the flags appear in the line (iter_lines sorts flags by span).
    return list(dict.fromkeys(v for v in values if v))


def queued(line: dict, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """The line with only the flags the review queue shows (score at or above `threshold`)."""
    return {**line, "flags": [f for f in line.get("flags") or [] if in_queue(f.get("score"), threshold)]}


def line_row(line: dict) -> dict:
    """One stored line (as `Store.iter_lines` yields it) as an export row (ROW_COLUMNS)."""
    flags = [{key: flag.get(key) for key in FLAG_COLUMNS + FLAG_EVIDENCE_COLUMNS if key in FLAG_COLUMNS or key in flag}
             for flag in line.get("flags") or []]
    scores = [f["score"] for f in flags if f["score"] is not None]
    row = {column: line.get(column) for column in ROW_COLUMNS}
    # The same rule as the review page (intercept.reliability); None where there is no English.
    reliability = english_reliability(line)
    row.update(
        confidence=line.get("confidence"),
        en_reliability=reliability.label if reliability else None,
        en_reliability_reason=reliability.reason if reliability else None,
    )
    corrected = line.get("revision_id") is not None
    row.update(
        text_fa_machine=line.get("text_fa_machine") if corrected else line.get("text_fa"),
        text_en_machine=line.get("text_en_machine") if corrected else line.get("text_en"),
    )
    row.update(
        line_id=line["id"],
        concepts=_distinct(f["concept"] for f in flags),
        categories=_distinct(f["category"] for f in flags),
        kinds=_distinct(f["kind"] for f in flags),
        score=max(scores) if scores else None,
        flags=flags,
    )
    return row


def _with_review(store: Store, row: dict) -> dict:
    """The row with its review (intercept.store.team.review_record): the line's verdict, each
    concept's outcome, disagreement, a lead's decision and every verdict; None when unflagged."""
    if row["flags"] and hasattr(store, "review_of_lines"):
        from .store.team import review_record

        row["review"] = review_record(store.review_of_lines([row["line_id"]])[row["line_id"]])
    return row


def _timestamp(seconds: float, decimal_mark: str) -> str:
    millis = max(0, int(round(seconds * 1000)))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_mark}{millis:03d}"


# Control characters (Unicode category Cc) that are not whitespace: NUL, BEL, ESC, DEL, C1 codes.
# Whitespace controls (TAB, LF, CR, VT, FF, FS-US, NEL) are folded into spaces by _one_line.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
# The arrow SRT uses for "-->" inside text (a line holding "-->" reads as a timing line).
SRT_ARROW = "\u2192"


def _one_line(text: Optional[str]) -> str:
    """Subtitle-safe text: control characters removed, every run of whitespace and line breaks
    (str.split's: also U+2028/2029, NEL) one space. A blank line ends a cue in both formats,
    so a cue's text lines must not break. ZWNJ and bidi marks are not whitespace: they stay."""
    return " ".join(_CONTROL.sub("", text or "").split())


def _cue_text(row: dict, vtt: bool) -> list[str]:
    english = _one_line(row["text_en"])
    if english and row.get("en_reliability") == "unreliable":
        english = UNRELIABLE_MARKER + english
    lines = [_one_line(row["text_fa"]) or "…", english]
    if row["concepts"]:
        lines.append("[" + ", ".join(row["concepts"]) + f" {row['score']:.2f}]")
    lines = [line for line in lines if line]
    if vtt:
        # WebVTT cue text is markup: escape it, and "-->" may not appear at all.
        lines = [line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for line in lines]
    else:
        # SRT has no escapes; parsers find a cue's timing by its "-->".
        lines = [line.replace("-->", SRT_ARROW) for line in lines]
    return lines


# The SRT and WebVTT writers are written here rather than taken from the `srt`/`webvtt-py`
# packages: each is a timestamp format and blank-line-separated cues, smaller than the
# dependency, and the tests check the output against the cue grammar.
def _write_subtitles(rows: list[dict], out: IO[str], vtt: bool) -> None:
    if vtt:
        out.write("WEBVTT\n\n")
    mark = "." if vtt else ","
    for number, row in enumerate(rows, start=1):
        start = float(row["start_s"])
        end = max(float(row["end_s"]), start + MIN_CUE_S)
        out.write(f"{number}\n{_timestamp(start, mark)} --> {_timestamp(end, mark)}\n")
        out.write("\n".join(_cue_text(row, vtt)) + "\n\n")


# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV Injection";
# ASVS 5 adds NUL). "'" is listed too: prefixing cells that already start with it keeps the
# rule reversible (strip one leading "'" from a cell that has one).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "\x00", "'")


def neutralise_cell(value):
    """A text cell as written to CSV: prefixed with "'" when it starts with a formula lead.
    Numbers are left alone (a negative log-probability is a number, not a formula)."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


def _csv_value(column: str, value):
    if column == "flags":
        value = json.dumps(value, ensure_ascii=False)
    elif column == "review":
        value = "" if value is None else json.dumps(value, ensure_ascii=False)
    elif column in ("concepts", "categories", "kinds"):
        value = ";".join(value)
    return neutralise_cell(value)


class ExportDialect(csv.excel):
    """RFC 4180: CRLF between records, and (csv.QUOTE_MINIMAL) every field holding a comma,
    quote, CR or LF quoted. With "\n" as the line terminator Python 3.11's csv module leaves a
    bare CR unquoted, and spreadsheets then split the record in two."""

    lineterminator = "\r\n"
    quoting = csv.QUOTE_MINIMAL


def _write_csv(rows: Iterable[dict], out: IO[str]) -> int:
    writer = csv.DictWriter(out, fieldnames=ROW_COLUMNS, dialect=ExportDialect)
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({column: _csv_value(column, row[column]) for column in ROW_COLUMNS})
        count += 1
    return count


# Legal raw inside JSON strings, but line breaks to str.splitlines and pre-2019 JavaScript.
_JSON_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def _jsonl_line(row: dict) -> str:
    text = json.dumps(row, ensure_ascii=False)
    for raw, escaped in _JSON_LINE_BREAKS.items():
        text = text.replace(raw, escaped)  # these only occur inside strings, where the escape is exact
    return text


def _write_jsonl(rows: Iterable[dict], out: IO[str]) -> int:
    count = 0
    for row in rows:
        out.write(_jsonl_line(row) + "\n")
        count += 1
    return count


def _subtitle_rows(rows: Iterator[dict], format: str) -> list[dict]:
    """The rows of the single recording a subtitle file covers; refuses several."""
    taken: list[dict] = []
    recordings: dict[int, str] = {}
    for row in rows:
        recordings.setdefault(row["recording_id"], row["recording_path"])
        if len(recordings) == 1:
            taken.append(row)
    if len(recordings) > 1:
        listed = ", ".join(f"{rid} ({Path(path).name})" for rid, path in sorted(recordings.items()))
        raise ExportError(
            f"{format} cues are timed within one recording, and these lines come from "
            f"{len(recordings)} recordings: {listed}; choose one with recording_id (--recording ID)"
        )
    return taken


@contextmanager
def opened_for_export(out: Union[str, os.PathLike, IO], binary: bool = False):
    """`out` opened for writing (a stream is used as it is). A path is written beside the
    target and renamed at the end: a refused or failed export never leaves a truncated file
    under the asked-for name. Raises ExportError naming the file when it cannot be written."""
    if isinstance(out, (str, os.PathLike)):
        path = Path(out)
        partial = path.with_name(path.name + ".partial")
        try:
            with open(partial, "wb") if binary else open(partial, "w", encoding="utf-8", newline="") as handle:
                yield handle
            os.replace(partial, path)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise ExportError(f"{path}: cannot write the export: {error.strerror or error}") from error
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    else:
        yield out


def export(
    store: Store,
    out: Union[str, os.PathLike, IO[str]],
    options: Optional[ExportOptions] = None,
) -> int:
    """Write the store's lines to `out` (a path, or a text stream such as sys.stdout) in
    `options.format`; returns the number of lines written."""
    options = options or ExportOptions()
    if options.format not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}, not {options.format!r}")
    if options.bom and options.format == "jsonl":
        raise ExportError("a byte order mark is for csv, srt and vtt: JSON Lines must not start with one (RFC 8259)")
    if options.recording_id is not None and store.recording(options.recording_id) is None:
        raise ExportError(f"{store.path}: no recording {options.recording_id} in the store")
    confirmed = store.confirmed_line_ids() if options.confirmed_only else None
    lines = (line for line in store.iter_lines(options.recording_id, options.flagged_only)
             if confirmed is None or line["id"] in confirmed)
    if options.flagged_only and not options.all_flags:
        lines = (line for line in map(lambda row: queued(row, options.threshold), lines) if line["flags"])
    rows = (_with_review(store, line_row(line)) for line in lines)
    if options.format in SUBTITLE_FORMATS:
        # Collected before opening `out`, so that a refusal writes nothing.
        subtitle_rows = _subtitle_rows(rows, options.format)
        with opened_for_export(out) as handle:
            if options.bom:
                handle.write(BOM)
            _write_subtitles(subtitle_rows, handle, vtt=options.format == "vtt")
        return len(subtitle_rows)
    with opened_for_export(out) as handle:
        if options.format == "csv":
            if options.bom:
                handle.write(BOM)
            return _write_csv(rows, handle)
        return _write_jsonl(rows, handle)


def export_text(store: Store, options: Optional[ExportOptions] = None) -> str:
    """The export as a string (small stores, tests)."""
    buffer = io.StringIO()
    export(store, buffer, options)
    return buffer.getvalue()
