"""The reviewer's desk: what the review plugin shows about a line beyond Datasette's table.

- the flagged words marked in the Farsi, the English and (for `alternative` flags) the
  hypothesis the recogniser also heard, with each flag's concept, gloss and lexicon notes;
- how far to trust the line (intercept.reliability) and each flag (its evidence, when stored);
- the line's context: the transmissions before and after it in its recording, or all of them;
- traffic over time: lines per hour or day from recordings.recorded_at, as a server-rendered
  SVG chart whose bars list their lines.

Reads are intercept.store.review's, run on Datasette's (read-only) connection. Columns added
by later migrations (flag evidence, recorded_at, lexicon notes) are used when the store has
them and shown as "unknown" otherwise.
"""
from __future__ import annotations

import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any, Iterable, Optional
from urllib.parse import urlencode

from markupsafe import Markup

from intercept.recorded_at import absolute_time
from intercept.reliability import english_reliability, line_confidence
from intercept.store import review as store_review

CONTEXT_LINES = 3  # transmissions shown before and after a line
MAX_LINES = 2000  # most lines one page lists (a whole recording, an activity bar)
MAX_BUCKETS = 240  # bars in the activity chart (10 days by hour, 8 months by day)
ENGLISH_KIND = "english"
ALTERNATIVE_KIND = "alternative"
# Evidence a flag may carry (the flag-trust migration); absent columns read as unknown.
EVIDENCE = (("score", "trust"), ("word_prob", "word probability"), ("nbest_share", "n-best share"),
            ("acoustic_margin", "acoustic margin"), ("prior", "lexicon prior"))
BUCKETS = {"hour": _dt.timedelta(hours=1), "day": _dt.timedelta(days=1)}  # UTC hours and days


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _number(value: Optional[float | str]) -> str:
    if isinstance(value, str):  # already worded (flag_evidence)
        return value
    return "unknown" if value is None else f"{float(value):.2f}"


def _hypotheses(line: dict) -> Optional[int]:
    """How many hypotheses the line's stored N-best holds (None: none stored)."""
    try:
        return len(json.loads(line["alternatives"])) if line.get("alternatives") else None
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------- marking


def _text_of(flag: dict) -> str:
    kind = flag.get("kind")
    return "en" if kind == ENGLISH_KIND else "alt" if kind == ALTERNATIVE_KIND else "fa"


def flag_title(flag: dict) -> str:
    parts = [f"{flag.get('concept')} ({flag.get('category')})", str(flag.get("kind"))]
    if flag.get("gloss"):
        parts.append("gloss: " + flag["gloss"])
    if flag.get("notes"):
        parts.append(flag["notes"])
    if flag.get("prior_reason"):
        # Why the lexicon trusts this form less (a sound-alike of a commoner word, a shared verb stem).
        parts.append(f"prior {flag.get('prior')}: {flag['prior_reason']}")
    return " · ".join(parts)


def marked_html(text: Optional[str], flags: Iterable[dict]) -> Markup:
    """`text` escaped, with each flag's [span_start, span_end) in a <mark> naming the flag.
    Overlapping spans become one mark naming every flag; spans outside the text are skipped
    (the flag is still listed beside the line)."""
    text = text or ""
    spans = []
    for flag in flags:
        start, end = flag.get("span_start"), flag.get("span_end")
        if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
            spans.append([start, end, [flag]])
    spans.sort(key=lambda span: (span[0], span[1]))
    merged: list[list] = []
    for span in spans:
        if merged and span[0] < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], span[1])
            merged[-1][2].extend(span[2])
        else:
            merged.append(span)
    out, position = [], 0
    for start, end, marked_flags in merged:
        out.append(html.escape(text[position:start]))
        ids = " ".join(str(f.get("id")) for f in marked_flags)
        concepts = " ".join(dict.fromkeys(str(f.get("concept")) for f in marked_flags))
        title = "\n".join(flag_title(f) for f in marked_flags)
        out.append(f'<mark class="intercept-mark" data-flag-ids="{_e(ids)}" data-concepts="{_e(concepts)}" '
                   f'title="{_e(title)}">{html.escape(text[start:end])}</mark>')
        position = end
    out.append(html.escape(text[position:]))
    return Markup("".join(out))


# ---------------------------------------------------------------- one line, described


def flag_evidence(flag: dict, has_trust: bool, hypotheses: Optional[int] = None) -> dict:
    """A flag's evidence as shown: the text-match score, and the trust pieces or None. A line
    decoded greedily (`--beam-size 1`, the default) has one hypothesis, so its N-best share of 1
    says nothing about agreement: it is shown as such, not as 1.00."""
    if has_trust:
        match = flag.get("match_score")
        pieces = {label: flag.get(column) for column, label in EVIDENCE}
        if hypotheses == 1 and pieces["n-best share"] is not None:
            pieces["n-best share"] = "none (one hypothesis)"
    else:
        # Before the flag-trust migration `score` is the text-match score; trust is unknown.
        match = flag.get("score")
        pieces = {label: None for _, label in EVIDENCE}
    return {"match score": match, **pieces}


