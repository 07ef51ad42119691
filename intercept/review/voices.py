"""The voices part of the review UI, a Datasette plugin of its own (entry point
`intercept_voices`; intercept.review registers it too when not installed).

What it adds:
- `/-/intercept/voices`: every voice with its transmissions, recordings and flagged lines;
- `/-/intercept/voices/{id}`: one voice's transmissions across recordings, each with its
  audio, text and concepts ("other transmissions of this voice");
- POST `/-/intercept/voices/{id}/name`, `/merge`, `/split`: a reviewer names a voice, merges
  it into another, or splits chosen transmissions off to a new voice. Logged-in reviewers only
  (the verdict permission), with their CSRF token (doors.write_route); written through intercept.voices and
  the Store, in Datasette's write queue (one transaction each; the Store logs each decision in
  voice_decisions). Runs never undo them;
- a `voice` facet and `?_voice=ID` filter on flagged_lines;
- on pages with line audio players (flagged lines, timelines), a link from each line to its
  voice's page, filled in by voices.js from `/-/intercept/voices/lines.json?ids=1,2`.

Like the review plugin, it acts on intercept stores only: other databases of the same Datasette
get neither its JavaScript nor its `?_voice=` filter. Pages are built here as plain HTML over Datasette's own stylesheet: a handful of small pages
did not warrant a template directory and loader.
"""
from __future__ import annotations

import html
from typing import Optional
from urllib.parse import urlencode

from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.facets import Facet
from datasette.filters import FilterArguments
from datasette.utils import path_with_added_args, path_with_removed_args
from datasette.utils.asgi import Response

from intercept.store import READ, Store, write_on_connection
from intercept.store import review as store_review

from .doors import write_route
from .site import STATIC_DIR, WRITE_VERDICT, for_stores, is_store, on_store_pages, store_database

VOICE_FILTER = "_voice"
MAX_IDS = 500  # line ids per lines.json request (a page shows at most a few hundred)
VOICES_JS = STATIC_DIR / "voices.js"


def _error(message: str, status: int) -> Response:
    return Response.text(message + "\n", status=status)


async def _database(datasette):
    database = await store_database(datasette)
    if database is None:
        raise LookupError("no intercept store is open")
    return database


async def _read(datasette, work):
    """work(store) on Datasette's read connection: only intercept.store knows the SQL."""
    database = await _database(datasette)
    return await database.execute_fn(lambda conn: work(Store.on_connection(conn, READ)))


async def _write(datasette, work):
    """work(store) in Datasette's write queue, one transaction (intercept.store.write_on_connection)."""
    database = await _database(datasette)
    return await database.execute_write_fn(lambda conn: write_on_connection(conn, work), block=True)


def _voice_label(voice_id: int, name: Optional[str]) -> str:
    return f"voice {voice_id}" + (f": {name}" if name else "")


async def _page(datasette, request, title: str, body: str) -> Response:
    css = [str(datasette.urls.static("app.css")), str(datasette.urls.path("/-/intercept/static/review.css"))]
    # Datasette's flash messages (name, merge, split confirmations); its templates read them so.
    shown = getattr(datasette, "_show_messages", lambda _: [])(request)
    messages = "".join(f'<p class="message-info">{html.escape(m)}</p>' for m, _ in shown)
    head = "".join(f'<link rel="stylesheet" href="{html.escape(u)}">' for u in css)
    home = html.escape(str(datasette.urls.path("/")))
    voices = html.escape(str(datasette.urls.path("/-/intercept/voices")))
    return Response.html(
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>{head}</head>'
        f'<body><div class="not-footer"><section class="content"><p class="crumbs"><a href="{home}">review</a> / '
        f'<a href="{voices}">voices</a></p><h1>{html.escape(title)}</h1>{messages}{body}</section></div></body></html>'
    )


async def _writer(datasette, request) -> tuple[bool, str]:
    """(may write, csrf token for forms)."""
    can_write = await datasette.permission_allowed(request.actor, WRITE_VERDICT, default=False)
    token = request.scope["csrftoken"]() if can_write and "csrftoken" in request.scope else ""
    return bool(can_write), token


