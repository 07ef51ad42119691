"""The review desk for a team (registered by plugin.py):

- `/-/intercept/queue`: the reviewer's queue, lines to judge filling the first screen (text,
  marked words, English, evidence, player, verdict keys); `?show=disputed|confirmed|judged`,
  `?concept=`, `?recording_id=`; lines of recordings or hours of traffic someone else has
  claimed are left out;
- each line's review block (also on the context and period pages): every flag concept with its
  outcome, every verdict with reviewer, time and note, buttons for a verdict per concept,
  withdrawal, a lead's decision, notes, and a reviewer flag (mark the line as coded);
- `/-/intercept/progress` (`?reviewer=`): reviewed today / in all, remaining, disputed, by
  recording and by hour; claims on recordings and hours of traffic;
- `/-/intercept/suggestions`: forms reviewers proposed for the lexicon (never applied);
- POST `/-/intercept/note`, `/-/intercept/reviewer-flag`, `/-/intercept/claim`,
  `/-/intercept/release`: logged-in reviewers only, behind Datasette's CSRF protection (as the
  verdict route); every write is one store transaction (intercept.store.team).

What a verdict means is defined once, in intercept.store.team.
"""
from __future__ import annotations

import functools
from typing import Optional
from urllib.parse import urlencode

from datasette.utils.asgi import Response
from markupsafe import Markup

from intercept.scoring import DEFAULT_THRESHOLD
from intercept.store import review as store_review
from intercept.store import team as store_team

from . import desk
from .blocks import _e, _form, _time, review_blocks, viewer
from .doors import write_route
from .render import line_ids, render_page
from .site import MAX_NOTE_CHARS, config, local_path, store_database

QUEUE_SIZE = 12  # lines per queue page: the first screen holds the next few, the rest one scroll away
SHOWS = {  # ?show= -> title (which lines each shows: intercept.store.review.QUEUE_SHOWS)
    "queue": "Lines awaiting review",
    "disputed": "Disputed lines: reviewers differ, a lead decides",
    "confirmed": "Confirmed lines",
    "judged": "Judged lines",
}
NAV = (("/-/intercept/queue", "Queue"), ("/-/intercept/queue?show=disputed", "Disputed"),
       ("/-/intercept/timeline", "Timeline"), ("/-/intercept/activity", "Activity"),
       ("/-/intercept/voices", "Voices"), ("/-/intercept/table/verdicts", "Verdicts"),
       ("/-/intercept/progress", "Progress"), ("/-/intercept/exports", "Exports"),
       ("/-/intercept/table/flagged_lines", "Table"))
TABLES = ("verdicts", "flagged_lines")


def routes() -> list:
    return [
        (r"^/-/intercept/queue$", queue_page),
        (r"^/-/intercept/progress$", progress_page),
        (r"^/-/intercept/suggestions$", suggestions_page),
        (r"^/-/intercept/exports$", exports_page),
        (r"^/-/intercept/timeline$", timeline_page),
        (r"^/-/intercept/review\.json$", review_json),
        (r"^/-/intercept/search$", search_page),
        (r"^/-/intercept/table/(?P<table>verdicts|flagged_lines)$", table_redirect),
        (r"^/-/intercept/note$", post_note),
        (r"^/-/intercept/reviewer-flag$", post_reviewer_flag),
        (r"^/-/intercept/claim$", post_claim),
        (r"^/-/intercept/release$", post_release),
    ]


def table_queue_url(datasette, database) -> str:
    """The review queue as Datasette's table view of flagged_lines."""
    url = datasette.urls.table(database.name, "flagged_lines")
    # reviewer and verdict_at are empty on lines nobody has judged: leave them out. The queue
    # hides lines whose best flag scores under the default threshold (removing that filter
    # shows them: nothing is deleted).
    query = [("verdict__isnull", "1"), ("score__gte", str(DEFAULT_THRESHOLD)), ("_sort_desc", "score"),
             ("_nocol", "reviewer"), ("_nocol", "verdict_at")]
    return url + "?" + urlencode(query)


