"""The Datasette plugin behind the review UI.

What it adds to Datasette:
- `/` redirects to the flagged lines awaiting review (only when started through
  `intercept.review`, which sets the plugin's configuration);
- Farsi cells right to left; on every line id an `<audio>` player and, where the row has a
  verdict column, the verdict form; a link from each recording to its timeline;
- `/-/intercept/audio/{line_id}.wav?context=S`: the line's stretch of the original recording;
- `/-/intercept/verdict` (POST): a reviewer's verdict, written through `Store.add_verdict`;
  logged-in reviewers only, with its CSRF token (doors.write_route);
- a `flag` facet counting each concept, category or match kind of a line's flags on its own
  (the view's comma lists count combinations), and `?_flag_concept=fox` style filters behind it;
- Farsi in `?_search=` normalised like the stored text (intercept.text.PersianNormalizer);
- `/-/intercept/static/...`: our CSS and JavaScript.

Logins, sessions and who may read are doors.py's; this module only decides who may write.
"""
from __future__ import annotations

import asyncio
import html
import json
import re
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qsl, unquote_plus, urlencode

from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.facets import Facet
from datasette.filters import FilterArguments
from datasette.utils import path_with_added_args, path_with_removed_args
from datasette.utils.asgi import Response, asgi_static
from markupsafe import Markup

from intercept.audio import AudioError, extract_clip
from intercept.store import VERDICTS, write_verdict
from intercept.store import review as store_review

from . import pages, team
from .blocks import viewer
from .doors import doors_of, write_route
from .ranges import ranged_response
from .site import (DECIDE, MAX_NOTE_CHARS, PLUGIN_NAME, STATIC_DIR, WRITE_VERDICT, audio_url, config, for_stores,
                   is_store, local_path, on_store_pages, store_database)

MAX_CONTEXT_S = 30.0

# Columns holding Farsi whatever their content; other text cells are set right to left when
# they contain Arabic-script letters (lexicon forms, matched spans).
FARSI_COLUMNS = frozenset({"text_fa", "text_fa_raw"})
ARABIC_SCRIPT = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
# Where a line id sits: (table, column); table None is a canned or custom query.
LINE_ID_CELLS = frozenset({("lines", "id"), ("flagged_lines", "line_id"), (None, "line_id")})
VERDICT_CELLS = frozenset({("flagged_lines", "verdict"), (None, "verdict")})
RECORDING_CELLS = frozenset({("flagged_lines", "recording"), (None, "recording")})


def _audio_markup(datasette, database: str, line_id: Any, linked_table: str) -> Markup:
    row_url = str(datasette.urls.table(database, linked_table)) + f"/{int(line_id)}"
    context_s = float(config(datasette).get("context_s", 2.0))
    return Markup(
        '<div class="intercept-line">'
        f'<a href="{html.escape(row_url)}">{int(line_id)}</a> '
        f'<audio class="intercept-audio" controls preload="none" data-line-id="{int(line_id)}" '
        f'src="{html.escape(audio_url(datasette, line_id))}"></audio> '
        f'<a class="intercept-context" title="play with {context_s:g} s either side" '
        f'href="{html.escape(audio_url(datasette, line_id, context_s))}">&plusmn;{context_s:g}&nbsp;s</a>'
        "</div>"
    )


def _current_verdict_markup(current: Optional[str]) -> Markup:
    shown = html.escape(current.replace("_", " ")) if current else "awaiting review"
    return Markup(
        f'<span class="intercept-verdict-current intercept-v-{html.escape(current or "none")}">{shown}</span>'
    )


def _verdict_form_markup(datasette, line_id: int) -> Markup:
    # The CSRF token and the page to come back to are filled in by review.js, because
    # render_cell is not given the request in Datasette 0.65; the server checks both anyway.
    buttons = "".join(
        f'<button type="submit" name="verdict" value="{v}" class="intercept-v-{v}">'
        f'{v.replace("_", " ")}</button>'
        for v in VERDICTS
    )
    # The first submit button is the form's default: disabled, so Enter in the note submits
    # nothing (it used to submit "confirmed"). The buttons judge all of the line's flags.
    return Markup(
        f'<form class="intercept-verdict" method="post" action="{html.escape(str(datasette.urls.path("/-/intercept/verdict")))}">'
        '<button type="submit" disabled hidden aria-hidden="true" tabindex="-1"></button>'
        '<input type="hidden" name="csrftoken" value="">'
        '<input type="hidden" name="next" value="">'
        f'<input type="hidden" name="line_id" value="{int(line_id)}">'
        f'<input type="text" name="note" dir="auto" placeholder="note" maxlength="{MAX_NOTE_CHARS}">'
        f"{buttons}</form>"
    )