def _form(action: str, token: str, fields: str, button: str) -> str:
    return (f'<form method="post" action="{html.escape(action)}" class="intercept-voice-form">'
            f'<input type="hidden" name="csrftoken" value="{html.escape(token)}">{fields}'
            f'<button type="submit">{html.escape(button)}</button></form>')


async def voices_page(request, datasette):
    """Every voice of the store, most heard first."""
    try:
        voices = await _read(datasette, lambda s: s.voices_overview())
    except LookupError as error:
        return _error(str(error), 404)
    voices.sort(key=lambda v: (-v["transmissions"], v["id"]))
    base = str(datasette.urls.path("/-/intercept/voices"))
    rows = "".join(
        f'<tr><td><a href="{html.escape(base)}/{v["id"]}">{html.escape(_voice_label(v["id"], v["name"]))}</a></td>'
        f'<td>{v["transmissions"]}</td><td>{v["recordings"]}</td><td>{v["lines"]}</td><td>{v["flagged_lines"]}</td>'
        f'<td>{html.escape(v["named_by"] or "")}</td><td>{html.escape(v["created_by"] or "")}</td></tr>'
        for v in voices
    )
    if not voices:
        body = ("<p>No voices yet: run <code>intercept run --voices</code> or <code>intercept voices STORE</code>"
                " (docs/voices.md).</p>")
    else:
        body = ("<p>Transmissions grouped by voice across recordings. A voice is a guess of the voice encoder; "
                "open one to hear its transmissions, name it, merge it or split some off.</p>"
                "<table class=\"rows-and-columns\"><thead><tr><th>voice</th><th>transmissions</th><th>recordings</th>"
                f"<th>lines</th><th>flagged lines</th><th>named by</th><th>made by</th></tr></thead><tbody>{rows}"
                "</tbody></table>")
    return await _page(datasette, request, "Voices", body)