async def table_redirect(request, datasette):
    """The store's verdicts table, or flagged_lines as the queue (analysts' view)."""
    database = await store_database(datasette)
    if database is None:
        return Response.text("no intercept store is open\n", status=404)
    table = request.url_vars["table"]
    if table == "flagged_lines":
        return Response.redirect(table_queue_url(datasette, database))
    return Response.redirect(datasette.urls.table(database.name, table))




async def review_json(request, datasette):
    try:
        ids = line_ids(request)
    except ValueError as error:
        return Response.text(str(error) + "\n", status=400)
    database = await store_database(datasette)
    if database is None:
        return Response.text("no intercept store is open\n", status=404)
    described = await desk.describe_lines(database, ids)
    lines = [described[i] for i in ids if i in described]
    blocks = await review_blocks(datasette, request, database, lines)
    return Response.json({str(line["id"]): {"review": str(blocks[line["id"]]), "verdict": line.get("verdict"),
                                            "flagged": bool(line.get("flags"))} for line in lines})


# ---------------------------------------------------------------- pages


async def _render(datasette, request, context: dict) -> Response:
    return await render_page(datasette, request, "intercept_lines.html", context)


async def queue_page(request, datasette):
    show = request.args.get("show", "queue")
    if show not in SHOWS:
        return Response.text(f"show must be one of {', '.join(SHOWS)}, got {show!r}\n", status=400)
    database = await store_database(datasette)
    if database is None:
        return Response.text("no intercept store is open\n", status=404)
    try:
        page = max(0, int(request.args.get("page", "0")))
        recording_id = int(request.args["recording_id"]) if request.args.get("recording_id") else None
    except ValueError:
        return Response.text("page and recording_id must be integers\n", status=400)
    concept = request.args.get("concept") or None
    who = await viewer(datasette, request)
    title = SHOWS[show]
    claims = await database.execute_fn(store_team.open_claims)
    # Someone else is working these recordings: leave them to them (in the queue itself).
    others = sorted({c["recording_id"] for c in claims if c["recording_id"] is not None and c["reviewer"] != who["id"]})
    hours = sorted({c["hour"] for c in claims if c["hour"] is not None and c["reviewer"] != who["id"]})
    ids = await database.execute_fn(lambda conn: store_review.queue_ids(
        conn, show, DEFAULT_THRESHOLD, QUEUE_SIZE + 1, page * QUEUE_SIZE, recording_id,
        others if show == "queue" else (), concept, hours if show == "queue" else ()))
    more = len(ids) > QUEUE_SIZE
    ids = ids[:QUEUE_SIZE]
    counts = await database.execute_fn(lambda conn: store_review.queue_counts(conn, DEFAULT_THRESHOLD))
    described = await desk.describe_lines(database, ids)
    lines = [described[i] for i in ids if i in described]
    base = datasette.urls.path("/-/intercept/queue")

    def link(**changes) -> str:
        args = {"show": show, "concept": concept, "recording_id": recording_id, "page": page, **changes}
        return base + "?" + urlencode({k: v for k, v in args.items() if v not in (None, "", 0) or k == "show"})

    table = datasette.urls.table(database.name, "flagged_lines")
    tabs = [(key, SHOWS[key].split(":")[0], base + "?show=" + key) for key in SHOWS]
    filters = " · ".join(x for x in [f"concept <b>{_e(concept)}</b> (<a href=\"{_e(link(concept=None, page=0))}\">all</a>)" if concept else "",
                                     f"recording {recording_id} (<a href=\"{_e(link(recording_id=None, page=0))}\">all</a>)" if recording_id else ""] if x)
    claimed = [c for c in claims if c["reviewer"] != who["id"]]
    header = Markup(
        '<div class="intercept-queue-bar">'
        + "".join(f'<a class="intercept-tab{" intercept-tab-on" if key == show else ""}" href="{_e(url)}">{_e(label)}</a>'
                  for key, label, url in tabs)
        + f' <span class="intercept-counts">{counts[0]} awaiting · {counts[1]} disputed</span>'
        + (f' <span class="intercept-filters">{filters}</span>' if filters else "")
        + search_box(datasette)
        + f' <a class="intercept-facets-link" href="{_e(table)}?{_e(urlencode([("verdict__isnull", "1"), ("score__gte", str(DEFAULT_THRESHOLD))]))}">filters and facets</a>'
        + (f' <span class="intercept-claimed" title="left out of your queue">claimed by others: '
           + ", ".join(_e(f"{c['reviewer']}: " + (f"recording {c['recording_id']}" if c["recording_id"] else f"hour {c['hour']}"))
                       for c in claimed) + "</span>" if claimed else "")
        + "</div>")
    pager = Markup(" ".join(x for x in [
        f'<a href="{_e(link(page=page - 1))}">previous {QUEUE_SIZE}</a>' if page else "",
        f'<a href="{_e(link(page=page + 1))}">next {QUEUE_SIZE}</a>' if more else ""] if x))
    return await _render(datasette, request, {
        "title": title, "page_title": title, "lines": lines, "focus_id": None, "whole": False,
        "recording_name": None, "other_view": None, "desk": desk, "header": header, "pager": pager,
        "queue": True, "empty": "Nothing here: every line is judged." if show == "queue" else "No lines.",
    })


