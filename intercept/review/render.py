"""How the desk's own pages are drawn (pages.py, team.py): our templates over Datasette's
base.html, with each line's review block (blocks.py), and the `?ids=` of a request."""
from __future__ import annotations

from pathlib import Path

from datasette.utils.asgi import Response

from . import blocks
from .site import WRITE_VERDICT, audio_url, config, store_database

TEMPLATES = Path(__file__).parent / "templates"
MAX_IDS = 500  # ids one lines.json request may ask for (a page shows at most a few hundred)
KEYS = (("j / ↓", "next line"), ("k / ↑", "previous line"), ("p / space", "play or replay (from the lead-in)"),
        ("c", "confirmed"), ("f", "false positive"), ("u", "unsure"), ("w", "withdraw my verdicts"),
        ("e", "write a note"), ("n", "next line awaiting a verdict"), ("x", "context of the line"))


def _template(datasette, name: str):
    # Our templates extend Datasette's base.html; they are read once per Datasette instance
    # (a plugin module, unlike a plugin package, gets no templates folder from Datasette).
    cache = datasette.__dict__.setdefault("_intercept_templates", {})
    if name not in cache:
        cache[name] = datasette.jinja_env.from_string((TEMPLATES / name).read_text(encoding="utf-8"))
    return cache[name]


async def render_page(datasette, request, name: str, context: dict) -> Response:
    """The template `name` with `context`, the lines' review blocks and the desk's links."""
    can_write = await datasette.permission_allowed(request.actor, WRITE_VERDICT, default=False)
    database = await store_database(datasette)
    reviews = (await blocks.review_blocks(datasette, request, database, context.get("lines") or [])
               if database is not None else {})
    context = {**context, "can_write": can_write, "keys": KEYS, "reviews": reviews,
               "context_s": float(config(datasette).get("context_s", 2.0)),
               "verdict_url": datasette.urls.path("/-/intercept/verdict"),
               "bundle_url": datasette.urls.path("/-/intercept/bundle.zip"),
               "audio_url": lambda line_id, context_s=0.0: audio_url(datasette, line_id, context_s),
               "context_url": lambda line_id, whole=False: datasette.urls.path(
                   f"/-/intercept/context/{int(line_id)}" + ("?whole=1" if whole else ""))}
    return Response.html(await datasette.render_template(_template(datasette, name), context, request=request))


def line_ids(request) -> list[int]:
    """The ?ids=1,2,3 of a request; ValueError with the reason."""
    try:
        ids = [int(part) for part in request.args.get("ids", "").split(",") if part.strip()]
    except ValueError:
        raise ValueError("ids must be integers separated by commas") from None
    if len(ids) > MAX_IDS:
        raise ValueError(f"at most {MAX_IDS} ids at a time")
    return ids


