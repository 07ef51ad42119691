"""The review desk for a team (registered by plugin.py):

- `/-/intercept/queue`: the reviewer's queue, lines to judge filling the first screen (text,
  marked words, English, evidence, player, verdict keys); `?show=disputed|confirmed|judged`,
  `?concept=`, `?recording_id=`; lines of recordings someone else has claimed are left out;
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

import html
from typing import Any, Optional
from urllib.parse import urlencode

from datasette.utils.asgi import Response
from markupsafe import Markup

from intercept.scoring import DEFAULT_THRESHOLD
from intercept.store import VERDICTS, team as store_team

from . import desk
from .plugin import DECIDE, MAX_NOTE_CHARS, WRITE_VERDICT, _config, _local_path, store_database
from .doors import write_route

QUEUE_SIZE = 12  # lines per queue page: the first screen holds the next few, the rest one scroll away
SHOWS = {  # ?show= -> (title, where on line_review)
    "queue": ("Lines awaiting review", "verdict IS NULL AND score >= :threshold"),
    "disputed": ("Disputed lines: reviewers differ, a lead decides", f"verdict = '{store_team.DISPUTED}'"),
    "confirmed": ("Confirmed lines", "confirmed = 1"),
    "judged": ("Judged lines", "verdict IS NOT NULL"),
}
VERDICT_LABELS = {"confirmed": "confirmed", "false_positive": "false positive", "unsure": "unsure",
                  store_team.WITHDRAWN: "withdrawn", store_team.DISPUTED: "disputed"}
# The desk's top menu on every intercept page (templates/_crumbs.html).
NAV = (("/-/intercept/queue", "Queue"), ("/-/intercept/queue?show=disputed", "Disputed"),
       ("/-/intercept/timeline", "Timeline"), ("/-/intercept/activity", "Activity"),
       ("/-/intercept/voices", "Voices"), ("/-/intercept/table/verdicts", "Verdicts"),
       ("/-/intercept/progress", "Progress"), ("/-/intercept/exports", "Exports"),
       ("/-/intercept/table/flagged_lines", "Table"))
TABLES = ("verdicts", "flagged_lines")


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


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


async def table_redirect(request, datasette):
    """The store's verdicts table, or flagged_lines as the queue (analysts' view)."""
    from .plugin import table_queue_url

    database = await store_database(datasette)
    if database is None:
        return Response.text("no intercept store is open\n", status=404)
    table = request.url_vars["table"]
    if table == "flagged_lines":
        return Response.redirect(table_queue_url(datasette, database))
    return Response.redirect(datasette.urls.table(database.name, table))


# ---------------------------------------------------------------- who is asking


async def viewer(datasette, request) -> dict:
    actor = request.actor or {}
    can_write = await datasette.permission_allowed(request.actor, WRITE_VERDICT, default=False)
    is_lead = await datasette.permission_allowed(request.actor, DECIDE, default=False)
    token = request.scope["csrftoken"]() if can_write and "csrftoken" in request.scope else ""
    return {"id": actor.get("id"), "can_write": bool(can_write), "is_lead": bool(is_lead), "csrftoken": token}


# ---------------------------------------------------------------- a line's review block


def _time(at: Optional[str]) -> str:
    return (at or "")[:16].replace("T", " ")


def _form(datasette, who: dict, action: str, fields: dict, buttons: list[tuple[str, str, str]], css: str = "") -> str:
    """A POST form of hidden fields and buttons (name, value, label); desk.js sends it with fetch."""
    hidden = "".join(f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in fields.items() if v is not None)
    hidden += f'<input type="hidden" name="csrftoken" value="{_e(who["csrftoken"])}">'
    shown = "".join(f'<button type="submit" name="{_e(n)}" value="{_e(v)}" class="intercept-v-{_e(v)}">{_e(label)}</button>'
                    for n, v, label in buttons)
    return (f'<form class="intercept-action {css}" method="post" action="{_e(datasette.urls.path(action))}">'
            f"{hidden}{shown}</form>")


def review_html(datasette, who: dict, line: dict, review: dict, concepts_known: list[str]) -> Markup:
    """Every flag concept of `line` with its outcome and every verdict on it (reviewer, time,
    note), verdict, withdrawal and decision buttons for who may use them, the line's notes, a
    note box and the reviewer-flag form."""
    line_id = line["id"]
    concepts = list(dict.fromkeys(f.get("concept") for f in line.get("flags", []) if f.get("concept")))
    outcomes = review.get("concepts", {})
    rows = []
    for concept in concepts:
        outcome = outcomes.get(concept, {})
        state = outcome.get("outcome")
        verdicts = [v for v in review.get("verdicts", []) if v.get("concept") in (concept, None)]
        mine = None
        for v in verdicts:
            if v["reviewer"] == who["id"] and not v["decision"]:
                mine = None if v["verdict"] == store_team.WITHDRAWN else v["verdict"]
        badge = (f'<span class="intercept-outcome intercept-v-{_e(state or "none")}">'
                 f'{_e(VERDICT_LABELS.get(state, "awaiting review") if state else "awaiting review")}'
                 f'{" (lead&#39;s decision)" if outcome.get("decision") else ""}</span>')
        if outcome.get("differ") and outcome.get("decision"):
            badge += ' <span class="intercept-differ">reviewers differed</span>'
        controls = ""
        if who["can_write"]:
            buttons = [("verdict", v, VERDICT_LABELS[v]) for v in VERDICTS]
            if mine:
                buttons.append(("verdict", store_team.WITHDRAWN, f"withdraw my {VERDICT_LABELS[mine]}"))
            controls += _form(datasette, who, "/-/intercept/verdict",
                              {"line_id": line_id, "concept": concept}, buttons, "intercept-concept-verdict")
            if who["is_lead"] and (outcome.get("differ") or outcome.get("decision")):
                decide = [("verdict", v, "decide: " + VERDICT_LABELS[v]) for v in VERDICTS]
                if outcome.get("decision"):
                    decide.append(("verdict", store_team.WITHDRAWN, "withdraw the decision"))
                controls += _form(datasette, who, "/-/intercept/verdict",
                                  {"line_id": line_id, "concept": concept, "decision": "1"}, decide, "intercept-decide")
        history = "".join(
            f'<li class="intercept-history-{_e(v["verdict"])}{" intercept-decision" if v["decision"] else ""}">'
            f'<b>{_e(v["reviewer"])}</b>{" (lead)" if v["decision"] else ""}: '
            f'{_e(VERDICT_LABELS.get(v["verdict"], v["verdict"]))} · <time>{_e(_time(v["at"]))}</time>'
            + (f' · <q dir="auto">{_e(v["note"])}</q>' if v.get("note") else "") + "</li>"
            for v in verdicts)
        rows.append(
            f'<div class="intercept-concept" data-concept="{_e(concept)}" data-outcome="{_e(state or "")}">'
            f'<div class="intercept-concept-head"><b>{_e(concept)}</b> {badge} {controls}</div>'
            + (f'<ul class="intercept-history">{history}</ul>' if history else "") + "</div>")
    notes = "".join(f'<li><b>{_e(n["reviewer"])}</b> · <time>{_e(_time(n["at"]))}</time>: '
                    f'<span dir="auto">{_e(n["note"])}</span></li>' for n in review.get("notes", []))
    parts = [f'<div class="intercept-review" data-line-id="{line_id}">', *rows]
    if who["can_write"] and line.get("recording_id") is not None:
        # Claim the line's recording (or its hour of traffic) so that others' queues leave it.
        claims = _form(datasette, who, "/-/intercept/claim", {"recording_id": line["recording_id"]},
                       [("claim", "recording", "claim this recording")], "intercept-claim")
        if line.get("at"):
            claims += _form(datasette, who, "/-/intercept/claim", {"hour": str(line["at"])[:13]},
                            [("claim", "hour", f"claim {str(line['at'])[11:13]}:00 UTC")], "intercept-claim")
        parts.append(f'<div class="intercept-claims-line">{claims}</div>')
    if notes:
        parts.append(f'<ul class="intercept-line-notes">{notes}</ul>')
    if who["can_write"]:
        parts.append(
            f'<form class="intercept-action intercept-note-form" method="post" action="{_e(datasette.urls.path("/-/intercept/note"))}">'
            f'<input type="hidden" name="line_id" value="{line_id}"><input type="hidden" name="csrftoken" value="{_e(who["csrftoken"])}">'
            f'<textarea name="note" dir="auto" rows="1" maxlength="{MAX_NOTE_CHARS}" '
            'placeholder="note (Ctrl+Enter saves it, Esc back to the keys)"></textarea>'
            '<button type="submit">save note</button></form>')
        options = "".join(f'<option value="{_e(c)}">' for c in concepts_known)
        parts.append(
            f'<details class="intercept-add-flag"><summary>mark as coded</summary>'
            f'<form class="intercept-action intercept-flag-form" method="post" action="{_e(datasette.urls.path("/-/intercept/reviewer-flag"))}">'
            f'<input type="hidden" name="line_id" value="{line_id}"><input type="hidden" name="csrftoken" value="{_e(who["csrftoken"])}">'
            f'<label>concept <input name="concept" dir="auto" list="intercept-concepts-{line_id}" required '
            f'placeholder="a lexicon concept or a new term"></label><datalist id="intercept-concepts-{line_id}">{options}</datalist> '
            '<label>heard as <input name="heard_form" dir="auto" placeholder="the word as heard (optional)"></label> '
            '<label><input type="checkbox" name="suggest" value="1"> propose it to the lexicon</label> '
            '<label>note <input name="note" dir="auto"></label> <button type="submit">add reviewer flag</button>'
            "</form></details>")
    parts.append("</div>")
    return Markup("".join(parts))


async def _known_concepts(database) -> list[str]:
    rows = await database.execute("select distinct concept from lexicon_terms order by concept limit 2000")
    return [row[0] for row in rows if row[0]]


async def review_blocks(datasette, request, database, lines: list[dict]) -> dict[int, Markup]:
    """review_html of each described line, for `request`'s viewer."""
    if not lines:
        return {}
    who = await viewer(datasette, request)
    reviews = await database.execute_fn(lambda conn: store_team.review_of_lines(conn, [line["id"] for line in lines]))
    known = await _known_concepts(database) if who["can_write"] else []
    return {line["id"]: review_html(datasette, who, line, reviews.get(line["id"], {}), known) for line in lines}