@hookimpl
def startup(datasette):
    async def find_stores():
        for name in list(datasette.databases):
            await is_store(datasette, name)

    # Datasette 0.65.5 calls rich's print_exception() for every error page when rich is
    # importable, also outside an except block (a plain 404), where rich raises ValueError
    # and turns the 404 into a crash. rich arrives with transformers (via typer). Turning
    # off only that console pretty-printer keeps Datasette's own handling; remove once a
    # Datasette release fixes it.
    import datasette.handle_exception as handle_exception

    handle_exception.rich = None
    return find_stores


@hookimpl
def prepare_jinja2_environment(env, datasette):
    env.globals["intercept_nav"] = team.NAV  # the desk's top menu, drawn by templates/_crumbs.html


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    return for_stores(datasette, database, lambda: _render_cell(row, value, column, table, database, datasette))


def _render_cell(row, value, column, table, database, datasette):
    keys = set(row.keys()) if hasattr(row, "keys") else set()
    # A line without flags takes no verdict (a timeline lists every line): nothing to judge.
    flagged = "concepts" not in keys or bool(row["concepts"])
    # Before the None check: a line nobody has judged yet is what the page is for.
    if (table, column) in VERDICT_CELLS and "line_id" in keys and row["line_id"] is not None:
        return _current_verdict_markup(value) if flagged else Markup("")
    if value is None:
        return None
    if (table, column) in LINE_ID_CELLS and isinstance(value, int):
        # Player and verdict buttons side by side in the first column, so a reviewer can
        # listen and judge without scrolling across the wide table.
        form = _verdict_form_markup(datasette, value) if "verdict" in keys and flagged else Markup("")
        return _audio_markup(datasette, database, value, "lines") + form
    if (table, column) in RECORDING_CELLS and "recording_id" in keys and row["recording_id"] is not None:
        url = str(datasette.urls.database(database)) + "/timeline?" + urlencode({"recording_id": row["recording_id"]})
        # The file name is what reviewers recognise; the full path stays in the tooltip.
        name = Path(str(value)).name or str(value)
        return Markup(
            f'<a href="{html.escape(url)}" title="{html.escape(str(value))}: every line of this recording, in order">'
            f"{html.escape(name)}</a>"
        )
    if isinstance(value, str) and (column in FARSI_COLUMNS or ARABIC_SCRIPT.search(value)):
        return Markup(f'<div class="intercept-fa" dir="rtl" lang="fa">{html.escape(value)}</div>')
    return None


@hookimpl
def extra_css_urls(database, datasette):
    return on_store_pages(datasette, database, lambda: [datasette.urls.path("/-/intercept/static/review.css"), datasette.urls.path("/-/intercept/static/desk.css")])


@hookimpl
def extra_js_urls(database, datasette):
    return on_store_pages(datasette, database, lambda: [datasette.urls.path("/-/intercept/static/review.js"), datasette.urls.path("/-/intercept/static/desk.js")])


@hookimpl
def extra_body_script(request, datasette):
    async def script():
        who = await viewer(datasette, request) if request is not None else {"can_write": False, "csrftoken": ""}
        can_write, csrftoken = who["can_write"], who["csrftoken"]
        settings = {
            "canWrite": bool(can_write),
            "csrftoken": csrftoken,
            "loginUrl": datasette.urls.path("/-/login"),
            "verdictUrl": datasette.urls.path("/-/intercept/verdict"),
            "linesUrl": datasette.urls.path("/-/intercept/lines.json"),
            "contextUrl": datasette.urls.path("/-/intercept/context/"),
            "bundleUrl": datasette.urls.path("/-/intercept/bundle.zip"),
            "bundleMaxLines": doors_of(datasette).bundle_max_lines,
            "reviewUrl": datasette.urls.path("/-/intercept/review.json"),
            "noteUrl": datasette.urls.path("/-/intercept/note"),
        }
        # "</" would end the <script> element early.
        return "window.interceptReview = {};".format(json.dumps(settings).replace("</", "<\\/"))

    return script