async def voice_page(request, datasette):
    """One voice: its transmissions across recordings, and the reviewer's forms."""
    voice_id = int(request.url_vars["voice_id"])
    try:
        voice, rows, others = await _read(datasette, lambda s: (
            s.voice(voice_id), s.voice_transmissions(voice_id), s.voices_overview()))
    except LookupError as error:
        return _error(str(error), 404)
    if voice is None:
        return _error(f"no voice {voice_id} in the store", 404)
    base = str(datasette.urls.path(f"/-/intercept/voices/{voice_id}"))
    if voice["merged_into"] is not None:
        target = str(datasette.urls.path(f"/-/intercept/voices/{voice['merged_into']}"))
        return await _page(datasette, request, _voice_label(voice_id, voice["name"]),
                           f'<p>Merged into <a href="{html.escape(target)}">voice {voice["merged_into"]}</a>.</p>')
    can_write, token = await _writer(datasette, request)
    database = (await store_database(datasette)).name
    items = []
    for row in rows:
        line = ""
        if row["line_id"] is not None:
            audio = str(datasette.urls.path(f"/-/intercept/audio/{int(row['line_id'])}.wav"))
            line_url = str(datasette.urls.table(database, "lines")) + f"/{int(row['line_id'])}"
            line = (f'<a href="{html.escape(line_url)}">line {int(row["line_id"])}</a> '
                    f'<audio controls preload="none" src="{html.escape(audio)}"></audio>')
        timeline = str(datasette.urls.database(database)) + "/timeline?" + urlencode({"recording_id": row["recording_id"]})
        pick = (f'<input type="checkbox" name="transmission_id" value="{row["transmission_id"]}" form="split-form">'
                if can_write else "")
        items.append(
            f'<tr><td>{pick} {row["transmission_id"]}</td><td><a href="{html.escape(timeline)}" '
            f'title="{html.escape(row["recording"] or "")}">{html.escape((row["recording"] or "").rsplit("/", 1)[-1])}'
            f'</a> {row["start_s"]:.1f}&ndash;{row["end_s"]:.1f} s</td><td>{line}</td>'
            f'<td><div class="intercept-fa" dir="rtl" lang="fa">{html.escape(row["text_fa"] or "")}</div></td>'
            f'<td>{html.escape(row["text_en"] or "")}</td><td>{html.escape(row["concepts"] or "")}</td></tr>'
        )
    flagged = str(datasette.urls.table(database, "flagged_lines")) + "?" + urlencode({VOICE_FILTER: voice_id})
    body = (f'<p>{len(rows)} transmissions in {len({r["recording_id"] for r in rows})} recordings; '
            f'<a href="{html.escape(flagged)}">its flagged lines</a>. '
            f'Named by {html.escape(voice["named_by"] or "nobody")}; made by {html.escape(voice["created_by"] or "")}.</p>')
    if can_write:
        options = "".join(f'<option value="{v["id"]}">{html.escape(_voice_label(v["id"], v["name"]))}</option>'
                          for v in others if v["id"] != voice_id)
        body += _form(base + "/name", token, f'<input type="text" name="name" maxlength="200" '
                      f'value="{html.escape(voice["name"] or "")}" placeholder="name, e.g. operator A">', "name")
        if options:
            body += _form(base + "/merge", token, f'<select name="into">{options}</select>', "merge into")
        body += ('<form method="post" id="split-form" action="' + html.escape(base + "/split") + '">'
                 f'<input type="hidden" name="csrftoken" value="{html.escape(token)}">'
                 '<input type="text" name="name" maxlength="200" placeholder="name of the new voice (optional)">'
                 '<button type="submit">split the ticked transmissions off to a new voice</button></form>')
    else:
        body += '<p><a href="' + html.escape(str(datasette.urls.path("/-/login"))) + '">Log in</a> to name, merge or split.</p>'
    body += ("<table class=\"rows-and-columns\"><thead><tr><th>transmission</th><th>recording</th><th>audio</th>"
             f"<th>Farsi</th><th>English</th><th>concepts</th></tr></thead><tbody>{''.join(items)}</tbody></table>")
    return await _page(datasette, request, _voice_label(voice_id, voice["name"]), body)


@write_route(refusal="only logged-in reviewers may change voices: log in at /-/login")
async def voice_action(request, datasette):
    """name | merge | split, from a logged-in reviewer; the reviewer comes from the login."""
    from intercept.voices import merge_voices, split_voice

    # POST, a writable store and a reviewer's login are write_route's checks.
    voice_id, action = int(request.url_vars["voice_id"]), request.url_vars["action"]
    form = await request.post_vars()
    reviewer = request.actor["id"]
    target = voice_id
    try:
        if action == "name":
            name = form.get("name", "")
            await _write(datasette, lambda s: s.name_voice(voice_id, name, reviewer))
            message = f"voice {voice_id} named {name.strip() or '(no name)'}"
        elif action == "merge":
            target = int(form.get("into", ""))
            await _write(datasette, lambda s: merge_voices(s, voice_id, target, reviewer))
            message = f"voice {voice_id} merged into voice {target}"
        else:
            ids = [int(t) for t in request_list(form, "transmission_id")]
            name = form.get("name", "")
            target = await _write(datasette, lambda s: split_voice(s, voice_id, ids, reviewer, name=name))
            message = f"{len(ids)} transmissions of voice {voice_id} split off to voice {target}"
    except ValueError as error:
        return _error(str(error), 400)
    except LookupError as error:
        return _error(str(error), 404)
    datasette.add_message(request, message, datasette.INFO)
    return Response.redirect(str(datasette.urls.path(f"/-/intercept/voices/{target}")))


def request_list(form, key: str) -> list[str]:
    # MultiParams keeps repeated fields (ticked checkboxes); a plain dict has one.
    return form.getlist(key) if hasattr(form, "getlist") else ([form[key]] if key in form else [])


