"""Corrections in the review desk, a Datasette plugin of its own (entry point
`intercept_corrections`; intercept.review registers it too when not installed).

What it adds:
- POST `/-/intercept/correct`: a reviewer's correction of a line's Farsi (and optionally its
  English), derived by intercept.corrections and written through Datasette's write queue in one
  transaction (store/revisions.py `write_correction`). Logged-in reviewers only (the verdict
  permission), behind Datasette's CSRF check (the form's `csrftoken`, as the verdict form);
  the reviewer and the time come from the login and the clock, never from the form.
  Fields: line_id, text_fa, text_en (empty: not given), replaces (the revision the reviewer
  saw, empty for the machine's text: a correction made meanwhile by someone else is refused
  with 409), note, next (a page to go back to; otherwise JSON);
- GET `/-/intercept/revisions.json?ids=1,2`: each line's current and machine text, revision,
  where its English came from, and its history, for the editor and the history on each line;
- GET `/-/intercept/correct-next`: the lines whose correction is likely to change the most
  (store/revisions.py `correct_next`), each editable in place;
- corrections.js on every page with line players: `e` edits the selected line (Farsi right to
  left in the Persian font, the clip looping, slower on demand), Ctrl+Enter saves, Esc cancels;
  each corrected line shows its history.

The lexicon and text translator used to derive a correction come from the plugin configuration
(`corrections: {lexicons: [...], translator: transformers, mt_model: ...}`, set by
`intercept.review.ReviewOptions`); by default the shipped lexicons and no translator.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from datasette import hookimpl
from datasette.utils.asgi import Response

from intercept.scoring import DEFAULT_THRESHOLD
from intercept.store import revisions

from .blocks import viewer
from .doors import write_route
from .site import WRITE_VERDICT, audio_url, config, local_path, on_store_pages, store_database

MAX_IDS = 500
CORRECTOR_ATTRIBUTE = "_intercept_corrector"
TEMPLATE = Path(__file__).parent / "templates" / "intercept_correct_next.html"
# The correct-next ranking: flags within BAND of the queue's threshold count as doubtful; a
# confirmed coded line within NEIGHBOUR_S seconds makes its neighbours worth a look.
BAND = 0.15
NEIGHBOUR_S = 30.0


def _error(message: str, status: int) -> Response:
    return Response.text(message + "\n", status=status)


def _build_corrector(config: dict):
    """The Corrector of `intercept correct`, from the plugin configuration: each line is derived
    with its run's guards (intercept.components.PostPerRun), the translator built as the CLI's."""
    from intercept.components import build_translator, load_lexicon
    from intercept.config import RunOptions
    from intercept.corrections import Corrector
    from intercept.text import PersianNormalizer

    normalizer = PersianNormalizer()
    lexicon = load_lexicon(config.get("lexicons") or (), normalizer)
    translator = None
    if config.get("translator") == "transformers":
        # fallback none: an MT model that cannot load leaves the English as it was, the desk stays up.
        translator = build_translator(RunOptions(translator="transformers", mt_model=config.get("mt_model"),
                                                 mt_fallback="none"))
    return Corrector.build(lexicon, normalizer, translator)


async def corrector(datasette):
    """The desk's Corrector, built once per Datasette (hazm's normaliser takes seconds)."""
    lock = datasette.__dict__.setdefault("_intercept_corrector_lock", asyncio.Lock())
    async with lock:
        built = getattr(datasette, CORRECTOR_ATTRIBUTE, None)
        if built is None:
            built = await asyncio.to_thread(_build_corrector, config(datasette).get("corrections") or {})
            setattr(datasette, CORRECTOR_ATTRIBUTE, built)
    return built


@write_route(refusal="only logged-in reviewers may correct lines: log in at /-/login")
async def record_correction(request, datasette):
    """Store one reviewer's correction of a line and derive the line again."""
    from intercept.corrections import CorrectionConflict, check_text

    # POST, a writable store and a reviewer's login are write_route's checks.
    form = await request.post_vars()
    try:
        line_id = int(form.get("line_id", ""))
        replaces = int(form["replaces"]) if form.get("replaces") else None
    except ValueError:
        return _error("line_id and replaces must be integers", 400)
    reviewer = request.actor["id"]
    try:
        fa, en, reviewer = check_text(form.get("text_fa"), form.get("text_en"), reviewer)
    except ValueError as error:
        return _error(str(error), 400)
    note = (form.get("note") or "").strip()
    if len(note) > 4000:
        return _error("note is longer than 4000 characters", 400)
    database = await store_database(datasette)
    if database is None:
        return _error("no intercept store is open", 404)
    chosen = await corrector(datasette)

    def prepare(conn):
        return chosen.prepare(revisions.database(conn), line_id, fa, en, reviewer, note)

    try:
        correction = await database.execute_fn(prepare)
    except ValueError as error:
        return _error(str(error), 404 if str(error).startswith("no line") else 400)
    if correction.replaces != replaces:
        return _error(f"line {line_id} is at revision {correction.replaces} now, not {replaces}: someone corrected "
                      "it meanwhile; reload the line and look at its text again", 409)
    terms = list(chosen.post.lexicon.terms)
    try:
        # Datasette's write queue: one writer thread per database; write_correction takes
        # SQLite's write lock (busy timeout) against a batch, and checks the revision again.
        revision_id = await database.execute_write_fn(
            lambda conn: revisions.write_correction(conn, correction, terms), block=True)
    except CorrectionConflict as error:
        return _error(str(error), 409)
    next_path = local_path(form.get("next", ""))
    if next_path:
        datasette.add_message(request, f"Line {line_id}: corrected (revision {revision_id})", datasette.INFO)
        return Response.redirect(next_path)
    edited = await database.execute_fn(lambda conn: revisions.lines_for_editing(revisions.database(conn),
                                                                                 [line_id]))
    return Response.json({"ok": True, "revision_id": revision_id, "reviewer": reviewer,
                          "flags": [{"concept": f.concept, "kind": f.kind, "score": round(f.score, 4),
                                     "matched": f.matched} for f in correction.flags],
                          **edited[line_id]})