@hookimpl
def permission_allowed(datasette, actor, action):
    if action not in (WRITE_VERDICT, DECIDE):
        return None
    if not actor or not actor.get("id") or config(datasette).get("read_only"):
        return False
    if action == DECIDE:
        return actor["id"] in (config(datasette).get("leads") or ())
    reviewers = config(datasette).get("reviewers")
    return reviewers is None or actor["id"] in reviewers


@hookimpl
def register_routes(datasette):
    routes = [
        (r"^/-/intercept/audio/(?P<line_id>[0-9]{1,18})\.wav$", audio_clip),
        (r"^/-/intercept/lines\.json$", pages.lines_json),
        (r"^/-/intercept/context/(?P<line_id>[0-9]{1,18})$", pages.context_page),
        (r"^/-/intercept/activity$", pages.activity_page),
        (r"^/-/intercept/period$", pages.period_page),
        (r"^/-/intercept/bundle\.zip$", pages.bundle_download),
        (r"^/-/intercept/verdict$", record_verdict),
        (r"^/-/intercept/static/(?P<path>[A-Za-z0-9_.-]+)$", asgi_static(str(STATIC_DIR))),
        (r"^/-/intercept/static/fonts/(?P<path>[A-Za-z0-9_.-]+)$", asgi_static(str(STATIC_DIR / "fonts"))),
        *team.routes(),
    ]
    if config(datasette).get("start_page", False):
        routes.append((r"^/$", start_page))
    return routes


async def start_page(request, datasette):
    """The review queue (intercept.review.team): flagged lines nobody has judged yet whose best
    flag scores at least the default threshold, highest score first. The same lines in
    Datasette's table (for analysts: facets, SQL) are `team.table_queue_url`."""
    database = await store_database(datasette)
    if database is None:
        return Response.text("No intercept store is open in this Datasette.", status=404)
    return Response.redirect(datasette.urls.path("/-/intercept/queue"))


def _error(message: str, status: int) -> Response:
    return Response.text(message + "\n", status=status)


async def audio_clip(request, datasette):
    """WAV of one line's stretch of its original recording, with `context` seconds either side.

    The file is looked up through lines.recording_id -> recordings.path; nothing in the
    request but the integer line id and the context length is used.
    """
    unexpected = sorted(set(request.args.keys()) - {"context"})
    if unexpected:
        return _error(f"unknown parameter(s) {', '.join(unexpected)}: only 'context' is accepted", 400)
    try:
        context = float(request.args.get("context") or 0.0)
    except ValueError:
        return _error(f"context must be a number of seconds, got {request.args.get('context')!r}", 400)
    if not 0.0 <= context <= MAX_CONTEXT_S:
        return _error(f"context must be between 0 and {MAX_CONTEXT_S:g} seconds, got {context:g}", 400)
    line_id = int(request.url_vars["line_id"])
    database = await store_database(datasette)
    if database is None:
        return _error("no intercept store is open", 404)
    row = await database.execute_fn(lambda conn: store_review.clip_source(conn, line_id))
    if row is None:
        return _error(f"no line {line_id} in the store", 404)
    start_s, end_s, path = row
    if path is None or start_s is None or end_s is None:
        return _error(f"line {line_id} has no recording path or times in the store", 404)
    try:
        clip = await asyncio.to_thread(extract_clip, path, float(start_s), float(end_s), context)
    except AudioError as error:
        # 410: the store knows the line but its recording can no longer be read.
        return _error(f"line {line_id}: {error}", 410)
    # Browsers ask for byte ranges to show the length and to seek.
    return ranged_response(request, clip, "audio/wav", {
        "content-disposition": f'inline; filename="line-{line_id}.wav"',
        "cache-control": "private, max-age=3600",
    })