async def voices_of_lines(request, datasette):
    """{line id: {voice_id, name, url}} for ?ids=1,2,3 (those lines that have a voice)."""
    try:
        ids = [int(i) for i in (request.args.get("ids") or "").split(",") if i.strip()][:MAX_IDS]
    except ValueError:
        return _error("ids must be integers separated by commas", 400)
    try:
        found = await _read(datasette, lambda s: s.voices_of_lines(ids))
    except LookupError as error:
        return _error(str(error), 404)
    for line_id, voice in found.items():
        voice["url"] = str(datasette.urls.path(f"/-/intercept/voices/{voice['voice_id']}"))
        voice["label"] = _voice_label(voice["voice_id"], voice["name"])
    return Response.json({str(k): v for k, v in found.items()})


@hookimpl
def register_routes(datasette):
    return [
        (r"^/-/intercept/voices$", voices_page),
        (r"^/-/intercept/voices/lines\.json$", voices_of_lines),
        (r"^/-/intercept/voices/(?P<voice_id>[0-9]{1,18})$", voice_page),
        (r"^/-/intercept/voices/(?P<voice_id>[0-9]{1,18})/(?P<action>name|merge|split)$", voice_action),
    ]


@hookimpl
def extra_js_urls(database, datasette):
    return on_store_pages(datasette, database, lambda: [datasette.urls.path("/-/intercept/static/voices.js")])


# ---------------------------------------------------------------- voice facet and filter

async def _has_voices(datasette, database_name: str) -> bool:
    database = datasette.databases.get(database_name)
    return (database is not None and await is_store(datasette, database_name)
            and "voices" in await database.table_names())


class VoiceFacet(Facet):
    """Facet type `voice` on flagged_lines: lines per voice of their transmission.
    Metadata `facets: [{voice: line_id}]` or `?_facet_voice=line_id`."""

    type = "voice"

    async def suggest(self):
        return []

    async def facet_results(self):
        results, timed_out = [], []
        if self.table != "flagged_lines" or not await _has_voices(self.ds, self.database):
            return results, timed_out
        if "line_id" not in set(await self.get_columns(self.sql, self.params)):
            return results, timed_out
        facet_sql = store_review.voice_facet_sql(self.sql)
        try:
            rows = await self.ds.execute(self.database, facet_sql, self.params, truncate=False,
                                         custom_time_limit=self.ds.setting("facet_time_limit_ms"))
        except QueryInterrupted:
            return results, ["voice"]
        facet_size = self.get_facet_size()
        pairs = self.get_querystring_pairs()
        values = []
        for row in list(rows.rows)[:facet_size]:
            value = str(row["value"])
            selected = (VOICE_FILTER, value) in pairs
            change = path_with_removed_args if selected else path_with_added_args
            values.append({
                "value": value,
                "label": _voice_label(row["value"], row["name"]),
                "count": row["count"],
                "toggle_url": self.ds.absolute_url(self.request, change(self.request, {VOICE_FILTER: value})),
                "selected": selected,
            })
        results.append({
            "name": "voice",
            "type": self.type,
            "results": values,
            "hideable": True,
            "toggle_url": self.ds.urls.path(path_with_removed_args(self.request, {"_facet_voice": "line_id"})),
            "truncated": len(rows.rows) > facet_size,
        })
        return results, timed_out


@hookimpl
def register_facet_classes():
    return [VoiceFacet]


@hookimpl
def filters_from_request(request, database, table, datasette):
    chosen = request.args.getlist(VOICE_FILTER)
    if table != "flagged_lines" or not chosen:
        return None
    return for_stores(datasette, database, lambda: _voice_filters(chosen))


def _voice_filters(chosen: list[str]):
    where, params = [], {}
    for value in chosen:
        try:
            voice_id = int(value)
        except ValueError:
            continue
        name = f"intercept_voice_{len(params)}"
        where.append(store_review.voice_filter_sql(name))
        params[name] = voice_id
    described = [f"voice {v}" for v in params.values()]
    return FilterArguments(where, params, [f"spoken by {', '.join(described)}"]) if where else None