def describe_line(line: dict, flags: list[dict], has_trust: bool) -> dict:
    """Everything the desk shows about one line (`line` a lines row with recording_path and
    recorded_at; `flags` its flags, with gloss and notes from the lexicon)."""
    by_text: dict[str, list[dict]] = {"fa": [], "en": [], "alt": []}
    for flag in flags:
        by_text[_text_of(flag)].append(flag)
    reliability = english_reliability(line)
    confidence = line_confidence(line)
    source = ("mean word probability" if line.get("confidence") is not None
              else "exp(avg_logprob)" if confidence is not None else "")
    hypotheses = _hypotheses(line) if flags else None
    alternatives = []
    for hypothesis in dict.fromkeys(f.get("hypothesis") or "" for f in by_text["alt"]):
        if hypothesis:
            alternatives.append(marked_html(hypothesis, [f for f in by_text["alt"] if f.get("hypothesis") == hypothesis]))
    return {
        "id": line["id"],
        "recording_id": line.get("recording_id"),
        "recording_path": line.get("recording_path"),
        "recording_name": Path(str(line.get("recording_path") or "")).name,
        "start_s": line.get("start_s"),
        "end_s": line.get("end_s"),
        "at": absolute_time(line.get("recorded_at"), line.get("start_s")),
        "fa_html": marked_html(line.get("text_fa"), by_text["fa"]),
        "en_html": marked_html(line.get("text_en"), by_text["en"]),
        "alternatives_html": alternatives,
        "confidence": confidence,
        "confidence_text": _number(confidence) + (f" ({source})" if source else ""),
        "reliability": reliability.label if reliability else None,
        "reliability_reason": reliability.reason if reliability else "",
        "suspect": line.get("suspect"),
        "flags": [{**flag, "evidence": flag_evidence(flag, has_trust, hypotheses), "title": flag_title(flag)}
                  for flag in flags],
        "verdict": line.get("verdict"),
    }


def flags_html(description: dict) -> Markup:
    """The line's flags beside it: concept, category, kind, gloss, notes and evidence."""
    items = []
    for flag in description["flags"]:
        evidence = " · ".join(f"{label} {_number(value)}" for label, value in flag["evidence"].items())
        where = {"en": "in the English", "alt": "heard as alternative", "fa": "in the Farsi"}[_text_of(flag)]
        if flag.get("kind") == "reviewer":
            # A reviewer's flag (intercept.store.team): who heard it, when; no evidence was computed.
            where = f'by {_e(flag.get("flagged_by"))}, {_e(str(flag.get("flagged_at") or "")[:16].replace("T", " "))}'
            evidence = "heard as: " + str(flag.get("matched")) if flag.get("matched") else "a reviewer's flag"
        gloss = f' · <span class="intercept-gloss">gloss: {_e(flag.get("gloss"))}</span>' if flag.get("gloss") else ""
        notes = f'<div class="intercept-notes">{_e(flag.get("notes"))}</div>' if flag.get("notes") else ""
        # A short or invented form with no recogniser support (intercept.scoring): why it is held back.
        support = [p for p in str(flag.get("prior_reason") or "").split("; ") if p.startswith("needs support")]
        if support:
            notes += f'<div class="intercept-support">{_e(support[0])}</div>'
        items.append(
            f'<li class="intercept-flag" data-flag-id="{_e(flag.get("id"))}">'
            f'<b>{_e(flag.get("concept"))}</b> {_e(flag.get("category"))} · {_e(flag.get("kind"))} {where}'
            f'{gloss}<div class="intercept-evidence">{_e(evidence)}</div>{notes}</li>'
        )
    return Markup(f'<ul class="intercept-flags">{"".join(items)}</ul>') if items else Markup("")


def trust_html(description: dict) -> Markup:
    reliability = description["reliability"]
    label = (f'<span class="intercept-reliability intercept-{_e(reliability)}" title="{_e(description["reliability_reason"])}">'
             f'English {_e(reliability)}</span>') if reliability else ""
    return Markup(f'<div class="intercept-trust">recogniser confidence '
                  f'<span class="intercept-confidence">{_e(description["confidence_text"])}</span> {label}</div>')


def english_html(description: dict) -> Markup:
    """The English, muted and labelled when unreliable."""
    css = "intercept-en" + (" intercept-en-unreliable" if description["reliability"] == "unreliable" else "")
    label = ('<span class="intercept-unreliable-label" title="{}">unreliable</span> '.format(
        _e(description["reliability_reason"])) if description["reliability"] == "unreliable" else "")
    return Markup(f'<div class="{css}" dir="ltr">{label}{description["en_html"]}</div>')


def fragments(description: dict) -> dict:
    """The pieces review.js/desk.js put into Datasette's table cells, as HTML strings."""
    alternatives = "".join(
        f'<div class="intercept-alternative"><span class="intercept-alt-label">heard as alternative:</span> '
        f'<span class="intercept-fa" dir="rtl" lang="fa">{alt}</span></div>'
        for alt in description["alternatives_html"])
    return {
        "fa": str(Markup(f'<div class="intercept-fa" dir="rtl" lang="fa">{description["fa_html"]}</div>')
                  + Markup(alternatives)),
        "en": str(english_html(description)),
        "trust": str(trust_html(description)),
        "flags": str(flags_html(description)),
        "at": description["at"],
        "reliability": description["reliability"],
    }