@write_route(refusal="only logged-in reviewers may record verdicts: log in at /-/login")
async def record_verdict(request, datasette):
    """Store one reviewer's verdict on a flag's concept, or on all of a flagged line's concepts
    (intercept.store.team says what a verdict means).

    Form fields: line_id, verdict (confirmed|false_positive|unsure|withdrawn), note, flag_id or
    concept (else every concept of the line), decision=1 (a lead's decision), next.
    The reviewer and the time come from the login and the clock, never from the form.
    """
    from intercept.store import team

    # POST, a writable store and a reviewer's login are write_route's checks.
    form = await request.post_vars()
    verdict = form.get("verdict", "")
    if verdict not in VERDICTS + (team.WITHDRAWN,):
        return _error(f"verdict must be one of {', '.join(VERDICTS + (team.WITHDRAWN,))}, got {verdict!r}", 400)
    try:
        line_id = int(form.get("line_id", ""))
        flag_id = int(form["flag_id"]) if form.get("flag_id") else None
    except ValueError:
        return _error("line_id and flag_id must be integers", 400)
    concept = form.get("concept") or None
    decision = form.get("decision") == "1"
    if decision and not await datasette.permission_allowed(request.actor, DECIDE, default=False):
        return _error("only a lead may decide a disputed flag", 403)
    note = form.get("note", "").strip()
    if len(note) > MAX_NOTE_CHARS:
        return _error(f"note is longer than {MAX_NOTE_CHARS} characters", 400)
    database = await store_database(datasette)
    if database is None:
        return _error("no intercept store is open", 404)
    if "verdicts" not in await database.table_names():
        return _error(f"the store {database.path} has no verdicts table", 500)
    if not await database.execute_fn(lambda conn: store_review.line_exists(conn, line_id)):
        return _error(f"no line {line_id} in the store", 404)
    reviewer = request.actor["id"]
    # Datasette's write queue: one writer thread per database, so verdicts never race each
    # other; store.write_verdict takes SQLite's write lock (busy timeout) against a batch.
    try:
        verdict_ids = await database.execute_write_fn(
            lambda conn: write_verdict(conn, line_id, verdict, reviewer, note, flag_id, concept, decision))
    except team.TeamError as error:
        return _error(str(error), 400)
    next_path = local_path(form.get("next", ""))
    if next_path:
        datasette.add_message(request, f"Line {line_id}: {verdict.replace('_', ' ')}", datasette.INFO)
        return Response.redirect(next_path)
    state = await database.execute_fn(lambda conn: store_review.line_state(conn, line_id))
    return Response.json({"ok": True, "verdict_id": verdict_ids[0], "verdict_ids": verdict_ids, "line_id": line_id,
                          "flag_id": flag_id, "concept": concept, "decision": decision, "verdict": verdict,
                          "note": note or None, "reviewer": reviewer,
                          "line_verdict": state["verdict"] if state else None,
                          "confirmed": bool(state["confirmed"]) if state else False})


# ---------------------------------------------------------------- per-concept facets and filters

# The view's concepts/categories/kinds are comma lists of a line's distinct values, so a plain
# facet counts combinations ("bird,fox" apart from "fox"). The `flag` facet counts each value on
# its own: it groups by the list (an index walk on the summary table) and splits the few
# distinct lists here, which is exact because each list holds a line's values once. Concept ids
# and kinds cannot contain commas (intercept/lexicon/files.py); a category with a comma would be split.
# `?_flag_concept=fox` keeps the lines with such a flag.
FLAG_FACETS = {"concept": "concepts", "category": "categories", "kind": "kinds"}  # flag column -> view column
FLAG_FILTER_PREFIX = "_flag_"
# Where each table keeps the line id the flags point at.
LINE_ID_COLUMN = {"flagged_lines": "line_id", "lines": "id"}


class FlagFacet(Facet):
    """Facet type `flag`: metadata `facets: [{"flag": "concept"}]` or `?_facet_flag=concept`."""

    type = "flag"

    async def suggest(self):
        return []

    async def facet_results(self):
        results, timed_out = [], []
        if not await is_store(self.ds, self.database):
            return results, timed_out
        columns = set(await self.get_columns(self.sql, self.params))
        facet_size = self.get_facet_size()
        pairs = self.get_querystring_pairs()
        for source_and_config in self.get_configs():
            facet_config = source_and_config["config"]
            flag_column = facet_config.get("column") or facet_config.get("simple")
            list_column = FLAG_FACETS.get(flag_column)
            if list_column not in columns:
                continue
            facet_sql = store_review.flag_facet_sql(self.sql, list_column)
            try:
                rows = await self.ds.execute(
                    self.database, facet_sql, self.params, truncate=False,
                    custom_time_limit=self.ds.setting("facet_time_limit_ms"),
                )
            except QueryInterrupted:
                timed_out.append(flag_column)
                continue
            counts: dict[str, int] = {}
            for row in rows.rows:
                for value in str(row["value"]).split(","):
                    counts[value] = counts.get(value, 0) + row["count"]
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            parameter = FLAG_FILTER_PREFIX + flag_column
            values = []
            for value, count in ranked[:facet_size]:
                selected = (parameter, value) in pairs
                change = path_with_removed_args if selected else path_with_added_args
                values.append({
                    "value": value,
                    "label": value,
                    "count": count,
                    "toggle_url": self.ds.absolute_url(self.request, change(self.request, {parameter: value})),
                    "selected": selected,
                })
            results.append({
                "name": flag_column,
                "type": self.type,
                "results": values,
                "hideable": source_and_config["source"] != "metadata",
                "toggle_url": self.ds.urls.path(path_with_removed_args(self.request, {"_facet_flag": flag_column})),
                "truncated": len(ranked) > facet_size,
            })
        return results, timed_out