def _ids(request) -> list[int]:
    raw = request.args.get("ids", "")
    ids = [int(part) for part in raw.split(",") if part.strip()]
    if len(ids) > MAX_IDS:
        raise ValueError(f"at most {MAX_IDS} ids per request")
    return ids


async def revisions_json(request, datasette):
    try:
        ids = _ids(request)
    except ValueError as error:
        return _error(f"ids must be a comma-separated list of line ids ({error})", 400)
    database = await store_database(datasette)
    if database is None:
        return _error("no intercept store is open", 404)
    found = await database.execute_fn(lambda conn: revisions.lines_for_editing(revisions.database(conn), ids))
    return Response.json({str(line_id): line for line_id, line in found.items()})


async def correct_next_page(request, datasette):
    """Lines to correct first: doubtful flags near the queue's threshold, weak recognition,
    neighbours of confirmed coded lines."""
    from intercept.reliability import WEAK_CONFIDENCE

    try:
        limit = min(500, max(1, int(request.args.get("limit") or 50)))
    except ValueError:
        return _error("limit must be a number of lines", 400)
    database = await store_database(datasette)
    if database is None:
        return _error("no intercept store is open", 404)
    ranked = await database.execute_fn(lambda conn: revisions.correct_next(
        revisions.database(conn), DEFAULT_THRESHOLD, BAND, WEAK_CONFIDENCE, NEIGHBOUR_S, limit))
    can_write = await datasette.permission_allowed(request.actor, WRITE_VERDICT, default=False)
    context_s = float(config(datasette).get("context_s", 2.0))
    template = datasette.__dict__.setdefault("_intercept_templates", {})
    if TEMPLATE.name not in template:
        template[TEMPLATE.name] = datasette.jinja_env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return Response.html(await datasette.render_template(template[TEMPLATE.name], {
        "lines": ranked, "can_write": can_write, "threshold": DEFAULT_THRESHOLD, "band": BAND,
        "weak": WEAK_CONFIDENCE, "neighbour_s": NEIGHBOUR_S, "context_s": context_s, "limit": limit,
        "audio_url": lambda line_id, context=0.0: audio_url(datasette, line_id, context),
        "context_url": lambda line_id: datasette.urls.path(f"/-/intercept/context/{int(line_id)}"),
    }, request=request))


@hookimpl
def register_routes(datasette):
    return [
        (r"^/-/intercept/correct$", record_correction),
        (r"^/-/intercept/revisions\.json$", revisions_json),
        (r"^/-/intercept/correct-next$", correct_next_page),
    ]


# Like the review plugin's, only on intercept stores' pages (and pages about no one database).
@hookimpl
def extra_js_urls(database, datasette):
    return on_store_pages(datasette, database, lambda: [datasette.urls.path("/-/intercept/static/corrections.js")])


@hookimpl
def extra_css_urls(database, datasette):
    return on_store_pages(datasette, database, lambda: [datasette.urls.path("/-/intercept/static/corrections.css")])


@hookimpl
def extra_body_script(request, datasette):
    async def script():
        who = await viewer(datasette, request) if request is not None else {"can_write": False, "csrftoken": ""}
        can_write, csrftoken = who["can_write"], who["csrftoken"]
        settings = {
            "canWrite": bool(can_write) and not config(datasette).get("read_only"),
            "csrftoken": csrftoken,
            "correctUrl": datasette.urls.path("/-/intercept/correct"),
            "revisionsUrl": datasette.urls.path("/-/intercept/revisions.json"),
            "linesUrl": datasette.urls.path("/-/intercept/lines.json"),
            "audioUrl": datasette.urls.path("/-/intercept/audio/"),
            "correctNextUrl": datasette.urls.path("/-/intercept/correct-next"),
        }
        return "window.interceptCorrections = {};".format(json.dumps(settings).replace("</", "<\\/"))

    return script