# ---------------------------------------------------------------- reads (intercept.store.review)


async def describe_lines(database, line_ids: list[int]) -> dict[int, dict]:
    """describe_line for each id (missing ids are left out), read on Datasette's connection."""
    if not line_ids:
        return {}
    lines, flags, has_trust = await database.execute_fn(lambda conn: store_review.lines_with_flags(conn, line_ids))
    return {line["id"]: describe_line(line, flags.get(line["id"], []), has_trust) for line in lines}


async def context_ids(database, line_id: int, whole: bool) -> Optional[tuple[dict, list[int]]]:
    """(the line's row, the ids of the lines around it in recording order): CONTEXT_LINES each
    side, or every line of the recording (up to MAX_LINES) when `whole`. None: no such line."""
    return await database.execute_fn(
        lambda conn: store_review.context_ids(conn, line_id, whole, CONTEXT_LINES, MAX_LINES))


# ---------------------------------------------------------------- traffic over time


def parse_bucket(value: str) -> Optional[_dt.datetime]:
    try:
        moment = _dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return moment.replace(tzinfo=None) if moment.tzinfo is None else moment.astimezone(_dt.timezone.utc).replace(tzinfo=None)


async def activity(database, by: str) -> Optional[list[dict]]:
    """Per hour or day (UTC) of lines' absolute times: lines (one per transmission, unless a long
    transmission was decoded as several), flagged lines, confirmed lines. None when the store
    records no recording times (before migration 0006)."""
    size = int(BUCKETS[by].total_seconds())
    # execute_fn runs the counts on Datasette's read connection without its per-query time limit.
    by_bucket = await database.execute_fn(lambda conn: store_review.activity_counts(conn, size))
    if by_bucket is None:
        return None
    epoch = _dt.datetime(1970, 1, 1)
    return [{"bucket": (epoch + _dt.timedelta(seconds=bucket * size)).isoformat(timespec="seconds"), **values}
            for bucket, values in sorted(by_bucket.items()) if bucket is not None][-MAX_BUCKETS:]


async def period_ids(database, start: _dt.datetime, end: _dt.datetime, show: str) -> list[int]:
    """Ids of the lines whose absolute time lies in [start, end): all, flagged or confirmed."""
    first, last = start.strftime("%Y-%m-%d %H:%M:%S"), end.strftime("%Y-%m-%d %H:%M:%S")
    return await database.execute_fn(lambda conn: store_review.period_ids(conn, first, last, show, MAX_LINES))


SERIES = (("lines", "all", "#8c8c8c"), ("flagged", "flagged", "#d98c00"), ("confirmed", "confirmed", "#b00000"))


def activity_svg(buckets: list[dict], by: str, period_url) -> Markup:
    """Grouped bars per bucket (lines, flagged, confirmed); every bar links to its lines
    through `period_url(start, end, show)`. Plain SVG: no script, works offline."""
    if not buckets:
        return Markup("")
    step = BUCKETS[by]
    top = max(max(b["lines"], b["flagged"], b["confirmed"]) for b in buckets) or 1
    bar, gap, height, left, bottom = 7, 6, 220, 40, 70
    group = bar * len(SERIES) + gap
    width = left + group * len(buckets) + 40  # room for the last slanted label
    parts = [f'<svg class="intercept-activity" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height + bottom}" viewBox="0 0 {width} {height + bottom}" role="img" '
             f'aria-label="lines per {by}">']
    for fraction in (0.0, 0.5, 1.0):
        y = height - fraction * (height - 10)
        parts.append(f'<line x1="{left}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{round(top * fraction)}</text>')
    for index, bucket in enumerate(buckets):
        start = parse_bucket(bucket["bucket"])
        end = start + step
        x0 = left + index * group
        for offset, (key, show, colour) in enumerate(SERIES):
            value = bucket[key]
            bar_height = (height - 10) * value / top
            label = f"{bucket['bucket']}: {value} {key}"
            parts.append(
                f'<a class="intercept-bar" data-bucket="{_e(bucket["bucket"])}" data-series="{key}" '
                f'href="{_e(period_url(start, end, show))}"><title>{_e(label)}</title>'
                f'<rect x="{x0 + offset * bar}" y="{height - bar_height:.1f}" width="{bar - 1}" '
                f'height="{max(bar_height, 0.5):.1f}" fill="{colour}"/></a>')
        if len(buckets) <= 48 or index % max(1, len(buckets) // 24) == 0:
            text = bucket["bucket"][5:16].replace("T", " ") if by == "hour" else bucket["bucket"][:10]
            parts.append(f'<text x="{x0 + bar}" y="{height + 8}" font-size="10" '
                         f'transform="rotate(60 {x0 + bar} {height + 8})">{_e(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def period_query(start: _dt.datetime, end: _dt.datetime, show: str) -> str:
    return urlencode({"start": start.isoformat(timespec="seconds"), "end": end.isoformat(timespec="seconds"),
                      "show": show})