def _figures_table(rows: list[dict], columns: list[tuple[str, str]], link=None) -> str:
    head = "".join(f"<th>{_e(label)}</th>" for _, label in columns)
    body = []
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key)
            text = _e(value if value is not None else 0)
            if link and key == columns[0][0]:
                text = f'<a href="{_e(link(row))}">{text}</a>'
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="intercept-figures"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


async def progress_page(request, datasette):
    database = await store_database(datasette)
    if database is None:
        return Response.text("no intercept store is open\n", status=404)
    reviewer = request.args.get("reviewer") or None
    figures = await database.execute_fn(lambda conn: store_team.progress(conn, reviewer, threshold=DEFAULT_THRESHOLD))
    from pathlib import Path

    for row in figures["by_recording"]:
        row["recording"] = Path(str(row["recording"])).name  # the file name reviewers know
    for row in figures["by_hour"]:
        row["hour"] = str(row["hour"]).replace("T", " ") + ":00"
    claims = await database.execute_fn(store_team.open_claims)
    who = await viewer(datasette, request)
    queue = datasette.urls.path("/-/intercept/queue")
    progress_url = datasette.urls.path("/-/intercept/progress")
    summary = [("reviewed today", figures["reviewed_today"]), ("reviewed in all", figures["reviewed"]),
               ("remaining (in the queue)", figures["remaining"]), ("disputed", figures["disputed"]),
               ("confirmed", figures["confirmed"]), ("flagged lines", figures["flagged"])]
    html_parts = ['<dl class="intercept-summary">'
                  + "".join(f'<div data-figure="{_e(label.split(" (")[0])}"><dt>{_e(label)}</dt><dd>{value}</dd></div>'
                            for label, value in summary) + "</dl>"]
    if not reviewer:
        html_parts.append("<h2>Reviewers</h2>" + _figures_table(
            figures["reviewers"], [("reviewer", "reviewer"), ("today", "lines today"), ("lines", "lines in all"),
                                   ("last_at", "last verdict")],
            lambda row: progress_url + "?" + urlencode({"reviewer": row["reviewer"]})))
    html_parts.append("<h2>By recording</h2>" + _figures_table(
        figures["by_recording"], [("recording", "recording"), ("flagged", "flagged"), ("reviewed", "reviewed"),
                                  ("remaining", "remaining"), ("disputed", "disputed"), ("confirmed", "confirmed")],
        lambda row: queue + "?" + urlencode({"recording_id": row["recording_id"]})))
    html_parts.append("<h2>By hour (UTC) of the verdicts</h2>" + _figures_table(
        figures["by_hour"], [("hour", "hour"), ("lines", "lines judged"), ("verdicts", "verdicts"),
                             ("reviewers", "reviewers")]))
    claim_rows = "".join(
        f'<li><b>{_e(c["reviewer"])}</b>: '
        + (f'recording {_e(c["recording_id"])}' if c["recording_id"] is not None else f'hour {_e(c["hour"])}:00 UTC')
        + f' since {_e(_time(c["claimed_at"]))}, last active {_e(_time(c["renewed_at"]))}'
        + (_form(datasette, who, "/-/intercept/release", {"claim_id": c["id"]}, [("release", "1", "release")], "intercept-inline")
           if who["can_write"] and c["reviewer"] == who["id"] else "") + "</li>"
        for c in claims)
    idle_min = int(config(datasette).get("claim_idle_s", store_team.CLAIM_IDLE_S) // 60)
    html_parts.append(f"<h2>Claims</h2><p>A claim keeps others' queues off a recording; it lapses after {idle_min} "
                      f"minutes without a verdict or note from its holder.</p>"
                      + (f'<ul class="intercept-claims">{claim_rows}</ul>' if claim_rows else "<p>No claims.</p>"))
    if who["can_write"]:
        html_parts.append(_claim_form(datasette, who))
    title = f"Progress of {reviewer}" if reviewer else "Progress of the review"
    return await render_page(datasette, request, "intercept_lines.html", {
        "title": title, "page_title": title, "lines": [], "focus_id": None, "whole": False, "recording_name": None,
        "other_view": (progress_url, "the whole team") if reviewer else None, "desk": desk,
        "header": Markup("".join(html_parts)), "no_keys": True, "empty": ""})


def _claim_form(datasette, who: dict) -> str:
    return (f'<form class="intercept-action intercept-claim-form" method="post" action="{_e(datasette.urls.path("/-/intercept/claim"))}">'
            f'<input type="hidden" name="csrftoken" value="{_e(who["csrftoken"])}">'
            '<label>claim recording <input name="recording_id" size="6" inputmode="numeric"></label> or '
            '<label>hour <input name="hour" size="14" placeholder="2019-11-12T21"></label> '
            '<button type="submit">claim</button></form>')


async def suggestions_page(request, datasette):
    database = await store_database(datasette)
    if database is None:
        return Response.text("no intercept store is open\n", status=404)
    rows = await database.execute_fn(lambda conn: store_team.lexicon_suggestions(conn, None))
    context_url = datasette.urls.path("/-/intercept/context/")
    body = _figures_table(
        [{**row, "line": row["line_id"]} for row in rows],
        [("line", "line"), ("concept", "concept"), ("form", "heard form"), ("note", "note"),
         ("suggested_by", "by"), ("suggested_at", "when"), ("status", "status")],
        lambda row: f"{context_url}{row['line_id']}")
    intro = ("<p>Forms reviewers heard and proposed for the lexicon. Nothing here changes the lexicon: its editor "
             "adds a form to the lexicon file by hand (<code>intercept lexicon suggestions STORE</code> lists the "
             "same).</p>")
    return await render_page(datasette, request, "intercept_lines.html", {
        "title": "Lexicon suggestions", "page_title": "Lexicon suggestions", "lines": [], "focus_id": None,
        "whole": False, "recording_name": None, "other_view": None, "desk": desk,
        "header": Markup(intro + (body if rows else "<p>No suggestions yet.</p>")), "no_keys": True, "empty": ""})


async def exports_page(request, datasette):
    database = await store_database(datasette)
    name = database.name if database else "store"
    confirmed = datasette.urls.table(name, "confirmed_lines")
    disputed = datasette.urls.table(name, "disputed_lines")
    body = (
        "<ul>"
        f'<li><a href="{_e(confirmed)}">Confirmed lines</a> (<a href="{_e(confirmed)}.csv?_size=max">CSV</a>, '
        f'<a href="{_e(confirmed)}.json?_shape=array&amp;_size=max">JSON</a>): the same set as '
        "<code>intercept export --confirmed-only</code></li>"
        f'<li><a href="{_e(disputed)}">Disputed lines</a> (<a href="{_e(disputed)}.csv?_size=max">CSV</a>)</li>'
        f'<li><a href="{_e(datasette.urls.table(name, "verdicts"))}">Every verdict</a>, with withdrawals and '
        "decisions</li>"
        f'<li><a href="{_e(datasette.urls.path("/-/intercept/suggestions"))}">Lexicon suggestions</a></li>'
        "</ul><p>Reports and evidence bundles of any selection: <code>intercept export STORE --format "
        "csv|jsonl|srt|vtt|bundle [--flagged-only] [--confirmed-only]</code>; on the queue, the link above the "
        "lines downloads the bundle of the lines on screen.</p>")
    return await render_page(datasette, request, "intercept_lines.html", {
        "title": "Exports", "page_title": "Exports", "lines": [], "focus_id": None, "whole": False,
        "recording_name": None, "other_view": None, "desk": desk, "header": Markup(body), "no_keys": True,
        "empty": ""})


async def timeline_page(request, datasette):
    """The recordings, each linking to its timeline (every line in order)."""
    database = await store_database(datasette)
    if database is None:
        return Response.text("no intercept store is open\n", status=404)
    rows = await database.execute_fn(store_review.timeline_recordings)
    timeline = str(datasette.urls.database(database.name)) + "/timeline?recording_id="
    body = _figures_table(rows, [("recording", "recording"), ("flagged", "flagged lines")],
                          lambda row: timeline + str(row["recording_id"]))
    return await render_page(datasette, request, "intercept_lines.html", {
        "title": "Timelines of the recordings", "page_title": "Timelines", "lines": [], "focus_id": None,
        "whole": False, "recording_name": None, "other_view": None, "desk": desk, "header": Markup(body),
        "no_keys": True, "empty": ""})


_TEXT_TOOLS = "_intercept_text_tools"


async def _farsi_forms(datasette):
    """intercept.text.search_forms with the project's normaliser and lemmatiser, built once
    per Datasette in a thread (hazm takes seconds to load)."""
    import asyncio

    tools = getattr(datasette, _TEXT_TOOLS, None)
    if tools is None:
        def build():
            from intercept.text import PersianLemmatizer, PersianNormalizer

            return PersianNormalizer(), PersianLemmatizer()

        tools = await asyncio.to_thread(build)
        setattr(datasette, _TEXT_TOOLS, tools)
    from intercept.text import search_forms

    normalizer, lemmatizer = tools
    return normalizer, lambda word: search_forms(word, normalizer, lemmatizer)


def search_box(datasette, query: str = "") -> str:
    return (f'<form class="intercept-search" method="get" action="{_e(datasette.urls.path("/-/intercept/search"))}">'
            f'<input type="search" name="q" dir="auto" value="{_e(query)}" '
            'placeholder="search Farsi or English (پرنده‌ها finds پرنده; a OR b)" size="34">'
            '<button type="submit">search</button></form>')


async def search_page(request, datasette):
    """Lines whose Farsi or English holds the query's words, Farsi words in any inflection, each
    with its player and review block."""
    from intercept.store.search import ARABIC_SCRIPT, fts_expression, search_line_ids

    query = (request.args.get("q") or "").strip()
    database = await store_database(datasette)
    if database is None:
        return Response.text("no intercept store is open\n", status=404)
    ids: list[int] = []
    expression = None
    if query:
        normalizer, forms = await _farsi_forms(datasette)
        # The whole query first, so that a word typed with a space before ها joins as stored.
        expression = fts_expression(normalizer.normalize(query) if ARABIC_SCRIPT.search(query) else query, forms)
        if expression:
            ids = await database.execute_fn(lambda conn: search_line_ids(conn, expression, 200))
    described = await desk.describe_lines(database, ids)
    lines = [described[i] for i in ids if i in described]
    title = f"Search: {query}" if query else "Search"
    found = (f"<p>{len(lines)} line{'s' if len(lines) != 1 else ''}{' (the best 200)' if len(lines) == 200 else ''}. "
             f'<span class="intercept-expression" title="the full-text query">{_e(expression)}</span></p>'
             if query else "")
    return await _render(datasette, request, {
        "title": title, "page_title": title, "lines": lines, "focus_id": None, "whole": False,
        "recording_name": None, "other_view": None, "desk": desk,
        "header": Markup(search_box(datasette, query) + found), "empty": "No line holds these words." if query else "",
    })


# ---------------------------------------------------------------- writes


class _BadForm(ValueError):
    """A write's form is wrong: answered 400 with this message."""


def _team_write(handler):
    """The team routes' common part: (form, reviewer, store) for the handler, a 404 when no
    store is open, a 400 naming the field when the form is wrong. The checks every write needs
    (POST, a writable store, a reviewer's login, the CSRF token) are doors.write_route's, which
    wraps each route below."""

    async def route(request, datasette):
        database = await store_database(datasette)
        if database is None:
            return Response.text("no intercept store is open\n", status=404)
        form = await request.post_vars()
        try:
            action, *args = handler(form, request.actor["id"], datasette)
        except _BadForm as error:
            return Response.text(f"{error}\n", status=400)
        try:
            result = await database.execute_write_fn(lambda conn: store_team.write_team(conn, action, *args))
        except store_team.TeamError as error:
            return Response.text(str(error) + "\n", status=400)
        next_path = local_path(form.get("next", ""))
        if next_path:
            return Response.redirect(next_path)
        return Response.json({"ok": True, "result": result})

    # Not functools.wraps: Datasette reads a route's parameters from its signature, which
    # would then be the handler's.
    route.__name__, route.__doc__ = handler.__name__, handler.__doc__
    return route


def _int(form, name: str, required: bool = True) -> Optional[int]:
    value = (form.get(name) or "").strip()
    if not value:
        if required:
            raise _BadForm(f"give {name}")
        return None
    try:
        return int(value)
    except ValueError:
        raise _BadForm(f"{name} must be an integer") from None


def _note(form) -> str:
    note = form.get("note", "").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise _BadForm(f"give a note of at most {MAX_NOTE_CHARS} characters")
    return note


# Each handler turns the form into (store_team action, its arguments).

@write_route
@_team_write
def post_note(form, reviewer, datasette):
    return store_team.add_note, _int(form, "line_id"), _note(form), reviewer


@write_route
@_team_write
def post_reviewer_flag(form, reviewer, datasette):
    heard = form.get("heard_form", "").strip() or None
    suggest = form.get("suggest") == "1"
    if suggest and not heard:
        raise _BadForm("to propose a form to the lexicon, give the form as heard")
    add = functools.partial(store_team.add_reviewer_flag, heard_form=heard, suggest=suggest)
    return add, _int(form, "line_id"), form.get("concept", ""), reviewer, _note(form)


@write_route
@_team_write
def post_claim(form, reviewer, datasette):
    hour = (form.get("hour") or "").strip() or None
    idle_s = float(config(datasette).get("claim_idle_s", store_team.CLAIM_IDLE_S))
    return store_team.claim, reviewer, _int(form, "recording_id", required=False), hour, idle_s


@write_route
@_team_write
def post_release(form, reviewer, datasette):
    return store_team.release, reviewer, _int(form, "claim_id")