async def review_json(request, datasette):
    from .pages import _ids

    try:
        ids = _ids(request)
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
    from .pages import _page

    return await _page(datasette, request, "intercept_lines.html", context)


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
    title, where = SHOWS[show]
    params: dict[str, Any] = {"threshold": DEFAULT_THRESHOLD, "n": QUEUE_SIZE + 1, "skip": page * QUEUE_SIZE}
    claims = await database.execute_fn(store_team.open_claims)
    others = sorted({c["recording_id"] for c in claims if c["recording_id"] is not None and c["reviewer"] != who["id"]})
    conditions = [where]
    if recording_id is not None:
        conditions.append("recording_id = :recording_id")
        params["recording_id"] = recording_id
    elif others and show == "queue":
        # Someone else is working these recordings: leave them to them.
        conditions.append(f"recording_id NOT IN ({','.join(str(int(r)) for r in others)})")
    if concept:
        conditions.append("line_id IN (SELECT line_id FROM flags WHERE concept = :concept)")
        params["concept"] = concept
    order = "score DESC, line_id" if show == "queue" else "verdict_at DESC, line_id"
    sql = f"select line_id from line_review where {' and '.join(conditions)} order by {order} limit :n offset :skip"
    ids = [row[0] for row in await database.execute(sql, params)]
    more = len(ids) > QUEUE_SIZE
    ids = ids[:QUEUE_SIZE]
    counts = (await database.execute(
        "select (select count(*) from line_review where verdict is null and score >= :t), "
        f"(select count(*) from line_review where verdict = '{store_team.DISPUTED}')",
        {"t": DEFAULT_THRESHOLD})).first()
    described = await desk.describe_lines(database, ids)
    lines = [described[i] for i in ids if i in described]
    base = datasette.urls.path("/-/intercept/queue")

    def link(**changes) -> str:
        args = {"show": show, "concept": concept, "recording_id": recording_id, "page": page, **changes}
        return base + "?" + urlencode({k: v for k, v in args.items() if v not in (None, "", 0) or k == "show"})

    table = datasette.urls.table(database.name, "flagged_lines")
    tabs = [(key, SHOWS[key][0].split(":")[0], base + "?show=" + key) for key in SHOWS]
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
    from .pages import _page

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
    idle_min = int(_config(datasette).get("claim_idle_s", store_team.CLAIM_IDLE_S) // 60)
    html_parts.append(f"<h2>Claims</h2><p>A claim keeps others' queues off a recording; it lapses after {idle_min} "
                      f"minutes without a verdict or note from its holder.</p>"
                      + (f'<ul class="intercept-claims">{claim_rows}</ul>' if claim_rows else "<p>No claims.</p>"))
    if who["can_write"]:
        html_parts.append(_claim_form(datasette, who))
    title = f"Progress of {reviewer}" if reviewer else "Progress of the review"
    return await _page(datasette, request, "intercept_lines.html", {
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
    from .pages import _page

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
    return await _page(datasette, request, "intercept_lines.html", {
        "title": "Lexicon suggestions", "page_title": "Lexicon suggestions", "lines": [], "focus_id": None,
        "whole": False, "recording_name": None, "other_view": None, "desk": desk,
        "header": Markup(intro + (body if rows else "<p>No suggestions yet.</p>")), "no_keys": True, "empty": ""})


async def exports_page(request, datasette):
    from .pages import _page

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
    return await _page(datasette, request, "intercept_lines.html", {
        "title": "Exports", "page_title": "Exports", "lines": [], "focus_id": None, "whole": False,
        "recording_name": None, "other_view": None, "desk": desk, "header": Markup(body), "no_keys": True,
        "empty": ""})


async def timeline_page(request, datasette):
    """The recordings, each linking to its timeline (every line in order)."""
    from .pages import _page

    database = await store_database(datasette)
    if database is None:
        return Response.text("no intercept store is open\n", status=404)
    rows = [dict(r) for r in await database.execute(
        "select recordings.id as recording_id, recordings.path as recording, "
        "(select count(*) from line_review r where r.recording_id = recordings.id) as flagged "
        "from recordings where status = 'done' order by recordings.path limit 2000")]
    timeline = str(datasette.urls.database(database.name)) + "/timeline?recording_id="
    body = _figures_table(rows, [("recording", "recording"), ("flagged", "flagged lines")],
                          lambda row: timeline + str(row["recording_id"]))
    return await _page(datasette, request, "intercept_lines.html", {
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


async def _writer(request, datasette):
    """(form, reviewer, database) or an error Response: POST, a writable store, a logged-in reviewer."""
    if request.method != "POST":
        return Response.text("POST here; see docs/review.md\n", status=405)
    if _config(datasette).get("read_only"):
        return Response.text("the store is read-only here\n", status=403)
    if not await datasette.permission_allowed(request.actor, WRITE_VERDICT, default=False):
        return Response.text("only logged-in reviewers may write: log in at /-/login\n", status=403)
    database = await store_database(datasette)
    if database is None:
        return Response.text("no intercept store is open\n", status=404)
    return await request.post_vars(), request.actor["id"], database


async def _write(request, datasette, form, database, action, *args, **kwargs) -> Response:
    try:
        result = await database.execute_write_fn(lambda conn: store_team.write_team(conn, action, *args, **kwargs))
    except store_team.TeamError as error:
        return Response.text(str(error) + "\n", status=400)
    next_path = _local_path(form.get("next", ""))
    if next_path:
        return Response.redirect(next_path)
    return Response.json({"ok": True, "result": result})


def _int(form, name: str) -> Optional[int]:
    value = (form.get(name) or "").strip()
    return int(value) if value else None


@write_route
async def post_note(request, datasette):
    found = await _writer(request, datasette)
    if isinstance(found, Response):
        return found
    form, reviewer, database = found
    try:
        line_id = _int(form, "line_id")
    except ValueError:
        return Response.text("line_id must be an integer\n", status=400)
    note = form.get("note", "")
    if line_id is None or len(note) > MAX_NOTE_CHARS:
        return Response.text(f"give line_id and a note of at most {MAX_NOTE_CHARS} characters\n", status=400)
    return await _write(request, datasette, form, database, store_team.add_note, line_id, note, reviewer)


@write_route
async def post_reviewer_flag(request, datasette):
    found = await _writer(request, datasette)
    if isinstance(found, Response):
        return found
    form, reviewer, database = found
    try:
        line_id = _int(form, "line_id")
    except ValueError:
        return Response.text("line_id must be an integer\n", status=400)
    if line_id is None:
        return Response.text("give line_id\n", status=400)
    note = form.get("note", "").strip()
    if len(note) > MAX_NOTE_CHARS:
        return Response.text(f"note is longer than {MAX_NOTE_CHARS} characters\n", status=400)
    heard = form.get("heard_form", "").strip() or None
    suggest = form.get("suggest") == "1"
    if suggest and not heard:
        return Response.text("to propose a form to the lexicon, give the form as heard\n", status=400)
    return await _write(request, datasette, form, database, store_team.add_reviewer_flag, line_id,
                        form.get("concept", ""), reviewer, note, heard_form=heard, suggest=suggest)


@write_route
async def post_claim(request, datasette):
    found = await _writer(request, datasette)
    if isinstance(found, Response):
        return found
    form, reviewer, database = found
    try:
        recording_id = _int(form, "recording_id")
    except ValueError:
        return Response.text("recording_id must be an integer\n", status=400)
    hour = (form.get("hour") or "").strip() or None
    idle_s = float(_config(datasette).get("claim_idle_s", store_team.CLAIM_IDLE_S))
    return await _write(request, datasette, form, database, store_team.claim, reviewer, recording_id, hour, idle_s)


@write_route
async def post_release(request, datasette):
    found = await _writer(request, datasette)
    if isinstance(found, Response):
        return found
    form, reviewer, database = found
    try:
        claim_id = _int(form, "claim_id")
    except ValueError:
        return Response.text("claim_id must be an integer\n", status=400)
    if claim_id is None:
        return Response.text("give claim_id\n", status=400)
    return await _write(request, datasette, form, database, store_team.release, reviewer, claim_id)