@hookimpl
def register_facet_classes():
    return [FlagFacet]


@hookimpl
def filters_from_request(request, database, table, datasette):
    line_id_column = LINE_ID_COLUMN.get(table or "")
    if line_id_column is None:
        return None
    return for_stores(datasette, database, lambda: _flag_filters(request, line_id_column))


def _flag_filters(request, line_id_column: str):
    where, params, described = [], {}, []
    for column in FLAG_FACETS:
        for value in request.args.getlist(FLAG_FILTER_PREFIX + column):
            name = f"intercept_flag_{len(params)}"
            # Every chosen value must be among the line's flags (as Datasette's own filters: and).
            where.append(store_review.flag_filter_sql(line_id_column, column, name))
            params[name] = value
            described.append(f'a flag with {column} "{value}"')
    return FilterArguments(where, params, described) if where else None


# ---------------------------------------------------------------- Farsi search

SEARCH_PARAMETER = re.compile(r"^_search(_.+)?$")


def _normalised_query_string(query_string: bytes, normalize) -> bytes:
    pairs = parse_qsl(query_string.decode("utf-8", "replace"), keep_blank_values=True)
    changed = [(key, normalize(value) if SEARCH_PARAMETER.match(key) and ARABIC_SCRIPT.search(value) else value)
               for key, value in pairs]
    return urlencode(changed).encode("ascii") if changed != pairs else query_string


def _database_in_path(datasette, path: str) -> Optional[str]:
    """The database a request path is about (/db, /db/table, /db.json), or None."""
    from datasette.utils import tilde_decode

    base = datasette.setting("base_url") or "/"
    if not path.startswith(base):
        return None
    first = path[len(base):].lstrip("/").split("/", 1)[0]
    # Datasette tilde-encodes dots in names, so the first dot starts a format (.json).
    name = tilde_decode(first.split(".", 1)[0]) if first and not first.startswith("-") else None
    return name if name in datasette.databases else None


@hookimpl
def asgi_wrapper(datasette):
    """Normalise Farsi in ?_search= (and ?_search_COLUMN=) the way the stored text_fa was
    normalised, so that Arabic ي/ك, diacritics or a missing ZWNJ in what a reviewer types still
    find the line. Rewriting the query string is the one place that covers every search box and
    link, since Datasette's own search filter reads the parameter as given."""

    def wrap(app):
        normalizer = {}  # built on the first Farsi search: hazm's Normalizer takes about a second
        lock = asyncio.Lock()

        async def normalize_search(scope, receive, send):
            query_string = scope.get("query_string") or b""
            if (scope.get("type") == "http" and b"_search" in query_string
                    and await is_store(datasette, _database_in_path(datasette, scope.get("path") or ""))):
                if "fa" not in normalizer:
                    decoded = query_string.decode("utf-8", "replace")
                    if not ARABIC_SCRIPT.search(unquote_plus(decoded)):
                        return await app(scope, receive, send)
                    async with lock:
                        if "fa" not in normalizer:
                            from intercept.text import PersianNormalizer

                            normalizer["fa"] = await asyncio.to_thread(PersianNormalizer)
                rewritten = _normalised_query_string(query_string, normalizer["fa"].normalize)
                if rewritten != query_string:
                    scope = dict(scope, query_string=rewritten)
            return await app(scope, receive, send)

        return normalize_search

    return wrap

